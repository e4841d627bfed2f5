package ledger

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// This file checks the ledger's central promise: whatever the order in which a contact's source
// events arrive, and however often each is delivered, the stored state ends the same and the
// facts sent count every sale, refund and shipment exactly once.

// scenario is one contact's history: for each order and subscription, its events in the order
// they happened, and maybe one customer profile event.
type scenario struct {
	email       string
	orderEvents [][]domain.Event
	subEvents   [][]domain.Event
	customer    *domain.Event
	cut         Cutover
	// untimed is true when some order's source sends no update time (see checkFacts).
	untimed bool
}

func (sc scenario) events() []domain.Event {
	var all []domain.Event
	for _, evs := range sc.orderEvents {
		all = append(all, evs...)
	}
	for _, evs := range sc.subEvents {
		all = append(all, evs...)
	}
	if sc.customer != nil {
		all = append(all, *sc.customer)
	}
	slices.SortStableFunc(all, func(a, b domain.Event) int { return a.OccurredAt.Compare(b.OccurredAt) })
	return all
}

func minutes(r *rand.Rand, lo, hi int) time.Duration {
	return time.Duration(lo+r.IntN(hi-lo+1)) * time.Minute
}

func genScenario(r *rand.Rand) scenario {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(minutes(r, 0, 60*24*365))
	sc := scenario{email: "ann@example.com"}
	// Sometimes the cutover falls in the middle of the history, so facts of both kinds occur.
	if r.IntN(2) == 0 {
		sc.cut = Cutover{ForwardSince: start.Add(minutes(r, 0, 60*24*20))}
	}
	var tcOrders []string
	for i := range 1 + r.IntN(5) {
		src, id, invoice, rebill := domain.UltraCart, fmt.Sprintf("UC-%d", i), "", false
		if r.IntN(2) == 0 {
			src, id = domain.ThriveCart, fmt.Sprintf("%d", 1000+i)
			if len(tcOrders) > 0 && r.IntN(2) == 0 {
				// A rebill: the same ThriveCart order id, told apart by the invoice id.
				id, invoice, rebill = tcOrders[r.IntN(len(tcOrders))], fmt.Sprintf("inv-%d", i), true
			} else {
				tcOrders = append(tcOrders, id)
			}
		}
		evs := genOrder(r, src, id, invoice, rebill, sc.email, start.Add(minutes(r, 0, 60*24*30)))
		sc.orderEvents = append(sc.orderEvents, evs)
		sc.untimed = sc.untimed || evs[0].Order.SourceUpdatedAt.IsZero()
	}
	for i := range r.IntN(3) {
		sc.subEvents = append(sc.subEvents, genSub(r, fmt.Sprintf("S%d", i), sc.email, start.Add(minutes(r, 0, 60*24*30))))
	}
	if r.IntN(3) == 0 {
		cu := domain.Customer{Source: domain.UltraCart, CustomerID: "C1", Email: sc.email, FirstName: "Ann",
			LastName: "Customer", EmailOptIn: ptr(r.IntN(2) == 0)}
		sc.customer = &domain.Event{Kind: domain.KindCustomer, Name: "customer_update",
			OccurredAt: start.Add(minutes(r, 0, 60*24*30)), Customer: &cu}
	}
	return sc
}

