package ontraport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Items this destination keeps in the table, beside the forwarder's fact-done markers. Each
// remembers an id ONTRAPORT assigned, so the next delivery need not ask again:
//
//	A#<acct>#OPC#<email>      -  contact id of an email
//	A#<acct>#OPP#<sku>        -  product id of a SKU
//	A#<acct>#OPT#<external>   -  transaction logged for an external_order_id (an order key, or a
//	                             partial refund's "<key>:refund:<cumulative>"), or until then the
//	                             claim of the delivery logging it (see txClaim)
//	A#<acct>#OPA#<affiliate>  -  partner contact id of a source affiliate (expires)
//	A#<acct>#OPM              -  contact field names → keys (expires)
//
// All but OPT are caches: a lost one costs a lookup. OPT is the record of whether a transaction
// was ever attempted: ONTRAPORT is asked by external_order_id only after an attempt whose
// outcome is unknown, so losing it (a new table) could log an order again; the account's
// forward_since, the moment a new deployment connected, keeps a new table from sending older
// orders at all.
const skDash = "-"

// Lifetimes of the items that can go stale: a partner may join ONTRAPORT later, and a merchant
// may create the custom fields after the first delivery.
const (
	partnerTTL         = 24 * time.Hour
	partnerMissTTL     = time.Hour
	fieldMetaTTL       = time.Hour
	fieldMetaRetryWait = 10 * time.Minute
	// claimTTL outlives a delivery (a forwarder invocation ends within 30 s), so a claim only
	// outlasts its holder when the process died; the next delivery then asks ONTRAPORT.
	claimTTL = time.Minute
)

func contactPK(acct, email string) string { return "A#" + acct + "#OPC#" + email }
func productPK(acct, sku string) string   { return "A#" + acct + "#OPP#" + sku }
func txPK(acct, external string) string   { return "A#" + acct + "#OPT#" + external }
func partnerPK(acct, key string) string   { return "A#" + acct + "#OPA#" + key }
func metaPK(acct string) string           { return "A#" + acct + "#OPM" }

// idDoc is an item that remembers one id.
type idDoc struct {
	ID int64 `json:"id"`
}

// txDoc remembers a logged transaction or, while InvoiceID is 0, an attempt to log one.
type txDoc struct {
	ContactID     int64 `json:"contact_id,omitempty"`
	TransactionID int64 `json:"transaction_id,omitempty"`
	InvoiceID     int64 `json:"invoice_id"`
	// ClaimedUntil is when the claim of the delivery logging it runs out (see txClaim).
	ClaimedUntil time.Time `json:"claimed_until,omitzero"`
}

// metaDoc caches the contact fields' keys by lower-cased name.
type metaDoc struct {
	Keys map[string]string `json:"keys"`
}

// cache reads and writes those items. In a dry run it reads (real ids make the record more
// exact) but never writes, so placeholder ids cannot reach a later real delivery.
type cache struct {
	st   store.Store
	now  func() time.Time
	acct string
	dry  bool
	// read holds the items of one delivery read ahead together (prefetch), by partition key
	// (nil for an item that does not exist), each to serve one get.
	read map[string]*store.Item
}

// prefetch reads the items at pks together, so that the delivery's first get of each needs no
// read of its own: one read of the table instead of one for each of the order's contact,
// products, transaction, field keys and partner. Nothing is lost if it fails: each get then
// reads on its own.
func (c cache) prefetch(ctx context.Context, pks ...string) {
	if c.read == nil || len(pks) < 2 {
		return
	}
	keys := make([]store.Key, 0, len(pks))
	for _, pk := range pks {
		keys = append(keys, store.Key{PK: pk, SK: skDash})
		if len(keys) == store.MaxGetMany {
			break
		}
	}
	items, err := c.st.GetMany(ctx, keys)
	if err != nil {
		return
	}
	for _, k := range keys {
		if it, ok := items[k]; ok {
			c.read[k.PK] = &it
		} else {
			c.read[k.PK] = nil
		}
	}
}

func (c cache) get(ctx context.Context, pk string, v any) (bool, error) {
	it, err := c.item(ctx, pk)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", pk, err)
	}
	if err := json.Unmarshal(it.Data, v); err != nil {
		// An unreadable cache entry is a miss; the lookup in ONTRAPORT will replace it.
		return false, nil
	}
	return true, nil
}

// item is the item at pk: read ahead by prefetch once, then read again.
func (c cache) item(ctx context.Context, pk string) (store.Item, error) {
	if it, ok := c.read[pk]; ok {
		delete(c.read, pk)
		if it == nil {
			return store.Item{}, store.ErrNotFound
		}
		return *it, nil
	}
	return c.st.Get(ctx, pk, skDash)
}

