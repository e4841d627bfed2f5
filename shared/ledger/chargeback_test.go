package ledger

import (
	"testing"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// dispute is a report of one chargeback on the test order "ultracart:O1", as the UltraCart
// mapper makes it: a partial version carrying only the dispute line.
func dispute(id string, cents int64, st domain.ChargebackStatus, at, resolved int) domain.Order {
	l := domain.ChargebackLine{ID: id, Amount: usd(cents), Status: st, At: mins(at), SourceStatus: string(st)}
	if resolved != 0 {
		l.ResolvedAt = mins(resolved)
	}
	return domain.Order{Source: domain.UltraCart, OrderID: "O1", Key: "ultracart:O1", Partial: true,
		Currency: "USD", Chargebacks: []domain.ChargebackLine{l}}
}

func TestOrderChargebacks(t *testing.T) {
	paid := ver{status: domain.OrderPaid, at: 1, paid: 1}.order()
	refunded := ver{status: domain.OrderPaid, at: 3, paid: 1, refunded: 2000, refundedAt: 3}.order()
	rejected := ver{status: domain.OrderRejected, at: 20, paid: 1}.order()
	type step = orderStep
	cases := []struct {
		name      string
		steps     []step
		wantStand int64
		wantLTV   int64
	}{
		{
			name: "a chargeback stands, then is won: revenue leaves and returns",
			steps: []step{
				{paid, []string{"placed"}},
				{dispute("D1", 10000, domain.ChargebackOpen, 5, 0), []string{"chargeback +10000 =100.00"}},
				{dispute("D1", 10000, domain.ChargebackWon, 5, 9), []string{"chargeback -10000 =0.00"}},
				{dispute("D1", 10000, domain.ChargebackOpen, 5, 0), nil}, // a stale report reopens nothing
			},
			wantStand: 0, wantLTV: 10000,
		},
		{
			name: "a deleted dispute restores; a lost one keeps standing",
			steps: []step{
				{paid, []string{"placed"}},
				{dispute("D1", 4000, domain.ChargebackOpen, 5, 0), []string{"chargeback +4000 =40.00"}},
				{dispute("D1", 4000, domain.ChargebackLost, 5, 0), nil},
				{dispute("D2", 1000, domain.ChargebackOpen, 6, 0), []string{"chargeback +1000 =50.00"}},
				{dispute("D2", 1000, domain.ChargebackDeleted, 6, 8), []string{"chargeback -1000 =40.00"}},
			},
			wantStand: 4000, wantLTV: 6000,
		},
		{
			name: "reported before the order: counted once the order is known, with the sale",
			steps: []step{
				{dispute("D1", 3000, domain.ChargebackOpen, 5, 0), nil},
				{paid, []string{"placed", "chargeback +3000 =30.00"}},
				{paid, nil},
			},
			wantStand: 3000, wantLTV: 7000,
		},
		{
			name: "never more than the order's total",
			steps: []step{
				{paid, []string{"placed"}},
				{dispute("D1", 25000, domain.ChargebackOpen, 5, 0), []string{"chargeback +10000 =100.00"}},
			},
			wantStand: 10000, wantLTV: 0,
		},
		{
			name: "refund and chargeback both come off the net; a rejection reverses what was sent",
			steps: []step{
				{paid, []string{"placed"}},
				{refunded, []string{"refunded +20.00 =20.00"}},
				{dispute("D1", 3000, domain.ChargebackOpen, 5, 0), []string{"chargeback +3000 =30.00"}},
				{rejected, []string{"reversed rejected net 50.00"}},
				{dispute("D1", 3000, domain.ChargebackWon, 5, 30), nil},
			},
			wantStand: 0, wantLTV: 0,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var sum int64
			stored := play(t, c.steps, func(i int, merged domain.Order, fs []domain.Fact) {
				for _, f := range fs {
					if f.Kind == domain.FactOrderChargedBack {
						sum += f.Chargeback.Delta.Minor
						if f.Chargeback.Standing.Minor != merged.ChargedBack.Minor {
							t.Errorf("step %d: fact says standing %v, order %v", i, f.Chargeback.Standing, merged.ChargedBack)
						}
					}
				}
			})
			if stored.ChargedBack.Minor != c.wantStand {
				t.Errorf("standing %v, want %d", stored.ChargedBack, c.wantStand)
			}
			if Placed(stored) && sum != c.wantStand {
				t.Errorf("chargeback deltas add up to %d, standing is %d", sum, c.wantStand)
			}
			ct := Aggregate(domain.Contact{Account: acct, Email: "ann@example.com"}, []domain.Order{stored}, nil)
			if ct.LTV.Minor != c.wantLTV {
				t.Errorf("LTV %v, want %d", ct.LTV, c.wantLTV)
			}
		})
	}
}

