package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// flaky fails every fact while broken is set: permanently or with a retryable error.
type flaky struct {
	broken    bool
	permanent bool
	delivered map[string]int
}

func (f *flaky) Name() string { return ontraportName }

func (f *flaky) Deliver(_ context.Context, _ accounts.Account, fact domain.Fact) (deliver.Outcome, error) {
	ex := []history.HTTPExchange{{Method: "POST", URL: "https://api.example.test/x", Status: 400}}
	if f.broken {
		err := errors.New("400 Bad Request: field lreferrer is read-only")
		if f.permanent {
			err = deliver.Permanent(err)
		}
		return deliver.Outcome{Exchanges: ex}, err
	}
	f.delivered[fact.ID]++
	return deliver.Outcome{Status: history.DeliverySent, Done: map[string]string{"id": "42"}}, nil
}

// forwardAll runs the forwarder over whatever is on dest's queue, once.
func (h *harness) forwardAll(d deliver.Destination) (failures int) {
	h.t.Helper()
	for {
		rs, failed := h.forwardOnce(d)
		if len(rs) == 0 {
			return failures
		}
		failures += len(failed)
	}
}

func TestParkedDeliveryIsVisibleAndReplayable(t *testing.T) {
	h := newHarness(t)
	h.account("acme", `,"iterable":{"enabled":false}`)
	h.postUC("acme", fixture(t, "ultracart", "order_create.json"))
	// Ingest without collecting the destination queue, so the forwarder gets the facts.
	h.ingestOnly()
	dest := &flaky{broken: true, permanent: true, delivered: map[string]int{}}
	if n := h.forwardAll(dest); n != 0 {
		t.Fatalf("a permanent failure was left on the queue %d time(s); it should be parked", n)
	}
	repo := history.New(h.env.Store)
	failed, err := repo.Deliveries(context.Background(), "acme", true, 0)
	if err != nil || len(failed) == 0 {
		t.Fatalf("parked deliveries not listed: %v %v", failed, err)
	}
	for _, d := range failed {
		if d.Status != history.DeliveryParked || d.Error == "" || len(d.Requests) == 0 {
			t.Fatalf("parked delivery lacks status, reason or request: %+v", d)
		}
	}
	dest.broken = false
	replayed, err := h.env.App.ReplayDeliveries(context.Background(), "acme", "")
	if err != nil || len(replayed) == 0 {
		t.Fatalf("replay: %v %v", replayed, err)
	}
	h.forwardAll(dest)
	placed := domain.OrderPlacedID("acme", domain.OrderKey(domain.UltraCart, "DEMO-0002001", ""))
	if dest.delivered[placed] != 1 {
		t.Fatalf("OrderPlaced delivered %d time(s) after the replay, want 1 (delivered: %v)", dest.delivered[placed], dest.delivered)
	}
	// A second replay finds nothing left to do.
	again, err := h.env.App.ReplayDeliveries(context.Background(), "acme", "")
	if err != nil || len(again) != 0 {
		t.Fatalf("second replay sent %d fact(s), err %v", len(again), err)
	}
}

func TestRetryableFailureStaysQueuedAndKeepsContactOrder(t *testing.T) {
	h := newHarness(t)
	h.account("acme", `,"iterable":{"enabled":false}`)
	h.postUC("acme", fixture(t, "ultracart", "order_create.json"))
	h.postUC("acme", fixture(t, "ultracart", "order_refund_partial.json"))
	h.ingestOnly()
	dest := &flaky{broken: true, delivered: map[string]int{}}
	if n := h.forwardAll(dest); n == 0 {
		t.Fatal("a retryable failure was not reported back to the queue")
	}
	if s, _ := h.env.Queue.Stats(context.Background(), ontraportQueue); s.Visible+s.InFlight == 0 {
		t.Fatal("the contact's facts left the queue although none was delivered")
	}
}

// batcher records bulk profile calls and fails the contacts named in refuse.
type batcher struct {
	flaky
	bulkCalls [][]string
	refuse    map[string]bool
}

func (b *batcher) DeliverProfiles(_ context.Context, _ accounts.Account, facts []domain.Fact) (deliver.BatchOutcome, error) {
	var ids []string
	out := deliver.BatchOutcome{Status: history.DeliverySent, Errors: map[string]error{},
		Exchanges: []history.HTTPExchange{{Method: "POST", URL: "https://api.example.test/users/bulkUpdate", Status: 200}}}
	for _, f := range facts {
		ids = append(ids, f.Email)
		if b.refuse[f.Email] {
			out.Errors[f.ID] = deliver.Permanent(errors.New("ForgottenUserError"))
		}
	}
	b.bulkCalls = append(b.bulkCalls, ids)
	return out, nil
}

