package rollup

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

func usd(minor int64) domain.Money { return domain.Money{Minor: minor, Currency: "USD"} }

func ny(t *testing.T) Calendar {
	t.Helper()
	c, err := NewCalendar("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCalendarLocalDays(t *testing.T) {
	cal := ny(t)
	for _, tc := range []struct {
		utc  string
		want string
	}{
		{"2025-03-09T04:59:59Z", "2025-03-08"}, // 23:59:59 EST
		{"2025-03-09T05:00:00Z", "2025-03-09"}, // midnight EST; this day has 23 hours
		{"2025-03-10T03:59:59Z", "2025-03-09"}, // 23:59:59 EDT
		{"2025-03-10T04:00:00Z", "2025-03-10"},
		{"2025-11-02T04:00:00Z", "2025-11-02"}, // midnight EDT; this day has 25 hours
		{"2025-11-03T04:59:59Z", "2025-11-02"}, // 23:59:59 EST
		{"2025-11-03T05:00:00Z", "2025-11-03"},
		{"2025-04-01T03:30:00Z", "2025-03-31"}, // April in UTC, still March locally
		{"2026-01-01T04:59:00Z", "2025-12-31"}, // and the year too
	} {
		at, _ := time.Parse(time.RFC3339, tc.utc)
		if got := cal.Day(at).String(); got != tc.want {
			t.Errorf("%s is local %s, want %s", tc.utc, got, tc.want)
		}
	}
	d := DateOf(2025, 3, 9)
	if got := cal.Start(d.AddDays(1)).Sub(cal.Start(d)); got != 23*time.Hour {
		t.Errorf("2025-03-09 lasts %v in New York", got)
	}
	d = DateOf(2025, 11, 2)
	if got := cal.Start(d.AddDays(1)).Sub(cal.Start(d)); got != 25*time.Hour {
		t.Errorf("2025-11-02 lasts %v in New York", got)
	}
	if ws := DateOf(2025, 3, 9).WeekStart(); ws != DateOf(2025, 3, 3) {
		t.Errorf("the week of Sunday 2025-03-09 starts %s, want Monday 2025-03-03", ws)
	}
	if m := DateOf(2025, 3, 31).Month(); m.String() != "2025-03" || m.First() != DateOf(2025, 3, 1) || m.Last() != DateOf(2025, 3, 31) {
		t.Errorf("month %s %s %s", m, m.First(), m.Last())
	}
	if _, err := NewCalendar("Mars/Olympus"); err == nil {
		t.Error("an unknown zone gave a calendar")
	}
}

func TestParsePeriodAndMRR(t *testing.T) {
	for _, tc := range []struct {
		freq   string
		amount int64
		mrr    int64
		known  bool
	}{
		{"Monthly", 2999, 2999, true},
		{"month", 2999, 2999, true},
		{"Every 2 Months", 5000, 2500, true},
		{"Quarterly", 9000, 3000, true},
		{"Yearly", 12000, 1000, true},
		{"Every 6 Months", 6001, 1000, true}, // 1000.1666 rounds to 1000
		{"Weekly", 700, 3000, true},
		{"Every 2 Weeks", 1400, 3000, true},
		{"Every 45 Days", 4500, 3000, true},
		{"Every 10 Days", 1, 3, true},
		{"Daily", 100, 3000, true},
		{"biweekly", 1400, 3000, true},
		{"Every 3 Years", 36000, 1000, true},
		{"when I feel like it", 5000, 0, false},
		{"", 5000, 0, false},
		{"Every 0 Days", 5000, 0, false},
	} {
		p := ParsePeriod(tc.freq)
		if p.Known() != tc.known {
			t.Errorf("%q known = %v", tc.freq, p.Known())
		}
		if got := MRR(usd(tc.amount), p); got != tc.mrr {
			t.Errorf("%q of %d: MRR %d, want %d", tc.freq, tc.amount, got, tc.mrr)
		}
	}
	// Half to even: 1 every 4 months is 0.25, 2 every 4 months is 0.5 → 0, 6 → 1.5 → 2.
	if got := MRR(usd(2), Period{Months: 4}); got != 0 {
		t.Errorf("0.5 rounds to %d", got)
	}
	if got := MRR(usd(6), Period{Months: 4}); got != 2 {
		t.Errorf("1.5 rounds to %d", got)
	}
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestSubEvents(t *testing.T) {
	ch := func(s domain.SubscriptionStatus, when string) domain.StatusChange {
		return domain.StatusChange{Status: s, At: at(when)}
	}
	for _, tc := range []struct {
		name string
		hist []domain.StatusChange
		orig string
		want string
	}{
		{"active then cancelled", []domain.StatusChange{ch("active", "2025-01-01T00:00:00Z"), ch("cancelled", "2025-03-01T00:00:00Z")}, "", "s c"},
		{"paused counts as active", []domain.StatusChange{ch("active", "2025-01-01T00:00:00Z"), ch("paused", "2025-02-01T00:00:00Z"), ch("active", "2025-02-10T00:00:00Z")}, "", "s p u"},
		{"cancelled while paused", []domain.StatusChange{ch("paused", "2025-01-01T00:00:00Z"), ch("cancelled", "2025-02-01T00:00:00Z")}, "", "s p u c"},
		{"reactivated", []domain.StatusChange{ch("active", "2025-01-01T00:00:00Z"), ch("cancelled", "2025-02-01T00:00:00Z"), ch("active", "2025-03-01T00:00:00Z")}, "", "s c r"},
		{"upgrade", []domain.StatusChange{ch("active", "2025-01-01T00:00:00Z"), ch("merged", "2025-02-01T00:00:00Z")}, "", "s m"},
		{"known only as cancelled", []domain.StatusChange{ch("cancelled", "2025-02-01T00:00:00Z")}, "", "s c"},
		{"known only as cancelled, started by its order", []domain.StatusChange{ch("cancelled", "2025-02-01T00:00:00Z")}, "2024-06-01T00:00:00Z", "s c"},
		{"payment failed is still active", []domain.StatusChange{ch("active", "2025-01-01T00:00:00Z"), ch("payment_failed", "2025-02-01T00:00:00Z"), ch("disabled", "2025-03-01T00:00:00Z")}, "", "s c"},
		{"ended twice", []domain.StatusChange{ch("active", "2025-01-01T00:00:00Z"), ch("cancelled", "2025-02-01T00:00:00Z"), ch("disabled", "2025-03-01T00:00:00Z")}, "", "s c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var orig time.Time
			if tc.orig != "" {
				orig = at(tc.orig)
			}
			evs := SubEvents(&domain.Subscription{History: tc.hist}, orig)
			got := ""
			for i, e := range evs {
				if i > 0 {
					got += " "
				}
				got += string(e.What)
			}
			if got != tc.want {
				t.Fatalf("events %q, want %q", got, tc.want)
			}
			if tc.orig != "" && !evs[0].At.Equal(at(tc.orig)) {
				t.Fatalf("started %v, want the original order's time", evs[0].At)
			}
		})
	}
}

func TestCashRefunds(t *testing.T) {
	// ThriveCart: each refund line on its day.
	o := domain.Order{PaidAt: at("2025-01-05T12:00:00Z"), Total: usd(10000), Refunded: usd(3000), RefundedAt: at("2025-03-01T12:00:00Z"),
		Refunds: []domain.RefundLine{{ID: "1", Amount: usd(1000), At: at("2025-02-01T12:00:00Z"), SKU: "A"}, {ID: "2", Amount: usd(2000), At: at("2025-03-01T12:00:00Z")}}}
	got := CashRefunds(&o)
	if len(got) != 2 || got[0].Amount != 1000 || !got[0].At.Equal(at("2025-02-01T12:00:00Z")) || got[1].Amount != 2000 {
		t.Fatalf("refund lines: %+v", got)
	}
	if pr := ProductRefunds(&o); len(pr) != 1 || pr[0].SKU != "A" || pr[0].Amount != 1000 {
		t.Fatalf("product refunds: %+v", pr)
	}
	// UltraCart: a running total, all of it on the last refund day.
	o = domain.Order{PaidAt: at("2025-01-05T12:00:00Z"), Total: usd(10000), Refunded: usd(3000), RefundedAt: at("2025-03-01T12:00:00Z"),
		Items: []domain.LineItem{{SKU: "A", Quantity: 2, Total: usd(8000), Refunded: usd(2500), QtyRefunded: 1}}}
	got = CashRefunds(&o)
	if len(got) != 1 || got[0].Amount != 3000 || !got[0].At.Equal(o.RefundedAt) {
		t.Fatalf("running total: %+v", got)
	}
	if pr := ProductRefunds(&o); len(pr) != 1 || pr[0].Amount != 2500 || pr[0].Units != 1 {
		t.Fatalf("product refunds: %+v", pr)
	}
	if got := CashRefunds(&domain.Order{Total: usd(100)}); len(got) != 0 {
		t.Fatalf("no refund: %+v", got)
	}
}

func TestContributeCountsOneCustomer(t *testing.T) {
	cal := ny(t)
	first := domain.Order{Key: "ultracart:1", Source: "ultracart", OrderID: "1", Status: domain.OrderPaid, Currency: "USD",
		PaidAt: at("2025-03-10T03:30:00Z"), Total: usd(10001), Refunded: usd(1000), RefundedAt: at("2025-04-02T15:00:00Z"),
		Items: []domain.LineItem{{SKU: "TEA", Quantity: 2, Total: usd(9000)}},
		UTMs:  []domain.UTM{{Source: "Google", Medium: "cpc", Campaign: "spring", At: at("2025-03-01T10:00:00Z")}}}
	second := domain.Order{Key: "ultracart:2", Source: "ultracart", OrderID: "2", Status: domain.OrderShipped, Currency: "USD",
		PaidAt: at("2025-04-01T02:00:00Z"), Total: usd(5000), UTMs: []domain.UTM{{Source: "newsletter", Medium: "email"}}}
	test := domain.Order{Key: "ultracart:3", Source: "ultracart", OrderID: "3", Status: domain.OrderPaid, Test: true, Currency: "USD",
		PaidAt: at("2025-03-12T12:00:00Z"), Total: usd(100)}
	d := NewDelta()
	Contribute(cal, Contact{Email: "jane@example.com", Orders: []domain.Order{second, test, first}}, d)
	d = d.WithoutShards()

	google := Touch{"google", "cpc", "spring"}
	seg1 := Segment{"ultracart", "USD", google, google}
	seg2 := Segment{"ultracart", "USD", google, Touch{"newsletter", "email", None}}
	day := func(s string) ItemKey {
		dd, _ := ParseDate(s)
		return ItemKey{Part: PartDay, Period: int32(dd)}
	}
	want := map[string]int64{}
	put := func(k ItemKey, c Cell, m string, v int64) {
		want[fmt.Sprintf("%c %s %q %s", k.Part, k.PeriodString(), c, m)] += v
	}
	// The first order was paid at 23:30 on 2025-03-09 in New York (a 23-hour day).
	k := day("2025-03-09")
	for m, v := range map[string]int64{MOrders: 1, MGross: 10001, MGrossFirstHalf: 5001, MRefunds: 1000, MRefundsFirstHalf: 500,
		MNew: 1, MNewGross: 10001, MNewRefunds: 1000, MCustomersDay: 1, MCustomersWeek: 1, MCustomersMonth: 1} {
		put(k, OrderCell(seg1), m, v)
	}
	for m, v := range map[string]int64{MOrders: 1, MUnits: 2, MGross: 9000} {
		put(k, ProductCell(seg1, "TEA"), m, v)
	}
	// Its refund on 2025-04-02, the cash view.
	put(day("2025-04-02"), RefundCell(seg1), MRefunds, 1000)
	put(day("2025-04-02"), RefundCell(seg1), MRefundedOrders, 1)
	// The second, paid 2025-04-01 02:00 UTC, is still March 31 in New York: same month, new week.
	k = day("2025-03-31")
	for m, v := range map[string]int64{MOrders: 1, MGross: 5000, MGrossFirstHalf: 2500, MCustomersDay: 1, MCustomersWeek: 1} {
		put(k, OrderCell(seg2), m, v)
	}
	// The test order is left out, and counted as such.
	put(day("2025-03-12"), ExcludedCell(Segment{"ultracart", "USD", google, NoTouch}, "test"), MOrders, 1)
	put(day("2025-03-12"), ExcludedCell(Segment{"ultracart", "USD", google, NoTouch}, "test"), MGross, 100)
	// Months hold the order, refund and excluded cells of their days: March has both orders
	// and the test order, April the refund.
	mar := ItemKey{Part: PartMonth, Period: int32(MonthOf(2025, 3))}
	// (in the measures the revenue report reads by month).
	for m, v := range map[string]int64{MOrders: 1, MGross: 10001, MRefunds: 1000, MNew: 1, MNewGross: 10001, MCustomersMonth: 1} {
		put(mar, OrderCell(seg1), m, v)
	}
	for m, v := range map[string]int64{MOrders: 1, MGross: 5000} {
		put(mar, OrderCell(seg2), m, v)
	}
	put(mar, ExcludedCell(Segment{"ultracart", "USD", google, NoTouch}, "test"), MOrders, 1)
	put(mar, ExcludedCell(Segment{"ultracart", "USD", google, NoTouch}, "test"), MGross, 100)
	apr := ItemKey{Part: PartMonth, Period: int32(MonthOf(2025, 4))}
	put(apr, RefundCell(seg1), MRefunds, 1000)
	// Cohort March 2025: one customer, 9001 + 5000 net in month 0. First seen on its first touch
	// (2025-03-01): time to purchase 8 days, and the lead cohort is March too.
	ck := CohortKey{"ultracart", "USD", google}
	c := ItemKey{Part: PartCohort, Period: int32(MonthOf(2025, 3))}
	put(c, CohortCell(ck), MCustomers, 1)
	put(c, CohortCell(ck), NetAfter(0), 14001)
	ac := AcquisitionCell(ck, 9)
	for m, v := range map[string]int64{MAcqNew: 1, MAcqGross: 10001, MAcqRefunds: 1000, MAcqToDate: 14001, MAcqDaysSum: 8, MAcqDaysMon: 1} {
		put(c, ac, m, v)
	}
	put(c, LeadCell(ck), MCustomers, 1)
	put(c, LeadCell(ck), NetAfter(0), 14001)
	put(c, LeadCell(CohortKey{"ultracart", None, google}), MLeads, 1)

	got := map[string]int64{}
	d.Each(func(k ItemKey, c Cell, m string, v int64) {
		got[fmt.Sprintf("%c %s %q %s", k.Part, k.PeriodString(), c, m)] += v
	})
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s = %d", k, v)
		}
	}
}

