package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/ledger"
	"github.com/cartrelay/cartrelay/shared/phone"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/store"
)

// errCrash is what a store call returns once the process it serves has died.
var errCrash = errors.New("injected crash: the process died")

// crashingStore dies at a random point: after a countdown of calls, one call fails, either
// before its write or after it (the process died before hearing the answer), and every call
// after it fails too, until the test starts a new process (restart).
type crashingStore struct {
	store.Store
	mu      sync.Mutex
	r       *rand.Rand
	left    int
	dead    bool
	crashes int
	// commits, when positive, lets that many transactions through and crashes on the next.
	commits int
}

func (s *crashingStore) restart(maxCalls int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dead, s.left = false, 1+s.r.IntN(maxCalls)
}

// call reports whether the call may run, and whether its write is applied before it fails.
func (s *crashingStore) call() (ok, applyThenFail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead {
		return false, false
	}
	if s.left--; s.left > 0 {
		return true, false
	}
	s.dead = true
	s.crashes++
	return false, s.r.IntN(2) == 0
}

func (s *crashingStore) Get(ctx context.Context, pk, sk string) (store.Item, error) {
	if ok, _ := s.call(); !ok {
		return store.Item{}, errCrash
	}
	return s.Store.Get(ctx, pk, sk)
}

func (s *crashingStore) Query(ctx context.Context, q store.Query) (store.Page, error) {
	if ok, _ := s.call(); !ok {
		return store.Page{}, errCrash
	}
	return s.Store.Query(ctx, q)
}

func (s *crashingStore) Write(ctx context.Context, w store.Write) error {
	ok, apply := s.call()
	if apply {
		_ = s.Store.Write(ctx, w)
	}
	if !ok {
		return errCrash
	}
	return s.Store.Write(ctx, w)
}

func (s *crashingStore) Transact(ctx context.Context, ws []store.Write) error {
	s.mu.Lock()
	if s.commits < 0 {
		s.dead = true
	}
	if s.commits > 0 {
		if s.commits--; s.commits == 0 {
			s.commits = -1 // this one lands; the next dies
		}
	}
	s.mu.Unlock()
	ok, apply := s.call()
	if apply {
		_ = s.Store.Transact(ctx, ws)
	}
	if !ok {
		return errCrash
	}
	return s.Store.Transact(ctx, ws)
}

const (
	oldEmail = "marcus.reyes@example.com"
	newEmail = "marcus@reyes-design.example.com"
)

// seedLongTimeCustomer stores a contact with 300 orders, 6 subscriptions, the 300 OrderPlaced
// facts of its log (3 of them not sent yet) and 60 deliveries, and the customer profile id the
// email change arrives on: more than one transaction can move.
func seedLongTimeCustomer(t *testing.T, h *harness) []domain.Order {
	t.Helper()
	ctx := context.Background()
	repo := history.New(h.env.Store)
	var orders []domain.Order
	var facts []domain.Fact
	for i := range 300 {
		id := fmt.Sprintf("LT-%04d", i)
		total := domain.Money{Minor: int64(1000 + i*7), Currency: "USD"}
		paid := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 24 * time.Hour)
		o := domain.Order{Key: domain.OrderKey(domain.UltraCart, id, ""), Source: domain.UltraCart, OrderID: id, Email: oldEmail,
			Status: domain.OrderPaid, Currency: "USD", PaidAt: paid, CreatedAt: paid, SourceUpdatedAt: paid, Total: total,
			Subtotal: total, CustomerTotal: total, CustomerID: "600134",
			Items: []domain.LineItem{{SKU: "TEA", Quantity: 1, UnitPrice: total, Total: total}}}
		o = ledger.MergeOrder(nil, o)
		orders = append(orders, o)
		facts = append(facts, ledger.OrderFacts("acme", nil, o, ledger.Cutover{})...)
	}
	var subs []domain.Subscription
	for i := range 6 {
		s := domain.Subscription{Key: domain.SubscriptionKey(domain.UltraCart, fmt.Sprintf("AO-%d", i)), Source: domain.UltraCart,
			ID: fmt.Sprintf("AO-%d", i), Email: oldEmail, Status: domain.SubActive, StatusAt: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)}
		subs = append(subs, ledger.MergeSubscription(nil, s))
	}
	st, err := repo.LoadContact(ctx, "acme", oldEmail)
	if err != nil {
		t.Fatal(err)
	}
	commit := func(w *history.Writes) {
		t.Helper()
		if err := repo.Commit(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < len(orders); i += 40 {
		w := &history.Writes{}
		for _, o := range orders[i:min(i+40, len(orders))] {
			w.PutOrder(st, o)
		}
		commit(w)
	}
	w := &history.Writes{}
	for _, s := range subs {
		w.PutSub(st, s)
	}
	w.PutCustomer("acme", "ultracart", "600134", oldEmail)
	w.PutProfile(st, ledger.Aggregate(domain.Contact{Account: "acme", Email: oldEmail}, orders, subs))
	commit(w)
	var sent []string
	for i := 0; i < len(facts); i += 45 {
		w := &history.Writes{}
		w.AddFacts(st, facts[i:min(i+45, len(facts))])
		commit(w)
	}
	for _, f := range facts[3:] {
		sent = append(sent, f.ID)
	}
	if err := repo.ClearOutbox(ctx, "acme", oldEmail, sent); err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		f := facts[i]
		d := history.Delivery{Account: "acme", Email: oldEmail, Dest: iterableName, FactID: f.ID, FactKind: string(f.Kind),
			At: h.clk.Now().Add(-time.Duration(i) * time.Hour), Attempt: 1, Status: history.DeliverySent}
		if err := repo.RecordDelivery(ctx, d, 90*24*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	return orders
}

// TestEmailChangeOfALongTimeCustomer: an email change on a contact with 300 orders, 6
// subscriptions, 300 logged facts and 60 deliveries, with the store crashing at random points
// (before or after a write lands) while the change, the records' move and further events of the
// contact are processed. In the end every record lives under the new email and nothing under the
// old one but its alias, the aggregates match a recount, the change was sent once and first, the
// events that arrived meanwhile count once under the new email, and nothing was quarantined.
func TestEmailChangeOfALongTimeCustomer(t *testing.T) {
	total := 0
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { total += emailChangeWithCrashes(t, seed) })
	}
	if total < 30 {
		t.Fatalf("only %d crashes were injected; the test proves little", total)
	}
}