func TestABacklogOfProfilesGoesInOneBulkCall(t *testing.T) {
	h := newHarness(t)
	// Orders from before forward_since only refresh profiles: the backlog a backfill makes.
	h.account("acme", `,"forward_since":"2030-01-01T00:00:00Z","iterable":{"enabled":false}`)
	for i := range 4 {
		body := strings.ReplaceAll(string(fixture(t, "ultracart", "order_create.json")), "marcus.reyes@example.com", fmt.Sprintf("buyer%d@example.com", i))
		body = strings.ReplaceAll(body, "DEMO-0002001", fmt.Sprintf("BULK-%d", i))
		h.postUC("acme", []byte(body))
	}
	h.ingestOnly()
	dest := &batcher{flaky: flaky{delivered: map[string]int{}}, refuse: map[string]bool{"buyer2@example.com": true}}
	h.forwardAll(dest)
	if len(dest.bulkCalls) != 1 || len(dest.bulkCalls[0]) != 4 {
		t.Fatalf("bulk calls %v, want one call with the 4 contacts", dest.bulkCalls)
	}
	if len(dest.delivered) != 0 {
		t.Fatalf("profiles also went one by one: %v", dest.delivered)
	}
	failed, _ := history.New(h.env.Store).Deliveries(context.Background(), "acme", true, 0)
	if len(failed) != 1 || failed[0].Email != "buyer2@example.com" || failed[0].Status != history.DeliveryParked {
		t.Fatalf("failed deliveries %+v, want buyer2 parked", failed)
	}
	// A second pass finds every other fact done.
	h.postUC("acme", fixture(t, "ultracart", "order_create.json"))
	h.ingestOnly()
	h.forwardAll(dest)
	if len(dest.bulkCalls) != 1 {
		t.Fatalf("a lone profile refresh went through the bulk path: %v", dest.bulkCalls)
	}
}

// scripted fails the facts named in fail (retryably) as many times as their count says.
type scripted struct {
	fail      map[string]int
	delivered []string
}

func (s *scripted) Name() string { return ontraportName }

func (s *scripted) Deliver(_ context.Context, _ accounts.Account, fact domain.Fact) (deliver.Outcome, error) {
	if s.fail[fact.ID] > 0 {
		s.fail[fact.ID]--
		return deliver.Outcome{Exchanges: []history.HTTPExchange{{Method: "POST", URL: "https://api.example.test/x", Status: 503}}},
			errors.New("503 Service Unavailable")
	}
	s.delivered = append(s.delivered, fact.ID)
	return deliver.Outcome{Status: history.DeliverySent}, nil
}

// forwardOnce receives one batch of dest's queue, forwards it and deletes what did not fail,
// as Lambda's event source mapping does. It returns the batch and the failed message ids.
func (h *harness) forwardOnce(d deliver.Destination) ([]queue.Received, map[string]bool) {
	h.t.Helper()
	ctx := context.Background()
	rs, err := h.env.Queue.Receive(ctx, d.Name(), queue.ReceiveOptions{Max: 10})
	if err != nil {
		h.t.Fatal(err)
	}
	if len(rs) == 0 {
		return nil, nil
	}
	resp, err := h.env.App.Forward(d)(ctx, toSQSEvent(d.Name(), rs))
	if err != nil {
		h.t.Fatal(err)
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	for _, r := range rs {
		if !failed[r.MessageID] {
			if err := h.env.Queue.Delete(ctx, d.Name(), r.ReceiptHandle); err != nil {
				h.t.Fatal(err)
			}
		}
	}
	return rs, failed
}

func factIDOf(t *testing.T, r queue.Received) string {
	t.Helper()
	var f domain.Fact
	if err := json.Unmarshal([]byte(r.Body), &f); err != nil {
		t.Fatal(err)
	}
	return f.ID
}

func messageIDs(rs []queue.Received) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.MessageID)
	}
	return out
}

// contactQueued queues one contact's facts for ONTRAPORT (an order and a partial refund) and
// returns them as a receive sees them, without keeping them in flight.
func (h *harness) contactQueued() []queue.Received {
	h.t.Helper()
	h.account("acme", `,"iterable":{"enabled":false}`)
	h.postUC("acme", fixture(h.t, "ultracart", "order_create.json"))
	h.postUC("acme", fixture(h.t, "ultracart", "order_refund_partial.json"))
	h.ingestOnly()
	ctx := context.Background()
	rs, err := h.env.Queue.Receive(ctx, ontraportQueue, queue.ReceiveOptions{Max: 10})
	if err != nil || len(rs) < 3 {
		h.t.Fatalf("want the contact's facts (at least 3) in one batch, got %d, %v", len(rs), err)
	}
	for _, r := range rs {
		if err := h.env.Queue.ChangeVisibility(ctx, ontraportQueue, r.ReceiptHandle, 0); err != nil {
			h.t.Fatal(err)
		}
	}
	return rs
}