// negated adds what it receives, negated, to another sink.
type negated struct{ Sink }

func (n negated) Add(k ItemKey, c Cell, m string, v int64) { n.Sink.Add(k, c, m, -v) }

// TestDiffIsTheDifference checks the shortcut ingest takes (only orders whose inputs or context
// changed are computed again) against the full difference, over random contacts and changes.
func TestDiffIsTheDifference(t *testing.T) {
	cal := ny(t)
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 2000 {
		before := randomContact(rng)
		after := mutate(rng, before)
		full := NewDelta()
		Contribute(cal, after, full)
		Contribute(cal, before, negated{full})
		diff := NewDelta()
		Diff(cal, before, after, diff)
		if ds := Compare(full, diff); len(ds) > 0 {
			t.Fatalf("case %d: Diff differs from the full difference in %d counters, first %+v\nbefore %+v\nafter %+v", i, len(ds), ds[0], before, after)
		}
		// No change, no contribution.
		same := NewDelta()
		Diff(cal, after, after, same)
		if !same.Empty() {
			t.Fatalf("case %d: an unchanged contact contributes", i)
		}
	}
}

// TestMonthsAreTheirDays: a month item holds its days' order, refund and excluded cells summed,
// in the measures MonthMeasure keeps, and nothing else, over random contacts.
func TestMonthsAreTheirDays(t *testing.T) {
	cal := ny(t)
	rng := rand.New(rand.NewPCG(3, 5))
	all := NewDelta()
	for range 300 {
		Contribute(cal, randomContact(rng), all)
	}
	all = all.WithoutShards()
	want, got := NewDelta(), NewDelta()
	months := 0
	all.Each(func(k ItemKey, c Cell, m string, v int64) {
		switch k.Part {
		case PartDay:
			if MonthMeasure(c.Kind(), m) {
				want.Add(ItemKey{Part: PartMonth, Period: int32(Date(k.Period).Month())}, c, m, v)
			}
		case PartMonth:
			months++
			got.Add(k, c, m, v)
		}
	})
	if months < 100 {
		t.Fatalf("only %d month counters", months)
	}
	if ds := Compare(want, got); len(ds) > 0 {
		t.Fatalf("%d month counters differ from their days', first %+v", len(ds), ds[0])
	}
}

