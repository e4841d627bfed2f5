package ledger

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// TestOrderSequences feeds versions of one order through MergeOrder and OrderFacts, as ingest
// does, and checks the facts of every step and the final stored order.
func TestOrderSequences(t *testing.T) {
	type step struct {
		v    ver
		want []string // describe() of the facts
	}
	paid := ver{status: domain.OrderPaid, at: 1, paid: 1}
	cases := []struct {
		name         string
		steps        []step
		wantStatus   domain.OrderStatus
		wantRefunded int64
		wantTracking []string
		wantTest     bool
	}{
		{
			name: "created, paid, shipped twice",
			steps: []step{
				{ver{status: domain.OrderPending, at: 0}, nil},
				{paid, []string{"placed"}},
				{ver{status: domain.OrderShipped, at: 5, paid: 1, tracking: []string{"T1"}}, []string{"shipped T1"}},
				{ver{status: domain.OrderShipped, at: 6, paid: 1, tracking: []string{"T1", "T2"}}, []string{"shipped T2"}},
			},
			wantStatus: domain.OrderShipped, wantTracking: []string{"T1", "T2"},
		},
		{
			name: "partial then full refund: two facts whose deltas sum to the total",
			steps: []step{
				{paid, []string{"placed"}},
				{ver{status: domain.OrderPaid, at: 3, paid: 1, refunded: 3000, refundedAt: 3}, []string{"refunded +30.00 =30.00"}},
				{ver{status: domain.OrderPaid, at: 4, paid: 1, refunded: 10000, refundedAt: 4}, []string{"refunded +70.00 =100.00 full"}},
			},
			wantStatus: domain.OrderPaid, wantRefunded: 10000,
		},
		{
			name: "a stale refund with a lower total changes nothing",
			steps: []step{
				{paid, []string{"placed"}},
				{ver{status: domain.OrderPaid, at: 4, paid: 1, refunded: 5000, refundedAt: 4}, []string{"refunded +50.00 =50.00"}},
				{ver{status: domain.OrderPaid, at: 3, paid: 1, refunded: 3000, refundedAt: 3}, nil},
			},
			wantStatus: domain.OrderPaid, wantRefunded: 5000,
		},
		{
			name: "duplicate events produce no new facts",
			steps: []step{
				{paid, []string{"placed"}},
				{paid, nil},
				{ver{status: domain.OrderShipped, at: 2, paid: 1, refunded: 100, refundedAt: 2, tracking: []string{"T1"}}, []string{"refunded +1.00 =1.00", "shipped T1"}},
				{ver{status: domain.OrderShipped, at: 2, paid: 1, refunded: 100, refundedAt: 2, tracking: []string{"T1"}}, nil},
				{paid, nil},
			},
			wantStatus: domain.OrderShipped, wantRefunded: 100, wantTracking: []string{"T1"},
		},
		{
			name: "a test order produces no facts",
			steps: []step{
				{ver{status: domain.OrderPaid, at: 1, paid: 1, test: true}, nil},
				{ver{status: domain.OrderShipped, at: 2, paid: 1, test: true, refunded: 500, refundedAt: 2, tracking: []string{"T1"}}, nil},
			},
			wantStatus: domain.OrderShipped, wantRefunded: 500, wantTracking: []string{"T1"}, wantTest: true,
		},
		{
			name: "the test flag sticks once any version says so, and takes the sale back",
			steps: []step{
				{paid, []string{"placed"}},
				{ver{status: domain.OrderPaid, at: 2, paid: 1, test: true}, []string{"reversed test net 100.00"}},
				{ver{status: domain.OrderPaid, at: 3, paid: 1, refunded: 100, refundedAt: 3}, nil},
			},
			wantStatus: domain.OrderPaid, wantRefunded: 100, wantTest: true,
		},
		{
			name: "rejected after pending",
			steps: []step{
				{ver{status: domain.OrderPending, at: 0}, nil},
				{ver{status: domain.OrderRejected, at: 2}, nil},
			},
			wantStatus: domain.OrderRejected,
		},
		{
			name: "rejected arriving before pending stays rejected",
			steps: []step{
				{ver{status: domain.OrderRejected, at: 2}, nil},
				{ver{status: domain.OrderPending, at: 0}, nil},
				{ver{status: domain.OrderPending, at: 0}, nil},
			},
			wantStatus: domain.OrderRejected,
		},
		{
			name: "a paid order later deleted is reversed once, net of what was sent; no further facts",
			steps: []step{
				{paid, []string{"placed"}},
				{ver{status: domain.OrderDeleted, at: 9, paid: 1, refunded: 100, refundedAt: 9}, []string{"reversed deleted net 100.00"}},
				{paid, nil},
			},
			wantStatus: domain.OrderDeleted, wantRefunded: 100,
		},
		{
			name: "shipment arriving before payment: placed and shipped at once",
			steps: []step{
				{ver{status: domain.OrderShipped, at: 5, paid: 1, tracking: []string{"T1"}}, []string{"placed", "shipped T1"}},
				{paid, nil},
				{ver{status: domain.OrderPending, at: 0}, nil},
			},
			wantStatus: domain.OrderShipped, wantTracking: []string{"T1"},
		},
		{
			name: "refund arriving first: placed with the refund so far, then growth only",
			steps: []step{
				{ver{status: domain.OrderPaid, at: 3, paid: 1, refunded: 3000, refundedAt: 3}, []string{"placed", "refunded +30.00 =30.00"}},
				{paid, nil},
				{ver{status: domain.OrderPaid, at: 4, paid: 1, refunded: 10000, refundedAt: 4}, []string{"refunded +70.00 =100.00 full"}},
			},
			wantStatus: domain.OrderPaid, wantRefunded: 10000,
		},
		{
			name: "pending never produces facts",
			steps: []step{
				{ver{status: domain.OrderPending, at: 0}, nil},
				{ver{status: domain.OrderPending, at: 1, city: "Springfield"}, nil},
			},
			wantStatus: domain.OrderPending,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stored *domain.Order
			for i, s := range c.steps {
				merged := MergeOrder(stored, s.v.order())
				got := describe(OrderFacts(acct, stored, merged, Cutover{}))
				if !equalStrings(got, s.want) {
					t.Fatalf("step %d: facts %q, want %q", i, got, s.want)
				}
				stored = &merged
			}
			if stored.Status != c.wantStatus || stored.Refunded.Minor != c.wantRefunded || stored.Test != c.wantTest {
				t.Errorf("final status %s refunded %d test %v; want %s %d %v", stored.Status,
					stored.Refunded.Minor, stored.Test, c.wantStatus, c.wantRefunded, c.wantTest)
			}
			var numbers []string
			for _, tr := range stored.Tracking {
				numbers = append(numbers, tr.Number)
			}
			if !equalStrings(numbers, c.wantTracking) {
				t.Errorf("tracking %q, want %q", numbers, c.wantTracking)
			}
		})
	}
}

