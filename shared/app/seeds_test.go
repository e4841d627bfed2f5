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