var base = at("2025-02-20T00:00:00Z")

func randomOrder(rng *rand.Rand, key string) domain.Order {
	statuses := []domain.OrderStatus{domain.OrderPaid, domain.OrderPaid, domain.OrderShipped, domain.OrderPending, domain.OrderRejected, domain.OrderDeleted}
	o := domain.Order{Key: "ultracart:" + key, Source: domain.UltraCart, OrderID: key, Status: statuses[rng.IntN(len(statuses))],
		Currency: "USD", Test: rng.IntN(10) == 0, Partial: rng.IntN(20) == 0,
		PaidAt: base.Add(time.Duration(rng.IntN(24*300)) * time.Hour), Total: usd(int64(100 + rng.IntN(20000)))}
	if rng.IntN(3) == 0 {
		o.Refunded = usd(int64(rng.IntN(int(o.Total.Minor))))
		o.RefundedAt = o.PaidAt.Add(time.Duration(rng.IntN(24*90)) * time.Hour)
	}
	if rng.IntN(8) == 0 {
		o.ChargedBack = usd(int64(1 + rng.IntN(int(o.Total.Minor))))
		o.ChargedBackAt = o.PaidAt.Add(time.Duration(rng.IntN(24*60)) * time.Hour)
	}
	for range rng.IntN(3) {
		o.Items = append(o.Items, domain.LineItem{SKU: []string{"A", "B", "C"}[rng.IntN(3)], Quantity: int64(1 + rng.IntN(3)), Total: usd(int64(rng.IntN(5000)))})
	}
	for range rng.IntN(3) {
		u := domain.UTM{Source: []string{"google", "Facebook", "newsletter"}[rng.IntN(3)], Medium: []string{"cpc", "", "email"}[rng.IntN(3)]}
		if rng.IntN(2) == 0 {
			u.At = o.PaidAt.Add(-time.Duration(rng.IntN(24*60)) * time.Hour)
		}
		o.UTMs = append(o.UTMs, u)
	}
	if rng.IntN(4) == 0 {
		o.SubscriptionID = []string{"S1", "S2"}[rng.IntN(2)]
		o.Rebill = rng.IntN(2) == 0
	}
	return o
}

