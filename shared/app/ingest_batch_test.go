package app_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/phone"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

// otherOrder is the order fixture as placed by another customer: another order id, email and
// customer profile.
func otherOrder(t *testing.T, id, email string, profile int) []byte {
	t.Helper()
	b := string(fixture(t, "ultracart", "order_create.json"))
	b = strings.ReplaceAll(b, "DEMO-0002001", id)
	b = strings.ReplaceAll(b, oldEmail, email)
	return []byte(strings.ReplaceAll(b, "600134", fmt.Sprint(profile)))
}

// batchEvents are contactEvents (an email change and orders and refunds on both sides of it), the
// webhook's retry of one of those orders, and orders of two other customers: ten messages, as
// many as one SQS batch holds.
func batchEvents(t *testing.T) [][]byte {
	t.Helper()
	bodies := contactEvents(t)
	bodies = append(bodies, bodies[1])
	return append(bodies, otherOrder(t, "OTHER-1", "ada@example.com", 700001), otherOrder(t, "OTHER-2", "grace@example.com", 700002))
}

// postBatch posts the deliveries in the order given and receives them back as one batch.
func postBatch(t *testing.T, h *harness, bodies [][]byte, order []int) events.SQSEvent {
	t.Helper()
	for _, i := range order {
		if resp := h.postUC("acme", bodies[i]); resp.StatusCode != 200 {
			t.Fatalf("webhook answered %d", resp.StatusCode)
		}
	}
	rs, err := h.env.Queue.Receive(context.Background(), queue.Ingest, queue.ReceiveOptions{Max: queue.MaxBatch})
	if err != nil || len(rs) != len(order) {
		t.Fatalf("received %d ingest messages in one batch (%v), want %d", len(rs), err, len(order))
	}
	return toSQSEvent(queue.Ingest, rs)
}

// failed lists the message ids a response reports, sorted.
func failed(resp events.SQSEventResponse) []string {
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	return ids
}

// deleteHandled deletes the batch's messages the response does not report, as the queue's
// consumer does, and returns the reported ones made visible again (as after their visibility
// timeout) and received anew.
func deleteHandled(t *testing.T, h *harness, ev events.SQSEvent, resp events.SQSEventResponse) events.SQSEvent {
	t.Helper()
	ctx := context.Background()
	bad := failed(resp)
	for _, r := range ev.Records {
		if slices.Contains(bad, r.MessageId) {
			if err := h.env.Queue.ChangeVisibility(ctx, queue.Ingest, r.ReceiptHandle, 0); err != nil {
				t.Fatal(err)
			}
		} else if err := h.env.Queue.Delete(ctx, queue.Ingest, r.ReceiptHandle); err != nil {
			t.Fatal(err)
		}
	}
	if len(bad) == 0 {
		return events.SQSEvent{}
	}
	rs, err := h.env.Queue.Receive(ctx, queue.Ingest, queue.ReceiveOptions{Max: queue.MaxBatch})
	if err != nil || len(rs) != len(bad) {
		t.Fatalf("received %d messages again (%v), want the %d reported", len(rs), err, len(bad))
	}
	return toSQSEvent(queue.Ingest, rs)
}

// TestOneBatchOfOneContact: a contact's email change, its orders under both emails and refunds
// of them, a webhook retry of one order and two other customers' orders arrive in one batch, in
// several orders. The batch is applied at once, the contact's messages in turn: nothing fails,
// and the outcome is the one of applying the messages one by one (the email change once, every
// sale and refund once, none sent twice, the same totals), and each other customer has its
// order, sent once.
func TestOneBatchOfOneContact(t *testing.T) {
	oneBatchMatchesOneByOne(t, newHarness, 5)
}

// TestOneBatchOfOneContactOnDynamoDB is TestOneBatchOfOneContact with the table in DynamoDB Local.
func TestOneBatchOfOneContactOnDynamoDB(t *testing.T) {
	tables := testenv.DynamoDBTables(t, "batch")
	oneBatchMatchesOneByOne(t, func(t *testing.T) *harness { return newHarnessOnDynamoDB(t, tables) }, 2)
}

