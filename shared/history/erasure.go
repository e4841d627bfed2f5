package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/store"
)

// An erasure (domain.Erasure) is a job, as an email move is: a contact of any history size is
// erased in steps of one transaction each, and a step cut short is carried on by the schedule.
//
// Keys:
//   - ERASING in the partition of every address being erased, and of the pseudonym: while it is
//     there, ingest leaves the contact alone (its events wait on the queue) and the forwarders
//     skip the contact's earlier facts instead of sending them.
//   - ERASURE in the pseudonym's partition is the job (GSI1 "ERASURES" lists every pending one).
//     It holds the addresses being erased, until the job is done.
//   - While records move, the pseudonym's partition has MOVEIN#<address> and each address an
//     ALIAS to the contact's next email (the last to the pseudonym), exactly as during an email
//     change, so that the reports count the contact as one throughout (reports.Stage).
//
// Everything the job writes or leaves is keyed by the pseudonym; once it is done, the addresses
// are in no key and no item.
const (
	skErasing    = "ERASING"
	skErasure    = "ERASURE"
	erasuresGSI1 = "ERASURES"
)

// Erasure job phases.
const (
	// ErasureRecords: the contact's orders and subscriptions are moving to the pseudonym, and
	// the rest of its records are being deleted.
	ErasureRecords = "records"
	// ErasureDestinations: everything is erased here; the destinations have been asked to
	// forget the contact, and the job waits for each to answer (or park the request).
	ErasureDestinations = "destinations"
)

// Outcomes of an erasure's request to one destination.
const (
	ErasureDelivered = "delivered"
	ErasureParked    = "parked"
)

// ErasureRequest is one ContactErased fact the job sends: to one destination, in the FIFO group
// of one of the contact's addresses, so that it comes after every fact of that group.
type ErasureRequest struct {
	Dest   string `json:"destination"`
	FactID string `json:"fact_id"`
	// Group is the address whose message group the fact joins.
	Group   string `json:"group"`
	Sent    bool   `json:"sent,omitempty"`
	Outcome string `json:"outcome,omitempty"`
}

// ErasureCounts is what an erasure found and did, for the audit log.
type ErasureCounts struct {
	Addresses     int `json:"addresses"`
	Orders        int `json:"orders"`
	Subscriptions int `json:"subscriptions"`
	// Deleted counts every other record deleted: carts, facts, deliveries, page views,
	// quarantined events, timers, kept failures and the like.
	Deleted int `json:"deleted"`
}

// Add adds o to c.
func (c *ErasureCounts) Add(o ErasureCounts) {
	c.Addresses += o.Addresses
	c.Orders += o.Orders
	c.Subscriptions += o.Subscriptions
	c.Deleted += o.Deleted
}

// ErasureJob is an erasure not finished yet.
type ErasureJob struct {
	Account   string `json:"account"`
	Pseudonym string `json:"pseudonym"`
	// Emails are the contact's addresses, its email at the time first; the job needs them
	// until it is done, and then they are gone with it.
	Emails []string `json:"emails"`
	// Tokens are the keyed hashes of Emails, in the same order: what the facts sent to
	// destinations are identified by.
	Tokens []string  `json:"tokens"`
	At     time.Time `json:"at"`
	// By says who asked (the CLI's operator, the console, UltraCart's customer_delete).
	By    string `json:"by"`
	Phase string `json:"phase"`
	// CustomerIDs are the source customer profiles of the contact ("ultracart:123"), whose
	// record of the contact's email goes too.
	CustomerIDs []string `json:"customer_ids,omitempty"`
	// DestinationIDs are what each destination knows the contact as.
	DestinationIDs map[string]string `json:"destination_ids,omitempty"`
	Requests       []ErasureRequest  `json:"requests,omitempty"`
	Counts         ErasureCounts     `json:"counts"`

	version int64
}

// Written records that the writes PutErasureJob or DeleteErasureJob collected were committed.
func (j *ErasureJob) Written() { j.version++ }

