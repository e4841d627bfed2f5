package app_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/accounts"
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

func (f *flaky) Name() string { return queue.Ontraport }

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
	ctx := context.Background()
	for {
		rs, err := h.env.Queue.Receive(ctx, d.Name(), queue.ReceiveOptions{Max: 10})
		if err != nil {
			h.t.Fatal(err)
		}
		if len(rs) == 0 {
			return failures
		}
		resp, err := h.env.App.Forward(d)(ctx, toSQSEvent(d.Name(), rs))
		if err != nil {
			h.t.Fatal(err)
		}
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		failures += len(failed)
		for _, r := range rs {
			if !failed[r.MessageID] {
				h.env.Queue.Delete(ctx, d.Name(), r.ReceiptHandle)
			}
		}
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
	if s, _ := h.env.Queue.Stats(context.Background(), queue.Ontraport); s.Visible+s.InFlight == 0 {
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
