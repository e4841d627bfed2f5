package history

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Quarantine kinds: why an event was kept raw instead of ingested.
const (
	QuarantineMalformed    = "malformed"     // the source sent something that is not a valid event
	QuarantineUnknownEvent = "unknown_event" // a valid event cartrelay does not act on (kept and counted)
	QuarantineInvalid      = "invalid"       // an event missing what cartrelay needs (no email, no order id)
	QuarantineUnreadable   = "unreadable"    // a queue message that could not be read back
)

// Quarantined is a source event kept raw with the reason it was not ingested. It can be
// inspected and replayed once the cause is fixed.
type Quarantined struct {
	ID      string    `json:"id"`
	Account string    `json:"account"`
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"`
	Reason  string    `json:"reason"`
	Source  string    `json:"source,omitempty"`
	Event   string    `json:"event,omitempty"`
	// Message is the ingest queue message as received, so a replay sends exactly it again.
	Message string `json:"message"`
	// Key identifies the event by what it says, when that could be read (empty for an unreadable
	// message). The same event arrives in another message each time it is read again (a webhook
	// redelivery, the next walk of a polled listing: another time received, another page), so
	// it is the key, not the message, that makes it one kept record.
	Key        string    `json:"key,omitempty"`
	ReplayedAt time.Time `json:"replayed_at,omitzero"`
}

// Quarantine keeps q. Its id is derived from its key (the message when it has none), so
// quarantining the same event again writes the same record once.
func (r *Repo) Quarantine(ctx context.Context, q Quarantined) (Quarantined, error) {
	by := q.Message
	if q.Key != "" {
		by = "key\x00" + q.Key
	}
	sum := sha256.Sum256([]byte(q.Account + "\x00" + by))
	q.ID = hex.EncodeToString(sum[:8])
	it := store.Item{PK: quarantinePK(q.Account), SK: q.ID,
		GSI1PK: quarantineGSI1, GSI1SK: q.At.UTC().Format(sortableTime) + "#" + q.Account + "#" + q.ID,
		Data: mustJSON(q)}
	err := r.s.Write(ctx, store.PutItem(it, store.NotExists))
	if errors.Is(err, store.ErrConditionFailed) {
		// Kept already. If it was replayed and failed again, it is held again, with the new reason.
		old, gerr := r.QuarantineGet(ctx, q.Account, q.ID)
		if gerr != nil || old.ReplayedAt.IsZero() {
			return q, nil
		}
		err = r.s.Write(ctx, store.PutItem(it, store.Always))
	}
	if err != nil {
		return q, fmt.Errorf("quarantine %s event of %s: %w", q.Event, q.Account, err)
	}
	return q, nil
}

// QuarantineList lists kept-raw events, newest first: of one account, or of all when account is
// empty.
func (r *Repo) QuarantineList(ctx context.Context, account string, limit int) ([]Quarantined, error) {
	q := store.Query{Index: store.GSI1, PK: quarantineGSI1, Descending: true}
	if account != "" {
		q = store.Query{PK: quarantinePK(account)}
	}
	var out []Quarantined
	for {
		p, err := r.s.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, it := range p.Items {
			var x Quarantined
			if err := json.Unmarshal(it.Data, &x); err != nil {
				continue
			}
			out = append(out, x)
			if limit > 0 && len(out) >= limit {
				return out, nil
			}
		}
		if p.Next == "" {
			return out, nil
		}
		q.Cursor = p.Next
	}
}

// QuarantineGet returns one kept-raw event.
func (r *Repo) QuarantineGet(ctx context.Context, account, id string) (Quarantined, error) {
	it, err := r.s.Get(ctx, quarantinePK(account), id)
	if err != nil {
		return Quarantined{}, fmt.Errorf("quarantined event %s of %s: %w", id, account, err)
	}
	var x Quarantined
	err = json.Unmarshal(it.Data, &x)
	return x, err
}

