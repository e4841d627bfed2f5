package app_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// postTC posts a ThriveCart JSON webhook fixture.
func (h *harness) postTC(account, name string) {
	h.t.Helper()
	resp, err := h.env.App.Webhook(context.Background(), httpReq("POST", "/webhooks/thrivecart/"+account, "application/json",
		fixture(h.t, "thrivecart", name), nil))
	if err != nil || resp.StatusCode != 200 {
		h.t.Fatalf("webhook %s: %v %d %s", name, err, resp.StatusCode, resp.Body)
	}
}

// pollTC puts polled transaction records on the ingest queue the way the poll sink does.
func (h *harness) pollTC(account string, names ...string) {
	h.t.Helper()
	ctx := context.Background()
	now := h.clk.Now()
	var msgs []queue.Message
	for i, name := range names {
		e := app.SourceEvent{Account: account, Source: domain.ThriveCart, Name: "transaction",
			Payload: fixture(h.t, "thrivecart", "transactions/"+name), ReceivedAt: now,
			Delivery: "poll:thrivecart:transactions:backfill:1", Index: i, Via: "poll"}
		body, err := app.EncodeSourceEvent(ctx, h.env.Store, now, e)
		if err != nil {
			h.t.Fatal(err)
		}
		msgs = append(msgs, queue.Message{ID: fmt.Sprintf("e%d", i), Body: body,
			Attributes: map[string]string{"account": account, "source": string(domain.ThriveCart), "event": "transaction"}})
	}
	if err := h.env.Queue.Send(ctx, queue.Ingest, msgs); err != nil {
		h.t.Fatal(err)
	}
}

func TestThriveCartPollNextToWebhook(t *testing.T) {
	type step struct {
		webhook string
		polled  []string
	}
	sale := step{webhook: "order_success.json", polled: []string{"charge_base.json", "charge_bump.json"}}
	rebill := step{webhook: "order_subscription_payment.json", polled: []string{"rebill.json"}}
	refund := step{webhook: "order_refund_partial.json", polled: []string{"refund_partial.json"}}
	for _, tc := range []struct {
		name       string
		pollFirst  bool
		steps      []step
		sales      map[string]int64 // order key -> total in cents
		refundedBy int64
	}{
		{name: "webhook then poll", steps: []step{sale, rebill, refund},
			sales: map[string]int64{"thrivecart:4417001": 7676, "thrivecart:4417001:000000004-2": 5880}, refundedBy: 1198},
		{name: "poll then webhook", pollFirst: true, steps: []step{sale, rebill, refund},
			sales: map[string]int64{"thrivecart:4417001": 7676, "thrivecart:4417001:000000004-2": 5880}, refundedBy: 1198},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.account("acme", "")
			for _, s := range tc.steps {
				if tc.pollFirst {
					h.pollTC("acme", s.polled...)
					h.drainIngest()
					h.postTC("acme", s.webhook)
				} else {
					h.postTC("acme", s.webhook)
					h.drainIngest()
					h.pollTC("acme", s.polled...)
				}
				h.drainIngest()
			}
			if q := h.quarantined("acme"); len(q) > 0 {
				t.Fatalf("quarantined: %s", q[0].Reason)
			}
			placed := h.facts(ontraportQueue, domain.FactOrderPlaced)
			if len(placed) != len(tc.sales) {
				t.Fatalf("%d sales, want %d", len(placed), len(tc.sales))
			}
			for _, f := range placed {
				if want, ok := tc.sales[f.Order.Key]; !ok || f.Order.Total.Minor != want {
					t.Errorf("sale %s counted at %v", f.Order.Key, f.Order.Total)
				}
			}
			refunds := h.facts(ontraportQueue, domain.FactOrderRefunded)
			if len(refunds) != 1 || refunds[0].Refund.Delta.Minor != tc.refundedBy || refunds[0].Order.Key != "thrivecart:4417001" {
				t.Fatalf("refunds: %+v", refunds)
			}
			v := h.contact("acme", "olivia.grant@example.com")
			if v.Profile == nil || v.Profile.PurchaseCount != 2 {
				t.Fatalf("profile: %+v", v.Profile)
			}
			checked := 0
			for _, o := range v.Orders {
				switch o.Key {
				case "thrivecart:4417001", "thrivecart:4417001:000000004-2":
					checked++
				}
				if o.Key == "thrivecart:4417001" && (len(o.Items) != 3 || o.Tax.Minor != 1279 || o.Affiliate == nil) {
					t.Errorf("the polled charges replaced the webhook's order: %+v", o)
				}
				if o.Key == "thrivecart:4417001:000000004-2" && (o.Tax.Minor != 980 || o.SubscriptionID != "3498801") {
					t.Errorf("the polled rebill replaced the webhook's rebill: %+v", o)
				}
			}
			if checked != 2 {
				t.Errorf("%d of the 2 orders stored", checked)
			}
		})
	}
}
