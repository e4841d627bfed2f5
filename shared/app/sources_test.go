package app_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// TestUnregisteredSourceIsKeptWithAReason: an event of a source that is not registered (one
// queued before its source was removed, say) is kept raw, with a reason naming the sources
// there are, and a poll job for it is dropped rather than retried for ever.
func TestUnregisteredSourceIsKeptWithAReason(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	ctx := context.Background()
	se := app.SourceEvent{Account: "acme", Source: "shopify", Name: "orders/create", Payload: json.RawMessage(`{"id":1}`),
		ReceivedAt: h.clk.Now(), Delivery: "d1", Via: "webhook"}
	body, err := app.EncodeSourceEvent(ctx, h.env.Store, h.clk.Now(), se)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.env.Queue.Send(ctx, queue.Ingest, []queue.Message{{ID: "e0", Body: body,
		Attributes: map[string]string{"account": "acme", "source": "shopify"}}}); err != nil {
		t.Fatal(err)
	}
	h.drainIngest()
	q := h.quarantined("acme")
	if len(q) != 1 || !strings.Contains(q[0].Reason, `unknown source "shopify"`) || !strings.Contains(q[0].Reason, "ultracart, thrivecart") {
		t.Fatalf("quarantined %+v; want the event kept with a reason naming the source and the registered ones", q)
	}

	job := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "p1", Body: `{"account":"acme","source":"shopify","stream":"orders"}`}}}
	resp, err := h.env.App.Poll(ctx, job)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("poll job of an unregistered source: %+v, %v; want it dropped", resp, err)
	}
	if n := h.queued(queue.Poll); n != 0 {
		t.Fatalf("%d poll job(s) queued for an unregistered source", n)
	}
}