// QuarantineMarkReplayed records that the event was sent to ingest again.
func (r *Repo) QuarantineMarkReplayed(ctx context.Context, q Quarantined, at time.Time) error {
	it, err := r.s.Get(ctx, quarantinePK(q.Account), q.ID)
	if err != nil {
		return err
	}
	q.ReplayedAt = at
	it.Data = mustJSON(q)
	return r.s.Write(ctx, store.PutItem(it, store.Always))
}

// Delivery statuses.
const (
	DeliverySent    = "sent"    // the destination accepted it
	DeliveryDryRun  = "dry_run" // no API key: recorded what would have been sent
	DeliveryRetry   = "retry"   // failed, will be retried
	DeliveryParked  = "parked"  // failed permanently; waits for a replay
	DeliverySkipped = "skipped" // nothing to send for this fact
)

// Delivery is one attempt to hand a fact to a destination, with the exact request and response
// (secrets redacted).
type Delivery struct {
	Account   string          `json:"account"`
	Email     string          `json:"email"`
	Dest      string          `json:"destination"`
	FactID    string          `json:"fact_id"`
	FactKind  string          `json:"fact_kind"`
	At        time.Time       `json:"at"`
	Attempt   int             `json:"attempt"`
	Status    string          `json:"status"`
	LatencyMS int64           `json:"latency_ms"`
	Requests  []HTTPExchange  `json:"requests,omitempty"`
	Error     string          `json:"error,omitempty"`
	Note      string          `json:"note,omitempty"`
	Extra     json.RawMessage `json:"extra,omitempty"`
}

// HTTPExchange is one request and its response, as recorded in the delivery log.
type HTTPExchange struct {
	Method         string            `json:"method"`
	URL            string            `json:"url"`
	RequestHeaders map[string]string `json:"request_headers,omitempty"`
	RequestBody    string            `json:"request_body,omitempty"`
	Status         int               `json:"status,omitempty"`
	ResponseBody   string            `json:"response_body,omitempty"`
}

// RecordDelivery appends d to the delivery log: in the contact's partition (for `contacts get`)
// and in the account's delivery index (GSI1, and GSI2 when it failed) for `deliveries list`. A
// fact for an email that has changed since is logged with the contact where it lives now.
func (r *Repo) RecordDelivery(ctx context.Context, d Delivery, ttl time.Duration) error {
	home, err := r.ResolveEmail(ctx, d.Account, d.Email)
	if err != nil {
		return fmt.Errorf("record delivery of %s to %s: %w", d.FactID, d.Dest, err)
	}
	it := store.Item{PK: ContactPK(d.Account, home), SK: deliverySK(d.At, d.Dest, d.FactID, d.Attempt),
		GSI1PK: deliveryGSI1(d.Account, false), GSI1SK: d.At.UTC().Format(sortableTime) + "#" + d.FactID,
		ExpiresAt: d.At.Add(ttl), Data: mustJSON(d)}
	if d.Status == DeliveryParked || d.Status == DeliveryRetry {
		it.GSI2PK, it.GSI2SK = deliveryGSI1(d.Account, true), it.GSI1SK
	}
	if err := r.s.Write(ctx, store.PutItem(it, store.Always)); err != nil {
		return fmt.Errorf("record delivery of %s to %s: %w", d.FactID, d.Dest, err)
	}
	return nil
}

// Deliveries lists an account's deliveries newest first; failed limits to retried and parked.
func (r *Repo) Deliveries(ctx context.Context, account string, failed bool, limit int) ([]Delivery, error) {
	q := store.Query{Index: store.GSI1, PK: deliveryGSI1(account, false), Descending: true}
	if failed {
		q.Index = store.GSI2
		q.PK = deliveryGSI1(account, true)
	}
	var out []Delivery
	for {
		p, err := r.s.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, it := range p.Items {
			var d Delivery
			if json.Unmarshal(it.Data, &d) == nil {
				out = append(out, d)
			}
			if limit > 0 && len(out) >= limit {
				return out, nil
			}
		}
		if p.Next == "" {
			return out, nil
		}
		q.Cursor = p.Next
	}
}

