package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Repo reads and writes an account's history.
type Repo struct {
	s store.Store
}

// New returns a Repo over s.
func New(s store.Store) *Repo { return &Repo{s: s} }

// Store exposes the underlying port for callers that compose their own transactions.
func (r *Repo) Store() store.Store { return r.s }

// ContactState is what ingest needs of one contact to apply an event: the profile and the
// records its aggregates are computed from, each with the version it was read at.
type ContactState struct {
	Account string
	Email   string
	Profile domain.Contact
	// Stored is the profile as it was read, to tell what a change changed (Profile may be
	// edited in place while an event is applied).
	Stored         domain.Contact
	ProfileVersion int64 // 0 when the contact is new
	Orders         map[string]domain.Order
	OrderVersions  map[string]int64
	Subs           map[string]domain.Subscription
	SubVersions    map[string]int64
	// StoredOrders and StoredSubs are the records as they were read (Orders and Subs change
	// while an event is applied), so what a change changed can be computed from the two.
	StoredOrders map[string]domain.Order
	StoredSubs   map[string]domain.Subscription
	Carts        map[string]domain.Cart
	// Outbox holds facts committed but not yet confirmed sent to the destination queues.
	Outbox []domain.Fact
	// AliasOf is set when the email changed to this one: the contact lives there now, and what
	// is still here is moving (see MoveStep).
	AliasOf string
	// MovingFrom lists the emails whose records are still moving here after an email change;
	// until they have, the contact's aggregates count them too (Repo.MovingInto finds the
	// ones further up a chain of changes).
	MovingFrom []string
	// StoredAliasOf and StoredMovingFrom are AliasOf and MovingFrom as they were read.
	StoredAliasOf    string
	StoredMovingFrom []string
	// FirstView is the contact's first page view on the merchant's site, once the browser that
	// made it was identified (nil when none); StoredFirstView as it was read, with its version.
	FirstView        *FirstView
	StoredFirstView  *FirstView
	FirstViewVersion int64
	// ErasingInto is set while the contact is being erased (see ErasureJob): the pseudonym its
	// records go to. Nothing but the erasure may change the contact meanwhile.
	ErasingInto string
}

// FirstView is when a contact first viewed a page, and where from.
type FirstView struct {
	At     time.Time `json:"at"`
	Source string    `json:"source"`
}

