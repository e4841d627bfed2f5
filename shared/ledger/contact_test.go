package ledger

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// ord builds a stored order of the test contact.
func ord(key string, status domain.OrderStatus, paidMin int, total, refunded int64, mods ...func(*domain.Order)) domain.Order {
	o := domain.Order{Key: key, Email: "ann@example.com", Status: status, Currency: "USD",
		CreatedAt: mins(paidMin - 1), Total: usd(total), Refunded: usd(refunded)}
	if status != domain.OrderPending {
		o.PaidAt = mins(paidMin)
	}
	for _, m := range mods {
		m(&o)
	}
	return o
}

func TestAggregateRevenue(t *testing.T) {
	test := func(o *domain.Order) { o.Test = true }
	eur := func(o *domain.Order) {
		o.Currency, o.Total, o.Refunded = "EUR", domain.Money{Minor: o.Total.Minor, Currency: "EUR"}, domain.Money{}
	}
	noCurrencyOnAmounts := func(o *domain.Order) {
		o.Total.Currency, o.Refunded = "", domain.Money{Minor: o.Refunded.Minor}
	}
	cases := []struct {
		name       string
		orders     []domain.Order
		gross, ref int64
		count      int
		aov        int64
		first      int
		last       int
		currency   string
	}{
		{
			name:   "no orders",
			orders: nil,
		},
		{
			name: "only paid and shipped orders count; refunds net out",
			orders: []domain.Order{
				ord("uc:1", domain.OrderPaid, 10, 10000, 2500),
				ord("uc:2", domain.OrderShipped, 20, 5000, 0),
				ord("uc:3", domain.OrderPending, 30, 7000, 0),
				ord("uc:4", domain.OrderRejected, 40, 9000, 0),
				ord("uc:5", domain.OrderDeleted, 50, 9000, 0),
				ord("uc:6", domain.OrderPaid, 5, 100000, 0, test),
			},
			gross: 15000, ref: 2500, count: 2, aov: 7500, first: 10, last: 20, currency: "USD",
		},
		{
			name: "a fully refunded order still counts as a purchase",
			orders: []domain.Order{
				ord("uc:1", domain.OrderPaid, 10, 10000, 10000),
			},
			gross: 10000, ref: 10000, count: 1, aov: 10000, first: 10, last: 10, currency: "USD",
		},
		{
			name: "thrivecart rebills are orders of their own",
			orders: []domain.Order{
				ord(domain.OrderKey(domain.ThriveCart, "77", ""), domain.OrderPaid, 10, 2900, 0),
				ord(domain.OrderKey(domain.ThriveCart, "77", "000000077-2"), domain.OrderPaid, 40, 2900, 0, func(o *domain.Order) { o.Rebill = true }),
				ord(domain.OrderKey(domain.ThriveCart, "77", "000000077-3"), domain.OrderPaid, 70, 2900, 0, func(o *domain.Order) { o.Rebill = true }),
			},
			gross: 8700, count: 3, aov: 2900, first: 10, last: 70, currency: "USD",
		},
		{
			name: "AOV rounds half to even",
			orders: []domain.Order{
				ord("uc:1", domain.OrderPaid, 10, 1, 0),
				ord("uc:2", domain.OrderPaid, 20, 4, 0),
			},
			gross: 5, count: 2, aov: 2, first: 10, last: 20, currency: "USD", // 2.5 cents → 2
		},
		{
			name: "orders in another currency than the first stay out of the sums",
			orders: []domain.Order{
				ord("tc:2", domain.OrderPaid, 20, 5000, 0, eur),
				ord("tc:1", domain.OrderPaid, 10, 3000, 1000),
				ord("tc:3", domain.OrderPaid, 30, 2000, 0),
			},
			gross: 5000, ref: 1000, count: 2, aov: 2500, first: 10, last: 30, currency: "USD",
		},
		{
			name: "amounts without a currency take the order's",
			orders: []domain.Order{
				ord("uc:1", domain.OrderPaid, 10, 1000, 100, noCurrencyOnAmounts),
				ord("uc:2", domain.OrderPaid, 20, 1000, 0),
			},
			gross: 2000, ref: 100, count: 2, aov: 1000, first: 10, last: 20, currency: "USD",
		},
		{
			name: "an order that would overflow the sums is left out",
			orders: []domain.Order{
				ord("uc:1", domain.OrderPaid, 10, math.MaxInt64-10, 0),
				ord("uc:2", domain.OrderPaid, 20, 1000, 0),
				ord("uc:3", domain.OrderPaid, 30, 5, 0),
			},
			gross: math.MaxInt64 - 5, count: 2, aov: (math.MaxInt64 - 5) / 2, first: 10, last: 30, currency: "USD",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Aggregate(domain.Contact{Account: acct, Email: "ann@example.com"}, c.orders, nil)
			m := func(v int64) domain.Money {
				if c.currency == "" {
					return domain.Money{}
				}
				return domain.Money{Minor: v, Currency: c.currency}
			}
			if got.GrossRevenue != m(c.gross) || got.Refunded != m(c.ref) || got.LTV != m(c.gross-c.ref) ||
				got.PurchaseCount != c.count || got.AOV != m(c.aov) {
				t.Errorf("gross %v refunded %v ltv %v count %d aov %v", got.GrossRevenue, got.Refunded, got.LTV, got.PurchaseCount, got.AOV)
			}
			if c.count > 0 && (!got.FirstPurchaseAt.Equal(mins(c.first)) || !got.LastPurchaseAt.Equal(mins(c.last))) {
				t.Errorf("first %v last %v", got.FirstPurchaseAt, got.LastPurchaseAt)
			}
			if got.Account != acct || got.Email != "ann@example.com" {
				t.Error("identity lost")
			}
			// The arguments' order never matters.
			rev := append([]domain.Order(nil), c.orders...)
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			if again := Aggregate(domain.Contact{Account: acct, Email: "ann@example.com"}, rev, nil); !reflect.DeepEqual(again, got) {
				t.Errorf("depends on the order of orders:\n%+v\n%+v", again, got)
			}
		})
	}
}

