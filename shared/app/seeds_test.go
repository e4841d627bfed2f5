package app_test

import (
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// TestDeclinedPaymentReachesBothDestinations: UltraCart's order_payment_failed on an order that
// was never paid is one OrderPaymentFailed for each destination, however often it arrives, and
// the same order paid later is placed as usual.
func TestDeclinedPaymentReachesBothDestinations(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	declined := fixture(t, "ultracart", "order_payment_failed.json")
	h.postUC("acme", declined)
	h.postUC("acme", declined)
	h.drainIngest()
	for _, dest := range []string{queue.Ontraport, queue.Iterable} {
		if got := h.kinds(dest); strings.Join(got, ",") != string(domain.FactOrderPaymentFailed) {
			t.Fatalf("%s facts after a declined payment posted twice: %v", dest, got)
		}
	}
	paid := strings.NewReplacer("order_payment_failed", "order_payment_process", `"Declined"`, `"Processed"`).Replace(string(declined))
	paid = strings.Replace(paid, `"payment_status": "Processed"`, `"payment_status": "Processed", "payment_dts": "2024-05-02T15:00:00-04:00"`, 1)
	h.postUC("acme", []byte(paid))
	h.drainIngest()
	for _, dest := range []string{queue.Ontraport, queue.Iterable} {
		if got := h.kinds(dest); strings.Join(got, ",") != "OrderPaymentFailed,OrderPlaced" {
			t.Fatalf("%s facts after the order was paid: %v", dest, got)
		}
	}
}

// TestShipToReachesTheProfile: an UltraCart order's ship-to address lands on the contact and on
// the facts both destinations receive.
func TestShipToReachesTheProfile(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	raw := string(fixture(t, "ultracart", "order_create.json"))
	i := strings.Index(raw, `"shipping": {`)
	if i < 0 || !strings.Contains(raw[i:], `"city": "New York"`) {
		t.Fatal("the fixture's shipping address moved; update this test")
	}
	body := raw[:i] + strings.Replace(raw[i:], `"city": "New York"`, `"city": "Albany"`, 1)
	h.postUC("acme", []byte(body))
	h.drainIngest()
	v := h.contact("acme", marcus)
	if v.Profile.ShipTo.City != "Albany" || v.Profile.Address.City != "New York" {
		t.Fatalf("ship-to %+v, billing %+v", v.Profile.ShipTo, v.Profile.Address)
	}
	cc := h.facts(queue.Iterable, domain.FactContactChanged)
	if len(cc) == 0 || cc[len(cc)-1].Contact.ShipTo.City != "Albany" {
		t.Fatalf("profile facts %+v", cc)
	}
}