// OrderList returns the orders sorted by key, for deterministic aggregation.
func (c *ContactState) OrderList() []domain.Order {
	out := make([]domain.Order, 0, len(c.Orders))
	for _, o := range c.Orders {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// SubList returns the subscriptions sorted by key.
func (c *ContactState) SubList() []domain.Subscription {
	out := make([]domain.Subscription, 0, len(c.Subs))
	for _, s := range c.Subs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// LoadContact reads the state of one contact. A contact that does not exist yet comes back
// empty, with ProfileVersion 0.
func (r *Repo) LoadContact(ctx context.Context, account, email string) (*ContactState, error) {
	pk := ContactPK(account, email)
	st := &ContactState{Account: account, Email: email,
		Profile:       domain.Contact{Account: account, Email: email},
		Stored:        domain.Contact{Account: account, Email: email},
		Orders:        map[string]domain.Order{},
		OrderVersions: map[string]int64{},
		Subs:          map[string]domain.Subscription{},
		SubVersions:   map[string]int64{},
		StoredOrders:  map[string]domain.Order{},
		StoredSubs:    map[string]domain.Subscription{},
		Carts:         map[string]domain.Cart{},
	}
	it, err := r.s.Get(ctx, pk, skProfile)
	switch {
	case err == nil:
		if err := json.Unmarshal(it.Data, &st.Profile); err != nil {
			return nil, fmt.Errorf("contact %s of %s: stored profile is unreadable: %w", email, account, err)
		}
		_ = json.Unmarshal(it.Data, &st.Stored)
		st.ProfileVersion = it.Version
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("read contact %s of %s: %w", email, account, err)
	}
	if it, err := r.s.Get(ctx, pk, skAlias); err == nil {
		var a struct{ Email string }
		_ = json.Unmarshal(it.Data, &a)
		st.AliasOf, st.StoredAliasOf = a.Email, a.Email
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("read contact %s of %s: %w", email, account, err)
	}
	if it, err := r.s.Get(ctx, pk, skFirstView); err == nil {
		var v FirstView
		if json.Unmarshal(it.Data, &v) == nil {
			st.FirstView, st.StoredFirstView, st.FirstViewVersion = &v, &v, it.Version
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("read contact %s of %s: %w", email, account, err)
	}
	switch {
	case domain.IsPseudonym(st.AliasOf):
		// The contact's email now, whose erasure aliased it to the pseudonym.
		st.ErasingInto = st.AliasOf
	case domain.IsPseudonym(email) || st.AliasOf != "":
		// A pseudonym, or an address the contact had before: only these can be marked without
		// an alias to the pseudonym, so a contact that never changed its email costs no read.
		if st.ErasingInto, err = r.Erasing(ctx, account, email); err != nil {
			return nil, err
		}
	}
	for _, p := range []string{prefOrder, prefSub, prefCart, prefOutbox, prefMoveIn} {
		items, err := store.QueryAll(ctx, r.s, store.Query{PK: pk, SKPrefix: p})
		if err != nil {
			return nil, fmt.Errorf("read contact %s of %s: %w", email, account, err)
		}
		for _, it := range items {
			if err := st.decode(p, it); err != nil {
				return nil, fmt.Errorf("contact %s of %s: item %s is unreadable: %w", email, account, it.SK, err)
			}
		}
	}
	// The outbox is stored by fact id; facts left unsent (a crash before the flush) go out in
	// the order they happened, an email change before what it changed on the new contact.
	sort.SliceStable(st.Outbox, func(i, j int) bool {
		a, b := st.Outbox[i], st.Outbox[j]
		if !a.OccurredAt.Equal(b.OccurredAt) {
			return a.OccurredAt.Before(b.OccurredAt)
		}
		return a.Kind == domain.FactEmailChanged && b.Kind != domain.FactEmailChanged
	})
	return st, nil
}

func (c *ContactState) decode(prefix string, it store.Item) error {
	switch prefix {
	case prefOrder:
		var o domain.Order
		if err := domain.UnmarshalRecord(it.Data, &o); err != nil {
			return err
		}
		c.Orders[o.Key] = o
		c.StoredOrders[o.Key] = o
		c.OrderVersions[o.Key] = it.Version
	case prefSub:
		var s domain.Subscription
		if err := domain.UnmarshalRecord(it.Data, &s); err != nil {
			return err
		}
		c.Subs[s.Key] = s
		c.StoredSubs[s.Key] = s
		c.SubVersions[s.Key] = it.Version
	case prefCart:
		var ct domain.Cart
		if err := json.Unmarshal(it.Data, &ct); err != nil {
			return err
		}
		c.Carts[string(ct.Source)+":"+ct.CartID] = ct
	case prefOutbox:
		var f domain.Fact
		if err := json.Unmarshal(it.Data, &f); err != nil {
			return err
		}
		c.Outbox = append(c.Outbox, f)
	case prefMoveIn:
		c.MovingFrom = append(c.MovingFrom, strings.TrimPrefix(it.SK, prefMoveIn))
		c.StoredMovingFrom = append(c.StoredMovingFrom, strings.TrimPrefix(it.SK, prefMoveIn))
	}
	return nil
}

// Writes collects the writes of one change to the history, to commit all or nothing.
type Writes struct {
	ws   []store.Write
	keys map[store.Key]int
	// contacts are the contacts whose records or profile the writes change, in the order first
	// touched.
	contacts []*ContactState
	// names are the name-index writes collected for each contact, replaced as a whole when its
	// profile is put again in the same change.
	names map[*ContactState][]store.Key
}

// Contacts lists the contacts whose orders, subscriptions or profile the writes change, and
// those marked with Touch.
func (w *Writes) Contacts() []*ContactState { return w.contacts }

// Touch marks a contact as changed by the writes even when none of them is its own record (an
// email change makes it part of another contact).
func (w *Writes) Touch(c *ContactState) { w.touch(c) }

func (w *Writes) touch(c *ContactState) {
	for _, x := range w.contacts {
		if x == c {
			return
		}
	}
	w.contacts = append(w.contacts, c)
}

// Append adds writes composed elsewhere (the reports' rollups) to the same transaction. They
// must not touch a key the history writes.
func (w *Writes) Append(ws ...store.Write) {
	for _, x := range ws {
		w.add(x)
	}
}

// Has reports whether a write to k is collected.
func (w *Writes) Has(k store.Key) bool {
	_, ok := w.keys[k]
	return ok
}

// TouchProfile rewrites the contact's profile as it was read, under its version, unless a write
// of the profile is collected already: the version moves, so a process that read the contact
// before this change cannot commit anything that depends on what it read.
func (w *Writes) TouchProfile(c *ContactState) {
	if c.ProfileVersion == 0 || w.Has(store.Key{PK: ContactPK(c.Account, c.Email), SK: skProfile}) {
		return
	}
	w.PutProfile(c, c.Stored)
}

// Len is the number of writes collected.
func (w *Writes) Len() int { return len(w.ws) }

// List returns the collected writes.
func (w *Writes) List() []store.Write { return w.ws }

// drop removes the writes to keys; the rest keep their order.
func (w *Writes) drop(keys []store.Key) {
	if len(keys) == 0 {
		return
	}
	gone := map[store.Key]bool{}
	for _, k := range keys {
		gone[k] = true
	}
	kept := w.ws[:0]
	for _, x := range w.ws {
		if !gone[x.Target()] {
			kept = append(kept, x)
		}
	}
	w.ws = kept
	w.keys = make(map[store.Key]int, len(kept))
	for i, x := range kept {
		w.keys[x.Target()] = i
	}
}

func (w *Writes) add(x store.Write) {
	if w.keys == nil {
		w.keys = map[store.Key]int{}
	}
	k := x.Target()
	if i, ok := w.keys[k]; ok {
		// A later write to the same key replaces the earlier one but keeps its guard, so a
		// change that touches an item twice still commits in one transaction.
		prev := w.ws[i]
		x.Cond, x.Expect = prev.Cond, prev.Expect
		w.ws[i] = x
		return
	}
	w.keys[k] = len(w.ws)
	w.ws = append(w.ws, x)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Every value written here is a plain struct of the domain package.
		panic(fmt.Sprintf("history: encode %T: %v", v, err))
	}
	return b
}

// guard returns the condition for replacing an item read at version v.
func guard(it store.Item, v int64) store.Write {
	if v == 0 {
		it.Version = 1
		return store.PutItem(it, store.NotExists)
	}
	it.Version = v + 1
	return store.PutIfVersion(it, v)
}

// PutProfile stores the contact's profile, guarded by the version it was read at, so two
// concurrent ingests of one contact cannot both win. The profile is in the email search index
// (search.go) by its keys, and its name entries follow a change of name.
func (w *Writes) PutProfile(c *ContactState, p domain.Contact) {
	w.touch(c)
	gpk, gsk := contactIndex(c.Account, c.Email)
	w.add(guard(store.Item{PK: ContactPK(c.Account, c.Email), SK: skProfile, GSI2PK: gpk, GSI2SK: gsk,
		GSI1PK: emailSearchPK(c.Account, c.Email), GSI1SK: c.Email, Data: mustJSON(p)}, c.ProfileVersion))
	w.setNames(c, nameEntries(p))
}

// setNames makes the contact's name entries in this change the given ones, replacing what an
// earlier PutProfile of the same change collected.
func (w *Writes) setNames(c *ContactState, entries []string) {
	var before []string
	if c.ProfileVersion != 0 {
		before = nameEntries(c.Stored)
	}
	if w.names == nil {
		w.names = map[*ContactState][]store.Key{}
	}
	w.drop(w.names[c])
	ws := nameWrites(c.Account, c.Email, before, entries)
	keys := make([]store.Key, len(ws))
	for i, x := range ws {
		keys[i] = x.Target()
		w.add(x)
	}
	w.names[c] = keys
}

// PutOrder stores an order of the contact.
func (w *Writes) PutOrder(c *ContactState, o domain.Order) {
	w.touch(c)
	at := o.PaidAt
	if at.IsZero() {
		at = o.CreatedAt
	}
	it := store.Item{PK: ContactPK(c.Account, c.Email), SK: orderSK(o.Key),
		GSI1PK: orderGSI1(c.Account, o.Key), GSI1SK: "O", Data: mustJSON(o)}
	if !at.IsZero() {
		it.GSI2PK, it.GSI2SK = monthGSI2(c.Account, at), orderGSI2SK(at, o.Key)
	}
	w.add(guard(it, c.OrderVersions[o.Key]))
}

// DeleteOrder removes an order from the contact (it moved to another contact).
func (w *Writes) DeleteOrder(c *ContactState, orderKey string) {
	w.touch(c)
	w.add(store.Write{Op: store.OpDelete, Key: store.Key{PK: ContactPK(c.Account, c.Email), SK: orderSK(orderKey)},
		Cond: store.VersionEquals, Expect: c.OrderVersions[orderKey]})
}

// PutSub stores a subscription of the contact.
func (w *Writes) PutSub(c *ContactState, s domain.Subscription) {
	w.touch(c)
	it := store.Item{PK: ContactPK(c.Account, c.Email), SK: subSK(s.Key),
		GSI1PK: subGSI1(c.Account, s.Key), GSI1SK: "S", Data: mustJSON(s)}
	w.add(guard(it, c.SubVersions[s.Key]))
}

// DeleteSub removes a subscription from the contact (it moved to another contact).
func (w *Writes) DeleteSub(c *ContactState, subKey string) {
	w.touch(c)
	w.add(store.Write{Op: store.OpDelete, Key: store.Key{PK: ContactPK(c.Account, c.Email), SK: subSK(subKey)},
		Cond: store.VersionEquals, Expect: c.SubVersions[subKey]})
}

// PutCart stores a cart of the contact.
func (w *Writes) PutCart(c *ContactState, ct domain.Cart) {
	w.add(store.PutItem(store.Item{PK: ContactPK(c.Account, c.Email), SK: cartSK(string(ct.Source) + ":" + ct.CartID), Data: mustJSON(ct)}, store.Always))
}

// AddFacts records facts in the contact's log and in its outbox, to be sent after the commit.
// Fact ids are deterministic, so recording a fact twice writes the same item.
func (w *Writes) AddFacts(c *ContactState, facts []domain.Fact) {
	pk := ContactPK(c.Account, c.Email)
	for _, f := range facts {
		w.add(store.PutItem(store.Item{PK: pk, SK: factSK(f.ID), Data: mustJSON(f)}, store.Always))
		w.add(store.PutItem(store.Item{PK: pk, SK: outboxSK(f.ID), Data: mustJSON(f)}, store.Always))
	}
}

// MarkIngested writes the dedupe marker of a source event, so the same event arriving again
// (a webhook retry, a poller overlap) is recognised. It expires after ttl.
func (w *Writes) MarkIngested(account, hash string, at time.Time, ttl time.Duration) {
	w.add(store.PutItem(store.Item{PK: dedupePK(account, hash), SK: dash, ExpiresAt: at.Add(ttl),
		Data: mustJSON(map[string]any{"at": at})}, store.NotExists))
}

// PutAlias points an old email at the new one after an email change.
func (w *Writes) PutAlias(account, oldEmail, newEmail string, at time.Time) {
	w.add(store.PutItem(store.Item{PK: ContactPK(account, oldEmail), SK: skAlias,
		Data: mustJSON(map[string]any{"email": newEmail, "at": at})}, store.Always))
}

// DeleteProfile removes an emptied contact's profile (after its history moved to a new email).
func (w *Writes) DeleteProfile(c *ContactState) {
	if c.ProfileVersion == 0 {
		return
	}
	w.touch(c)
	w.add(store.Write{Op: store.OpDelete, Key: store.Key{PK: ContactPK(c.Account, c.Email), SK: skProfile},
		Cond: store.VersionEquals, Expect: c.ProfileVersion})
	w.setNames(c, nil)
}

// PutFirstView records the contact's first page view, under the version it was read at. It is
// in the contact index too, so that a viewer who never bought is still a contact reports count.
func (w *Writes) PutFirstView(c *ContactState, v FirstView) {
	w.touch(c)
	gpk, gsk := contactIndex(c.Account, c.Email)
	w.add(guard(store.Item{PK: ContactPK(c.Account, c.Email), SK: skFirstView, GSI2PK: gpk, GSI2SK: gsk, Data: mustJSON(v)}, c.FirstViewVersion))
}

// CustomerRecord is what is known of a source customer profile's email: the email, when it was
// reported, and whether a customer event reported it (rather than an order seeding it). The time
// is what tells a late report of an older email from a change.
type CustomerRecord struct {
	Email      string    `json:"email"`
	At         time.Time `json:"at,omitzero"`
	ByCustomer bool      `json:"by_customer,omitempty"`
}

// PutCustomer remembers which email a source customer profile has, as an order seeding it with
// no time would.
func (w *Writes) PutCustomer(account, source, customerID, email string) {
	w.PutCustomerRecord(account, source, customerID, CustomerRecord{Email: email})
}

// PutCustomerRecord remembers what is known of a source customer profile's email.
func (w *Writes) PutCustomerRecord(account, source, customerID string, rec CustomerRecord) {
	w.add(store.PutItem(store.Item{PK: customerPK(account, source, customerID), SK: dash,
		Data: mustJSON(rec)}, store.Always))
}

// PutItem stores a catalogue item.
func (w *Writes) PutItem(account string, it domain.Item) {
	w.add(store.PutItem(store.Item{PK: itemPK(account, string(it.Source)), SK: it.SKU, Data: mustJSON(it)}, store.Always))
}

// PutAffiliate stores an affiliate program member.
func (w *Writes) PutAffiliate(account string, a domain.AffiliateSignup) {
	w.add(store.PutItem(store.Item{PK: affiliatePK(account, string(a.Source)), SK: a.AffiliateID, Data: mustJSON(a)}, store.Always))
}

// Commit applies the writes all or nothing. A lost race comes back as store.ErrConditionFailed;
// the caller reloads and applies again.
func (r *Repo) Commit(ctx context.Context, w *Writes) error {
	if w.Len() == 0 {
		return nil
	}
	if w.Len() > store.MaxTransactWrites {
		return fmt.Errorf("one change needs %d writes, over the table's %d-write transaction limit", w.Len(), store.MaxTransactWrites)
	}
	return r.s.Transact(ctx, w.ws)
}

// ClearOutbox removes facts from the outbox once they are on the destination queues.
func (r *Repo) ClearOutbox(ctx context.Context, account, email string, ids []string) error {
	sent := make([]SentFact, len(ids))
	for i, id := range ids {
		sent[i] = SentFact{Account: account, Email: email, FactID: id}
	}
	return r.ClearSent(ctx, sent)
}

// SentFact names a fact of a contact's outbox that is on every destination queue that takes it.
type SentFact struct {
	Account, Email, FactID string
}

// ClearSent removes sent facts from their contacts' outboxes, as few writes as the table's
// transaction limit allows (one for up to store.MaxTransactWrites facts) rather than one each:
// each write is a wait for the disk. A fact named twice is cleared once. The deletes need not
// be atomic (a fact left in an outbox is sent again by the contact's next flush, and the
// destination queue's deduplication and the forwarder's done marker absorb it); a transaction
// is simply the port's one call that carries many writes.
func (r *Repo) ClearSent(ctx context.Context, sent []SentFact) error {
	seen := make(map[store.Key]bool, len(sent))
	ws := make([]store.Write, 0, len(sent))
	for _, f := range sent {
		k := store.Key{PK: ContactPK(f.Account, f.Email), SK: outboxSK(f.FactID)}
		if seen[k] {
			continue
		}
		seen[k] = true
		ws = append(ws, store.DeleteKey(k, store.Always))
	}
	for len(ws) > 0 {
		n := min(len(ws), store.MaxTransactWrites)
		var err error
		if n == 1 {
			err = r.s.Write(ctx, ws[0])
		} else {
			err = r.s.Transact(ctx, ws[:n])
		}
		if err != nil {
			return fmt.Errorf("clear %d sent fact(s) from the outbox: %w", n, err)
		}
		ws = ws[n:]
	}
	return nil
}

// Ingested reports whether a source event with this content hash was already ingested.
func (r *Repo) Ingested(ctx context.Context, account, hash string) (bool, error) {
	_, err := r.s.Get(ctx, dedupePK(account, hash), dash)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// IngestedAt reads when ingest stored the source event with this content hash: the time it
// wrote into the dedupe marker, which commits in the same transaction as the event's records
// (ok false while there is none).
func (r *Repo) IngestedAt(ctx context.Context, account, hash string) (at time.Time, ok bool, err error) {
	it, err := r.s.Get(ctx, dedupePK(account, hash), dash)
	if errors.Is(err, store.ErrNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	var m struct {
		At time.Time `json:"at"`
	}
	if err := json.Unmarshal(it.Data, &m); err != nil {
		return time.Time{}, false, fmt.Errorf("read the ingest marker %s: %w", hash, err)
	}
	return m.At, true, nil
}

// ResolveEmail follows email aliases (after email changes) to the contact's current email.
func (r *Repo) ResolveEmail(ctx context.Context, account, email string) (string, error) {
	seen := map[string]bool{}
	for !seen[email] {
		seen[email] = true
		it, err := r.s.Get(ctx, ContactPK(account, email), skAlias)
		if errors.Is(err, store.ErrNotFound) {
			return email, nil
		}
		if err != nil {
			return "", fmt.Errorf("resolve email alias of %s: %w", email, err)
		}
		var a struct{ Email string }
		if err := json.Unmarshal(it.Data, &a); err != nil || a.Email == "" {
			return email, nil
		}
		email = a.Email
	}
	return email, nil
}

// CustomerEmail returns the email a source customer profile last had ("" when unknown).
func (r *Repo) CustomerEmail(ctx context.Context, account, source, customerID string) (string, error) {
	c, err := r.Customer(ctx, account, source, customerID)
	return c.Email, err
}

// Customer returns what is known of a source customer profile's email (empty when nothing).
func (r *Repo) Customer(ctx context.Context, account, source, customerID string) (CustomerRecord, error) {
	it, err := r.s.Get(ctx, customerPK(account, source, customerID), dash)
	if errors.Is(err, store.ErrNotFound) {
		return CustomerRecord{}, nil
	}
	if err != nil {
		return CustomerRecord{}, err
	}
	var c CustomerRecord
	_ = json.Unmarshal(it.Data, &c)
	return c, nil
}

// FindOrder finds which contact holds an order, by its key ("" when the order is new).
func (r *Repo) FindOrder(ctx context.Context, account, orderKey string) (email string, err error) {
	return r.findBy(ctx, account, orderGSI1(account, orderKey))
}

// OrderByKey reads a stored order by its key, wherever its contact is (nil when there is none).
func (r *Repo) OrderByKey(ctx context.Context, account, orderKey string) (*domain.Order, error) {
	p, err := r.s.Query(ctx, store.Query{Index: store.GSI1, PK: orderGSI1(account, orderKey), Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(p.Items) == 0 {
		return nil, nil
	}
	var o domain.Order
	if err := domain.UnmarshalRecord(p.Items[0].Data, &o); err != nil {
		return nil, fmt.Errorf("read order %s: %w", orderKey, err)
	}
	return &o, nil
}

// FindSub finds which contact holds a subscription ("" when it is new).
func (r *Repo) FindSub(ctx context.Context, account, subKey string) (email string, err error) {
	return r.findBy(ctx, account, subGSI1(account, subKey))
}

func (r *Repo) findBy(ctx context.Context, account, gsi1pk string) (string, error) {
	p, err := r.s.Query(ctx, store.Query{Index: store.GSI1, PK: gsi1pk, Limit: 1})
	if err != nil {
		return "", err
	}
	if len(p.Items) == 0 {
		return "", nil
	}
	email, _ := contactEmail(account, p.Items[0].PK)
	return email, nil
}

// Item returns a stored catalogue item (nil when new).
func (r *Repo) Item(ctx context.Context, account string, source domain.Source, sku string) (*domain.Item, error) {
	return getDoc[domain.Item](ctx, r.s, itemPK(account, string(source)), sku)
}

// Affiliate returns a stored affiliate program member (nil when new).
func (r *Repo) Affiliate(ctx context.Context, account string, source domain.Source, id string) (*domain.AffiliateSignup, error) {
	return getDoc[domain.AffiliateSignup](ctx, r.s, affiliatePK(account, string(source)), id)
}

// Cart reads one stored cart of a contact; nil when there is none.
func (r *Repo) Cart(ctx context.Context, account, email string, source domain.Source, cartID string) (*domain.Cart, error) {
	return getDoc[domain.Cart](ctx, r.s, ContactPK(account, email), cartSK(string(source)+":"+cartID))
}

// getDoc reads the JSON document of one item; nil when there is none.
func getDoc[T any](ctx context.Context, s store.Store, pk, sk string) (*T, error) {
	it, err := s.Get(ctx, pk, sk)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var x T
	if err := json.Unmarshal(it.Data, &x); err != nil {
		return nil, err
	}
	return &x, nil
}

// ContactView is everything stored about one contact, for `cartrelay contacts get`.
type ContactView struct {
	Profile       *domain.Contact       `json:"profile"`
	Orders        []domain.Order        `json:"orders"`
	Subscriptions []domain.Subscription `json:"subscriptions"`
	Carts         []domain.Cart         `json:"carts,omitempty"`
	Facts         []domain.Fact         `json:"facts"`
	Deliveries    []json.RawMessage     `json:"deliveries"`
	// AliasOf is set when the email was changed: the contact now lives under this email.
	AliasOf string `json:"alias_of,omitempty"`
}

// View reads everything about one contact. While an email change is still moving records here,
// the ones not moved yet are shown too, so the contact's whole history is under its email from
// the moment of the change.
func (r *Repo) View(ctx context.Context, account, email string) (*ContactView, error) {
	items, err := store.QueryAll(ctx, r.s, store.Query{PK: ContactPK(account, email)})
	if err != nil {
		return nil, err
	}
	v := &ContactView{Orders: []domain.Order{}, Subscriptions: []domain.Subscription{}, Facts: []domain.Fact{}, Deliveries: []json.RawMessage{}}
	var sources []string
	for _, it := range items {
		if strings.HasPrefix(it.SK, prefMoveIn) {
			sources = append(sources, strings.TrimPrefix(it.SK, prefMoveIn))
		}
	}
	if len(sources) > 0 {
		if sources, err = r.MovingInto(ctx, account, email); err != nil {
			return nil, err
		}
	}
	for _, src := range sources {
		more, err := store.QueryAll(ctx, r.s, store.Query{PK: ContactPK(account, src)})
		if err != nil {
			return nil, err
		}
		for _, it := range more {
			if it.SK != skProfile && it.SK != skAlias {
				items = append(items, it)
			}
		}
	}
	for _, it := range items {
		switch {
		case it.SK == skProfile:
			var p domain.Contact
			if err := json.Unmarshal(it.Data, &p); err == nil {
				v.Profile = &p
			}
		case it.SK == skAlias:
			var a struct{ Email string }
			_ = json.Unmarshal(it.Data, &a)
			v.AliasOf = a.Email
		case strings.HasPrefix(it.SK, prefOrder):
			var o domain.Order
			if domain.UnmarshalRecord(it.Data, &o) == nil {
				v.Orders = append(v.Orders, o)
			}
		case strings.HasPrefix(it.SK, prefSub):
			var s domain.Subscription
			if domain.UnmarshalRecord(it.Data, &s) == nil {
				v.Subscriptions = append(v.Subscriptions, s)
			}
		case strings.HasPrefix(it.SK, prefCart):
			var c domain.Cart
			if json.Unmarshal(it.Data, &c) == nil {
				v.Carts = append(v.Carts, c)
			}
		case strings.HasPrefix(it.SK, prefFact):
			var f domain.Fact
			if json.Unmarshal(it.Data, &f) == nil {
				v.Facts = append(v.Facts, f)
			}
		case strings.HasPrefix(it.SK, prefDeliv):
			v.Deliveries = append(v.Deliveries, json.RawMessage(it.Data))
		}
	}
	sort.SliceStable(v.Facts, func(i, j int) bool { return v.Facts[i].OccurredAt.Before(v.Facts[j].OccurredAt) })
	return v, nil
}

// EachContact calls fn with the email of every contact of the account that has a profile, shard
// by shard of the contact index, in email order within a shard.
func (r *Repo) EachContact(ctx context.Context, account string, fn func(email string) error) error {
	for n := range ContactIndexShards {
		q := store.Query{Index: store.GSI2, PK: ContactIndexPK(account, n)}
		last := ""
		for {
			p, err := r.s.Query(ctx, q)
			if err != nil {
				return fmt.Errorf("list the contacts of %s: %w", account, err)
			}
			for _, it := range p.Items {
				if it.GSI2SK == last {
					continue // indexed twice (profile and first view)
				}
				last = it.GSI2SK
				if err := fn(it.GSI2SK); err != nil {
					return err
				}
			}
			if p.Next == "" {
				break
			}
			q.Cursor = p.Next
		}
	}
	return nil
}

// LoadRecords reads what reports count of a contact (its profile's version, orders,
// subscriptions, first page view, alias and the emails still moving into it) in one range read:
// the sort keys from MOVEIN# to S# hold all of them but the alias, which only a contact without
// a profile can have. Carts, facts and deliveries are not read. The result is for counting,
// not for changing: the Stored twins of Orders and Subs are the same maps (a report rebuild
// reads every contact this way, and one copy of each record is enough).
func (r *Repo) LoadRecords(ctx context.Context, account, email string) (*ContactState, error) {
	pk := ContactPK(account, email)
	items, err := store.QueryAll(ctx, r.s, recordsQuery(pk))
	if err != nil {
		return nil, fmt.Errorf("read contact %s of %s: %w", email, account, err)
	}
	return r.records(ctx, account, email, items)
}

// MaxLoadRecords is how many contacts one LoadRecordsOf reads.
const MaxLoadRecords = store.MaxQueryPartitions

// LoadRecordsOf is LoadRecords of up to MaxLoadRecords contacts at once (out[i] is emails[i]),
// their partitions read in one store call: a rebuild of the reports reads every contact, and on
// the embedded store a read of one small partition costs mostly the statement around it.
func (r *Repo) LoadRecordsOf(ctx context.Context, account string, emails []string) ([]*ContactState, error) {
	pks := make([]string, len(emails))
	for i, e := range emails {
		pks[i] = ContactPK(account, e)
	}
	q := recordsQuery("")
	all, err := r.s.QueryPartitions(ctx, q, pks)
	if err != nil {
		return nil, fmt.Errorf("read %d contacts of %s: %w", len(emails), account, err)
	}
	out := make([]*ContactState, len(emails))
	for i, items := range all {
		if out[i], err = r.records(ctx, account, emails[i], items); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// recordsQuery is the range of a contact's partition (pk) that LoadRecords reads.
func recordsQuery(pk string) store.Query {
	return store.Query{PK: pk, SKFrom: prefMoveIn, SKTo: prefSub + "~"}
}

// records decodes the items LoadRecords read of a contact, and reads its alias if it has no
// profile.
func (r *Repo) records(ctx context.Context, account, email string, items []store.Item) (*ContactState, error) {
	pk := ContactPK(account, email)
	nOrders, nSubs := 0, 0
	for _, it := range items {
		switch {
		case strings.HasPrefix(it.SK, prefOrder):
			nOrders++
		case strings.HasPrefix(it.SK, prefSub):
			nSubs++
		}
	}
	st := &ContactState{Account: account, Email: email,
		Profile:       domain.Contact{Account: account, Email: email},
		Orders:        make(map[string]domain.Order, nOrders),
		OrderVersions: make(map[string]int64, nOrders),
		Subs:          make(map[string]domain.Subscription, nSubs),
		SubVersions:   make(map[string]int64, nSubs),
		Carts:         map[string]domain.Cart{},
	}
	st.StoredOrders, st.StoredSubs = st.Orders, st.Subs
	for _, it := range items {
		var err error
		switch {
		case it.SK == skProfile:
			st.ProfileVersion = it.Version
		case it.SK == skFirstView:
			var v FirstView
			if err = json.Unmarshal(it.Data, &v); err == nil {
				st.FirstView, st.StoredFirstView, st.FirstViewVersion = &v, &v, it.Version
			}
		case strings.HasPrefix(it.SK, prefOrder):
			var o domain.Order
			if err = domain.UnmarshalRecord(it.Data, &o); err == nil {
				st.Orders[o.Key], st.OrderVersions[o.Key] = o, it.Version
			}
		case strings.HasPrefix(it.SK, prefSub):
			var s domain.Subscription
			if err = domain.UnmarshalRecord(it.Data, &s); err == nil {
				st.Subs[s.Key], st.SubVersions[s.Key] = s, it.Version
			}
		case strings.HasPrefix(it.SK, prefMoveIn):
			err = st.decode(prefMoveIn, it)
		}
		if err != nil {
			return nil, fmt.Errorf("contact %s of %s: item %s is unreadable: %w", email, account, it.SK, err)
		}
	}
	if st.ProfileVersion == 0 {
		if it, err := r.s.Get(ctx, pk, skAlias); err == nil {
			var a struct{ Email string }
			_ = json.Unmarshal(it.Data, &a)
			st.AliasOf, st.StoredAliasOf = a.Email, a.Email
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("read contact %s of %s: %w", email, account, err)
		}
	}
	return st, nil
}