func TestAggregateRecomputesFromScratch(t *testing.T) {
	stale := domain.Contact{Email: "ann@example.com", LTV: usd(999999), PurchaseCount: 42, FirstName: "Old",
		Subscriptions:  map[string]domain.SubscriptionStatus{"gone": domain.SubActive},
		DestinationIDs: map[string]string{"ontraport": "7"}, PreviousEmails: []string{"a@x.com"}}
	got := Aggregate(stale, []domain.Order{ord("uc:1", domain.OrderPaid, 1, 500, 0)}, nil)
	if got.LTV != usd(500) || got.PurchaseCount != 1 || got.FirstName != "" || got.Subscriptions != nil {
		t.Errorf("stale aggregates survived: %+v", got)
	}
	if got.DestinationIDs["ontraport"] != "7" || len(got.PreviousEmails) != 1 {
		t.Error("bookkeeping fields were dropped")
	}
}

func TestAggregateTouches(t *testing.T) {
	u := func(src string) domain.UTM { return domain.UTM{Source: src, Medium: "cpc"} }
	utms := func(us ...domain.UTM) func(*domain.Order) { return func(o *domain.Order) { o.UTMs = us } }
	orders := []domain.Order{
		ord("uc:0", domain.OrderPaid, 5, 100, 0),                                            // no UTMs
		ord("uc:1", domain.OrderPaid, 10, 100, 0, utms(domain.UTM{}, u("fb"), u("google"))), // empty first entry skipped
		ord("uc:2", domain.OrderPaid, 20, 100, 0, utms(u("email"), u("iterable"), domain.UTM{})),
		ord("uc:3", domain.OrderPending, 30, 100, 0, utms(u("pending"))), // not a purchase
		ord("uc:4", domain.OrderPaid, 40, 100, 0, utms(u("t"), u("t2")), func(o *domain.Order) { o.Test = true }),
		ord("uc:5", domain.OrderPaid, 50, 100, 0),
	}
	got := Aggregate(domain.Contact{}, orders, nil)
	if got.FirstTouch == nil || got.FirstTouch.Source != "fb" || got.LastTouch == nil || got.LastTouch.Source != "iterable" {
		t.Errorf("first %+v last %+v", got.FirstTouch, got.LastTouch)
	}
	if none := Aggregate(domain.Contact{}, orders[:1], nil); none.FirstTouch != nil || none.LastTouch != nil {
		t.Error("touches without UTMs")
	}
}

