package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/iterable/iterablefake"
	"github.com/cartrelay/cartrelay/shared/localrun"
	"github.com/cartrelay/cartrelay/shared/ontraport"
	"github.com/cartrelay/cartrelay/shared/ontraport/ontraportfake"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/signedhooks"
	"github.com/cartrelay/cartrelay/shared/signedhooks/hookfake"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// The chaos-delivery run: 50 orders of 10 contacts (5 each, all queued before the forwarder
// starts, so every contact has several facts in flight together) go to one destination while it
// answers 30% of requests with a 5xx, half of them after doing the work. Every fact must be
// delivered exactly once within chaosBound of simulated time.
const (
	chaosOrders   = 50
	chaosContacts = 10
	chaosBound    = 2 * time.Minute
	// chaosLatency is what each API call costs in simulated time. Batches are handled one at a
	// time (serve runs two per destination, Lambda more), so the figure errs on the slow side.
	chaosLatency = 100 * time.Millisecond
	// chaosTick is how far the clock moves when no message is visible: the local runtime's
	// pollers notice a message within 50 ms, Lambda's at once.
	chaosTick = 100 * time.Millisecond
	// chaosGiveUp ends a run that stalls, so that the test reports the stall rather than hangs.
	chaosGiveUp = 15 * time.Minute
	// ontraportBudget is ONTRAPORT's rolling limit (180 requests a minute), the account default.
	ontraportBudget = 180
)

// TestForwardChaos measures how long the facts of 50 orders take to reach each destination
// under a storm of 5xx answers, through the local runtime's own queue consumer
// (localrun.PollOnce) on the embedded queue and a fake clock. What it asserts is when the last
// fact was delivered, not that the queue drains in the end: a contact stalled behind a failure
// shows here as minutes. Each run is seeded (faults and retry jitter); CHAOS_RUNS=N runs N other
// seeds per destination, to see the spread.
func TestForwardChaos(t *testing.T) {
	seeds := []uint64{1, 2}
	if n, err := strconv.Atoi(os.Getenv("CHAOS_RUNS")); err == nil && n > 0 {
		seeds = seeds[:0]
		for i := range n {
			seeds = append(seeds, uint64(100+i))
		}
	}
	for _, dest := range []string{ontraportName, iterableName, signedhooks.Name} {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("%s seed %d", dest, seed), func(t *testing.T) { forwardChaos(t, dest, seed) })
		}
	}
}

// latency makes every request cost chaosLatency of simulated time.
type latency struct {
	clk  *clock.Fake
	next http.RoundTripper
}

func (l latency) RoundTrip(r *http.Request) (*http.Response, error) {
	l.clk.Advance(chaosLatency)
	return l.next.RoundTrip(r)
}

// chaosTarget is one destination under test, with its fake. A nil rnd builds it without faults.
type chaosTarget struct {
	dest deliver.Destination
	// faults counts the injected 5xx answers: before the work, and after it.
	faults func() (before, after int)
	// requests is how many requests the fake received.
	requests func() int
	// exactlyOnce checks the destination's side: one record per order, a profile per buyer.
	exactlyOnce func(t *testing.T, orders, emails []string)
}

func chaosOntraport(t *testing.T, h *harness, rnd *rand.Rand) chaosTarget {
	var before, after int
	fake := ontraportfake.New(ontraportfake.Options{AppID: "2_1_Chaos", APIKey: "op-chaos-key", Clock: h.clk, Limit: ontraportBudget,
		Fault: func(ontraportfake.Request) ontraportfake.Fault {
			if rnd == nil {
				return ontraportfake.None
			}
			switch x := rnd.Float64(); {
			case x < 0.15:
				before++
				return ontraportfake.ServerError
			case x < 0.30:
				after++
				return ontraportfake.ServerErrorAfter
			}
			return ontraportfake.None
		}})
	t.Cleanup(fake.Close)
	h.account("acme", fmt.Sprintf(`,"iterable":{"enabled":false},"ontraport":{"enabled":true,"app_id":"2_1_Chaos","api_key":"op-chaos-key","base_url":%q}`, fake.URL))
	dest := ontraport.New(ontraport.Options{Store: h.env.Store, Clock: h.clk,
		Sleep:      func(_ context.Context, d time.Duration) error { h.clk.Advance(d); return nil },
		HTTPClient: &http.Client{Timeout: 5 * time.Second, Transport: latency{h.clk, http.DefaultTransport}}})
	return chaosTarget{dest: dest,
		faults:   func() (int, int) { return before, after },
		requests: func() int { return len(fake.Calls()) },
		exactlyOnce: func(t *testing.T, orders, emails []string) {
			for _, o := range orders {
				if n := len(fake.TransactionsFor(o)); n != 1 {
					t.Errorf("order %s has %d transactions in ONTRAPORT, want 1", o, n)
				}
			}
			if n := len(fake.Transactions()); n != len(orders) {
				t.Errorf("ONTRAPORT holds %d transactions for %d orders", n, len(orders))
			}
			if n := len(fake.Contacts()); n != len(emails) {
				t.Errorf("ONTRAPORT holds %d contacts for %d buyers", n, len(emails))
			}
			if m := fake.MaxInWindow(); m > ontraportBudget {
				t.Errorf("ONTRAPORT saw %d requests in a rolling minute; its limit is %d", m, ontraportBudget)
			}
		}}
}

