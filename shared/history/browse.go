package history

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Lists a person pages through (the console), with cursors rather than offsets: every page is
// one or a few queries of an index, whatever the size of the history. A filter that an index
// cannot answer is applied to what the index returns, and a page reads at most MaxScan index
// items: a page may then hold fewer rows than asked, with a cursor to read on.

// DefaultMaxScan bounds the index items one filtered page reads.
const DefaultMaxScan = 2000

// DeliveryQuery selects attempts from an account's delivery log, newest first.
type DeliveryQuery struct {
	// Failed reads the failed attempts' index (retried and parked) instead of every attempt.
	Failed bool
	// From and To bound the attempts' times; zero leaves that end open.
	From, To time.Time
	Dest     string
	Status   string
	Cursor   string
	Limit    int
	MaxScan  int
}

// DeliveryPage is a page of the delivery log.
type DeliveryPage struct {
	Deliveries []Delivery
	// Next continues the list ("" when the log has nothing older).
	Next string
}

// DeliveryLog reads a page of the account's delivery log.
func (r *Repo) DeliveryLog(ctx context.Context, account string, dq DeliveryQuery) (DeliveryPage, error) {
	if dq.Limit <= 0 {
		dq.Limit = 50
	}
	if dq.MaxScan <= 0 {
		dq.MaxScan = DefaultMaxScan
	}
	before, err := decodeCursor(dq.Cursor)
	if err != nil {
		return DeliveryPage{}, err
	}
	q := store.Query{Index: store.GSI1, PK: deliveryGSI1(account, false), Descending: true, Limit: min(dq.Limit+1, dq.MaxScan)}
	if dq.Failed {
		q.Index, q.PK = store.GSI2, deliveryGSI1(account, true)
	}
	if !dq.From.IsZero() {
		q.SKFrom = dq.From.UTC().Format(sortableTime)
	}
	if !dq.To.IsZero() {
		q.SKTo = dq.To.UTC().Format(sortableTime)
	}
	if before != "" && (q.SKTo == "" || before < q.SKTo) {
		q.SKTo = before
	}
	var out DeliveryPage
	scanned := 0
	for {
		p, err := r.s.Query(ctx, q)
		if err != nil {
			return DeliveryPage{}, fmt.Errorf("read the delivery log of %s: %w", account, err)
		}
		for _, it := range p.Items {
			pos := it.GSI1SK
			if dq.Failed {
				pos = it.GSI2SK
			}
			if before != "" && pos >= before {
				continue
			}
			if len(out.Deliveries) == dq.Limit || scanned == dq.MaxScan {
				out.Next = encodeCursor(before)
				return out, nil
			}
			scanned++
			before = pos
			var d Delivery
			if json.Unmarshal(it.Data, &d) != nil {
				continue
			}
			if (dq.Dest != "" && d.Dest != dq.Dest) || (dq.Status != "" && d.Status != dq.Status) {
				continue
			}
			out.Deliveries = append(out.Deliveries, d)
		}
		if p.Next == "" {
			return out, nil
		}
		q.Cursor = p.Next
	}
}

