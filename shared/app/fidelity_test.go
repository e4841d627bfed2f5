package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/queue"
)

const marcus = "marcus.reyes@example.com"

// kinds lists the kinds of the facts routed to a destination, in queue order.
func (h *harness) kinds(dest string) []string {
	var out []string
	for _, f := range h.sent[dest] {
		if f.Kind != domain.FactContactChanged {
			out = append(out, string(f.Kind))
		}
	}
	return out
}

// TestChargebackReachesBothDestinationsAndLTV: a chargeback takes the order out of the contact's
// net revenue while it stands, a won dispute brings it back, a redelivered report changes
// nothing, and both destinations hear each change once.
func TestChargebackReachesBothDestinationsAndLTV(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	h.postUC("acme", fixture(t, "ultracart", "order_create.json"))
	h.drainIngest()

	h.postUC("acme", fixture(t, "ultracart", "chargeback_create.json"))
	h.drainIngest()
	v := h.contact("acme", marcus)
	if v.Profile.LTV.Decimal() != "0.00" || v.Profile.ChargedBack.Decimal() != "59.98" || v.Orders[0].ChargedBack.Decimal() != "59.98" {
		t.Fatalf("after the chargeback: ltv %s charged back %s, order %s", v.Profile.LTV, v.Profile.ChargedBack, v.Orders[0].ChargedBack)
	}
	// UltraCart retries the same report, and sends the same dispute again as an update.
	h.postUC("acme", fixture(t, "ultracart", "chargeback_create.json"))
	h.postUC("acme", []byte(strings.Replace(string(fixture(t, "ultracart", "chargeback_create.json")), "chargeback_create", "chargeback_update", 1)))
	h.drainIngest()

	h.postUC("acme", fixture(t, "ultracart", "chargeback_update.json")) // Won
	h.drainIngest()
	v = h.contact("acme", marcus)
	if v.Profile.LTV.Decimal() != "59.98" || !v.Profile.ChargedBack.IsZero() {
		t.Fatalf("after the dispute was won: ltv %s charged back %s", v.Profile.LTV, v.Profile.ChargedBack)
	}
	for _, dest := range []string{ontraportQueue, iterableQueue} {
		cb := h.facts(dest, domain.FactOrderChargedBack)
		if len(cb) != 2 || cb[0].Chargeback.Delta.Decimal() != "59.98" || cb[1].Chargeback.Delta.Decimal() != "-59.98" {
			t.Fatalf("%s chargeback facts: %+v", dest, cb)
		}
	}
	// A deletion of the won dispute changes nothing more.
	h.postUC("acme", fixture(t, "ultracart", "chargeback_delete.json"))
	h.drainIngest()
	if n := len(h.facts(iterableQueue, domain.FactOrderChargedBack)); n != 2 {
		t.Fatalf("%d chargeback facts after the deletion, want 2", n)
	}
	if q := h.quarantined("acme"); len(q) != 0 {
		t.Fatalf("quarantined: %+v", q)
	}
}

// TestChargebackBeforeItsOrderWaitsInQuarantine: a report on an order cartrelay has not seen
// cannot be placed with a contact; it is kept with what to do, and a replay after the order
// applies it.
func TestChargebackBeforeItsOrderWaitsInQuarantine(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	body := `{"events":[{"chargeback_create":{"chargeback_dispute_oid":9,"order_id":"DEMO-0002001","amount":20,"currency":"USD",` +
		`"status":"Open","chargeback_dts":"2024-06-10T10:15:00-04:00"}}]}`
	h.postUC("acme", []byte(body))
	h.drainIngest()
	q := h.quarantined("acme")
	if len(q) != 1 || q[0].Kind != history.QuarantineInvalid || !strings.Contains(q[0].Reason, "has not received yet") {
		t.Fatalf("quarantined %+v", q)
	}
	h.postUC("acme", fixture(t, "ultracart", "order_create.json"))
	h.drainIngest()
	msg := queue.Message{Body: q[0].Message, Attributes: map[string]string{"account": "acme", "replay_of": q[0].ID}}
	if err := h.env.Queue.Send(context.Background(), queue.Ingest, []queue.Message{msg}); err != nil {
		t.Fatal(err)
	}
	h.drainIngest()
	v := h.contact("acme", marcus)
	if v.Profile.ChargedBack.Decimal() != "20.00" || v.Profile.LTV.Decimal() != "39.98" {
		t.Fatalf("after the replay: charged back %s ltv %s", v.Profile.ChargedBack, v.Profile.LTV)
	}
}

// TestRejectedOrDeletedAfterSentIsReversed: an order destinations were told about and later
// rejected or deleted is reversed once, and leaves the contact's revenue.
func TestRejectedOrDeletedAfterSentIsReversed(t *testing.T) {
	for _, c := range []struct{ fixture, id, why string }{
		{"order_reject.json", "DEMO-0002050", "rejected"},
		{"order_delete.json", "DEMO-0002060", "deleted"},
	} {
		t.Run(c.why, func(t *testing.T) {
			h := newHarness(t)
			h.account("acme", "")
			h.postUC("acme", []byte(strings.ReplaceAll(string(fixture(t, "ultracart", "order_create.json")), "DEMO-0002001", c.id)))
			h.drainIngest()
			h.postUC("acme", fixture(t, "ultracart", c.fixture))
			h.postUC("acme", fixture(t, "ultracart", c.fixture)) // a retry
			h.drainIngest()
			for _, dest := range []string{ontraportQueue, iterableQueue} {
				r := h.facts(dest, domain.FactOrderReversed)
				if len(r) != 1 || r[0].Reversal.Why != c.why || r[0].Reversal.Net.Decimal() != "59.98" {
					t.Fatalf("%s reversals: %+v", dest, r)
				}
			}
			v := h.contact("acme", marcus)
			if v.Profile.LTV.Decimal() != "0.00" || v.Profile.PurchaseCount != 0 {
				t.Fatalf("profile after the reversal: ltv %s count %d", v.Profile.LTV, v.Profile.PurchaseCount)
			}
		})
	}
}

// TestShipmentWithoutTrackingAndDelivery: a shipment is sent whether or not it has a number, and
// the trip out for delivery and the delivery are facts of their own.
func TestShipmentWithoutTrackingAndDelivery(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	h.postUC("acme", fixture(t, "ultracart", "order_create.json"))
	h.postUC("acme", fixture(t, "ultracart", "order_ship_untracked.json"))
	h.drainIngest()
	h.postUC("acme", fixture(t, "ultracart", "order_ship_out_for_delivery.json"))
	h.postUC("acme", fixture(t, "ultracart", "order_ship_delivered.json"))
	h.postUC("acme", fixture(t, "ultracart", "order_ship_delivered.json"))
	h.drainIngest()
	got := strings.Join(h.kinds(iterableQueue), " ")
	want := "OrderPlaced OrderShipped OrderShipped OrderOutForDelivery OrderDelivered"
	if got != want {
		t.Fatalf("iterable facts: %s\nwant %s", got, want)
	}
	shipped := h.facts(iterableQueue, domain.FactOrderShipped)
	if len(shipped[0].Tracking) != 0 || len(shipped[1].Tracking) != 1 {
		t.Fatalf("shipments: %+v then %+v", shipped[0].Tracking, shipped[1].Tracking)
	}
}