func TestMergeOrderFields(t *testing.T) {
	older := ver{status: domain.OrderPaid, at: 2, paid: 2, city: "Old Town"}.order()
	newer := ver{status: domain.OrderPending, at: 5, paid: 1, city: "New Town"}.order()
	newer.CreatedAt = mins(-5)
	newer.Tracking = []domain.Tracking{{Number: "B"}, {Number: "A", Carrier: "UPS"}, {Number: "A"}, {Number: ""}}
	older.Tracking = []domain.Tracking{{Number: "C", URL: "https://c"}, {Number: "A", Carrier: "FedEx"}}
	for _, order := range [][2]domain.Order{{older, newer}, {newer, older}} {
		got := MergeOrder(&order[0], order[1])
		if got.Billing.City != "New Town" {
			t.Errorf("descriptive fields from %q, want the later SourceUpdatedAt's", got.Billing.City)
		}
		if got.Status != domain.OrderPaid {
			t.Errorf("status %s: a later pending version must not undo paid", got.Status)
		}
		if !got.PaidAt.Equal(mins(1)) || !got.CreatedAt.Equal(mins(-5)) {
			t.Errorf("paid %v created %v: want the earliest of each", got.PaidAt, got.CreatedAt)
		}
		if !got.SourceUpdatedAt.Equal(mins(5)) {
			t.Errorf("source updated %v", got.SourceUpdatedAt)
		}
		want := []domain.Tracking{{Number: "A", Carrier: "UPS"}, {Number: "B"}, {Number: "C", URL: "https://c"}}
		if !reflect.DeepEqual(got.Tracking, want) {
			t.Errorf("tracking %+v, want %+v", got.Tracking, want)
		}
	}
	// A new order is stored normalized: key filled, tracking sorted and unique.
	in := domain.Order{Source: domain.ThriveCart, OrderID: "77", InvoiceID: "000000004-2",
		Tracking: []domain.Tracking{{Number: "Z"}, {Number: "Y"}, {Number: "Z"}}}
	got := MergeOrder(nil, in)
	if got.Key != "thrivecart:77:000000004-2" || len(got.Tracking) != 2 || got.Tracking[0].Number != "Y" {
		t.Errorf("normalized new order: key %q tracking %+v", got.Key, got.Tracking)
	}
	if in.Tracking[0].Number != "Z" {
		t.Error("MergeOrder changed its argument's tracking slice")
	}
}