func oneBatchMatchesOneByOne(t *testing.T, open func(t *testing.T) *harness, runs int) {
	seq := open(t)
	seq.account("acme", "")
	seedLongTimeCustomer(t, seq)
	bodies := batchEvents(t)
	inOrder := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	want := ingestContact(t, seq, bodies, inOrder, false)
	if want.orders != 303 || want.count != 303 || want.refunded != "60.00" {
		t.Fatalf("one by one: %d orders, count %d, refunded %s", want.orders, want.count, want.refunded)
	}

	r := rand.New(rand.NewPCG(2026, 15))
	for run := range runs {
		order := slices.Clone(inOrder)
		if run > 0 {
			r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			h := open(t)
			h.account("acme", "")
			seedLongTimeCustomer(t, h)
			ev := postBatch(t, h, bodies, order)
			resp, err := h.env.App.Ingest(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if bad := failed(resp); len(bad) != 0 {
				t.Fatalf("%d of the batch's messages failed: %v", len(bad), bad)
			}
			deleteHandled(t, h, ev, resp)
			got := settleContact(t, h)
			sameAsOneByOne(t, got, want)
			for _, email := range []string{"ada@example.com", "grace@example.com"} {
				if v := h.contact("acme", email); v.Profile == nil || len(v.Orders) != 1 || v.Profile.PurchaseCount != 1 {
					t.Errorf("%s: %d orders, profile %+v", email, len(v.Orders), v.Profile)
				}
				n := 0
				for _, f := range h.facts(iterableQueue, domain.FactOrderPlaced) {
					if f.Email == email {
						n++
					}
				}
				if n != 1 {
					t.Errorf("%s: OrderPlaced sent %d times", email, n)
				}
			}
		})
	}
}

// TestRefundBeforeItsOrderInOneBatch: an order's refund comes ahead of the order in one batch.
// The order is stored once with the refund counted, placed and refunded once each.
func TestRefundBeforeItsOrderInOneBatch(t *testing.T) {
	tables := testenv.DynamoDBTables(t, "refundfirst")
	for name, open := range map[string]func(t *testing.T) *harness{
		"SQLite":   newHarness,
		"DynamoDB": func(t *testing.T) *harness { return newHarnessOnDynamoDB(t, tables) },
	} {
		t.Run(name, func(t *testing.T) {
			h := open(t)
			h.account("acme", "")
			bodies := [][]byte{fixture(t, "ultracart", "order_refund_partial.json"), fixture(t, "ultracart", "order_create.json")}
			ev := postBatch(t, h, bodies, []int{0, 1})
			resp, err := h.env.App.Ingest(context.Background(), ev)
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("failures %v, %v", failed(resp), err)
			}
			deleteHandled(t, h, ev, resp)
			h.drainIngest()
			if q := h.quarantined("acme"); len(q) != 0 {
				t.Fatalf("quarantined: %+v", q)
			}
			v := h.contact("acme", oldEmail)
			if len(v.Orders) != 1 || v.Orders[0].Refunded.Decimal() != "20.00" || v.Profile.Refunded.Decimal() != "20.00" || v.Profile.PurchaseCount != 1 {
				t.Fatalf("%d orders, profile %+v", len(v.Orders), v.Profile)
			}
			for _, k := range []domain.FactKind{domain.FactOrderPlaced, domain.FactOrderRefunded} {
				if n := len(h.facts(iterableQueue, k)); n != 1 {
					t.Errorf("%s sent %d times", k, n)
				}
			}
		})
	}
}

// failingCommits fails the commits that write an order whose key holds marker, left times.
type failingCommits struct {
	store.Store
	mu     sync.Mutex
	marker string
	left   int
}

var errInjected = errors.New("injected: the table is unavailable")

func (s *failingCommits) Transact(ctx context.Context, ws []store.Write) error {
	s.mu.Lock()
	fail := s.left > 0 && slices.ContainsFunc(ws, func(w store.Write) bool {
		return strings.HasPrefix(w.Target().SK, "O#") && strings.Contains(w.Target().SK, s.marker)
	})
	if fail {
		s.left--
	}
	s.mu.Unlock()
	if fail {
		return errInjected
	}
	return s.Store.Transact(ctx, ws)
}