func (c cache) put(ctx context.Context, pk string, v any, ttl time.Duration) error {
	delete(c.read, pk)
	if c.dry {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	it := store.Item{PK: pk, SK: skDash, Data: data}
	if ttl > 0 {
		it.ExpiresAt = c.now().Add(ttl)
	}
	if err := c.st.Write(ctx, store.PutItem(it, store.Always)); err != nil {
		return fmt.Errorf("write %s: %w", pk, err)
	}
	return nil
}

func (c cache) id(ctx context.Context, pk string) (int64, error) {
	var d idDoc
	ok, err := c.get(ctx, pk, &d)
	if err != nil || !ok {
		return 0, err
	}
	return d.ID, nil
}

func (c cache) contact(ctx context.Context, email string) (int64, error) {
	return c.id(ctx, contactPK(c.acct, strings.ToLower(email)))
}

func (c cache) putContact(ctx context.Context, email string, id int64) error {
	return c.put(ctx, contactPK(c.acct, strings.ToLower(email)), idDoc{ID: id}, 0)
}

func (c cache) product(ctx context.Context, sku string) (int64, error) {
	return c.id(ctx, productPK(c.acct, sku))
}

func (c cache) putProduct(ctx context.Context, sku string, id int64) error {
	return c.put(ctx, productPK(c.acct, sku), idDoc{ID: id}, 0)
}

func (c cache) transaction(ctx context.Context, external string) (txDoc, bool, error) {
	var d txDoc
	ok, err := c.get(ctx, txPK(c.acct, external), &d)
	if ok && d.InvoiceID <= 0 {
		ok = false
	}
	return d, ok, err
}

func (c cache) putTransaction(ctx context.Context, external string, d txDoc) error {
	return c.put(ctx, txPK(c.acct, external), d, 0)
}

// txClaim is a delivery's claim on logging the transaction for one external id, kept in the
// transaction's own item (A#<acct>#OPT#<external>) until the transaction is known:
//
//   - no item: nobody ever tried to log it, so ONTRAPORT cannot have it and no lookup is needed;
//   - an item with a claim still running: another delivery is logging it right now;
//   - an item with no live claim and no transaction: an earlier attempt ended without knowing
//     whether ONTRAPORT logged it (it crashed, timed out or failed), so ONTRAPORT is asked;
//   - an item with the transaction: it is logged.
//
// So the lookup by external_order_id is made only after an attempt whose outcome is unknown.
type txClaim struct {
	c       cache
	pk      string
	version int64
	// Unknown is true when an earlier attempt may have logged the transaction.
	Unknown bool
	// Logged is set when the transaction turned out to be logged already.
	Logged *txDoc
}

// claimTx takes the right to log the transaction for external. A claim held by another live
// delivery sends this one back to the queue until it ends (a RetryAfterError wrapping
// ErrInProgress). In a dry run nothing is claimed or written.
func (c cache) claimTx(ctx context.Context, external string, ttl time.Duration) (*txClaim, error) {
	cl := &txClaim{c: c, pk: txPK(c.acct, external)}
	if c.dry {
		return cl, nil
	}
	now := c.now()
	claim := store.Item{PK: cl.pk, SK: skDash, Version: 1, Data: mustJSON(txDoc{ClaimedUntil: now.Add(ttl)})}
	err := c.st.Write(ctx, store.PutItem(claim, store.NotExists))
	if err == nil {
		cl.version = 1
		return cl, nil
	}
	if !errors.Is(err, store.ErrConditionFailed) {
		return nil, fmt.Errorf("claim %s: %w", cl.pk, err)
	}
	cur, err := c.st.Get(ctx, cl.pk, skDash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &deliver.RetryAfterError{After: time.Second, Err: fmt.Errorf("%w: %s", ErrInProgress, external)}
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", cl.pk, err)
	}
	var d txDoc
	_ = json.Unmarshal(cur.Data, &d) // unreadable: an attempt of unknown outcome
	if d.InvoiceID > 0 {
		cl.Logged = &d
		return cl, nil
	}
	if d.ClaimedUntil.After(now) {
		wait := max(d.ClaimedUntil.Sub(now), time.Second)
		return nil, &deliver.RetryAfterError{After: wait, Err: fmt.Errorf("%w: %s", ErrInProgress, external)}
	}
	// The attempt before this one ended without a transaction known: take its place.
	claim.Version = cur.Version + 1
	if err := c.st.Write(ctx, store.PutIfVersion(claim, cur.Version)); errors.Is(err, store.ErrConditionFailed) {
		return nil, &deliver.RetryAfterError{After: time.Second, Err: fmt.Errorf("%w: %s", ErrInProgress, external)}
	} else if err != nil {
		return nil, fmt.Errorf("claim %s: %w", cl.pk, err)
	}
	cl.version, cl.Unknown = claim.Version, true
	return cl, nil
}

// logged records the transaction in place of the claim.
func (cl *txClaim) logged(ctx context.Context, d txDoc) error {
	if cl.c.dry {
		return nil
	}
	it := store.Item{PK: cl.pk, SK: skDash, Version: cl.version + 1, Data: mustJSON(d)}
	if err := cl.c.st.Write(ctx, store.PutIfVersion(it, cl.version)); err != nil {
		return fmt.Errorf("write %s: %w", cl.pk, err)
	}
	return nil
}

// release gives the claim up after an attempt that did not end with a transaction known. The
// item stays, so that the next delivery asks ONTRAPORT before it logs. A release that cannot
// be written leaves the claim to run out.
func (cl *txClaim) release(ctx context.Context) {
	if cl.c.dry {
		return
	}
	it := store.Item{PK: cl.pk, SK: skDash, Version: cl.version + 1, Data: mustJSON(txDoc{})}
	_ = cl.c.st.Write(context.WithoutCancel(ctx), store.PutIfVersion(it, cl.version))
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only this package's own plain structs are encoded
	}
	return b
}