// TestMergeOrderContentTieBreak: versions with the same SourceUpdatedAt (or none) still merge to
// one result whatever the order.
func TestMergeOrderContentTieBreak(t *testing.T) {
	a := ver{status: domain.OrderPaid, at: 3, paid: 1, city: "A"}.order()
	b := ver{status: domain.OrderShipped, at: 3, paid: 1, city: "B", tracking: []string{"T"}}.order()
	ab, ba := MergeOrder(&a, b), MergeOrder(&b, a)
	if !reflect.DeepEqual(ab, ba) {
		t.Fatalf("merge depends on order:\n%+v\n%+v", ab, ba)
	}
	// Identical contents are a fixpoint.
	if again := MergeOrder(&ab, ab); !reflect.DeepEqual(again, ab) {
		t.Fatal("merging an order with itself changed it")
	}
}

func TestOrderFactsContent(t *testing.T) {
	o := kitchenSink(t)
	o.Tracking = nil
	cut := Cutover{ForwardSince: o.PaidAt.Add(1)} // paid just before the cutover: history
	placed := MergeOrder(nil, o)
	fs := OrderFacts(acct, nil, placed, cut)
	if len(fs) != 1 {
		t.Fatalf("facts %q", describe(fs))
	}
	f := fs[0]
	if f.ID != "acct1:OrderPlaced:ultracart:DEMO-0009110366" || f.Account != acct || f.Email != o.Email {
		t.Errorf("placed fact identity: %+v", f)
	}
	if !f.OccurredAt.Equal(o.PaidAt) || !f.Historical {
		t.Errorf("placed at %v historical %v", f.OccurredAt, f.Historical)
	}
	if f.Order == nil || f.Order.Key != o.Key || len(f.Order.Items) != 20 {
		t.Error("placed fact has no snapshot of the order")
	}

	refund := o
	refund.Refunded = usd(1000)
	refund.RefundedAt = o.PaidAt.Add(48 * time.Hour)
	refund.SourceUpdatedAt = refund.RefundedAt
	refund.Tracking = []domain.Tracking{{Number: "1Z1", Carrier: "UPS"}}
	refund.Status = domain.OrderShipped
	after := MergeOrder(&placed, refund)
	fs = OrderFacts(acct, &placed, after, cut)
	if got := describe(fs); !equalStrings(got, []string{"refunded +10.00 =10.00", "shipped 1Z1"}) {
		t.Fatalf("facts %q", got)
	}
	r := fs[0]
	if r.ID != "acct1:OrderRefunded:ultracart:DEMO-0009110366:1000USD" || r.Historical ||
		!r.OccurredAt.Equal(refund.RefundedAt) || !r.Refund.At.Equal(refund.RefundedAt) || r.Refund.Full {
		t.Errorf("refund fact: %+v %+v", r, r.Refund)
	}
	s := fs[1]
	if s.ID != "acct1:OrderShipped:ultracart:DEMO-0009110366:1Z1" || s.Tracking[0].Carrier != "UPS" || s.Historical {
		t.Errorf("shipped fact: %+v", s)
	}
	if s.Order.Refunded != usd(1000) {
		t.Error("snapshot is not the order after the change")
	}
}