// TestAFailedMessageHoldsItsContactsLaterOnes: in one batch, a contact's order fails to commit;
// its refund and the contact's next order, later in the batch, are not applied ahead of it but
// reported failed with it, while other customers' orders go through. When the queue hands the
// three back (in any order), each is applied once: the refund counted once, each sale once.
func TestAFailedMessageHoldsItsContactsLaterOnes(t *testing.T) {
	for _, redeliver := range []string{"in order", "reversed"} {
		t.Run(redeliver, func(t *testing.T) {
			h := newHarness(t)
			h.account("acme", "")
			refund := strings.ReplaceAll(string(fixture(t, "ultracart", "order_refund_partial.json")), "DEMO-0002001", "ADA-1")
			bodies := [][]byte{
				otherOrder(t, "ADA-1", "ada@example.com", 700001),
				[]byte(strings.ReplaceAll(strings.ReplaceAll(refund, oldEmail, "ada@example.com"), "600134", "700001")),
				otherOrder(t, "GRACE-1", "grace@example.com", 700002),
				otherOrder(t, "ADA-2", "ada@example.com", 700001),
				otherOrder(t, "BOB-1", "bob@example.com", 700003),
			}
			ev := postBatch(t, h, bodies, []int{0, 1, 2, 3, 4})
			failing := &failingCommits{Store: h.env.Store, marker: "ADA-1", left: 1}
			a, err := app.New(app.Deps{Store: failing, Queue: h.env.Queue, Accounts: h.env.Accounts, Clock: h.clk, Phone: phone.E164})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := a.Ingest(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if failing.left != 0 {
				t.Fatal("the order's commit was never tried")
			}
			want := []string{ev.Records[0].MessageId, ev.Records[1].MessageId, ev.Records[3].MessageId}
			slices.Sort(want)
			if got := failed(resp); !slices.Equal(got, want) {
				t.Fatalf("reported %v, want the failed order and the two held behind it %v", got, want)
			}
			if v := h.contact("acme", "ada@example.com"); len(v.Orders) != 0 {
				t.Fatalf("ada's later messages were applied ahead of the failed one: %d orders", len(v.Orders))
			}
			for _, email := range []string{"grace@example.com", "bob@example.com"} {
				if v := h.contact("acme", email); len(v.Orders) != 1 {
					t.Fatalf("%s: %d orders; a failure of another contact held it", email, len(v.Orders))
				}
			}

			again := deleteHandled(t, h, ev, resp)
			if redeliver == "reversed" {
				slices.Reverse(again.Records)
			}
			resp, err = a.Ingest(context.Background(), again)
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("redelivered: failures %v, %v", failed(resp), err)
			}
			deleteHandled(t, h, again, resp)
			h.drainIngest()
			if q := h.quarantined("acme"); len(q) != 0 {
				t.Fatalf("quarantined: %+v", q)
			}
			v := h.contact("acme", "ada@example.com")
			if len(v.Orders) != 2 || v.Profile.PurchaseCount != 2 || v.Profile.Refunded.Decimal() != "20.00" {
				t.Fatalf("ada: %d orders, profile %+v", len(v.Orders), v.Profile)
			}
			placed := map[string]int{}
			for _, f := range h.facts(iterableQueue, domain.FactOrderPlaced) {
				placed[f.Email]++
			}
			if placed["ada@example.com"] != 2 || placed["grace@example.com"] != 1 || placed["bob@example.com"] != 1 {
				t.Fatalf("OrderPlaced sent per contact: %v", placed)
			}
			if n := len(h.facts(iterableQueue, domain.FactOrderRefunded)); n != 1 {
				t.Fatalf("OrderRefunded sent %d times", n)
			}
		})
	}
}

// refusingSends refuses the entries of sends to one queue whose body names email, once, as SQS
// answers a SendMessageBatch with some entries failed; the rest go.
type refusingSends struct {
	queue.Queue
	mu      sync.Mutex
	name    string
	email   string
	refused int
}