// ContactDeliveries reads the delivery log of one contact (its partition), newest first; with
// dest and factID set, only the attempts of that fact at that destination.
func (r *Repo) ContactDeliveries(ctx context.Context, account, email, dest, factID string) ([]Delivery, error) {
	items, err := store.QueryAll(ctx, r.s, store.Query{PK: ContactPK(account, email), SKPrefix: prefDeliv, Descending: true})
	if err != nil {
		return nil, fmt.Errorf("read the deliveries of %s: %w", email, err)
	}
	var out []Delivery
	for _, it := range items {
		var d Delivery
		if json.Unmarshal(it.Data, &d) != nil {
			continue
		}
		if (dest != "" && d.Dest != dest) || (factID != "" && d.FactID != factID) {
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

// OrderAt reads one order by its key, wherever its contact is; store.ErrNotFound when the
// account has no such order.
func (r *Repo) OrderAt(ctx context.Context, account, orderKey string) (email string, o domain.Order, err error) {
	email, err = r.FindOrder(ctx, account, orderKey)
	if err != nil {
		return "", o, fmt.Errorf("find order %s of %s: %w", orderKey, account, err)
	}
	if email == "" {
		return "", o, store.ErrNotFound
	}
	it, err := r.s.Get(ctx, ContactPK(account, email), orderSK(orderKey))
	if err != nil {
		return "", o, fmt.Errorf("read order %s of %s: %w", orderKey, account, err)
	}
	if err := domain.UnmarshalRecord(it.Data, &o); err != nil {
		return "", o, fmt.Errorf("order %s of %s is unreadable: %w", orderKey, account, err)
	}
	return email, o, nil
}

// newestFirstPage is how many orders OrdersNewestFirst reads at a time: a list shows a page of
// 50, and the store's default page (1,000 orders of a busy month, each a document of a few
// kilobytes) cost a million-order account's order list most of its time.
const newestFirstPage = 100

// OrdersNewestFirst walks the orders paid (or created) from since to until, newest first,
// starting before position before ("" from the newest), month partition by month partition, and
// calls fn until it returns false. Positions are OrderRef.Position.
func (r *Repo) OrdersNewestFirst(ctx context.Context, account string, since, until time.Time, before string, fn func(OrderRef) (bool, error)) error {
	from := since.UTC().Format(sortableTime)
	to := until.UTC().Format(sortableTime) + "~"
	if before != "" && before < to {
		to = before
		if t, err := time.Parse(sortableTime, before[:min(len(before), len(sortableTime))]); err == nil && t.Before(until) {
			until = t
		}
	}
	first := time.Date(since.UTC().Year(), since.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	for m := time.Date(until.UTC().Year(), until.UTC().Month(), 1, 0, 0, 0, 0, time.UTC); !m.Before(first); m = m.AddDate(0, -1, 0) {
		q := store.Query{Index: store.GSI2, PK: monthGSI2(account, m), SKFrom: from, SKTo: to, Descending: true, Limit: newestFirstPage}
		if more, err := r.eachMonthOrder(ctx, account, q, before, fn); err != nil || !more {
			return err
		}
	}
	return nil
}

// QuarantinePage is a page of an account's kept-raw events.
type QuarantinePage struct {
	Events []Quarantined
	Next   string
}

// QuarantineBrowse reads a page of an account's kept-raw events (in id order).
func (r *Repo) QuarantineBrowse(ctx context.Context, account, cursor string, limit int) (QuarantinePage, error) {
	if limit <= 0 {
		limit = 50
	}
	after, err := decodeCursor(cursor)
	if err != nil {
		return QuarantinePage{}, err
	}
	q := store.Query{PK: quarantinePK(account), Limit: limit + 1}
	if after != "" {
		q.SKFrom = after
	}
	var out QuarantinePage
	for {
		p, err := r.s.Query(ctx, q)
		if err != nil {
			return QuarantinePage{}, fmt.Errorf("list the quarantined events of %s: %w", account, err)
		}
		for _, it := range p.Items {
			if it.SK == after {
				continue
			}
			if len(out.Events) == limit {
				out.Next = encodeCursor(out.Events[limit-1].ID)
				return out, nil
			}
			var x Quarantined
			if json.Unmarshal(it.Data, &x) != nil {
				continue
			}
			x.ID = it.SK
			out.Events = append(out.Events, x)
		}
		if p.Next == "" {
			return out, nil
		}
		q.Cursor = p.Next
	}
}

// QuarantineDiscard is the write that removes a kept-raw event, if it is still there; it goes in
// one transaction with the audit record that keeps what was removed.
func QuarantineDiscard(account, id string) store.Write {
	return store.DeleteKey(store.Key{PK: quarantinePK(account), SK: id}, store.Exists)
}

// IsQuarantineID reports whether s can be a kept-raw event's id (16 hex digits), so a request
// naming something else is refused before any read.
func IsQuarantineID(s string) bool {
	if len(s) != 16 {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}