func TestAggregateProfileFields(t *testing.T) {
	withProfile := func(first, phone, city string, optIn *bool) func(*domain.Order) {
		return func(o *domain.Order) {
			o.Billing = domain.Address{FirstName: first, LastName: "Example", City: city}
			if first == "" {
				o.Billing.LastName = ""
			}
			o.Phone, o.EmailOptIn = phone, optIn
		}
	}
	orders := []domain.Order{
		ord("uc:1", domain.OrderPaid, 10, 100, 0, withProfile("Ann", "+15550001", "Springfield", ptr(true))),
		ord("uc:2", domain.OrderPending, 20, 100, 0, withProfile("Annie", "", "", nil)), // pending still says who it is
		ord("uc:3", domain.OrderRejected, 30, 100, 0, withProfile("Fraud", "+19990000", "Nowhere", ptr(false))),
		ord("uc:4", domain.OrderPaid, 40, 100, 0, withProfile("Test", "+18880000", "Lab", ptr(false)), func(o *domain.Order) { o.Test = true }),
	}
	got := Aggregate(domain.Contact{}, orders, nil)
	// uc:2's billing names the buyer but has no postal address: the name is the latest, the
	// address stays the one uc:1 gave (a later order without an address must not erase it).
	if got.FirstName != "Annie" || got.LastName != "Example" || got.Phone != "+15550001" || got.Address != orders[0].Billing {
		t.Errorf("profile from orders: %q %q %q %+v", got.FirstName, got.LastName, got.Phone, got.Address)
	}
	if got.EmailOptIn == nil || !*got.EmailOptIn {
		t.Errorf("opt-in %v, want the latest order that says (uc:1)", got.EmailOptIn)
	}

	cu := domain.Customer{Source: domain.UltraCart, CustomerID: "98765", Email: "ann@example.com",
		FirstName: "Ann", LastName: "Customer", EmailOptIn: ptr(false)}
	// Customer first or orders first: the same contact.
	a := Aggregate(ApplyCustomer(domain.Contact{}, cu), orders, nil)
	b := ApplyCustomer(Aggregate(domain.Contact{}, orders, nil), cu)
	b = Aggregate(b, orders, nil)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("customer and order order matters:\n%+v\n%+v", a, b)
	}
	if a.FirstName != "Ann" || a.LastName != "Customer" || a.Phone != "+15550001" || *a.EmailOptIn {
		t.Errorf("customer profile first, orders where it is silent: %+v", a)
	}
	if !reflect.DeepEqual(a.CustomerIDs, []string{"ultracart:98765"}) {
		t.Errorf("customer ids %v", a.CustomerIDs)
	}
	// A deleted profile hands the fields back to the orders.
	del := Aggregate(ApplyCustomer(a, domain.Customer{Source: domain.UltraCart, CustomerID: "98765", Deleted: true}), orders, nil)
	if del.FirstName != "Annie" || del.CustomerProfile != nil || len(del.CustomerIDs) != 1 {
		t.Errorf("after deletion: %+v", del)
	}
}

func TestApplyCustomer(t *testing.T) {
	c := domain.Contact{Email: "ann@example.com", FirstName: "Ann", Phone: "+15550001",
		CustomerIDs: []string{"ultracart:2"}}
	cu := domain.Customer{Source: domain.UltraCart, CustomerID: "1", Email: "ann@example.com",
		LastName: "Smith", SMSOptIn: ptr(true), Address: domain.Address{City: "Springfield"}}
	got := ApplyCustomer(c, cu)
	if got.FirstName != "Ann" || got.LastName != "" || !reflect.DeepEqual(got.CustomerProfile, &cu) {
		t.Errorf("ApplyCustomer records the profile and leaves the fields to Aggregate: %+v", got)
	}
	orders := []domain.Order{ord("uc:1", domain.OrderPaid, 1, 100, 0, func(o *domain.Order) {
		o.Billing.FirstName, o.Phone = "Ann", "+15550001"
	})}
	agg := Aggregate(got, orders, nil)
	if agg.FirstName != "" || agg.LastName != "Smith" || agg.Phone != "+15550001" || agg.Address.City != "Springfield" ||
		agg.SMSOptIn == nil || !*agg.SMSOptIn {
		t.Errorf("fields: %+v", agg)
	}
	// The change is visible to ContactFacts the way ingest calls it: the recorded contact
	// against the aggregated one.
	if fs := ContactFacts(acct, got, agg, mins(2), Cutover{}); len(fs) != 1 {
		t.Error("a customer profile change produced no ContactChanged")
	}
	if !reflect.DeepEqual(got.CustomerIDs, []string{"ultracart:1", "ultracart:2"}) {
		t.Errorf("ids %v", got.CustomerIDs)
	}
	if !reflect.DeepEqual(c.CustomerIDs, []string{"ultracart:2"}) {
		t.Error("ApplyCustomer changed its argument's ids")
	}
	again := ApplyCustomer(got, domain.Customer{Source: domain.UltraCart, CustomerID: "1"})
	if len(again.CustomerIDs) != 2 {
		t.Errorf("ids %v", again.CustomerIDs)
	}
	if fresh := ApplyCustomer(domain.Contact{}, domain.Customer{Email: "x@example.com"}); fresh.Email != "x@example.com" {
		t.Error("a new contact takes the customer's email")
	}
}