func (q *refusingSends) Send(ctx context.Context, name string, msgs []queue.Message) error {
	q.mu.Lock()
	refuse := name == q.name && q.refused == 0
	q.mu.Unlock()
	if !refuse {
		return q.Queue.Send(ctx, name, msgs)
	}
	var keep []queue.Message
	se := &queue.SendError{Queue: name}
	for _, m := range msgs {
		if strings.Contains(m.Body, q.email) {
			se.Failed = append(se.Failed, queue.FailedEntry{ID: m.ID, Code: "InternalError", Reason: "injected"})
		} else {
			keep = append(keep, m)
		}
	}
	if len(se.Failed) == 0 {
		return q.Queue.Send(ctx, name, msgs)
	}
	q.mu.Lock()
	q.refused += len(se.Failed)
	q.mu.Unlock()
	if len(keep) > 0 {
		if err := q.Queue.Send(ctx, name, keep); err != nil {
			return err
		}
	}
	return se
}

// TestFactsNotSentStayInTheOutbox: the destination queue refuses one contact's facts of a batch.
// Exactly the message that committed them is reported failed, the facts stay in the contact's
// outbox, and the other contacts' facts are sent and cleared. The message's redelivery sends
// them: each fact reaches each destination once, and the outbox is empty.
func TestFactsNotSentStayInTheOutbox(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	bodies := [][]byte{
		otherOrder(t, "ADA-1", "ada@example.com", 700001),
		otherOrder(t, "GRACE-1", "grace@example.com", 700002),
		otherOrder(t, "BOB-1", "bob@example.com", 700003),
	}
	ev := postBatch(t, h, bodies, []int{0, 1, 2})
	refusing := &refusingSends{Queue: h.env.Queue, name: iterableQueue, email: "grace@example.com"}
	a, err := app.New(app.Deps{Store: h.env.Store, Queue: refusing, Accounts: h.env.Accounts, Clock: h.clk, Phone: phone.E164})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	resp, err := a.Ingest(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if refusing.refused == 0 {
		t.Fatal("no send was refused; the test proves little")
	}
	if got := failed(resp); !slices.Equal(got, []string{ev.Records[1].MessageId}) {
		t.Fatalf("reported %v, want only grace's message %s", got, ev.Records[1].MessageId)
	}
	repo := history.New(h.env.Store)
	outbox := func(email string) int {
		st, err := repo.LoadContact(ctx, "acme", email)
		if err != nil {
			t.Fatal(err)
		}
		return len(st.Outbox)
	}
	if outbox("grace@example.com") == 0 {
		t.Fatal("grace's facts left the outbox though the queue refused them")
	}
	for _, email := range []string{"ada@example.com", "bob@example.com"} {
		if n := outbox(email); n != 0 {
			t.Fatalf("%s: %d facts still in the outbox after they were sent", email, n)
		}
	}
	again := deleteHandled(t, h, ev, resp)
	resp, err = a.Ingest(ctx, again)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("redelivered: failures %v, %v", failed(resp), err)
	}
	deleteHandled(t, h, again, resp)
	h.drainIngest()
	if n := outbox("grace@example.com"); n != 0 {
		t.Fatalf("grace: %d facts still in the outbox after the redelivery", n)
	}
	for _, dest := range []string{iterableQueue, ontraportQueue} {
		placed := map[string]int{}
		for _, f := range h.facts(dest, domain.FactOrderPlaced) {
			placed[f.Email]++
		}
		for _, email := range []string{"ada@example.com", "grace@example.com", "bob@example.com"} {
			if placed[email] != 1 {
				t.Errorf("%s: OrderPlaced of %s sent %d times", dest, email, placed[email])
			}
		}
	}
}

// countingWaits counts the sends to each queue and the store calls that clear outboxes.
type countingWaits struct {
	queue.Queue
	store.Store
	mu     sync.Mutex
	sends  map[string]int
	clears int
}

func (c *countingWaits) Send(ctx context.Context, name string, msgs []queue.Message) error {
	c.mu.Lock()
	c.sends[name]++
	c.mu.Unlock()
	return c.Queue.Send(ctx, name, msgs)
}

func (c *countingWaits) clearing(ws ...store.Write) {
	if slices.ContainsFunc(ws, func(w store.Write) bool { return w.Op == store.OpDelete && strings.HasPrefix(w.Target().SK, "OUT#") }) {
		c.mu.Lock()
		c.clears++
		c.mu.Unlock()
	}
}

