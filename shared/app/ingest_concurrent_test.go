package app_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
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
	"github.com/cartrelay/cartrelay/shared/testenv"
)

// contactEvents are UltraCart deliveries of one long-time customer arriving together: the email
// change, orders under the old email placed before and after it, an order under the new email,
// and refunds of orders still under the old email or already moved, and of the new order.
func contactEvents(t *testing.T) [][]byte {
	t.Helper()
	order := string(fixture(t, "ultracart", "order_create.json"))
	refund := string(fixture(t, "ultracart", "order_refund_partial.json"))
	after := strings.ReplaceAll(strings.ReplaceAll(order, "DEMO-0002001", "NEW-1"), "2024-05-02T", "2024-06-02T")
	return [][]byte{
		fixture(t, "ultracart", "customer_update.json"),
		[]byte(strings.ReplaceAll(order, "DEMO-0002001", "NEW-0")),
		[]byte(after),
		[]byte(strings.ReplaceAll(strings.ReplaceAll(order, "DEMO-0002001", "NEW-2"), oldEmail, newEmail)),
		[]byte(strings.ReplaceAll(refund, "DEMO-0002001", "LT-0000")),
		[]byte(strings.ReplaceAll(refund, "DEMO-0002001", "LT-0299")),
		[]byte(strings.ReplaceAll(strings.ReplaceAll(refund, "DEMO-0002001", "NEW-2"), oldEmail, newEmail)),
	}
}

// contactOutcome is what ingest made of the events: the facts logged and sent (every kind whose
// id does not name a profile snapshot, which depends on the order the events were applied in),
// how often each was sent, and the contact's totals.
type contactOutcome struct {
	logged, sent []string
	sends        map[string]int
	orders       int
	ltv          string
	count        int
	refunded     string
}

// ingestContact receives the events from the ingest queue and has each applied by its own ingest
// invocation, all at once when concurrent (as SQS hands one contact's events to concurrent Lambda
// invocations), in the order given otherwise. A failed event is delivered again, as SQS does
// after its visibility timeout; then the schedule finishes the move.
func ingestContact(t *testing.T, h *harness, bodies [][]byte, order []int, concurrent bool) contactOutcome {
	t.Helper()
	ctx := context.Background()
	var recs []events.SQSEvent
	for _, i := range order {
		if resp := h.postUC("acme", bodies[i]); resp.StatusCode != 200 {
			t.Fatalf("webhook answered %d", resp.StatusCode)
		}
		rs, err := h.env.Queue.Receive(ctx, queue.Ingest, queue.ReceiveOptions{Max: 10})
		if err != nil || len(rs) != 1 {
			t.Fatalf("received %d ingest messages (%v), want 1", len(rs), err)
		}
		if err := h.env.Queue.Delete(ctx, queue.Ingest, rs[0].ReceiptHandle); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, toSQSEvent(queue.Ingest, rs))
	}
	deliver := func(ev events.SQSEvent) error {
		for range 5 { // the ingest queue's max receives
			resp, err := h.env.App.Ingest(ctx, ev)
			if err != nil {
				return err
			}
			if len(resp.BatchItemFailures) == 0 {
				return nil
			}
		}
		return fmt.Errorf("event %s failed five receives and went to the dead-letter queue", ev.Records[0].MessageId)
	}
	errs := make([]error, len(recs))
	if concurrent {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, ev := range recs {
			wg.Go(func() {
				<-start
				errs[i] = deliver(ev)
			})
		}
		close(start)
		wg.Wait()
	} else {
		for i, ev := range recs {
			errs[i] = deliver(ev)
		}
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return settleContact(t, h)
}

