package app_test

import (
	"context"
	"errors"
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