func TestOrderFactsFullRefundOfWholeTotal(t *testing.T) {
	o := ver{status: domain.OrderPaid, at: 1, paid: 1, refunded: 10000, refundedAt: 2}.order()
	fs := OrderFacts(acct, nil, MergeOrder(nil, o), Cutover{})
	if got := describe(fs); !equalStrings(got, []string{"placed", "refunded +100.00 =100.00 full"}) {
		t.Fatalf("facts %q", got)
	}
}

func TestPlaced(t *testing.T) {
	for _, c := range []struct {
		o    domain.Order
		want bool
	}{
		{domain.Order{Status: domain.OrderPaid}, true},
		{domain.Order{Status: domain.OrderShipped}, true},
		{domain.Order{Status: domain.OrderPaid, Test: true}, false},
		{domain.Order{Status: domain.OrderPending}, false},
		{domain.Order{Status: domain.OrderRejected}, false},
		{domain.Order{Status: domain.OrderDeleted}, false},
		{domain.Order{}, false},
	} {
		if got := Placed(c.o); got != c.want {
			t.Errorf("Placed(%s, test=%v) = %v", c.o.Status, c.o.Test, got)
		}
	}
	ranks := []domain.OrderStatus{"", domain.OrderPending, domain.OrderPaid, domain.OrderShipped, domain.OrderRejected, domain.OrderDeleted}
	if !slices.IsSortedFunc(ranks, cmpStatus) {
		t.Error("status lattice out of order")
	}
}

// refundEvent is a ThriveCart-style partial version: only the refund it reports.
func refundEvent(id string, cents int64, minute int, reason string) domain.Order {
	return domain.Order{Source: domain.UltraCart, OrderID: "O1", Key: "ultracart:O1", Email: "ann@example.com",
		Partial: true, Status: domain.OrderPaid, SourceUpdatedAt: mins(minute),
		Refunds:  []domain.RefundLine{{ID: id, Amount: usd(cents), At: mins(minute), Reason: reason}},
		Refunded: usd(cents), RefundedAt: mins(minute)}
}

