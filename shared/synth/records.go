package synth

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/ledger"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Record is one contact of a history as ingest would have stored it once every event arrived:
// under its final email (an email change moved everything there), with its orders and
// subscriptions merged, and its first page view.
type Record struct {
	Email     string
	OldEmail  string // the email before a change, now an alias
	Orders    []domain.Order
	Subs      []domain.Subscription
	Profile   int
	FirstView *history.FirstView
}

func usd(cents int64) domain.Money { return domain.Money{Minor: cents, Currency: "USD"} }

// Record is the contact of customer c.
func (h *History) Record(c *Customer) Record {
	r := Record{Email: c.Email, Profile: c.Profile}
	if c.NewEmail != "" && c.ChangedAt.Before(h.End) {
		r.Email, r.OldEmail = c.NewEmail, c.Email
	}
	byID := map[string]*Order{}
	for _, o := range c.Orders {
		byID[o.ID] = o
		r.Orders = append(r.Orders, h.order(c, o))
	}
	for _, s := range c.Subs {
		r.Subs = append(r.Subs, h.sub(s, byID[s.Original], r.Email))
	}
	return r
}

func (h *History) order(c *Customer, o *Order) domain.Order {
	d := domain.Order{Key: domain.OrderKey(domain.UltraCart, o.ID, ""), Source: domain.UltraCart, OrderID: o.ID, Email: o.Email,
		Status: domain.OrderPaid, Stage: "Completed Order", Test: o.Test, CreatedAt: o.Created.UTC(), PaidAt: o.Paid.UTC(),
		Currency: "USD", Shipping: usd(o.Shipping), Tax: usd(o.Tax), Total: usd(o.Total()), Refunded: usd(o.Refunded()),
		CustomerID: strconv.Itoa(o.Customer), SourceUpdatedAt: o.Paid.UTC(), Handling: usd(0), Discount: usd(0)}
	var sub int64
	full := o.Refunded() > 0 && o.Refunded() >= o.Total()
	for _, l := range o.Lines {
		li := domain.LineItem{SKU: l.SKU, Name: l.Name, Quantity: l.Qty, UnitPrice: usd(l.Unit), Discount: usd(0), Total: usd(l.Qty * l.Unit), Refunded: usd(0)}
		if full {
			li.Refunded, li.QtyRefunded = li.Total, l.Qty
		}
		d.Items = append(d.Items, li)
		sub += l.Qty * l.Unit
	}
	d.Subtotal, d.CustomerTotal = usd(sub), d.Total
	if n := len(o.Refunds); n > 0 {
		d.RefundedAt = o.Refunds[n-1].At.UTC()
		d.SourceUpdatedAt = d.RefundedAt
	}
	for _, t := range o.Touches {
		d.UTMs = append(d.UTMs, domain.UTM{Source: t.Source, Medium: t.Medium, Campaign: t.Campaign, At: t.At.UTC()})
	}
	switch {
	case o.Rejected:
		d.Status = domain.OrderRejected
	case o.Deleted:
		d.Status = domain.OrderDeleted
	}
	if o.Sub != "" {
		d.SubscriptionID, d.Rebill = o.Sub, o.Original != ""
	}
	if x := o.Dispute; x != nil {
		line := domain.ChargebackLine{ID: strconv.Itoa(x.ID), Amount: usd(x.Amount), Status: domain.ChargebackOpen, SourceStatus: "Pending", At: x.At.UTC()}
		if x.Outcome != "" && x.Decided.Before(h.End) {
			line.Status, line.SourceStatus, line.ResolvedAt = domain.ChargebackWon, x.Outcome, x.Decided.UTC()
			if x.Outcome == "Lost" {
				line.Status, line.ResolvedAt = domain.ChargebackLost, time.Time{}
			}
		}
		d.Chargebacks = []domain.ChargebackLine{line}
	}
	// The merge puts the derived fields (standing chargebacks) where ingest would.
	return ledger.MergeOrder(nil, d)
}

func (h *History) sub(s *Subscription, orig *Order, email string) domain.Subscription {
	d := domain.Subscription{Key: domain.SubscriptionKey(domain.UltraCart, s.Code), Source: domain.UltraCart, ID: s.Code, Email: email,
		OriginalOrderID: s.Original, Products: []string{s.Plan.SKU}, Amount: usd(s.Plan.Price), Frequency: s.Plan.Frequency}
	d.History = append(d.History, domain.StatusChange{Status: domain.SubActive, At: s.Start.UTC()})
	for _, p := range s.Pauses {
		d.History = append(d.History, domain.StatusChange{Status: domain.SubPaused, At: p[0].UTC()})
		if p[1].Before(h.End) && (s.Cancel.IsZero() || p[1].Before(s.Cancel)) {
			d.History = append(d.History, domain.StatusChange{Status: domain.SubActive, At: p[1].UTC()})
		}
	}
	if !s.Cancel.IsZero() {
		st := domain.SubCancelled
		if s.Upgraded {
			st = domain.SubMerged
		}
		d.History = append(d.History, domain.StatusChange{Status: st, At: s.Cancel.UTC()})
	}
	return ledger.MergeSubscription(nil, d)
}

// Write stores a history's contacts directly as ingest would have left them (their orders,
// subscriptions, profiles, aliases and customer profiles), without its rollups: a rebuild
// makes those. It is how a benchmark gets a million orders in minutes instead of hours.
// progress, when set, is called with the orders written so far.
func (h *History) Write(ctx context.Context, st store.Store, account string, progress func(orders int)) error {
	repo := history.New(st)
	w := &history.Writes{}
	done := 0
	flush := func() error {
		if w.Len() == 0 {
			return nil
		}
		if err := repo.Commit(ctx, w); err != nil {
			return err
		}
		w = &history.Writes{}
		if progress != nil {
			progress(done)
		}
		return nil
	}
	for _, c := range h.Customers {
		r := h.Record(c)
		// One contact's records go in one or more transactions of their own.
		if w.Len()+len(r.Orders)+len(r.Subs)+4 > store.MaxTransactWrites {
			if err := flush(); err != nil {
				return err
			}
		}
		cs := &history.ContactState{Account: account, Email: r.Email, OrderVersions: map[string]int64{}, SubVersions: map[string]int64{}}
		for _, o := range r.Orders {
			if w.Len() >= store.MaxTransactWrites-4 {
				if err := flush(); err != nil {
					return err
				}
			}
			w.PutOrder(cs, o)
		}
		for _, s := range r.Subs {
			w.PutSub(cs, s)
		}
		profile := ledger.Aggregate(domain.Contact{Account: account, Email: r.Email}, r.Orders, r.Subs)
		w.PutProfile(cs, profile)
		w.PutCustomer(account, string(domain.UltraCart), strconv.Itoa(r.Profile), r.Email)
		if r.OldEmail != "" {
			w.PutAlias(account, r.OldEmail, r.Email, h.End)
		}
		done += len(r.Orders)
	}
	if err := flush(); err != nil {
		return fmt.Errorf("write the synthetic history of %s: %w", account, err)
	}
	return nil
}