// A contact's facts queued behind a failed one come back as soon as the failed fact's retry is
// due (seconds), not after the queue's visibility timeout (minutes); and a fact that waited
// behind others backs off by its own failures, not by how often it was received.
func TestAFailedFactHoldsItsContactOnlyForItsRetryDelay(t *testing.T) {
	h := newHarness(t)
	first := h.contactQueued()
	ctx := context.Background()
	dest := &scripted{fail: map[string]int{factIDOf(t, first[0]): 1, factIDOf(t, first[1]): 1}}
	rs, failed := h.forwardOnce(dest)
	if len(failed) != len(rs) || len(dest.delivered) != 0 {
		t.Fatalf("after the first fact failed, %d of %d messages were reported failed and %d delivered; want all held", len(failed), len(rs), len(dest.delivered))
	}
	if early, err := h.env.Queue.Receive(ctx, ontraportQueue, queue.ReceiveOptions{Max: 10}); err != nil || len(early) != 0 {
		t.Fatalf("right after the failure the queue handed out %d of the contact's messages (%v); want none before the failed one", len(early), err)
	}
	// A first failure retries within retryBase (1 s); the queue's default would be 3 minutes.
	h.clk.Advance(2 * time.Second)
	again, err := h.env.Queue.Receive(ctx, ontraportQueue, queue.ReceiveOptions{Max: 10})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := messageIDs(again), messageIDs(rs); !slices.Equal(got, want) {
		t.Fatalf("2 s after the failure the contact's messages came back as %v, want all of them in order %v", got, want)
	}
	for _, r := range again {
		if err := h.env.Queue.ChangeVisibility(ctx, ontraportQueue, r.ReceiptHandle, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Now the second fact fails, on its second receive: it is its own first failure.
	_, failed = h.forwardOnce(dest)
	if len(dest.delivered) != 1 || len(failed) != len(rs)-1 {
		t.Fatalf("delivered %v with %d failures; want the first fact delivered and the rest held", dest.delivered, len(failed))
	}
	second := factIDOf(t, rs[1])
	ds, err := history.New(h.env.Store).Deliveries(ctx, "acme", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.FactID == second && d.Attempt != 1 {
			t.Fatalf("the second fact's first failure is logged as attempt %d (its receive count), want 1", d.Attempt)
		}
	}
	h.clk.Advance(2 * time.Second)
	if got := h.forwardAll(dest); got != 0 || len(dest.delivered) != len(rs) {
		t.Fatalf("2 s after its first failure: %d failures, delivered %d of %d", got, len(dest.delivered), len(rs))
	}
}

// A fact the destination keeps failing is parked after GiveUpAfter failures of its own, and the
// contact's later facts, received every time with it, are then delivered instead of following
// it into the dead-letter queue.
func TestAFactIsParkedAfterItsOwnFailures(t *testing.T) {
	h := newHarness(t)
	peek := h.contactQueued()
	ctx := context.Background()
	head := factIDOf(t, peek[0])
	dest := &scripted{fail: map[string]int{head: 1000}}
	for round := 1; round <= app.GiveUpAfter; round++ {
		rs, failed := h.forwardOnce(dest)
		if len(rs) != len(peek) {
			t.Fatalf("round %d: received %d messages, want the contact's %d", round, len(rs), len(peek))
		}
		if round < app.GiveUpAfter && (len(failed) != len(rs) || len(dest.delivered) != 0) {
			t.Fatalf("round %d: %d of %d failed, %d delivered; want every message held", round, len(failed), len(rs), len(dest.delivered))
		}
		if round == app.GiveUpAfter && (len(failed) != 0 || len(dest.delivered) != len(rs)-1) {
			t.Fatalf("round %d: %d failed, %d delivered of %d; want the head parked and the rest delivered", round, len(failed), len(dest.delivered), len(rs))
		}
		h.clk.Advance(16 * time.Minute)
	}
	for _, name := range []string{ontraportQueue, ontraportQueue + queue.DLQSuffix} {
		if n := h.queued(name); n != 0 {
			t.Fatalf("%d message(s) left on %s", n, name)
		}
	}
	failed, err := history.New(h.env.Store).Deliveries(ctx, "acme", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) == 0 || failed[0].FactID != head || failed[0].Status != history.DeliveryParked ||
		!strings.Contains(failed[0].Error, fmt.Sprintf("gave up after %d failed deliveries", app.GiveUpAfter)) {
		t.Fatalf("latest failed delivery %+v, want %s parked after %d failures", failed[0], head, app.GiveUpAfter)
	}
}