// settleContact lets the schedule finish the email change, checks that nothing is quarantined or
// left behind under the old email and that the totals are a recount, and returns the outcome.
func settleContact(t *testing.T, h *harness) contactOutcome {
	t.Helper()
	ctx := context.Background()
	repo := history.New(h.env.Store)
	for range 20 {
		if m, err := repo.PendingMoves(ctx); err != nil || len(m) == 0 {
			break
		}
		h.clk.Advance(time.Minute)
		if err := h.env.App.Schedule(ctx, events.EventBridgeEvent{Time: h.clk.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := repo.PendingMoves(ctx); err != nil || len(m) != 0 {
		t.Fatalf("moves left: %+v %v", m, err)
	}
	if q := h.quarantined("acme"); len(q) != 0 {
		t.Fatalf("quarantined: %+v", q)
	}
	h.drainIngest()

	old := h.contact("acme", oldEmail)
	if old.AliasOf != newEmail || old.Profile != nil || len(old.Orders)+len(old.Subscriptions)+len(old.Facts) != 0 {
		t.Fatalf("old email keeps %d orders, %d facts, profile %v, alias %q", len(old.Orders), len(old.Facts), old.Profile != nil, old.AliasOf)
	}
	nw := h.contact("acme", newEmail)
	if nw.Profile == nil {
		t.Fatal("the new email has no profile")
	}
	// The totals are a recount of the stored records, each once.
	if re := ledger.Aggregate(*nw.Profile, nw.Orders, nw.Subscriptions); re.LTV != nw.Profile.LTV || re.Refunded != nw.Profile.Refunded {
		t.Fatalf("profile ltv %s refunded %s; recount of its records %s, %s", nw.Profile.LTV, nw.Profile.Refunded, re.LTV, re.Refunded)
	}
	out := contactOutcome{sends: map[string]int{}, orders: len(nw.Orders), ltv: nw.Profile.LTV.Decimal(),
		count: nw.Profile.PurchaseCount, refunded: nw.Profile.Refunded.Decimal()}
	for _, f := range nw.Facts {
		if f.Kind != domain.FactContactChanged {
			out.logged = append(out.logged, string(f.Kind)+" "+f.ID)
		}
	}
	for _, f := range h.sent[iterableQueue] {
		if f.Kind == domain.FactContactChanged {
			continue
		}
		k := string(f.Kind) + " " + f.ID
		if out.sends[k] == 0 {
			out.sent = append(out.sent, k)
		}
		out.sends[k]++
	}
	slices.Sort(out.logged)
	slices.Sort(out.sent)
	return out
}

// TestConcurrentIngestOfOneContact: the events of one long-time customer, among them its email
// change, whose 300 orders move in several steps, are applied by concurrent ingest invocations in
// several orders. The outcome is the one of applying them one by one: the same facts by id (the
// email change once, every sale and refund once, none under another id), none sent twice, the
// same totals, nothing quarantined or lost.
func TestConcurrentIngestOfOneContact(t *testing.T) {
	concurrentIngestMatchesOneByOne(t, newHarness, 6)
}

// TestConcurrentIngestOfOneContactOnDynamoDB is TestConcurrentIngestOfOneContact with the table in
// DynamoDB Local, whose transactions and conditions are DynamoDB's own.
func TestConcurrentIngestOfOneContactOnDynamoDB(t *testing.T) {
	tables := testenv.DynamoDBTables(t, "concurrent")
	concurrentIngestMatchesOneByOne(t, func(t *testing.T) *harness { return newHarnessOnDynamoDB(t, tables) }, 3)
}

// concurrentIngestMatchesOneByOne applies contactEvents one by one, then concurrently in runs
// orders (the first the same), each on a new harness from open, and compares the outcomes.
func concurrentIngestMatchesOneByOne(t *testing.T, open func(t *testing.T) *harness, runs int) {
	seq := open(t)
	seq.account("acme", "")
	seedLongTimeCustomer(t, seq)
	bodies := contactEvents(t)
	inOrder := []int{0, 1, 2, 3, 4, 5, 6}
	want := ingestContact(t, seq, bodies, inOrder, false)
	if want.orders != 303 || want.count != 303 || want.refunded != "60.00" || len(want.logged) < 300+3+3+1 {
		t.Fatalf("one by one: %d orders, count %d, refunded %s, %d facts", want.orders, want.count, want.refunded, len(want.logged))
	}

	r := rand.New(rand.NewPCG(2026, 12))
	for run := range runs {
		order := slices.Clone(inOrder)
		if run > 0 {
			r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			h := open(t)
			h.account("acme", "")
			seedLongTimeCustomer(t, h)
			got := ingestContact(t, h, bodies, order, true)
			sameAsOneByOne(t, got, want)
		})
	}
}

// sameAsOneByOne checks an outcome against applying the same events one by one: the same
// totals, the same facts logged and sent, none sent twice.
func sameAsOneByOne(t *testing.T, got, want contactOutcome) {
	t.Helper()
	if got.orders != want.orders || got.ltv != want.ltv || got.count != want.count || got.refunded != want.refunded {
		t.Errorf("totals: %d orders, ltv %s, count %d, refunded %s; one by one: %d, %s, %d, %s",
			got.orders, got.ltv, got.count, got.refunded, want.orders, want.ltv, want.count, want.refunded)
	}
	if !slices.Equal(got.logged, want.logged) {
		t.Errorf("logged facts differ from one by one:\n extra %v\n missing %v", diff(got.logged, want.logged), diff(want.logged, got.logged))
	}
	if !slices.Equal(got.sent, want.sent) {
		t.Errorf("sent facts differ from one by one:\n extra %v\n missing %v", diff(got.sent, want.sent), diff(want.sent, got.sent))
	}
	for k, n := range got.sends {
		if n != 1 {
			t.Errorf("%s sent %d times", k, n)
		}
	}
}

// diff lists what a holds and b lacks.
func diff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// laggingIndex is a store whose global secondary index has not caught up with a write yet, as
// DynamoDB's indexes are only eventually consistent: the next lags queries of the index for a key
// under pkPart answer as if the item were not there.
type laggingIndex struct {
	store.Store
	mu     sync.Mutex
	pkPart string
	lags   int
}

func (s *laggingIndex) Query(ctx context.Context, q store.Query) (store.Page, error) {
	s.mu.Lock()
	lag := q.Index == store.GSI1 && strings.Contains(q.PK, s.pkPart) && s.lags > 0
	if lag {
		s.lags--
	}
	s.mu.Unlock()
	if lag {
		return store.Page{}, nil
	}
	return s.Store.Query(ctx, q)
}

// TestOrderIndexLagLosesNothing: an order's shipment is ingested while the order index does not
// show the order yet, though its contact holds it with a refund. The shipment is merged into the
// stored order: the refund stays counted, and nothing is quarantined.
func TestOrderIndexLagLosesNothing(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	h.postUC("acme", fixture(t, "ultracart", "order_create.json"))
	h.postUC("acme", fixture(t, "ultracart", "order_refund_partial.json"))
	h.drainIngest()
	if v := h.contact("acme", oldEmail); v.Profile == nil || v.Profile.Refunded.Decimal() != "20.00" {
		t.Fatalf("before the shipment: %+v", v.Profile)
	}

	lagging := &laggingIndex{Store: h.env.Store, pkPart: "DEMO-0002001", lags: 1}
	a, err := app.New(app.Deps{Store: lagging, Queue: h.env.Queue, Accounts: h.env.Accounts, Clock: h.clk, Phone: phone.E164})
	if err != nil {
		t.Fatal(err)
	}
	h.env.App = a
	h.postUC("acme", fixture(t, "ultracart", "order_ship.json"))
	h.drainIngest()
	if lagging.lags != 0 {
		t.Fatalf("the index was never read while lagging (%d lags left); the test proves little", lagging.lags)
	}
	v := h.contact("acme", oldEmail)
	if len(v.Orders) != 1 || v.Orders[0].Refunded.Decimal() != "20.00" || v.Profile.Refunded.Decimal() != "20.00" {
		t.Fatalf("after the shipment: %d orders, profile refunded %s; the refund must stay counted", len(v.Orders), v.Profile.Refunded)
	}
	if len(h.facts(iterableQueue, domain.FactOrderShipped)) == 0 {
		t.Fatal("the shipment was not applied")
	}
	if n := len(h.facts(iterableQueue, domain.FactOrderPlaced)); n != 1 {
		t.Fatalf("OrderPlaced sent %d times", n)
	}
}