func randomSub(rng *rand.Rand, id string) domain.Subscription {
	s := domain.Subscription{Key: "ultracart:" + id, Source: domain.UltraCart, ID: id, Amount: usd(int64(rng.IntN(9000))),
		Frequency: []string{"Monthly", "Every 2 Weeks", "weird", "Yearly"}[rng.IntN(4)], Products: []string{"A"}}
	t := base.Add(time.Duration(rng.IntN(24*200)) * time.Hour)
	statuses := []domain.SubscriptionStatus{"active", "paused", "payment_failed", "cancelled", "merged", "disabled"}
	for range 1 + rng.IntN(4) {
		s.History = append(s.History, domain.StatusChange{Status: statuses[rng.IntN(len(statuses))], At: t})
		t = t.Add(time.Duration(1+rng.IntN(24*40)) * time.Hour)
	}
	s.Status, s.StatusAt = s.History[len(s.History)-1].Status, s.History[len(s.History)-1].At
	return s
}

func randomContact(rng *rand.Rand) Contact {
	c := Contact{Email: fmt.Sprintf("c%d@example.com", rng.IntN(5))}
	for i := range rng.IntN(6) {
		c.Orders = append(c.Orders, randomOrder(rng, fmt.Sprint(i)))
	}
	for i := range rng.IntN(3) {
		c.Subs = append(c.Subs, randomSub(rng, fmt.Sprintf("S%d", i+1)))
	}
	if rng.IntN(3) == 0 {
		c.View = &View{At: base.Add(time.Duration(rng.IntN(24*200)) * time.Hour), Source: "google.com"}
	}
	return c
}

