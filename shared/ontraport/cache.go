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
//	                             partial refund's "<key>:refund:<cumulative>")
//	A#<acct>#OPA#<affiliate>  -  partner contact id of a source affiliate (expires)
//	A#<acct>#OPM              -  contact field names → keys (expires)
//	A#<acct>#OPL#<external>   -  a short claim on logging a transaction (expires)
//
// They are caches and shortcuts, never the only record: a lost item costs a lookup, not a
// duplicate, because every creation is preceded by a lookup in ONTRAPORT itself.
const skDash = "-"

// Lifetimes of the items that can go stale: a partner may join ONTRAPORT later, and a merchant
// may create the custom fields after the first delivery.
const (
	partnerTTL         = 24 * time.Hour
	partnerMissTTL     = time.Hour
	fieldMetaTTL       = time.Hour
	fieldMetaRetryWait = 10 * time.Minute
	// claimTTL outlives a delivery (a forwarder invocation ends within 30 s), so a claim only
	// outlasts its holder when the process died.
	claimTTL = time.Minute
)

func contactPK(acct, email string) string  { return "A#" + acct + "#OPC#" + email }
func productPK(acct, sku string) string    { return "A#" + acct + "#OPP#" + sku }
func txPK(acct, external string) string    { return "A#" + acct + "#OPT#" + external }
func partnerPK(acct, key string) string    { return "A#" + acct + "#OPA#" + key }
func metaPK(acct string) string            { return "A#" + acct + "#OPM" }
func claimPK(acct, external string) string { return "A#" + acct + "#OPL#" + external }

// idDoc is an item that remembers one id.
type idDoc struct {
	ID int64 `json:"id"`
}

// txDoc remembers a logged transaction.
type txDoc struct {
	ContactID     int64 `json:"contact_id,omitempty"`
	TransactionID int64 `json:"transaction_id,omitempty"`
	InvoiceID     int64 `json:"invoice_id"`
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
}

func (c cache) get(ctx context.Context, pk string, v any) (bool, error) {
	it, err := c.st.Get(ctx, pk, skDash)
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

func (c cache) put(ctx context.Context, pk string, v any, ttl time.Duration) error {
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

// claim takes the right to log the transaction for external, so two processes delivering the
// same fact at once (a visibility timeout that ran out mid-delivery) cannot both create one.
// Another holder's claim makes the delivery come back after it expires. release gives the claim
// up; a process that dies leaves it to expire.
func (c cache) claim(ctx context.Context, external string, ttl time.Duration) (release func(), err error) {
	if c.dry {
		return func() {}, nil
	}
	pk := claimPK(c.acct, external)
	until := c.now().Add(ttl)
	it := store.Item{PK: pk, SK: skDash, ExpiresAt: until, Data: []byte(`{}`)}
	err = c.st.Write(ctx, store.PutItem(it, store.NotExists))
	if errors.Is(err, store.ErrConditionFailed) {
		wait := ttl
		if cur, gerr := c.st.Get(ctx, pk, skDash); gerr == nil && !cur.ExpiresAt.IsZero() {
			wait = max(cur.ExpiresAt.Sub(c.now()), time.Second)
		}
		return nil, &deliver.RetryAfterError{After: wait, Err: fmt.Errorf("%w: %s", ErrInProgress, external)}
	}
	if err != nil {
		return nil, fmt.Errorf("claim %s: %w", pk, err)
	}
	return func() {
		// A claim that cannot be removed expires on its own.
		_ = c.st.Write(context.WithoutCancel(ctx), store.DeleteKey(store.Key{PK: pk, SK: skDash}, store.Always))
	}, nil
}