func TestChargebackTimesAndIDs(t *testing.T) {
	paid := ver{status: domain.OrderPaid, at: 1, paid: 1}.order()
	o := MergeOrder(nil, paid)
	a := MergeOrder(&o, dispute("D1", 1000, domain.ChargebackOpen, 5, 0))
	fs := OrderFacts(acct, &o, a, Cutover{})
	if len(fs) != 1 || !fs[0].OccurredAt.Equal(mins(5)) || !a.ChargedBackAt.Equal(mins(5)) {
		t.Fatalf("raised: %+v, charged back at %v", fs, a.ChargedBackAt)
	}
	if d := fs[0].Chargeback.Disputes; len(d) != 1 || d[0] != "D1" {
		t.Errorf("disputes %v", d)
	}
	b := MergeOrder(&a, dispute("D1", 1000, domain.ChargebackWon, 5, 40))
	fs2 := OrderFacts(acct, &a, b, Cutover{})
	if len(fs2) != 1 || !fs2[0].OccurredAt.Equal(mins(40)) || !b.ChargedBackAt.IsZero() {
		t.Fatalf("won: %+v, charged back at %v", fs2, b.ChargedBackAt)
	}
	if fs[0].ID == fs2[0].ID {
		t.Errorf("raise and win share id %s", fs[0].ID)
	}
	// Raised again by another dispute of the same amount: the standing amount returns to 10.00,
	// the id must not.
	c := MergeOrder(&b, dispute("D2", 1000, domain.ChargebackOpen, 50, 0))
	fs3 := OrderFacts(acct, &b, c, Cutover{})
	if len(fs3) != 1 || fs3[0].ID == fs[0].ID {
		t.Fatalf("second raise %+v reuses the first id %s", fs3, fs[0].ID)
	}
}

func TestChargebackInTheCustomersCurrency(t *testing.T) {
	o := ver{status: domain.OrderPaid, at: 1, paid: 1}.order() // 100.00 USD
	o.CustomerTotal = domain.Money{Minor: 9000, Currency: "EUR"}
	d := dispute("D1", 4500, domain.ChargebackOpen, 5, 0)
	d.Chargebacks[0].Amount = domain.Money{Minor: 4500, Currency: "EUR"}
	m := MergeOrder(&o, d)
	if m.ChargedBack != usd(5000) {
		t.Fatalf("45.00 EUR of a 90.00 EUR (100.00 USD) order counts %v, want 50.00 USD", m.ChargedBack)
	}
	if u := UncountableChargebacks(m); len(u) != 0 {
		t.Errorf("uncountable %v", u)
	}
	// MergeOrder's results share slices with its arguments: a new report is a new value.
	d2 := dispute("D2", 100, domain.ChargebackOpen, 6, 0)
	d2.Chargebacks[0].Amount = domain.Money{Minor: 100, Currency: "GBP"}
	m = MergeOrder(&m, d2)
	if m.ChargedBack != usd(5000) {
		t.Errorf("a GBP dispute changed the standing amount: %v", m.ChargedBack)
	}
	if u := UncountableChargebacks(m); len(u) != 1 || u[0].ID != "D2" {
		t.Errorf("uncountable %v, want D2", u)
	}
}

func TestShipmentsAndDelivery(t *testing.T) {
	paid := ver{status: domain.OrderPaid, at: 1, paid: 1}.order()
	shipped := ver{status: domain.OrderShipped, at: 2, paid: 1}.order()
	shipped.ShippedAt = mins(2)
	tracked := ver{status: domain.OrderShipped, at: 3, paid: 1, tracking: []string{"T1"}}.order()
	out := shipped
	out.SourceUpdatedAt, out.OutForDeliveryAt = mins(4), mins(4)
	delivered := shipped
	delivered.SourceUpdatedAt, delivered.DeliveredAt = mins(5), mins(5)
	type step = orderStep
	cases := []struct {
		name  string
		steps []step
	}{
		{"shipped without tracking, tracking later, then out for delivery and delivered", []step{
			{paid, []string{"placed"}},
			{shipped, []string{"shipped untracked"}},
			{tracked, []string{"shipped T1"}},
			{out, []string{string(domain.FactOrderOutForDelivery)}},
			{delivered, []string{string(domain.FactOrderDelivered)}},
			{delivered, nil},
			{shipped, nil},
		}},
		{"tracking known when it ships: no untracked shipment", []step{
			{paid, []string{"placed"}},
			{tracked, []string{"shipped T1"}},
			{shipped, nil},
		}},
		{"delivery reported first: one of each at once", []step{
			{delivered, []string{"placed", "shipped untracked", string(domain.FactOrderDelivered)}},
			{paid, nil},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			play(t, c.steps, func(_ int, _ domain.Order, fs []domain.Fact) {
				for _, f := range fs {
					if f.Kind == domain.FactOrderDelivered && !f.OccurredAt.Equal(mins(5)) {
						t.Errorf("delivered at %v, want %v", f.OccurredAt, mins(5))
					}
				}
			})
		})
	}
}