// emailChangeWithCrashes plays the change once with crashes drawn from seed, checks the outcome
// and returns how many crashes there were.
func emailChangeWithCrashes(t *testing.T, seed uint64) int {
	h := newHarness(t)
	h.account("acme", "")
	ctx := context.Background()
	seeded := seedLongTimeCustomer(t, h)

	crash := &crashingStore{Store: h.env.Store, r: rand.New(rand.NewPCG(seed, 2026))}
	crashApp, err := app.New(app.Deps{Store: crash, Queue: h.env.Queue, Accounts: h.env.Accounts, Clock: h.clk, Phone: phone.E164})
	if err != nil {
		t.Fatal(err)
	}

	// The change, and more events of the contact under its old email: three new orders and
	// refunds of two old ones (one still under the old email, one moved by then, depending on
	// when each is processed).
	h.postUC("acme", fixture(t, "ultracart", "customer_update.json"))
	base := string(fixture(t, "ultracart", "order_create.json"))
	for i := range 3 {
		h.postUC("acme", []byte(strings.ReplaceAll(base, "DEMO-0002001", fmt.Sprintf("NEW-%d", i))))
	}
	refund := string(fixture(t, "ultracart", "order_refund_partial.json"))
	for _, id := range []string{"LT-0000", "LT-0299"} {
		h.postUC("acme", []byte(strings.ReplaceAll(refund, "DEMO-0002001", id)))
	}

	// The schedule has run before (its timer cursor is set), as in any deployment that has been up
	// for a minute.
	if err := h.env.App.Schedule(ctx, events.EventBridgeEvent{Time: h.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	start := h.clk.Now()
	repo := history.New(h.env.Store)
	for minute := 0; ; minute++ {
		if minute > 240 {
			t.Fatalf("not done after %d simulated minutes (%d crashes)", minute, crash.crashes)
		}
		// One ingest invocation on whatever is visible, then the schedule's tick, each a new
		// process that may die at any point.
		rs, err := h.env.Queue.Receive(ctx, queue.Ingest, queue.ReceiveOptions{Max: 4})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) > 0 {
			crash.restart(60)
			resp, err := crashApp.Ingest(ctx, toSQSEvent(queue.Ingest, rs))
			if err != nil {
				t.Fatal(err)
			}
			failed := map[string]bool{}
			for _, f := range resp.BatchItemFailures {
				failed[f.ItemIdentifier] = true
			}
			for _, r := range rs {
				if !failed[r.MessageID] {
					if err := h.env.Queue.Delete(ctx, queue.Ingest, r.ReceiptHandle); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		crash.restart(60)
		_ = crashApp.Schedule(ctx, events.EventBridgeEvent{Time: h.clk.Now()}) // a failed tick is not retried

		// An operator replays what went to the dead-letter queue after five failed receives.
		if _, err := queue.Redrive(ctx, h.env.Queue, destinations.Queues(), queue.Ingest+queue.DLQSuffix, 100); err != nil {
			t.Fatal(err)
		}
		st, err := h.env.Queue.Stats(ctx, queue.Ingest)
		if err != nil {
			t.Fatal(err)
		}
		moves, err := repo.PendingMoves(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Visible+st.InFlight+st.Delayed == 0 && len(moves) == 0 {
			t.Logf("done after %d simulated minutes, %d crashes", minute, crash.crashes)
			break
		}
		h.clk.Advance(time.Minute)
	}
	// A crash costs a message its visibility timeout (3 minutes) and a move one schedule tick
	// (a minute): the whole change is through within half an hour of simulated time.
	if took := h.clk.Now().Sub(start); took > 30*time.Minute {
		t.Errorf("recovery took %s of simulated time", took)
	}
	if q := h.quarantined("acme"); len(q) != 0 {
		t.Fatalf("quarantined: %+v", q)
	}
	h.drainIngest() // collects what was routed to the destinations

	old := h.contact("acme", oldEmail)
	if old.AliasOf != newEmail || old.Profile != nil || len(old.Orders)+len(old.Subscriptions)+len(old.Facts)+len(old.Deliveries) != 0 {
		t.Fatalf("old email keeps %d orders, %d subscriptions, %d facts, %d deliveries, profile %v, alias %q",
			len(old.Orders), len(old.Subscriptions), len(old.Facts), len(old.Deliveries), old.Profile != nil, old.AliasOf)
	}
	nw := h.contact("acme", newEmail)
	if len(nw.Orders) != 303 || len(nw.Subscriptions) != 6 || len(nw.Deliveries) < 60 {
		t.Fatalf("new email holds %d orders, %d subscriptions, %d deliveries", len(nw.Orders), len(nw.Subscriptions), len(nw.Deliveries))
	}
	logged := map[string]bool{}
	for _, f := range nw.Facts {
		logged[f.ID] = true
	}
	for _, o := range seeded {
		if !logged[domain.OrderPlacedID("acme", o.Key)] {
			t.Fatalf("the log under the new email lacks the OrderPlaced of %s", o.Key)
		}
	}
	// The aggregates are a recount of the orders, each once.
	recount := ledger.Aggregate(*nw.Profile, nw.Orders, nw.Subscriptions)
	if recount.LTV != nw.Profile.LTV || nw.Profile.PurchaseCount != 303 || nw.Profile.Refunded.Decimal() != "40.00" {
		t.Fatalf("profile ltv %s count %d refunded %s; recount ltv %s", nw.Profile.LTV, nw.Profile.PurchaseCount, nw.Profile.Refunded, recount.LTV)
	}

	// The destinations: the change once, first in the new contact's queue group; every fact
	// produced after it under the new email; nothing under the old one but the three facts it
	// had not sent before the change.
	changed := h.facts(iterableQueue, domain.FactEmailChanged)
	if len(changed) != 1 || changed[0].OldEmail != oldEmail || changed[0].Email != newEmail {
		t.Fatalf("EmailChanged: %+v", changed)
	}
	unsent := map[string]bool{}
	for _, f := range ledger.OrderFacts("acme", nil, seeded[0], ledger.Cutover{}) {
		unsent[f.ID] = true
	}
	for _, o := range seeded[1:3] {
		unsent[domain.OrderPlacedID("acme", o.Key)] = true
	}
	first := true
	placed := map[string]int{}
	for _, f := range h.sent[iterableQueue] {
		switch f.Email {
		case oldEmail:
			if !unsent[f.ID] {
				t.Errorf("%s %s sent under the old email", f.Kind, f.ID)
			}
		case newEmail:
			if first && f.Kind != domain.FactEmailChanged {
				t.Fatalf("the new contact's first fact is %s, not the email change", f.Kind)
			}
			first = false
		}
		if f.Kind == domain.FactOrderPlaced {
			placed[f.ID]++
		}
	}
	for i := range 3 {
		if id := domain.OrderPlacedID("acme", domain.OrderKey(domain.UltraCart, fmt.Sprintf("NEW-%d", i), "")); placed[id] == 0 {
			t.Errorf("the order placed during the move was not sent (%s)", id)
		}
	}
	for id := range unsent {
		if placed[id] == 0 {
			t.Errorf("the unsent fact %s of the old email was never sent", id)
		}
	}
	refunds := h.facts(iterableQueue, domain.FactOrderRefunded)
	ids := map[string]bool{}
	for _, f := range refunds {
		ids[f.ID] = true
		if f.Email != newEmail {
			t.Errorf("refund %s sent for %s", f.ID, f.Email)
		}
	}
	if len(ids) != 2 {
		t.Errorf("refund facts %d distinct, want 2", len(ids))
	}
	// A replay finds a logged fact by the email its delivery names, the old or the new one.
	for _, e := range []string{oldEmail, newEmail} {
		if f, err := repo.Fact(ctx, "acme", e, domain.OrderPlacedID("acme", seeded[42].Key)); err != nil || f.Email != newEmail {
			t.Errorf("fact under %s: %+v %v", e, f.Email, err)
		}
	}
	var sample map[string]any
	_ = json.Unmarshal(nw.Deliveries[0], &sample)
	if sample["email"] != newEmail {
		t.Errorf("a moved delivery still names %v", sample["email"])
	}
	return crash.crashes
}

// TestEmailChangedAgainWhileMoving: a contact changes email twice (a to b, then b to c, or b back
// to a) before the first move has gone anywhere; the history ends under the last address, once,
// with aggregates that count every order all along.
func TestEmailChangedAgainWhileMoving(t *testing.T) {
	const third = "marcus@third.example.com"
	for _, c := range []struct{ name, last string }{{"on to a third address", third}, {"back to the first", oldEmail}} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.account("acme", "")
			ctx := context.Background()
			seeded := seedLongTimeCustomer(t, h)
			if err := h.env.App.Schedule(ctx, events.EventBridgeEvent{Time: h.clk.Now()}); err != nil {
				t.Fatal(err)
			}
			// The first change commits, and the process dies at the first step of its move.
			crash := &crashingStore{Store: h.env.Store, r: rand.New(rand.NewPCG(1, 1)), commits: 1}
			crash.restart(1 << 20)
			crashApp, err := app.New(app.Deps{Store: crash, Queue: h.env.Queue, Accounts: h.env.Accounts, Clock: h.clk, Phone: phone.E164})
			if err != nil {
				t.Fatal(err)
			}
			h.postUC("acme", fixture(t, "ultracart", "customer_update.json"))
			rs, err := h.env.Queue.Receive(ctx, queue.Ingest, queue.ReceiveOptions{Max: 1})
			if err != nil || len(rs) != 1 {
				t.Fatal(rs, err)
			}
			_, _ = crashApp.Ingest(ctx, toSQSEvent(queue.Ingest, rs))
			_ = h.env.Queue.Delete(ctx, queue.Ingest, rs[0].ReceiptHandle)
			mid := h.contact("acme", newEmail)
			if mid.Profile == nil || mid.Profile.PurchaseCount != 300 || len(mid.Orders) != 300 {
				t.Fatalf("during the move the new contact counts %v orders and shows %d", mid.Profile, len(mid.Orders))
			}
			moved := history.New(h.env.Store)
			if st, err := moved.LoadContact(ctx, "acme", oldEmail); err != nil || len(st.Orders) != 300 {
				t.Fatalf("the first step was not to have run: %d orders still under the old email (%v)", len(st.Orders), err)
			}

			// The second change, before any record has moved.
			body := strings.ReplaceAll(string(fixture(t, "ultracart", "customer_update.json")), newEmail, c.last)
			body = strings.Replace(body, `"last_modified_dts": "2024-05-20T08:30:00-04:00"`, `"last_modified_dts": "2024-05-21T08:30:00-04:00"`, 1)
			h.postUC("acme", []byte(body))
			h.drainIngest()
			for range 10 {
				if err := h.env.App.Schedule(ctx, events.EventBridgeEvent{Time: h.clk.Now()}); err != nil {
					t.Fatal(err)
				}
				h.clk.Advance(time.Minute)
			}
			if m, err := moved.PendingMoves(ctx); err != nil || len(m) != 0 {
				t.Fatalf("moves left: %+v %v", m, err)
			}
			last := h.contact("acme", c.last)
			if last.AliasOf != "" || last.Profile == nil || len(last.Orders) != 300 || last.Profile.PurchaseCount != 300 {
				t.Fatalf("%s: alias %q, %d orders, profile %+v", c.last, last.AliasOf, len(last.Orders), last.Profile)
			}
			want := ledger.Aggregate(domain.Contact{}, seeded, nil).LTV
			if last.Profile.LTV != want {
				t.Fatalf("ltv %s, want %s", last.Profile.LTV, want)
			}
			for _, e := range []string{oldEmail, newEmail, third} {
				if e == c.last {
					continue
				}
				v := h.contact("acme", e)
				if len(v.Orders)+len(v.Facts)+len(v.Deliveries) != 0 || v.Profile != nil {
					t.Errorf("%s keeps %d orders, %d facts, %d deliveries", e, len(v.Orders), len(v.Facts), len(v.Deliveries))
				}
			}
			if changed := h.facts(iterableQueue, domain.FactEmailChanged); len(changed) != 2 || changed[1].OldEmail != newEmail ||
				changed[1].Email != c.last {
				t.Fatalf("EmailChanged facts: %+v", changed)
			}
		})
	}
}