// Settled reports whether every destination answered the erasure (or parked it).
func (j *ErasureJob) Settled() bool {
	for _, r := range j.Requests {
		if r.Outcome == "" {
			return false
		}
	}
	return true
}

// Fact is the ContactErased fact of one request.
func (j *ErasureJob) Fact(r ErasureRequest) domain.Fact {
	return domain.Fact{ID: r.FactID, Account: j.Account, Kind: domain.FactContactErased, Email: j.Pseudonym, OccurredAt: j.At,
		Erasure: &domain.Erasure{Pseudonym: j.Pseudonym, Emails: slices.Clone(j.Emails), DestinationIDs: j.DestinationIDs, At: j.At}}
}

// PutErasing marks the partition of email as being erased into pseudonym.
func (w *Writes) PutErasing(account, email, pseudonym string) {
	w.add(store.PutItem(store.Item{PK: ContactPK(account, email), SK: skErasing,
		Data: mustJSON(map[string]string{"pseudonym": pseudonym})}, store.Always))
}

// DeleteErasing ends the erasure of email's partition.
func (w *Writes) DeleteErasing(account, email string) {
	w.add(store.DeleteKey(store.Key{PK: ContactPK(account, email), SK: skErasing}, store.Always))
}

// PutMoveIn makes into's contact count the records still under from (see MovingInto).
func (w *Writes) PutMoveIn(account, into, from string, at time.Time) {
	w.add(store.PutItem(store.Item{PK: ContactPK(account, into), SK: prefMoveIn + from,
		Data: mustJSON(map[string]any{"from": from, "at": at})}, store.Always))
}

// DeleteMoveIn removes that marker.
func (w *Writes) DeleteMoveIn(account, into, from string) {
	w.add(store.DeleteKey(store.Key{PK: ContactPK(account, into), SK: prefMoveIn + from}, store.Always))
}

// DeleteMoveJob drops the email move away from `from` (an erasure takes over its records).
func (w *Writes) DeleteMoveJob(account, from string) {
	w.add(store.DeleteKey(store.Key{PK: ContactPK(account, from), SK: skMove}, store.Always))
}

// DeleteFirstView removes the contact's first page view (an erasure gives it to the pseudonym).
func (w *Writes) DeleteFirstView(c *ContactState) {
	w.touch(c)
	w.add(store.Write{Op: store.OpDelete, Key: store.Key{PK: ContactPK(c.Account, c.Email), SK: skFirstView},
		Cond: store.VersionEquals, Expect: c.FirstViewVersion})
}

// DeleteCart removes a cart of the contact.
func (w *Writes) DeleteCart(c *ContactState, cartKey string) {
	w.add(store.DeleteKey(store.Key{PK: ContactPK(c.Account, c.Email), SK: cartSK(cartKey)}, store.Always))
}

// DeleteOutbox removes an unsent fact of the contact.
func (w *Writes) DeleteOutbox(c *ContactState, factID string) {
	w.add(store.DeleteKey(store.Key{PK: ContactPK(c.Account, c.Email), SK: outboxSK(factID)}, store.Always))
}

// DeleteCustomer forgets which email a source customer profile has.
func (w *Writes) DeleteCustomer(account, source, customerID string) {
	w.add(store.DeleteKey(store.Key{PK: customerPK(account, source, customerID), SK: dash}, store.Always))
}

func erasureItem(j *ErasureJob) store.Item {
	return store.Item{PK: ContactPK(j.Account, j.Pseudonym), SK: skErasure,
		GSI1PK: erasuresGSI1, GSI1SK: j.Account + "#" + j.Pseudonym, Data: mustJSON(j)}
}

// PutErasureJob writes the job under the version it was read at (a new job must not exist).
func (w *Writes) PutErasureJob(j *ErasureJob) {
	w.add(guard(erasureItem(j), j.version))
}

// DeleteErasureJob removes the finished job, under the version it was read at.
func (w *Writes) DeleteErasureJob(j *ErasureJob) {
	w.add(store.Write{Op: store.OpDelete, Key: store.Key{PK: ContactPK(j.Account, j.Pseudonym), SK: skErasure},
		Cond: store.VersionEquals, Expect: j.version})
}