// genOrder plays one order's life: created, then rejected or never paid or paid; a paid order
// gets refunds with a growing cumulative amount, chargebacks that are raised and then lost, won
// or deleted, shipments with new tracking numbers or none, and deliveries, in any interleaving,
// and is sometimes rejected or deleted at the end. Each event carries the whole order as it
// stood, as the sources send it; a chargeback report carries its dispute and, as UltraCart's
// does when the order is expanded, sometimes the order too.
func genOrder(r *rand.Rand, src domain.Source, id, invoice string, rebill bool, email string, t time.Time) []domain.Event {
	total := int64(500 + r.IntN(20000))
	st := domain.Order{
		Key: domain.OrderKey(src, id, invoice), Source: src, OrderID: id, InvoiceID: invoice, Rebill: rebill,
		Email: email, Status: domain.OrderPending, Test: r.IntN(8) == 0, Currency: "USD",
		Subtotal: usd(total), Total: usd(total), CreatedAt: t,
		Items:   []domain.LineItem{{SKU: "SKU-" + id, Quantity: 1, UnitPrice: usd(total), Total: usd(total)}},
		Billing: domain.Address{FirstName: "Ann", LastName: "Example", City: "City " + id},
		Phone:   fmt.Sprintf("+1555%07d", r.IntN(1e7)),
	}
	if r.IntN(2) == 0 {
		st.UTMs = []domain.UTM{{Source: "fb-" + id, Medium: "cpc"}, {Source: "email-" + id, Medium: "email"}}
	}
	if r.IntN(3) == 0 {
		st.EmailOptIn = ptr(r.IntN(2) == 0)
	}
	noUpdateTime := r.IntN(8) == 0 // a source that sends no update time: every merge is a tie
	var evs []domain.Event
	emit := func(name string) {
		v := st
		v.Stage = name
		v.SourceUpdatedAt = t
		if noUpdateTime {
			v.SourceUpdatedAt = time.Time{}
		}
		v.Tracking = slices.Clone(st.Tracking)
		evs = append(evs, domain.Event{Source: src, Name: name, Kind: domain.KindOrder, OccurredAt: t, Order: &v})
		if src == domain.UltraCart && r.IntN(6) == 0 {
			// The same moment without the summary expansion: amounts unknown.
			p := v
			p.Partial, p.Stage = true, name+"-nosummary"
			p.Subtotal, p.Total, p.Refunded = domain.Money{Currency: "USD"}, domain.Money{Currency: "USD"}, domain.Money{Currency: "USD"}
			evs = append(evs, domain.Event{Source: src, Name: p.Stage, Kind: domain.KindOrder, OccurredAt: t, Order: &p})
		}
		if r.IntN(6) == 0 {
			// Another event in the same second with other contents (say, a stage-change
			// notification beside the payment one).
			twin := v
			twin.Stage = name + "-twin"
			evs = append(evs, domain.Event{Source: src, Name: twin.Stage, Kind: domain.KindOrder, OccurredAt: t, Order: &twin})
		}
	}
	emit("created")
	switch r.IntN(10) {
	case 0:
		t = t.Add(minutes(r, 1, 600))
		st.Status = domain.OrderRejected
		emit("rejected")
		return evs
	case 1:
		return evs // never paid
	}
	t = t.Add(minutes(r, 1, 60))
	st.Status, st.PaidAt = domain.OrderPaid, t
	emit("paid")

	var refunded int64
	var actions []string
	for range r.IntN(4) {
		actions = append(actions, "refund")
	}
	for range r.IntN(3) {
		actions = append(actions, "ship")
	}
	if src == domain.UltraCart {
		for range r.IntN(3) {
			actions = append(actions, "chargeback")
		}
		if r.IntN(3) == 0 {
			actions = append(actions, "out_for_delivery", "delivered")
		}
	}
	r.Shuffle(len(actions), func(i, j int) { actions[i], actions[j] = actions[j], actions[i] })
	var disputes []domain.ChargebackLine
	// dispute reports one dispute as it now stands.
	dispute := func(l domain.ChargebackLine) {
		for i := range disputes {
			if disputes[i].ID == l.ID {
				disputes[i] = l
			}
		}
		if r.IntN(2) == 0 {
			// The event carries the order as it stands.
			st.Chargebacks = slices.Clone(disputes)
			emit("chargeback_" + string(l.Status))
			return
		}
		p := domain.Order{Key: st.Key, Source: src, OrderID: id, Partial: true, Currency: "USD",
			Chargebacks: []domain.ChargebackLine{l}}
		evs = append(evs, domain.Event{Source: src, Name: "chargeback_" + string(l.Status), Kind: domain.KindOrder, OccurredAt: t, Order: &p})
	}
	for n, a := range actions {
		t = t.Add(minutes(r, 1, 60*24*5))
		switch a {
		case "chargeback":
			l := domain.ChargebackLine{ID: fmt.Sprintf("%s-D%d", id, n), Amount: usd(1 + r.Int64N(total+total/4)),
				Status: domain.ChargebackOpen, At: t, Reason: "fraud " + id}
			disputes = append(disputes, l)
			dispute(l)
			if r.IntN(3) != 0 {
				// Decided later: lost, won, or the record deleted.
				t = t.Add(minutes(r, 1, 60*24*20))
				l.Status = []domain.ChargebackStatus{domain.ChargebackLost, domain.ChargebackWon, domain.ChargebackDeleted}[r.IntN(3)]
				if !l.Status.Stands() {
					l.ResolvedAt = t
				}
				dispute(l)
			}
			continue
		case "out_for_delivery":
			st.Status = domain.OrderShipped
			if st.OutForDeliveryAt.IsZero() {
				st.OutForDeliveryAt = t
			}
		case "delivered":
			st.Status = domain.OrderShipped
			if st.DeliveredAt.IsZero() {
				st.DeliveredAt = t
			}
		case "refund":
			left := total - refunded
			if left == 0 {
				continue
			}
			step := 1 + r.Int64N(left)
			if r.IntN(4) == 0 {
				step = left // a full refund
			}
			if src == domain.ThriveCart {
				// ThriveCart reports each refund on its own, in a partial version; its later
				// complete versions do not carry refunds.
				refunded += step
				line := domain.RefundLine{ID: fmt.Sprintf("ref-%d", n), Amount: usd(step), At: t, Reason: "reason " + id}
				p := domain.Order{Key: st.Key, Source: src, OrderID: id, InvoiceID: invoice, Email: email, Partial: true,
					Status: st.Status, SourceUpdatedAt: t, Refunds: []domain.RefundLine{line}, Refunded: usd(step), RefundedAt: t}
				evs = append(evs, domain.Event{Source: src, Name: "order.refund", Kind: domain.KindOrder, OccurredAt: t, Order: &p})
				continue
			}
			refunded += step
			st.Refunded, st.RefundedAt = usd(refunded), t
		case "ship":
			st.Status = domain.OrderShipped
			if st.ShippedAt.IsZero() {
				st.ShippedAt = t
			}
			if r.IntN(3) != 0 {
				st.Tracking = append(slices.Clone(st.Tracking), domain.Tracking{Number: fmt.Sprintf("%s-T%d", id+invoice, n), Carrier: "UPS"})
			} // else a shipment without a tracking number
		}
		if r.IntN(4) == 0 {
			st.Billing.City = fmt.Sprintf("City %s moved %d", id, n) // contents change too
		}
		emit(a)
	}
	if r.IntN(10) == 0 {
		t = t.Add(minutes(r, 1, 600))
		st.Status = []domain.OrderStatus{domain.OrderRejected, domain.OrderDeleted}[r.IntN(2)]
		emit("ended")
	}
	return evs
}