// mutate changes a copy of c the way events do: a new order (maybe older than all others), a
// grown refund, a status change, an order leaving, a subscription change, a first page view.
func mutate(rng *rand.Rand, c Contact) Contact {
	out := Contact{Email: c.Email, View: c.View}
	out.Orders = append([]domain.Order(nil), c.Orders...)
	out.Subs = append([]domain.Subscription(nil), c.Subs...)
	for range 1 + rng.IntN(2) {
		switch rng.IntN(6) {
		case 0:
			o := randomOrder(rng, fmt.Sprint(10+rng.IntN(5)))
			if rng.IntN(2) == 0 {
				o.PaidAt = base.Add(-time.Duration(rng.IntN(24*400)) * time.Hour) // a backfilled old order
			}
			out.Orders = append(out.Orders, o)
		case 1:
			if len(out.Orders) > 0 {
				i := rng.IntN(len(out.Orders))
				o := out.Orders[i]
				o.Refunded = usd(o.Refunded.Minor + int64(rng.IntN(500)))
				o.RefundedAt = o.PaidAt.Add(time.Duration(rng.IntN(24*100)) * time.Hour)
				out.Orders[i] = o
			}
		case 2:
			if len(out.Orders) > 0 {
				i := rng.IntN(len(out.Orders))
				o := out.Orders[i]
				o.Status = []domain.OrderStatus{domain.OrderShipped, domain.OrderRejected, domain.OrderDeleted}[rng.IntN(3)]
				out.Orders[i] = o
			}
		case 3:
			if len(out.Orders) > 0 {
				i := rng.IntN(len(out.Orders))
				out.Orders = append(out.Orders[:i:i], out.Orders[i+1:]...)
			}
		case 4:
			out.Subs = append(out.Subs, randomSub(rng, fmt.Sprintf("S%d", 1+rng.IntN(3))))
			seen := map[string]int{}
			var subs []domain.Subscription
			for _, s := range out.Subs {
				if j, ok := seen[s.Key]; ok {
					subs[j] = s
					continue
				}
				seen[s.Key] = len(subs)
				subs = append(subs, s)
			}
			out.Subs = subs
		case 5:
			out.View = &View{At: base.Add(-time.Duration(rng.IntN(24*100)) * time.Hour), Source: "(direct)"}
		}
	}
	// Keys stay unique, as in a contact's partition.
	seen := map[string]int{}
	var orders []domain.Order
	for _, o := range out.Orders {
		if j, ok := seen[o.Key]; ok {
			orders[j] = o
			continue
		}
		seen[o.Key] = len(orders)
		orders = append(orders, o)
	}
	out.Orders = orders
	return out
}