func TestAggregateSubscriptions(t *testing.T) {
	subs := []domain.Subscription{
		{Key: "thrivecart:1", Status: domain.SubPaused},
		{Key: "thrivecart:2", Status: domain.SubCancelled},
		{Key: "", Status: domain.SubActive},
	}
	got := Aggregate(domain.Contact{}, nil, subs)
	want := map[string]domain.SubscriptionStatus{"thrivecart:1": domain.SubPaused, "thrivecart:2": domain.SubCancelled}
	if !reflect.DeepEqual(got.Subscriptions, want) || !HasActiveSubscription(got) {
		t.Errorf("subscriptions %v", got.Subscriptions)
	}
}

func TestContactFacts(t *testing.T) {
	base := Aggregate(domain.Contact{Account: acct, Email: "ann@example.com"},
		[]domain.Order{ord("uc:1", domain.OrderPaid, 1, 500, 0)}, nil)
	optOut := base
	optOut.EmailOptIn = ptr(false)
	optIn := base
	optIn.EmailOptIn = ptr(true)
	internal := base
	internal.DestinationIDs = map[string]string{"iterable": "x"}
	internal.CustomerIDs = []string{"ultracart:1"}

	if fs := ContactFacts(acct, base, base, mins(5), Cutover{}); fs != nil {
		t.Errorf("unchanged profile: %q", describe(fs))
	}
	if fs := ContactFacts(acct, base, internal, mins(5), Cutover{}); fs != nil {
		t.Errorf("only bookkeeping changed: %q", describe(fs))
	}
	first := ContactFacts(acct, optIn, optOut, mins(5), Cutover{})
	back := ContactFacts(acct, optOut, optIn, mins(6), Cutover{})
	again := ContactFacts(acct, optIn, optOut, mins(7), Cutover{})
	retry := ContactFacts(acct, optIn, optOut, mins(5), Cutover{})
	if len(first) != 1 || len(back) != 1 || len(again) != 1 {
		t.Fatal("a visible change must produce ContactChanged")
	}
	f := first[0]
	if f.Kind != domain.FactContactChanged || f.Email != "ann@example.com" || f.Contact == nil ||
		f.Contact.EmailOptIn == nil || *f.Contact.EmailOptIn || !f.OccurredAt.Equal(mins(5)) {
		t.Errorf("fact %+v", f)
	}
	if first[0].ID == again[0].ID {
		t.Error("opting out a second time reused the id of the first and would be dropped")
	}
	if first[0].ID != retry[0].ID {
		t.Error("a retry of the same event must produce the same id")
	}
	if len(f.ID) > domain.MaxFactIDLen {
		t.Errorf("id too long: %s", f.ID)
	}
	if h := ContactFacts(acct, optIn, optOut, mins(5), Cutover{ForwardSince: mins(6)}); !h[0].Historical {
		t.Error("a change from a source event before forward_since is historical")
	}
}

func TestEmailChangeFacts(t *testing.T) {
	c := domain.Contact{Email: "new@example.com"}
	fs := EmailChangeFacts(acct, "old@example.com", "new@example.com", c, mins(3))
	if len(fs) != 1 {
		t.Fatal(describe(fs))
	}
	f := fs[0]
	if f.ID != "acct1:EmailChanged:old@example.com:new@example.com" || f.Kind != domain.FactEmailChanged ||
		f.Email != "new@example.com" || f.OldEmail != "old@example.com" || f.Contact.Email != "new@example.com" ||
		!f.OccurredAt.Equal(mins(3)) {
		t.Errorf("fact %+v", f)
	}
	for _, pair := range [][2]string{{"a@x.com", "a@x.com"}, {"", "a@x.com"}, {"a@x.com", ""}} {
		if fs := EmailChangeFacts(acct, pair[0], pair[1], c, mins(3)); fs != nil {
			t.Errorf("%q → %q: %q", pair[0], pair[1], describe(fs))
		}
	}
}