// genSub plays a subscription's status changes; some share an instant with the previous one.
func genSub(r *rand.Rand, id, email string, t time.Time) []domain.Event {
	statuses := []domain.SubscriptionStatus{domain.SubActive, domain.SubPaused, domain.SubPaymentFailed, domain.SubCancelled}
	s := domain.Subscription{Source: domain.ThriveCart, ID: id, Key: domain.SubscriptionKey(domain.ThriveCart, id),
		Email: email, Amount: usd(2900), Frequency: "month", Status: domain.SubActive, StatusAt: t}
	var evs []domain.Event
	emit := func() {
		v := s
		evs = append(evs, domain.Event{Source: domain.ThriveCart, Name: "subscription_" + string(v.Status),
			Kind: domain.KindSubscription, OccurredAt: v.StatusAt, Sub: &v})
	}
	emit()
	for range r.IntN(4) {
		if r.IntN(6) != 0 {
			t = t.Add(minutes(r, 1, 60*24*40))
		}
		s.Status, s.StatusAt = statuses[r.IntN(len(statuses))], t
		if r.IntN(3) == 0 {
			s.Amount = usd(2900 + int64(r.IntN(3))*1000)
		}
		emit()
	}
	return evs
}

// memStore applies events the way the ingest handler does: merge the record, derive its facts,
// recompute the contact from all its records, derive the contact's facts.
type memStore struct {
	t       *testing.T
	r       *rand.Rand
	cut     Cutover
	orders  map[string]domain.Order
	subs    map[string]domain.Subscription
	contact domain.Contact
	facts   []domain.Fact
}