func chaosIterable(t *testing.T, h *harness, rnd *rand.Rand) chaosTarget {
	var before, after int
	fake, err := iterablefake.New(iterablefake.Options{APIKey: "it-chaos-key", Clock: h.clk, Chaos: func(string) *iterablefake.Fault {
		if rnd == nil {
			return nil
		}
		switch x := rnd.Float64(); {
		case x < 0.15:
			before++
			return &iterablefake.Fault{Status: 500}
		case x < 0.30:
			after++
			return &iterablefake.Fault{Status: 503, Applied: true}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	h.account("acme", fmt.Sprintf(`,"ontraport":{"enabled":false},"iterable":{"enabled":true,"api_key":"it-chaos-key","base_url":%q}`, fake.URL))
	client := fake.Client()
	client.Transport = latency{h.clk, client.Transport}
	dest, err := iterable.New(iterable.Deps{Store: h.env.Store, Clock: h.clk, HTTP: client, Keys: h.env.Keys,
		Sleep: func(_ context.Context, d time.Duration) error { h.clk.Advance(d); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	return chaosTarget{dest: dest,
		faults:   func() (int, int) { return before, after },
		requests: func() int { return len(fake.Calls()) },
		exactlyOnce: func(t *testing.T, orders, emails []string) {
			tracked := map[string]int{}
			for _, p := range fake.Purchases() {
				tracked[p.ID]++
			}
			for _, o := range orders {
				if tracked[o] != 1 {
					t.Errorf("order %s tracked %d times in Iterable, want 1", o, tracked[o])
				}
			}
			if len(tracked) != len(orders) {
				t.Errorf("Iterable holds %d purchases for %d orders", len(tracked), len(orders))
			}
			for _, e := range emails {
				if fake.User(e) == nil {
					t.Errorf("Iterable has no profile for %s", e)
				}
			}
		}}
}

// chaosWebhooks is the signed-webhooks destination against a receiver that verifies every
// signature with the Standard Webhooks library on the same fake clock.
func chaosWebhooks(t *testing.T, h *harness, rnd *rand.Rand) chaosTarget {
	var before, after int
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("c", 32)))
	fake, err := hookfake.New(hookfake.Options{Secrets: []string{secret}, Clock: h.clk, Chaos: func() (int, bool) {
		if rnd == nil {
			return 0, false
		}
		switch x := rnd.Float64(); {
		case x < 0.15:
			before++
			return 500, false
		case x < 0.30:
			after++
			return 503, true
		}
		return 0, false
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	h.account("acme", fmt.Sprintf(`,"ontraport":{"enabled":false},"iterable":{"enabled":false},"webhooks":{"enabled":true,"endpoints":{"shop":{"url":%q,"secret":%q}}}`, fake.URL, secret))
	client := fake.Client()
	client.Transport = latency{h.clk, client.Transport}
	dest := signedhooks.New(signedhooks.Options{Clock: h.clk, HTTP: client})
	return chaosTarget{dest: dest,
		faults:   func() (int, int) { return before, after },
		requests: func() int { return len(fake.Requests()) },
		exactlyOnce: func(t *testing.T, orders, emails []string) {
			for _, r := range fake.Requests() {
				if !r.Verified {
					t.Fatalf("a request to the receiver did not verify: %s", r.ID)
				}
			}
			// Each order's OrderPlaced was taken, and each contact's were first taken in the
			// order they were placed: the FIFO group held a contact's later facts back until
			// the earlier one was delivered.
			ids, bodies := fake.Taken()
			placed := map[string]int{}
			last := map[string]string{}
			for i, id := range ids {
				var p struct {
					Type string `json:"type"`
					Data struct {
						Email string `json:"email"`
						Order struct {
							Key string `json:"key"`
						} `json:"order"`
					} `json:"data"`
				}
				if err := json.Unmarshal(bodies[i], &p); err != nil {
					t.Fatalf("%s: %v", id, err)
				}
				if p.Type != string(domain.FactOrderPlaced) {
					continue
				}
				placed[p.Data.Order.Key]++
				if prev := last[p.Data.Email]; prev > p.Data.Order.Key {
					t.Errorf("%s: order %s was taken after %s, out of the contact's order", p.Data.Email, p.Data.Order.Key, prev)
				}
				last[p.Data.Email] = p.Data.Order.Key
			}
			for _, o := range orders {
				if placed[o] != 1 {
					t.Errorf("order %s taken %d times by the receiver, want 1", o, placed[o])
				}
			}
			if len(last) != len(emails) {
				t.Errorf("the receiver took orders of %d buyers, want %d", len(last), len(emails))
			}
		}}
}

// chaosTargets builds each registered destination over its fake, by name.
func chaosTargets() map[string]func(*testing.T, *harness, *rand.Rand) chaosTarget {
	return map[string]func(*testing.T, *harness, *rand.Rand) chaosTarget{
		ontraportName: chaosOntraport, iterableName: chaosIterable, signedhooks.Name: chaosWebhooks}
}

func forwardChaos(t *testing.T, dest string, seed uint64) {
	h := newHarnessWith(t, wiring.Options{Jitter: rand.New(rand.NewPCG(seed, 31))})
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(seed, 30))
	target := chaosTargets()[dest](t, h, rnd)

	var orders, emails []string
	for c := range chaosContacts {
		emails = append(emails, fmt.Sprintf("buyer%02d@example.com", c))
	}
	for i := range chaosOrders {
		c := i % chaosContacts
		id := fmt.Sprintf("CHAOS-%03d", i)
		body := string(fixture(t, "ultracart", "order_create.json"))
		body = strings.ReplaceAll(body, "marcus.reyes@example.com", emails[c])
		body = strings.ReplaceAll(body, "DEMO-0002001", id)
		// One UltraCart customer profile per buyer, or ingest would see email changes.
		body = strings.ReplaceAll(body, "600134", fmt.Sprint(700000+c))
		if r := h.postUC("acme", []byte(body)); r.StatusCode != 200 {
			t.Fatalf("webhook answered %d: %s", r.StatusCode, r.Body)
		}
		orders = append(orders, domain.OrderKey(domain.UltraCart, id, ""))
	}
	h.ingestOnly()
	queued := h.queued(dest)
	if queued < 2*chaosOrders {
		t.Fatalf("%d facts queued for %s, want an order and a profile update per order", queued, dest)
	}

	start := h.clk.Now()
	consumer := localrun.Consumer{Queue: dest, Handler: h.env.App.Forward(target.dest), BatchSize: queue.MaxBatch}
	batches := 0
	for h.clk.Now().Sub(start) < chaosGiveUp {
		n, err := localrun.PollOnce(ctx, consumer, h.env.Queue, h.clk, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			batches++
			continue
		}
		if h.queued(dest) == 0 {
			break
		}
		h.clk.Advance(chaosTick)
	}

	// When was each fact delivered, and how many times?
	repo := history.New(h.env.Store)
	log, err := repo.Deliveries(ctx, "acme", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	sent := map[string]int{}
	retried := 0
	for _, d := range log {
		switch d.Status {
		case history.DeliverySent:
			sent[d.FactID]++
		case history.DeliveryRetry:
			retried++
		case history.DeliveryParked:
			t.Errorf("fact %s parked: %s", d.FactID, d.Error)
		}
		if _, ok := sent[d.FactID]; !ok {
			sent[d.FactID] = 0
		}
	}
	var took []time.Duration
	for id, n := range sent {
		if n != 1 {
			t.Errorf("fact %s was delivered %d times", id, n)
		}
		raw, err := repo.FactDone(ctx, "acme", dest, id)
		if err != nil {
			t.Fatal(err)
		}
		var done struct{ At time.Time }
		if raw == nil || json.Unmarshal(raw, &done) != nil {
			continue
		}
		took = append(took, done.At.Sub(start))
	}
	if len(took) == 0 {
		t.Fatalf("nothing was delivered in %s", chaosGiveUp)
	}
	slices.Sort(took)
	last, median := took[len(took)-1], took[len(took)/2]
	before, after := target.faults()
	requests := target.requests()
	t.Logf("%s: %d facts of %d orders in %d batches, %d requests, %d failed deliveries retried (%d 5xx before the work, %d after); half delivered after %s, the last after %s of simulated time",
		dest, len(sent), chaosOrders, batches, requests, retried, before, after, median.Round(time.Second), last.Round(time.Second))

	if len(sent) != queued || len(took) != queued {
		t.Errorf("%d facts were queued; %d were attempted and %d delivered", queued, len(sent), len(took))
	}
	if last > chaosBound {
		msg := fmt.Sprintf("the last fact was delivered after %s; the bound is %s", last.Round(time.Second), chaosBound)
		if dest == ontraportName {
			// ONTRAPORT's own limit puts a floor under the figure: report it beside the failure.
			floor := time.Duration((requests-1)/ontraportBudget) * time.Minute
			msg += fmt.Sprintf(" (ONTRAPORT's %d requests a minute need at least %s for this run's %d requests)", ontraportBudget, floor, requests)
		}
		t.Error(msg)
	}
	for _, name := range []string{dest, dest + queue.DLQSuffix} {
		if n := h.queued(name); n != 0 {
			t.Errorf("%d message(s) left on %s", n, name)
		}
	}
	if before == 0 || after == 0 {
		t.Error("the run did not inject both kinds of 5xx; change the seed")
	}
	target.exactlyOnce(t, orders, emails)
}
