package ledger

import (
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// kitchenSinkStream is one large order's life as a source delivers it: created, paid, a
// partial refund, shipped with a second tracking number, a full refund, and two redeliveries.
func kitchenSinkStream(tb testing.TB) []domain.Order {
	base := kitchenSink(tb)
	base.Tracking = nil
	at := base.PaidAt
	v := func(mod func(*domain.Order)) domain.Order {
		o := base
		mod(&o)
		return o
	}
	created := v(func(o *domain.Order) {
		o.Status, o.PaidAt, o.SourceUpdatedAt = domain.OrderPending, time.Time{}, o.CreatedAt
	})
	paid := v(func(*domain.Order) {})
	partial := v(func(o *domain.Order) {
		o.Refunded, o.RefundedAt, o.SourceUpdatedAt = usd(1299), at.Add(time.Hour), at.Add(time.Hour)
	})
	shipped := v(func(o *domain.Order) {
		o.Status, o.SourceUpdatedAt = domain.OrderShipped, at.Add(2*time.Hour)
		o.Refunded, o.RefundedAt = usd(1299), at.Add(time.Hour)
		o.Tracking = []domain.Tracking{{Number: "1Z999AA10123456784", Carrier: "UPS"}, {Number: "1Z999AA10123456785", Carrier: "UPS"}}
	})
	full := shipped
	full.Refunded, full.RefundedAt, full.SourceUpdatedAt = base.Total, at.Add(3*time.Hour), at.Add(3*time.Hour)
	return []domain.Order{created, paid, partial, shipped, full, paid, shipped}
}

// BenchmarkMergeAndDiff measures the per-event work on an order: merge into the stored order and
// derive its facts, on a large order (20 items, UTMs, affiliate, tracking).
func BenchmarkMergeAndDiff(b *testing.B) {
	stream := kitchenSinkStream(b)
	b.ReportAllocs()
	facts := 0
	for b.Loop() {
		var stored *domain.Order
		for _, in := range stream {
			merged := MergeOrder(stored, in)
			facts += len(OrderFacts(acct, stored, merged, Cutover{}))
			stored = &merged
		}
	}
	if facts != b.N*5 { // placed, two refunds, two shipments per pass
		b.Fatalf("%d facts in %d passes", facts, b.N)
	}
	b.ReportMetric(float64(b.N*len(stream))/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIngestStep measures what ingest does per order event for a contact with 20 large
// orders: merge, order facts, recompute the contact, contact facts.
func BenchmarkIngestStep(b *testing.B) {
	stream := kitchenSinkStream(b)
	orders := make([]domain.Order, 20)
	for i := range orders {
		o := MergeOrder(nil, stream[1])
		o.OrderID = "DEMO-" + itoa(int64(i))
		o.Key = domain.OrderKey(o.Source, o.OrderID, "")
		o.PaidAt = o.PaidAt.Add(time.Duration(i) * 24 * time.Hour)
		orders[i] = o
	}
	contact := Aggregate(domain.Contact{Account: acct, Email: orders[0].Email}, orders, nil)
	b.ReportAllocs()
	for b.Loop() {
		for _, in := range stream {
			in.OrderID, in.Key = orders[19].OrderID, orders[19].Key
			stored := orders[19]
			merged := MergeOrder(&stored, in)
			_ = OrderFacts(acct, &stored, merged, Cutover{})
			orders[19] = merged
			after := Aggregate(contact, orders, nil)
			_ = ContactFacts(acct, contact, after, in.SourceUpdatedAt, Cutover{})
			contact = after
		}
		orders[19] = MergeOrder(nil, stream[1])
		orders[19].OrderID, orders[19].Key = "DEMO-19", domain.OrderKey(domain.UltraCart, "DEMO-19", "")
	}
	b.ReportMetric(float64(b.N*len(stream))/b.Elapsed().Seconds(), "events/s")
}
