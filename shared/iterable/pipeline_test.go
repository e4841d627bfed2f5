package iterable_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/iterable/iterablefake"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/phone"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// pipeline is the forwarder, the schedule and the connect handler of one embedded runtime over
// a fake clock, with the iterable queue pumped by hand as the local runtime's poller would.
type pipeline struct {
	t       *testing.T
	clk     *clock.Fake
	rt      *wiring.Env
	fake    *iterablefake.Server
	dest    *iterable.Destination
	forward func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)
	// crashAfter, when positive, makes the next pump stop after that many deliveries without
	// acknowledging anything, as a forwarder killed mid-batch would.
	crashAfter int
}

func newPipeline(t *testing.T, settings string) *pipeline {
	t.Helper()
	ctx := context.Background()
	clk := clock.NewFake(now)
	rt, err := operator.Embedded(ctx, t.TempDir(), wiring.Options{Clock: clk, Phone: phone.E164})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	fake, err := iterablefake.New(iterablefake.Options{APIKey: testKey, Clock: clk, SpecPath: specPath(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	dest, err := iterable.New(iterable.Deps{Store: rt.Store, Clock: clk, HTTP: fake.Client(), PublicBaseURL: "https://hooks.example.com",
		Keys: rt.Keys, Sleep: func(_ context.Context, d time.Duration) error { clk.Advance(d); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"allowed_domains":"shop.example.com","iterable":{"enabled":true,"api_key":%q,"base_url":%q,"review_url_template":"https://shop.example.com/reviews/new?sku={sku}"%s}}`,
		testKey, fake.URL, settings)
	if _, err := rt.Accounts.Put(ctx, "acme", []byte(body)); err != nil {
		t.Fatal(err)
	}
	return &pipeline{t: t, clk: clk, rt: rt, fake: fake, dest: dest, forward: rt.App.Forward(dest)}
}

// send puts facts on the iterable queue as ingest does: one FIFO group per contact.
func (p *pipeline) send(facts ...domain.Fact) {
	p.t.Helper()
	for _, f := range facts {
		body, _ := json.Marshal(f)
		err := p.rt.Queue.Send(context.Background(), iterable.Registration().Queue.Name, []queue.Message{{Body: string(body),
			GroupID: f.Account + "|" + f.Email, DedupID: f.ID, Attributes: map[string]string{"account": f.Account, "fact_kind": string(f.Kind)}}})
		if err != nil {
			p.t.Fatal(err)
		}
	}
}

// pump delivers until the queue is empty, moving the clock past visibility timeouts and retry
// delays when only hidden messages are left.
func (p *pipeline) pump() {
	p.t.Helper()
	ctx := context.Background()
	for range 500 {
		msgs, err := p.rt.Queue.Receive(ctx, iterable.Registration().Queue.Name, queue.ReceiveOptions{Max: 10})
		if err != nil {
			p.t.Fatal(err)
		}
		if len(msgs) == 0 {
			st, err := p.rt.Queue.Stats(ctx, iterable.Registration().Queue.Name)
			if err != nil {
				p.t.Fatal(err)
			}
			if st.InFlight == 0 && st.Visible == 0 && st.Delayed == 0 {
				return
			}
			p.clk.Advance(time.Minute)
			continue
		}
		if p.crashAfter > 0 {
			for _, m := range msgs[:min(p.crashAfter, len(msgs))] {
				var f domain.Fact
				_ = json.Unmarshal([]byte(m.Body), &f)
				_, _ = p.dest.Deliver(ctx, p.account(), f) // delivered, then the process dies
			}
			p.crashAfter = 0
			continue
		}
		ev := events.SQSEvent{}
		for _, m := range msgs {
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: m.MessageID, ReceiptHandle: m.ReceiptHandle, Body: m.Body,
				Attributes: map[string]string{"MessageGroupId": m.GroupID, "ApproximateReceiveCount": strconv.Itoa(m.ReceiveCount)}})
		}
		resp, err := p.forward(ctx, ev)
		if err != nil {
			p.t.Fatal(err)
		}
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		for _, m := range msgs {
			if !failed[m.MessageID] {
				if err := p.rt.Queue.Delete(ctx, iterable.Registration().Queue.Name, m.ReceiptHandle); err != nil {
					p.t.Fatal(err)
				}
			}
		}
	}
	p.t.Fatal("the iterable queue did not drain")
}

func (p *pipeline) account() accountT {
	a, err := p.rt.Accounts.Get(context.Background(), "acme", p.rt.Accounts.SecretNames()...)
	if err != nil {
		p.t.Fatal(err)
	}
	return a
}

// schedule plays the EventBridge rule once.
func (p *pipeline) schedule() {
	p.t.Helper()
	if err := p.rt.App.Schedule(context.Background(), events.EventBridgeEvent{Time: p.clk.Now()}); err != nil {
		p.t.Fatal(err)
	}
}

// wait lets d pass with the schedule running (every 6 hours here, every minute in a
// deployment) and the queue pumped after each run.
func (p *pipeline) wait(d time.Duration) {
	p.t.Helper()
	for d > 0 {
		step := min(d, 6*time.Hour)
		p.clk.Advance(step)
		d -= step
		p.schedule()
		p.pump()
	}
}

func (p *pipeline) deliveries() []history.Delivery {
	d, err := history.New(p.rt.Store).Deliveries(context.Background(), "acme", false, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	return d
}

// storeOrder records an order in the contact's history, as ingest would.
func (p *pipeline) storeOrder(email string, o domain.Order) {
	p.t.Helper()
	ctx := context.Background()
	repo := history.New(p.rt.Store)
	st, err := repo.LoadContact(ctx, "acme", email)
	if err != nil {
		p.t.Fatal(err)
	}
	w := &history.Writes{}
	w.PutOrder(st, o)
	if st.ProfileVersion == 0 {
		w.PutProfile(st, domain.Contact{Account: "acme", Email: email})
	}
	if err := repo.Commit(ctx, w); err != nil {
		p.t.Fatal(err)
	}
}

func orderFact(i int, email string) domain.Fact {
	id := fmt.Sprintf("UC-%04d", i)
	key := domain.OrderKey(domain.UltraCart, id, "")
	usd := func(s string) domain.Money { m, _ := domain.ParseMoney(s, "USD"); return m }
	o := domain.Order{Key: key, Source: domain.UltraCart, OrderID: id, Email: email, Status: domain.OrderPaid, Currency: "USD",
		PaidAt: now.Add(-time.Hour), Total: usd(fmt.Sprintf("%d.50", 10+i)),
		Items: []domain.LineItem{{SKU: fmt.Sprintf("SKU-%d", i%3), Name: "Thing", Quantity: 1, UnitPrice: usd(fmt.Sprintf("%d.50", 10+i))}}}
	return domain.Fact{ID: domain.OrderPlacedID("acme", key), Account: "acme", Kind: domain.FactOrderPlaced, Email: email,
		OccurredAt: o.PaidAt, Order: &o}
}

// TestCartReminder: the cart event goes out after the configured wait (timers fired by the
// schedule), and not at all when an order follows.
func TestCartReminder(t *testing.T) {
	for _, tc := range []struct {
		name      string
		orderedAt time.Duration // after the cart; 0 = no order
		wantEvent bool
		// movingFrom: the order is stored under this email, whose records an email change to
		// dan@example.com has not moved yet.
		movingFrom string
	}{
		{"no order: reminded", 0, true, ""},
		{"order after the cart: no reminder", 20 * time.Minute, false, ""},
		{"order under the previous email, not moved yet: no reminder", 20 * time.Minute, false, "dan.old@example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipeline(t, `,"return_cart_delay":"2h","abandon_cart_after":"30m"`)
			f := loadFact(t, "cart_abandoned")
			c := *f.Cart
			c.At = now
			f.Cart, f.OccurredAt = &c, now
			p.schedule() // the schedule has been running
			p.send(f)
			p.pump()
			if len(p.fake.CallsTo(iterable.PathUpdateCart)) != 1 || len(p.fake.Cart("dan@example.com")) != 1 {
				t.Fatalf("the cart was not updated: %+v", p.fake.Calls())
			}
			if tc.orderedAt > 0 {
				o := *loadFact(t, "order_placed").Order
				o.Email, o.PaidAt = "dan@example.com", now.Add(tc.orderedAt)
				if tc.movingFrom != "" {
					o.Email = tc.movingFrom
					w := &history.Writes{}
					w.PutAlias("acme", tc.movingFrom, "dan@example.com", now)
					w.StartMove("acme", tc.movingFrom, "dan@example.com", now)
					if err := history.New(p.rt.Store).Commit(context.Background(), w); err != nil {
						t.Fatal(err)
					}
				}
				p.storeOrder(o.Email, o)
			}
			for _, step := range []time.Duration{30 * time.Minute, time.Hour, 29 * time.Minute} {
				p.clk.Advance(step)
				p.schedule()
				p.pump()
				if n := len(p.fake.Events(iterable.EventCartAbandoned)); n != 0 {
					t.Fatalf("cartAbandoned sent %s after the cart", p.clk.Now().Sub(now))
				}
			}
			p.clk.Advance(2 * time.Minute)
			p.schedule()
			p.pump()
			p.clk.Advance(time.Hour)
			p.schedule()
			p.pump()
			evs := p.fake.Events(iterable.EventCartAbandoned)
			if tc.wantEvent != (len(evs) == 1) || len(evs) > 1 {
				t.Fatalf("cartAbandoned events: %+v", evs)
			}
			if tc.wantEvent && evs[0].Fields["returnUrl"] != "https://shop.example.com/checkout/return/CART-7" {
				t.Fatalf("event fields: %v", evs[0].Fields)
			}
			if !tc.wantEvent {
				var note string
				for _, d := range p.deliveries() {
					if d.FactKind == string(iterable.KindCartReminder) {
						note = d.Note
					}
				}
				if !strings.Contains(note, "followed the cart") {
					t.Fatalf("the skipped reminder says %q", note)
				}
			}
		})
	}
}

// TestReviewRequestAndLink: a shipment schedules a review request a week later with one signed
// link per product; a link redirects to the merchant's page as a verified purchase; tampered or
// expired links get a page; a product asked about once is not asked again.
func TestReviewRequestAndLink(t *testing.T) {
	p := newPipeline(t, `,"review_wait":"7d","review_link_ttl":"14d"`)
	ctx := context.Background()
	shipped := loadFact(t, "order_shipped")
	o := *shipped.Order
	o.Items = append(o.Items, domain.LineItem{SKU: "TEA-12", Name: "Tea box", Quantity: 1})
	shipped.Order, shipped.OccurredAt = &o, now
	p.storeOrder("ann@example.com", o)
	p.schedule()
	p.send(shipped)
	p.pump()
	if len(p.fake.Events(iterable.EventOrderShipped)) != 1 {
		t.Fatalf("orderShipped: %+v", p.fake.Calls())
	}
	p.wait(7*24*time.Hour - time.Minute)
	if len(p.fake.Events(iterable.EventReviewRequest)) != 0 {
		t.Fatal("review request sent before the wait was over")
	}
	p.wait(2 * time.Minute)
	evs := p.fake.Events(iterable.EventReviewRequest)
	if len(evs) != 1 {
		t.Fatalf("review requests: %+v", evs)
	}
	items, _ := evs[0].Fields["items"].([]any)
	if len(items) != 2 {
		t.Fatalf("review items: %v", evs[0].Fields)
	}
	link := items[0].(map[string]any)["reviewUrl"].(string)
	u, err := url.Parse(link)
	if err != nil || !strings.HasPrefix(link, "https://hooks.example.com/review/") {
		t.Fatalf("review link %q", link)
	}
	open := func(path string) events.APIGatewayV2HTTPResponse {
		resp, err := p.rt.App.Connect(ctx, events.APIGatewayV2HTTPRequest{RawPath: path,
			RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: path}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := open(u.Path)
	if resp.StatusCode != 302 || resp.Headers["location"] != "https://shop.example.com/reviews/new?sku=MUG-01&verified_buyer=true" {
		t.Fatalf("review link answered %d %v", resp.StatusCode, resp.Headers)
	}
	if resp := open(u.Path[:len(u.Path)-3] + "AAA"); resp.StatusCode != 404 || !strings.Contains(resp.Body, "not valid") {
		t.Fatalf("tampered link answered %d", resp.StatusCode)
	}
	p.clk.Advance(15 * 24 * time.Hour)
	if resp := open(u.Path); resp.StatusCode != 410 || !strings.Contains(resp.Body, "expired") {
		t.Fatalf("expired link answered %d %s", resp.StatusCode, resp.Body)
	}

	// A second order with the same mug and a new product: only the new one is asked about.
	second := loadFact(t, "order_shipped")
	o2 := *second.Order
	o2.Key, o2.OrderID = "ultracart:UC-2002", "UC-2002"
	o2.Items = append(o2.Items, domain.LineItem{SKU: "SPOON-3", Name: "Spoon", Quantity: 1})
	second.Order, second.ID, second.OccurredAt = &o2, "acme:OrderShipped:ultracart:UC-2002:1Z1", p.clk.Now()
	p.storeOrder("ann@example.com", o2)
	p.send(second)
	p.pump()
	p.wait(7*24*time.Hour + time.Minute)
	evs = p.fake.Events(iterable.EventReviewRequest)
	if len(evs) != 2 {
		t.Fatalf("review requests: %d", len(evs))
	}
	items, _ = evs[1].Fields["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["sku"] != "SPOON-3" {
		t.Fatalf("second request asks about %v", items)
	}
}

// TestReviewRequestAfterDelivery: with review_after "delivery" a shipment (here one without a
// tracking number) starts no wait; the delivery does, and the request follows review_wait after
// it.
func TestReviewRequestAfterDelivery(t *testing.T) {
	p := newPipeline(t, `,"review_wait":"3d","review_after":"delivery"`)
	shipped := loadFact(t, "order_shipped_untracked")
	o := *shipped.Order
	shipped.OccurredAt = now
	p.storeOrder("ann@example.com", o)
	p.schedule()
	p.send(shipped)
	p.pump()
	if evs := p.fake.Events(iterable.EventOrderShipped); len(evs) != 1 || evs[0].Fields["tracked"] != false {
		t.Fatalf("orderShipped: %+v", evs)
	}
	p.wait(5 * 24 * time.Hour)
	if n := len(p.fake.Events(iterable.EventReviewRequest)); n != 0 {
		t.Fatalf("%d review requests before the delivery", n)
	}
	delivered := loadFact(t, "order_delivered")
	delivered.OccurredAt = p.clk.Now()
	p.send(delivered)
	p.pump()
	if n := len(p.fake.Events(iterable.EventOrderDelivered)); n != 1 {
		t.Fatalf("%d orderDelivered events", n)
	}
	p.wait(3*24*time.Hour - time.Hour)
	if n := len(p.fake.Events(iterable.EventReviewRequest)); n != 0 {
		t.Fatal("review request sent before review_wait after the delivery")
	}
	p.wait(2 * time.Hour)
	if n := len(p.fake.Events(iterable.EventReviewRequest)); n != 1 {
		t.Fatalf("%d review requests three days after the delivery, want 1", n)
	}
}

// TestChaos: 5xx, 429 and lost answers while a stream of orders for several contacts is
// delivered: every order is tracked exactly once, and every attempt is in the delivery log.
func TestChaos(t *testing.T) {
	p := newPipeline(t, "")
	var facts []domain.Fact
	for i := range 24 {
		facts = append(facts, orderFact(i, fmt.Sprintf("buyer%d@example.com", i%4)))
	}
	p.fake.Inject(iterablefake.Fault{Path: iterable.PathTrackPurchase, Status: 500, Times: 3})
	p.fake.Inject(iterablefake.Fault{Path: iterable.PathTrackPurchase, Status: 429, RetryAfter: "2", Times: 2})
	p.fake.Inject(iterablefake.Fault{Path: iterable.PathTrackPurchase, Status: 502, Applied: true, Times: 3})
	p.fake.Inject(iterablefake.Fault{Path: iterable.PathTrackPurchase, Status: 503, Body: "<title>Service Unavailable</title>", Times: 2})
	p.send(facts...)
	p.pump()
	purchases := p.fake.Purchases()
	if len(purchases) != len(facts) {
		t.Fatalf("%d purchases tracked for %d orders", len(purchases), len(facts))
	}
	seen := map[string]bool{}
	for _, pu := range purchases {
		if seen[pu.ID] {
			t.Fatalf("purchase %s tracked twice", pu.ID)
		}
		seen[pu.ID] = true
	}
	var retries int
	for _, d := range p.deliveries() {
		if d.Status == history.DeliveryRetry {
			retries++
			if len(d.Requests) == 0 {
				t.Fatalf("a failed attempt has no exchange: %+v", d)
			}
		}
		if d.Status == history.DeliveryParked {
			t.Fatalf("parked: %+v", d)
		}
	}
	if retries != 10 {
		t.Fatalf("%d retried attempts logged, want 10", retries)
	}
}

// TestCrashMidBatch: a forwarder dies after delivering part of a batch and before anything was
// acknowledged or marked done; after the restart every order is in Iterable once (the ones sent
// before the crash are updated by id, not added again).
func TestCrashMidBatch(t *testing.T) {
	p := newPipeline(t, "")
	var facts []domain.Fact
	for i := range 10 {
		facts = append(facts, orderFact(i, fmt.Sprintf("buyer%d@example.com", i)))
	}
	p.send(facts...)
	p.crashAfter = 5
	p.pump()
	purchases := p.fake.Purchases()
	if len(purchases) != 10 {
		t.Fatalf("%d purchases for 10 orders", len(purchases))
	}
	resent := 0
	for _, pu := range purchases {
		resent += pu.Updates
	}
	if resent != 5 {
		t.Fatalf("%d purchases were sent again, want the 5 from before the crash", resent)
	}
}

// TestEmailChangeThenPurchaseStayInOrder: an email change and then a purchase by the new
// address share the contact's FIFO group; the purchase waits while the change is retried, so
// Iterable moves the profile first and the purchase lands on it.
func TestEmailChangeThenPurchaseStayInOrder(t *testing.T) {
	p := newPipeline(t, "")
	p.send(loadFact(t, "contact_changed"))
	p.pump()
	change := loadFact(t, "email_changed")
	purchase := loadFact(t, "order_placed")
	purchase.Email = "ann.lee@example.com"
	o := *purchase.Order
	o.Email = purchase.Email
	purchase.Order = &o
	p.fake.Inject(iterablefake.Fault{Path: iterable.PathUsersUpdateEmail, Status: 503, Times: 2})
	p.send(change, purchase)
	p.pump()
	var order []string
	for _, c := range p.fake.Calls() {
		if c.Path == iterable.PathUsersUpdateEmail || c.Path == iterable.PathTrackPurchase {
			order = append(order, fmt.Sprintf("%s:%d", strings.TrimPrefix(c.Path, "/api/"), c.Status))
		}
	}
	want := "users/updateEmail:503 users/updateEmail:503 users/updateEmail:200 commerce/trackPurchase:200"
	if strings.Join(order, " ") != want {
		t.Fatalf("calls in order: %v\nwant %s", order, want)
	}
	if p.fake.User("ann@example.com") != nil {
		t.Fatal("the old address still has a profile")
	}
	u := p.fake.User("ann.lee@example.com")
	if u == nil || u["firstName"] != "Ann" {
		t.Fatalf("the new address did not get the moved profile: %v", u)
	}
	if pu := p.fake.Purchases(); len(pu) != 1 || pu[0].Email != "ann.lee@example.com" {
		t.Fatalf("purchases: %+v", pu)
	}
}