// TestAggregateShuffled: any order of the arguments gives the same contact.
func TestAggregateShuffled(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		sc := genScenario(r)
		var orders []domain.Order
		for _, evs := range sc.orderEvents {
			var s *domain.Order
			for _, e := range evs {
				m := MergeOrder(s, *e.Order)
				s = &m
			}
			orders = append(orders, *s)
		}
		want := Aggregate(domain.Contact{Email: sc.email}, orders, nil)
		r.Shuffle(len(orders), func(i, j int) { orders[i], orders[j] = orders[j], orders[i] })
		if got := Aggregate(domain.Contact{Email: sc.email}, orders, nil); !reflect.DeepEqual(got, want) {
			t.Fatalf("shuffled orders changed the contact:\n%+v\n%+v", got, want)
		}
	}
}

// TestShipToAddress: the contact's ship-to is the latest order's that names one (an order shipped
// nowhere, a digital one, leaves it), and the customer profile's default shipping address wins.
func TestShipToAddress(t *testing.T) {
	ship := func(city string) domain.Address {
		return domain.Address{FirstName: "Bo", Address1: "1 " + city + " Rd", City: city, PostalCode: "1000", CountryCode: "US"}
	}
	o1, o2, o3 := ver{status: domain.OrderPaid, at: 1, paid: 1}.order(), ver{status: domain.OrderPaid, at: 2, paid: 2}.order(), ver{status: domain.OrderPaid, at: 3, paid: 3}.order()
	o1.Key, o2.Key, o3.Key = "ultracart:O1", "ultracart:O2", "ultracart:O3"
	o1.ShipTo, o2.ShipTo = ship("Portland"), ship("Salem")
	o3.ShipTo = domain.Address{FirstName: "Bo"} // a digital order: a name, no place
	c := Aggregate(domain.Contact{Account: acct, Email: "ann@example.com"}, []domain.Order{o3, o2, o1}, nil)
	if c.ShipTo.City != "Salem" {
		t.Fatalf("ship-to %+v, want the latest order's that names a place (Salem)", c.ShipTo)
	}
	withProfile := ApplyCustomer(c, domain.Customer{Source: domain.UltraCart, CustomerID: "7", Email: "ann@example.com", ShipTo: ship("Eugene")})
	if got := Aggregate(withProfile, []domain.Order{o1, o2, o3}, nil).ShipTo.City; got != "Eugene" {
		t.Fatalf("ship-to city %q, want the customer profile's default shipping address (Eugene)", got)
	}
	if ProfileHash(c) == ProfileHash(Aggregate(domain.Contact{Account: acct, Email: "ann@example.com"}, []domain.Order{o1}, nil)) {
		t.Fatal("a new ship-to address does not change what destinations see")
	}
}

// TestAggregateNextRebill: the profile's next rebill is the soonest charge of the active
// subscriptions, and moving it is a change destinations see.
func TestAggregateNextRebill(t *testing.T) {
	subs := []domain.Subscription{
		{Key: "ultracart:1", Status: domain.SubActive, NextAttempt: mins(3000)},
		{Key: "ultracart:2", Status: domain.SubActive, NextAttempt: mins(2000)},
		{Key: "ultracart:3", Status: domain.SubPaused, NextAttempt: mins(1000)},
		{Key: "ultracart:4", Status: domain.SubActive},
	}
	c := Aggregate(domain.Contact{Account: acct, Email: "ann@example.com"}, nil, subs)
	if !c.NextRebillAt.Equal(mins(2000)) {
		t.Errorf("next rebill %v, want the soonest active one, %v", c.NextRebillAt, mins(2000))
	}
	subs[1].NextAttempt = mins(4000)
	moved := Aggregate(c, nil, subs)
	if !moved.NextRebillAt.Equal(mins(3000)) {
		t.Errorf("next rebill %v after the move, want %v", moved.NextRebillAt, mins(3000))
	}
	if fs := ContactFacts(acct, c, moved, mins(5), Cutover{}); len(fs) != 1 || fs[0].Kind != domain.FactContactChanged {
		t.Errorf("a moved rebill must update the profile: %q", describe(fs))
	}
	subs[0].Status, subs[1].Status = domain.SubCancelled, domain.SubCancelled
	if none := Aggregate(moved, nil, subs); !none.NextRebillAt.IsZero() {
		t.Errorf("no active subscription is scheduled, yet next rebill %v", none.NextRebillAt)
	}
}