// FactDone reads a destination's record of a delivered fact (nil when not delivered yet).
func (r *Repo) FactDone(ctx context.Context, account, dest, factID string) (json.RawMessage, error) {
	it, err := r.s.Get(ctx, FactDonePK(account, dest, factID), dash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return it.Data, nil
}

// MarkFactDone records that a fact reached a destination, with what the destination returned
// (for example the ids needed to refund it later). It is written once.
func (r *Repo) MarkFactDone(ctx context.Context, account, dest, factID string, data any) error {
	it := store.Item{PK: FactDonePK(account, dest, factID), SK: dash, Data: mustJSON(data)}
	err := r.s.Write(ctx, store.PutItem(it, store.NotExists))
	if errors.Is(err, store.ErrConditionFailed) {
		return nil
	}
	return err
}

// FailedFact is what the forwarder keeps about a fact that a destination has not taken yet: how
// its deliveries failed, and the fact as it was queued. Replay sends this copy again:
// follow-up facts (cart reminders, review requests, page-view batches) are not in the
// contact's fact log, so once their message has left the queue it is the only one.
type FailedFact struct {
	// Attempts counts the failed deliveries; Failures those of them that were not deferred by
	// a rate limit (a destination's 429, or the shared request budget).
	Attempts      int             `json:"attempts"`
	Failures      int             `json:"failures"`
	FirstFailedAt time.Time       `json:"first_failed_at"`
	Fact          json.RawMessage `json:"fact"`
}

// FailedFactOf reads what the forwarder kept about a fact that failed to reach dest (nil when
// it never failed).
func (r *Repo) FailedFactOf(ctx context.Context, account, email, dest, factID string) (*FailedFact, error) {
	it, err := r.s.Get(ctx, ContactPK(account, email), failedSK(dest, factID))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the failures of %s at %s: %w", factID, dest, err)
	}
	var ff FailedFact
	if err := json.Unmarshal(it.Data, &ff); err != nil {
		return nil, fmt.Errorf("the kept copy of %s for %s is unreadable: %w", factID, dest, err)
	}
	return &ff, nil
}

// KeepFailedFact records a failed delivery of a fact to dest, replacing what was kept before.
// It lives in the contact's partition, beside the delivery log, and expires with it.
func (r *Repo) KeepFailedFact(ctx context.Context, account, email, dest, factID string, ff FailedFact, expires time.Time) error {
	it := store.Item{PK: ContactPK(account, email), SK: failedSK(dest, factID), ExpiresAt: expires, Data: mustJSON(ff)}
	if err := r.s.Write(ctx, store.PutItem(it, store.Always)); err != nil {
		return fmt.Errorf("keep the failed fact %s for %s: %w", factID, dest, err)
	}
	return nil
}

// movedFact looks for a fact along email changes: where email's contact lives now, and the
// emails still moving into it.
func (r *Repo) movedFact(ctx context.Context, account, email, factID string) (store.Item, error) {
	current, err := r.ResolveEmail(ctx, account, email)
	if err != nil {
		return store.Item{}, err
	}
	others, err := r.MovingInto(ctx, account, current)
	if err != nil {
		return store.Item{}, err
	}
	for _, e := range append([]string{current}, others...) {
		if e == email {
			continue
		}
		it, err := r.s.Get(ctx, ContactPK(account, e), factSK(factID))
		if !errors.Is(err, store.ErrNotFound) {
			return it, err
		}
	}
	return store.Item{}, store.ErrNotFound
}

// OrderRow is one line of `cartrelay orders list`.
type OrderRow struct {
	ID       string    `json:"id"`
	Key      string    `json:"key"`
	Source   string    `json:"source"`
	Email    string    `json:"email"`
	Status   string    `json:"status"`
	PaidAt   time.Time `json:"paid_at,omitzero"`
	Total    any       `json:"total"`
	Refunded any       `json:"refunded"`
	Test     bool      `json:"test"`
}