func TestOrderRefundLinesAndPartialVersions(t *testing.T) {
	paid := ver{status: domain.OrderPaid, at: 1, paid: 1}.order()
	shipped := ver{status: domain.OrderShipped, at: 1, paid: 1}.order()
	shipped.Partial, shipped.Total, shipped.Subtotal = true, domain.Money{}, domain.Money{} // no summary: amounts unknown
	type step = orderStep
	cases := []struct {
		name         string
		steps        []step
		wantRefunded int64
		wantTotal    int64
		wantStatus   domain.OrderStatus
		wantPartial  bool
	}{
		{
			name: "refund lines add up",
			steps: []step{
				{paid, []string{"placed"}},
				{refundEvent("r1", 3000, 5, "damaged"), []string{"refunded +30.00 =30.00"}},
				{refundEvent("r2", 2000, 6, ""), []string{"refunded +20.00 =50.00"}},
				{refundEvent("r1", 3000, 5, "damaged"), nil},
			},
			wantRefunded: 5000, wantTotal: 10000, wantStatus: domain.OrderPaid,
		},
		{
			name: "refund lines in the other order: other ids, same total",
			steps: []step{
				{paid, []string{"placed"}},
				{refundEvent("r2", 2000, 6, ""), []string{"refunded +20.00 =20.00"}},
				{refundEvent("r1", 3000, 5, "damaged"), []string{"refunded +30.00 =50.00"}},
			},
			wantRefunded: 5000, wantTotal: 10000, wantStatus: domain.OrderPaid,
		},
		{
			name: "a partial version first produces nothing until the order is known in full",
			steps: []step{
				{refundEvent("r1", 3000, 5, "damaged"), nil},
				{refundEvent("r2", 7000, 6, ""), nil},
				{paid, []string{"placed", "refunded +100.00 =100.00 full"}},
			},
			wantRefunded: 10000, wantTotal: 10000, wantStatus: domain.OrderPaid,
		},
		{
			name: "a partial version never replaces the complete contents; its shipment without tracking is one",
			steps: []step{
				{paid, []string{"placed"}},
				{shipped, []string{"shipped untracked"}},
				{shipped, nil},
			},
			wantTotal: 10000, wantStatus: domain.OrderShipped,
		},
		{
			name: "only partial versions: kept, but not a sale yet",
			steps: []step{
				{shipped, nil},
				{refundEvent("r1", 100, 5, ""), nil},
			},
			wantRefunded: 100, wantStatus: domain.OrderShipped, wantPartial: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stored := play(t, c.steps, func(i int, _ domain.Order, fs []domain.Fact) {
				for _, f := range fs {
					if f.Refund != nil && f.Refund.Cumulative.Minor == 3000 && f.Refund.Reason != "damaged" {
						t.Errorf("step %d: refund reason %q", i, f.Refund.Reason)
					}
				}
			})
			if stored.Refunded.Minor != c.wantRefunded || stored.Total.Minor != c.wantTotal ||
				stored.Status != c.wantStatus || stored.Partial != c.wantPartial {
				t.Errorf("final refunded %v total %v status %s partial %v", stored.Refunded, stored.Total, stored.Status, stored.Partial)
			}
		})
	}
}

// TestPaymentFailed: a declined payment of an order that is not a sale is one OrderPaymentFailed,
// however often it is reported, and nothing for a test order or for a decline that arrives only
// after the order was placed.
func TestPaymentFailed(t *testing.T) {
	declined := func(v ver, at int) domain.Order {
		o := v.order()
		o.PaymentFailedAt = mins(at)
		return o
	}
	pending := ver{status: domain.OrderPending, at: 1}
	paid := ver{status: domain.OrderPaid, at: 3, paid: 3}
	for _, tc := range []struct {
		name  string
		steps []orderStep
	}{
		{"declined, declined again, then paid", []orderStep{
			{declined(pending, 1), []string{"OrderPaymentFailed"}},
			{declined(pending, 2), nil},
			{paid.order(), []string{"placed"}},
		}},
		{"paid, then the earlier decline arrives", []orderStep{
			{paid.order(), []string{"placed"}},
			{declined(pending, 1), nil},
		}},
		{"a test order", []orderStep{
			{declined(ver{status: domain.OrderPending, at: 1, test: true}, 1), nil},
		}},
		{"declined and rejected in one report", []orderStep{
			{declined(ver{status: domain.OrderRejected, at: 1}, 1), []string{"OrderPaymentFailed"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			play(t, tc.steps, func(i int, merged domain.Order, fs []domain.Fact) {
				for _, f := range fs {
					if f.Kind == domain.FactOrderPaymentFailed &&
						(f.ID != domain.OrderPaymentFailedID(acct, "ultracart:O1") || !f.OccurredAt.Equal(mins(1)) || f.Order == nil) {
						t.Fatalf("step %d: fact %s at %v", i, f.ID, f.OccurredAt)
					}
				}
			})
		})
	}
}