func (c *countingWaits) Write(ctx context.Context, w store.Write) error {
	c.clearing(w)
	return c.Store.Write(ctx, w)
}

func (c *countingWaits) Transact(ctx context.Context, ws []store.Write) error {
	c.clearing(ws...)
	return c.Store.Transact(ctx, ws)
}

// TestABatchSendsAndClearsOnce: the orders of ten customers in one batch are sent to each
// destination queue in as few sends as SQS allows with each contact's facts in one send, and
// cleared from the outboxes in one write, rather than a send and a clear per order.
func TestABatchSendsAndClearsOnce(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	var bodies [][]byte
	var order []int
	for i := range 10 {
		bodies = append(bodies, otherOrder(t, fmt.Sprintf("C-%d", i), fmt.Sprintf("c%d@example.com", i), 710000+i))
		order = append(order, i)
	}
	ev := postBatch(t, h, bodies, order)
	c := &countingWaits{Queue: h.env.Queue, Store: h.env.Store, sends: map[string]int{}}
	a, err := app.New(app.Deps{Store: c, Queue: c, Accounts: h.env.Accounts, Clock: h.clk, Phone: phone.E164})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Ingest(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures %v, %v", failed(resp), err)
	}
	deleteHandled(t, h, ev, resp)
	h.drainIngest()
	for _, dest := range []string{iterableQueue, ontraportQueue} {
		n := len(h.sent[dest])
		if n == 0 || n%10 != 0 {
			t.Fatalf("%s: %d facts for ten like orders", dest, n)
		}
		perContact := n / 10
		want := (10 + queue.MaxBatch/perContact - 1) / (queue.MaxBatch / perContact)
		if c.sends[dest] != want {
			t.Errorf("%s: %d sends for %d facts, %d a contact; want %d", dest, c.sends[dest], n, perContact, want)
		}
	}
	if c.clears != 1 {
		t.Errorf("outboxes cleared in %d writes, want 1", c.clears)
	}
}

// countingGets counts the store's point reads by key.
type countingGets struct {
	store.Store
	mu   sync.Mutex
	gets map[string]int
}

func (c *countingGets) Get(ctx context.Context, pk, sk string) (store.Item, error) {
	c.mu.Lock()
	c.gets[pk+" "+sk]++
	c.mu.Unlock()
	return c.Store.Get(ctx, pk, sk)
}

// TestAnOrderReadsItsContactOnce: ingesting an order (of a new contact, and then its refund) reads
// the customer profile's email once, not once for every step that needs it. A new order reads
// the contact's alias twice: once to resolve its email, and again with the contact, after its
// profile, which is what shows an email change that committed in between (see
// ingestion.contact). The refund finds its contact through the order, read with its alias, so
// it reads the alias once.
func TestAnOrderReadsItsContactOnce(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	c := &countingGets{Store: h.env.Store, gets: map[string]int{}}
	a, err := app.New(app.Deps{Store: c, Queue: h.env.Queue, Accounts: h.env.Accounts, Clock: h.clk, Phone: phone.E164})
	if err != nil {
		t.Fatal(err)
	}
	h.env.App = a
	for _, tc := range []struct {
		name  string
		alias int
	}{{"order_create.json", 2}, {"order_refund_partial.json", 1}} {
		name := tc.name
		clear(c.gets)
		h.postUC("acme", fixture(t, "ultracart", name))
		h.ingestOnly()
		alias := c.gets[history.ContactPK("acme", oldEmail)+" ALIAS"]
		var profile int
		for k, n := range c.gets {
			if strings.Contains(k, "600134") {
				profile += n
			}
		}
		if alias != tc.alias || profile != 1 {
			t.Errorf("%s: the contact's alias read %d times, the customer profile %d times; want %d and 1", name, alias, profile, tc.alias)
		}
	}
	if v := h.contact("acme", oldEmail); len(v.Orders) != 1 || v.Profile.Refunded.Decimal() != "20.00" {
		t.Fatalf("%d orders, profile %+v", len(v.Orders), v.Profile)
	}
}