// OrdersSince calls fn for each order of the account paid (or created) at or after since, in
// time order, month partition by month partition up to until.
func (r *Repo) OrdersSince(ctx context.Context, account string, since, until time.Time, fn func(json.RawMessage) error) error {
	m := time.Date(since.Year(), since.Month(), 1, 0, 0, 0, 0, time.UTC)
	for !m.After(until) {
		q := store.Query{Index: store.GSI2, PK: monthGSI2(account, m), SKFrom: since.UTC().Format(sortableTime)}
		for {
			p, err := r.s.Query(ctx, q)
			if err != nil {
				return err
			}
			for _, it := range p.Items {
				if err := fn(it.Data); err != nil {
					return err
				}
			}
			if p.Next == "" {
				break
			}
			q.Cursor = p.Next
		}
		m = m.AddDate(0, 1, 0)
	}
	return nil
}

// Fact reads one fact from a contact's fact log. A fact logged before an email change is found
// under either address: under the new one once it has moved, under the old one until then.
func (r *Repo) Fact(ctx context.Context, account, email, factID string) (domain.Fact, error) {
	it, err := r.s.Get(ctx, ContactPK(account, email), factSK(factID))
	if errors.Is(err, store.ErrNotFound) {
		it, err = r.movedFact(ctx, account, email, factID)
	}
	if err != nil {
		return domain.Fact{}, fmt.Errorf("fact %s of %s in %s: %w", factID, email, account, err)
	}
	var f domain.Fact
	if err := json.Unmarshal(it.Data, &f); err != nil {
		return domain.Fact{}, fmt.Errorf("fact %s of %s in %s is unreadable: %w", factID, email, account, err)
	}
	return f, nil
}

// OrderRef is an order as the month index lists it: the contact holding it, its position in
// the index, and the order.
type OrderRef struct {
	Email    string
	Position string
	Order    domain.Order
}

// OrdersBetween walks the orders paid (or created) from since to until, in time order, starting
// after position after ("" from the start), and calls fn until it returns false.
func (r *Repo) OrdersBetween(ctx context.Context, account string, since, until time.Time, after string, fn func(OrderRef) (bool, error)) error {
	from := since.UTC().Format(sortableTime)
	if after > from {
		from = after
		if t, err := time.Parse(sortableTime, after[:min(len(after), len(sortableTime))]); err == nil {
			since = t
		}
	}
	to := until.UTC().Format(sortableTime) + "~"
	for m := time.Date(since.Year(), since.Month(), 1, 0, 0, 0, 0, time.UTC); !m.After(until); m = m.AddDate(0, 1, 0) {
		q := store.Query{Index: store.GSI2, PK: monthGSI2(account, m), SKFrom: from, SKTo: to}
		if more, err := r.eachMonthOrder(ctx, account, q, after, fn); err != nil || !more {
			return err
		}
	}
	return nil
}

// eachMonthOrder calls fn with each order q finds in one month's order index, skipping the one at
// position skip (where the previous page ended); more is false when fn stopped.
func (r *Repo) eachMonthOrder(ctx context.Context, account string, q store.Query, skip string, fn func(OrderRef) (bool, error)) (more bool, err error) {
	for {
		p, err := r.s.Query(ctx, q)
		if err != nil {
			return false, fmt.Errorf("list the orders of %s: %w", account, err)
		}
		for _, it := range p.Items {
			if it.GSI2SK == skip {
				continue
			}
			var o domain.Order
			if err := domain.UnmarshalRecord(it.Data, &o); err != nil {
				return false, fmt.Errorf("order %s of %s is unreadable: %w", it.SK, account, err)
			}
			email, _ := contactEmail(account, it.PK)
			if more, err := fn(OrderRef{Email: email, Position: it.GSI2SK, Order: o}); err != nil || !more {
				return false, err
			}
		}
		if p.Next == "" {
			return true, nil
		}
		q.Cursor = p.Next
	}
}