func newMemStore(t *testing.T, r *rand.Rand, sc scenario) *memStore {
	return &memStore{t: t, r: r, cut: sc.cut, orders: map[string]domain.Order{}, subs: map[string]domain.Subscription{},
		contact: domain.Contact{Account: acct, Email: sc.email}}
}

func (s *memStore) apply(ev domain.Event) {
	var facts []domain.Fact
	switch ev.Kind {
	case domain.KindOrder:
		var before *domain.Order
		if o, ok := s.orders[ev.Order.Key]; ok {
			before = &o
		}
		after := MergeOrder(before, *ev.Order)
		if before != nil {
			checkOrderForward(s.t, *before, after)
		}
		facts = OrderFacts(acct, before, after, s.cut)
		s.orders[after.Key] = after
	case domain.KindSubscription:
		var before *domain.Subscription
		if x, ok := s.subs[ev.Sub.Key]; ok {
			before = &x
		}
		after := MergeSubscription(before, *ev.Sub)
		if before != nil && len(after.History) < len(before.History) {
			s.t.Fatalf("subscription %s lost history", after.Key)
		}
		facts = SubscriptionFacts(acct, before, after, s.cut)
		s.subs[after.Key] = after
	case domain.KindCustomer:
		s.contact = ApplyCustomer(s.contact, *ev.Customer)
	}
	// The records in an arbitrary order: Aggregate must not care.
	var orders []domain.Order
	for _, o := range s.orders {
		orders = append(orders, o)
	}
	slices.SortFunc(orders, func(a, b domain.Order) int { return cmpString(a.Key, b.Key) })
	s.r.Shuffle(len(orders), func(i, j int) { orders[i], orders[j] = orders[j], orders[i] })
	var subs []domain.Subscription
	for _, x := range s.subs {
		subs = append(subs, x)
	}
	slices.SortFunc(subs, func(a, b domain.Subscription) int { return cmpString(a.Key, b.Key) })
	after := Aggregate(s.contact, orders, subs)
	facts = append(facts, ContactFacts(acct, s.contact, after, ev.OccurredAt, s.cut)...)
	s.contact = after
	s.facts = append(s.facts, facts...)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkOrderForward: an order's state never moves backwards.
func checkOrderForward(t *testing.T, before, after domain.Order) {
	t.Helper()
	if after.Refunded.Minor < before.Refunded.Minor {
		t.Fatalf("%s: refunded went from %v to %v", after.Key, before.Refunded, after.Refunded)
	}
	if statusRank(after.Status) < statusRank(before.Status) {
		t.Fatalf("%s: status went from %s to %s", after.Key, before.Status, after.Status)
	}
	if before.Test && !after.Test {
		t.Fatalf("%s: test flag cleared", after.Key)
	}
	for _, tr := range before.Tracking {
		if !hasTracking(after.Tracking, tr.Number) {
			t.Fatalf("%s: tracking %s lost", after.Key, tr.Number)
		}
	}
	if !before.PaidAt.IsZero() && (after.PaidAt.IsZero() || after.PaidAt.After(before.PaidAt)) {
		t.Fatalf("%s: paid at went from %v to %v", after.Key, before.PaidAt, after.PaidAt)
	}
}

// permute returns the events shuffled, some delivered two or three times.
func permute(r *rand.Rand, evs []domain.Event) []domain.Event {
	out := slices.Clone(evs)
	for _, e := range evs {
		for r.IntN(3) == 0 {
			out = append(out, e)
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func TestPropertyAnyArrivalOrderConverges(t *testing.T) {
	scenarios, perms := 200, 20
	if testing.Short() {
		scenarios, perms = 40, 8
	}
	for seed := range uint64(scenarios) {
		r := rand.New(rand.NewPCG(seed, 0x5eed))
		sc := genScenario(r)
		ref := newMemStore(t, r, sc)
		for _, e := range sc.events() {
			ref.apply(e)
		}
		checkFacts(t, seed, "in order", sc, ref)
		for p := range perms {
			s := newMemStore(t, r, sc)
			for _, e := range permute(r, sc.events()) {
				s.apply(e)
			}
			where := fmt.Sprintf("permutation %d", p)
			if !reflect.DeepEqual(s.orders, ref.orders) {
				t.Fatalf("seed %d %s: stored orders differ from the in-order run\n%+v\n%+v", seed, where, s.orders, ref.orders)
			}
			if !reflect.DeepEqual(s.subs, ref.subs) {
				t.Fatalf("seed %d %s: stored subscriptions differ\n%+v\n%+v", seed, where, s.subs, ref.subs)
			}
			if !reflect.DeepEqual(s.contact, ref.contact) {
				t.Fatalf("seed %d %s: contact differs\n%+v\n%+v", seed, where, s.contact, ref.contact)
			}
			checkFacts(t, seed, where, sc, s)
		}
	}
}

// checkFacts holds one run's facts to what the final state says happened.
func checkFacts(t *testing.T, seed uint64, where string, sc scenario, s *memStore) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d %s: %s", seed, where, fmt.Sprintf(format, args...))
	}
	seen := map[string]bool{}
	placed := map[string]int{}
	refunded := map[string]domain.Money{}
	shipped := map[string][]string{}
	untracked := map[string]int{}
	charged := map[string]int64{}
	reversed := map[string]int{}
	delivered := map[string]int{}
	outForDelivery := map[string]int{}
	lastSub := map[string]domain.SubscriptionStatus{}
	var lastContact *domain.Contact
	for _, f := range s.facts {
		if seen[f.ID] {
			// The one known exception: versions of an order that tie on SourceUpdatedAt are
			// ranked by content, so the profile projected from them can go A→B, B→A and A→B
			// again; when the two A→B come from events of the same second they get one id (see
			// ContactFacts). Sources that send update times never get here.
			if f.Kind != domain.FactContactChanged || !sc.untimed {
				fail("fact id %s sent twice", f.ID)
			}
		}
		seen[f.ID] = true
		if len(f.ID) > domain.MaxFactIDLen {
			fail("fact id too long: %s", f.ID)
		}
		if f.Account != acct {
			fail("fact %s without the account", f.ID)
		}
		if f.Order != nil && reversed[f.Order.Key] > 0 {
			fail("%s: %s after the order was reversed", f.Order.Key, f.Kind)
		}
		switch f.Kind {
		case domain.FactOrderPlaced:
			placed[f.Order.Key]++
		case domain.FactOrderChargedBack:
			k := f.Order.Key
			if placed[k] != 1 || f.Chargeback.Delta.Minor == 0 {
				fail("%s: chargeback %+v (placed %d)", k, f.Chargeback, placed[k])
			}
			charged[k] += f.Chargeback.Delta.Minor
			if charged[k] != f.Chargeback.Standing.Minor || charged[k] < 0 {
				fail("%s: chargeback deltas so far add up to %d but the fact says %v stands", k, charged[k], f.Chargeback.Standing)
			}
		case domain.FactOrderReversed:
			k := f.Order.Key
			reversed[k]++
			want := f.Order.Total.Minor - refunded[k].Minor - charged[k]
			if placed[k] != 1 || f.Reversal.Net.Minor != want {
				fail("%s: reversal %+v (placed %d), want net %d", k, f.Reversal, placed[k], want)
			}
		case domain.FactOrderDelivered:
			delivered[f.Order.Key]++
		case domain.FactOrderOutForDelivery:
			outForDelivery[f.Order.Key]++
		case domain.FactOrderRefunded:
			sum, err := refunded[f.Order.Key].Add(f.Refund.Delta)
			if err != nil || f.Refund.Delta.Minor <= 0 {
				fail("refund delta %v: %v", f.Refund.Delta, err)
			}
			if sum != f.Refund.Cumulative {
				fail("%s: deltas so far add up to %v but the fact says cumulative %v", f.Order.Key, sum, f.Refund.Cumulative)
			}
			refunded[f.Order.Key] = sum
			if placed[f.Order.Key] != 1 {
				fail("%s refunded before it was placed", f.Order.Key)
			}
		case domain.FactOrderShipped:
			if len(f.Tracking) == 0 {
				untracked[f.Order.Key]++
				break
			}
			shipped[f.Order.Key] = append(shipped[f.Order.Key], f.Tracking[0].Number)
		case domain.FactSubscriptionChanged:
			if f.FromStatus != lastSub[f.Sub.Key] {
				fail("%s: changed from %q but destinations last heard %q", f.Sub.Key, f.FromStatus, lastSub[f.Sub.Key])
			}
			lastSub[f.Sub.Key] = f.Sub.Status
		case domain.FactContactChanged:
			lastContact = f.Contact
		}
		if f.Historical != s.cut.Historical(f.OccurredAt) {
			fail("%s: historical %v at %v with forward_since %v", f.ID, f.Historical, f.OccurredAt, s.cut.ForwardSince)
		}
	}
	for key, o := range s.orders {
		everPaid := false
		for _, evs := range sc.orderEvents {
			for _, e := range evs {
				if e.Order.Key == key && Placed(*e.Order) {
					everPaid = true
				}
			}
		}
		switch {
		case Placed(o):
			if placed[key] != 1 {
				fail("%s is placed but OrderPlaced was sent %d times", key, placed[key])
			}
			if refunded[key].Minor != o.Refunded.Minor {
				fail("%s: refund deltas add up to %v, the order's refunded is %v", key, refunded[key], o.Refunded)
			}
			var numbers []string
			for _, tr := range o.Tracking {
				numbers = append(numbers, tr.Number)
			}
			got := slices.Sorted(slices.Values(shipped[key]))
			if !slices.Equal(got, numbers) {
				fail("%s: shipped facts for %v, tracking is %v", key, got, numbers)
			}
			// A shipment without a number is sent once when it is all destinations know of.
			if untracked[key] > 1 || (o.Status == domain.OrderShipped && len(numbers) == 0 && untracked[key] != 1) {
				fail("%s: %d untracked shipments (status %s, tracking %v)", key, untracked[key], o.Status, numbers)
			}
			if charged[key] != o.ChargedBack.Minor {
				fail("%s: chargeback deltas add up to %d, the order's standing chargebacks are %v", key, charged[key], o.ChargedBack)
			}
			if d := boolInt(!o.DeliveredAt.IsZero()); delivered[key] != d {
				fail("%s: %d OrderDelivered, delivered at %v", key, delivered[key], o.DeliveredAt)
			}
			if d := boolInt(!o.OutForDeliveryAt.IsZero()); outForDelivery[key] != d {
				fail("%s: %d OrderOutForDelivery, out for delivery at %v", key, outForDelivery[key], o.OutForDeliveryAt)
			}
			if reversed[key] != 0 {
				fail("%s is placed but was reversed", key)
			}
		case !everPaid: // test orders are never placed either
			if placed[key] != 0 || refunded[key].Minor != 0 || len(shipped[key]) != 0 || charged[key] != 0 || reversed[key] != 0 {
				fail("%s (test %v, status %s) produced order facts", key, o.Test, o.Status)
			}
		default: // paid, then rejected, deleted or marked a test: placed at most once, depending
			// on arrival, and if placed, reversed exactly once
			if placed[key] > 1 || reversed[key] != placed[key] {
				fail("%s placed %d times, reversed %d times", key, placed[key], reversed[key])
			}
		}
	}
	for key, x := range s.subs {
		if lastSub[key] != x.Status {
			fail("%s: destinations last heard %q, the status is %q", key, lastSub[key], x.Status)
		}
	}
	heard := ProfileHash(domain.Contact{Account: acct, Email: sc.email}) // the profile before any event
	if lastContact != nil {
		heard = ProfileHash(*lastContact)
	}
	if heard != ProfileHash(s.contact) {
		fail("destinations do not hold the final profile")
	}
	// The contact's revenue against a plain recount of the final orders.
	var gross, ref, cb int64
	count := 0
	for _, o := range s.orders {
		if Placed(o) {
			gross += o.Total.Minor
			ref += o.Refunded.Minor
			cb += o.ChargedBack.Minor
			count++
		}
	}
	c := s.contact
	if c.GrossRevenue.Minor != gross || c.Refunded.Minor != ref || c.ChargedBack.Minor != cb || c.LTV.Minor != gross-ref-cb ||
		c.PurchaseCount != count {
		fail("contact revenue gross %v refunded %v charged back %v ltv %v count %d; recount %d %d %d %d", c.GrossRevenue,
			c.Refunded, c.ChargedBack, c.LTV, c.PurchaseCount, gross, ref, cb, count)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestMergeOrderIsAJoin checks the algebra directly on random versions of one order.
func TestMergeOrderIsAJoin(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for range 2000 {
		evs := genOrder(r, domain.UltraCart, "X", "", false, "ann@example.com", t0)
		pick := func() domain.Order { return *evs[r.IntN(len(evs))].Order }
		a, b, c := pick(), pick(), pick()
		na := MergeOrder(nil, a)
		if got := MergeOrder(&na, a); !reflect.DeepEqual(got, na) {
			t.Fatalf("not idempotent:\n%+v\n%+v", got, na)
		}
		ab, ba := MergeOrder(&a, b), MergeOrder(&b, a)
		if !reflect.DeepEqual(ab, ba) {
			t.Fatalf("not commutative:\n%+v\n%+v", ab, ba)
		}
		bc := MergeOrder(&b, c)
		left, right := MergeOrder(&ab, c), MergeOrder(&a, bc)
		if !reflect.DeepEqual(left, right) {
			t.Fatalf("not associative:\n%+v\n%+v", left, right)
		}
	}
}

// TestMergeSubscriptionIsAJoin does the same for subscriptions.
func TestMergeSubscriptionIsAJoin(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	for range 2000 {
		evs := genSub(r, "S", "ann@example.com", t0)
		pick := func() domain.Subscription { return *evs[r.IntN(len(evs))].Sub }
		a, b, c := pick(), pick(), pick()
		na := MergeSubscription(nil, a)
		if got := MergeSubscription(&na, a); !reflect.DeepEqual(got, na) {
			t.Fatalf("not idempotent:\n%+v\n%+v", got, na)
		}
		ab, ba := MergeSubscription(&a, b), MergeSubscription(&b, a)
		if !reflect.DeepEqual(ab, ba) {
			t.Fatalf("not commutative:\n%+v\n%+v", ab, ba)
		}
		bc := MergeSubscription(&b, c)
		if left, right := MergeSubscription(&ab, c), MergeSubscription(&a, bc); !reflect.DeepEqual(left, right) {
			t.Fatalf("not associative:\n%+v\n%+v", left, right)
		}
	}
}