// SaveErasureJob writes the job under the version it was read at; a concurrent change fails with
// store.ErrConditionFailed.
func (r *Repo) SaveErasureJob(ctx context.Context, j *ErasureJob) error {
	if err := r.s.Write(ctx, guard(erasureItem(j), j.version)); err != nil {
		return err
	}
	j.version++
	return nil
}

// ErasureJob reads the pending erasure into pseudonym (nil when there is none).
func (r *Repo) ErasureJob(ctx context.Context, account, pseudonym string) (*ErasureJob, error) {
	it, err := r.s.Get(ctx, ContactPK(account, pseudonym), skErasure)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the erasure into %s: %w", pseudonym, err)
	}
	return decodeErasure(it)
}

func decodeErasure(it store.Item) (*ErasureJob, error) {
	var j ErasureJob
	if err := json.Unmarshal(it.Data, &j); err != nil {
		return nil, fmt.Errorf("erasure job %s is unreadable: %w", it.PK, err)
	}
	j.version = it.Version
	return &j, nil
}

// PendingErasures lists the erasures not finished yet, of every account.
func (r *Repo) PendingErasures(ctx context.Context) ([]*ErasureJob, error) {
	items, err := store.QueryAll(ctx, r.s, store.Query{Index: store.GSI1, PK: erasuresGSI1})
	if err != nil {
		return nil, fmt.Errorf("list pending erasures: %w", err)
	}
	out := make([]*ErasureJob, 0, len(items))
	for _, it := range items {
		j, err := decodeErasure(it)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

// Erasing returns the pseudonym email's partition is being erased into ("" when it is not).
func (r *Repo) Erasing(ctx context.Context, account, email string) (string, error) {
	it, err := r.s.Get(ctx, ContactPK(account, email), skErasing)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read whether %s is being erased: %w", email, err)
	}
	return ErasingPseudonym(it), nil
}

// HasMove reports whether an email move away from email is pending.
func (r *Repo) HasMove(ctx context.Context, account, email string) (bool, error) {
	_, err := r.s.Get(ctx, ContactPK(account, email), skMove)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Records left behind by the forwarders and kept by the contact's own log: what an erasure
// deletes once the destinations are done with the contact.
var logPrefixes = []string{prefFact, prefDeliv, prefFailed, prefCart, prefOutbox}

// ErasedLogs is what one EraseLogs call deleted.
type ErasedLogs struct {
	Deleted int
	// FactIDs are the ids of the logged facts deleted, whose fact-done markers the caller
	// looks at.
	FactIDs []string
	// More is true when the partition still holds such records.
	More bool
}

// EraseLogs deletes up to batch of the records of email's partition that only log what
// happened (facts, deliveries, kept failures, carts, unsent facts), in one transaction.
func (r *Repo) EraseLogs(ctx context.Context, account, email string, batch int) (ErasedLogs, error) {
	if batch <= 0 || batch > store.MaxTransactWrites {
		batch = store.MaxTransactWrites
	}
	var out ErasedLogs
	var ws []store.Write
	for _, p := range logPrefixes {
		page, err := r.s.Query(ctx, store.Query{PK: ContactPK(account, email), SKPrefix: p, Limit: batch - len(ws)})
		if err != nil {
			return out, fmt.Errorf("read %s's records to erase: %w", email, err)
		}
		for _, it := range page.Items {
			ws = append(ws, store.DeleteKey(store.Key{PK: it.PK, SK: it.SK}, store.Always))
			if id, ok := strings.CutPrefix(it.SK, prefFact); ok {
				out.FactIDs = append(out.FactIDs, id)
			}
		}
		if len(ws) >= batch {
			out.More = true
			break
		}
	}
	if len(ws) == 0 {
		return out, nil
	}
	if err := r.s.Transact(ctx, ws); err != nil {
		return ErasedLogs{}, fmt.Errorf("erase %s's records: %w", email, err)
	}
	out.Deleted = len(ws)
	return out, nil
}

// ForgetCustomer forgets which email a source customer profile has, when it is one of emails,
// and reports whether it did.
func (r *Repo) ForgetCustomer(ctx context.Context, account, source, customerID string, emails []string) (bool, error) {
	c, err := r.Customer(ctx, account, source, customerID)
	if err != nil || c.Email == "" || !slices.Contains(emails, c.Email) {
		return false, err
	}
	return store.DeleteIfExists(ctx, r.s, store.Key{PK: customerPK(account, source, customerID), SK: dash})
}

// DeleteQuarantined removes a kept-raw event.
func (r *Repo) DeleteQuarantined(ctx context.Context, account, id string) (bool, error) {
	return store.DeleteIfExists(ctx, r.s, store.Key{PK: quarantinePK(account), SK: id})
}

// DropFailedFact removes the copy of a fact kept with its failed deliveries to dest.
func (r *Repo) DropFailedFact(ctx context.Context, account, email, dest, factID string) error {
	return r.s.Write(ctx, store.DeleteKey(store.Key{PK: ContactPK(account, email), SK: failedSK(dest, factID)}, store.Always))
}

// DeleteFactDone removes a destination's record of a delivered fact.
func (r *Repo) DeleteFactDone(ctx context.Context, account, dest, factID string) error {
	return r.s.Write(ctx, store.DeleteKey(store.Key{PK: FactDonePK(account, dest, factID), SK: dash}, store.Always))
}

// FactIDNames reports whether a fact id may have one of emails written in it: a profile change
// and an email change are identified by the address (and an id too long for the queue keeps
// only its start), and any other id is checked for the address itself.
func FactIDNames(factID string, emails []string) bool {
	if parts := strings.SplitN(factID, ":", 3); len(parts) == 3 {
		switch domain.FactKind(parts[1]) {
		case domain.FactContactChanged, domain.FactEmailChanged:
			return true
		}
	}
	for _, e := range emails {
		if e != "" && (strings.Contains(factID, e) || strings.Contains(factID, domain.KeyPart(e))) {
			return true
		}
	}
	return false
}

// ScrubText replaces every address of emails in text (as written whatever its case, URL-encoded,
// or with its @ escaped in JSON) by the pseudonym.
func ScrubText(text string, emails []string, pseudonym string) string {
	var forms []string
	for _, e := range emails {
		if e == "" {
			continue
		}
		for _, f := range []string{url.QueryEscape(e), url.PathEscape(e), strings.ReplaceAll(e, "@", `\u0040`), e} {
			if f = strings.ToLower(f); !slices.Contains(forms, f) {
				forms = append(forms, f)
			}
		}
	}
	return domain.ReplaceEmails(text, forms, pseudonym)
}

// ScrubDelivery is d with every address of emails replaced by the pseudonym, in its requests,
// answers, error and note: what the delivery log keeps of a request that had to name them.
func ScrubDelivery(d Delivery, emails []string, pseudonym string) Delivery {
	s := func(t string) string { return ScrubText(t, emails, pseudonym) }
	d.Error, d.Note = s(d.Error), s(d.Note)
	if len(d.Extra) > 0 {
		d.Extra = json.RawMessage(s(string(d.Extra)))
	}
	reqs := make([]HTTPExchange, len(d.Requests))
	for i, x := range d.Requests {
		x.URL, x.RequestBody, x.ResponseBody = s(x.URL), s(x.RequestBody), s(x.ResponseBody)
		if len(x.RequestHeaders) > 0 {
			h := make(map[string]string, len(x.RequestHeaders))
			for k, v := range x.RequestHeaders {
				h[k] = s(v)
			}
			x.RequestHeaders = h
		}
		reqs[i] = x
	}
	d.Requests = reqs
	return d
}

// Mentions lists the items that name email outside its partition (see MentionGSI1).
func (r *Repo) Mentions(ctx context.Context, account, email string) ([]store.Item, error) {
	items, err := store.QueryAll(ctx, r.s, store.Query{Index: store.GSI1, PK: MentionGSI1(account, email)})
	if err != nil {
		return nil, fmt.Errorf("find the items that name an address of %s: %w", account, err)
	}
	return items, nil
}
