package ontraport

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/ontraport/ontraportfake"
)

// chargebackFact is OrderChargedBack for placed: the standing amount moved by delta to standing.
func chargebackFact(placed domain.Fact, delta, standing, state string) domain.Fact {
	o := *placed.Order
	cb := &domain.Chargeback{Delta: usd(delta), Standing: usd(standing), State: state, At: t0.Add(48 * time.Hour), Disputes: []string{"D1"}}
	return domain.Fact{ID: domain.OrderChargedBackID(testAcct, o.Key, cb.Standing, state), Account: testAcct,
		Kind: domain.FactOrderChargedBack, Email: placed.Email, OccurredAt: cb.At, Order: &o, Chargeback: cb}
}

func reversalFact(placed domain.Fact, why, net, refunded, charged string) domain.Fact {
	o := *placed.Order
	o.Status = domain.OrderRejected
	r := &domain.Reversal{Why: why, Net: usd(net), Refunded: usd(refunded), ChargedBack: usd(charged), At: t0.Add(72 * time.Hour)}
	return domain.Fact{ID: domain.OrderReversedID(testAcct, o.Key), Account: testAcct, Kind: domain.FactOrderReversed,
		Email: placed.Email, OccurredAt: r.At, Order: &o, Reversal: r}
}

// net is what ONTRAPORT's transactions of an order add up to.
func net(e *env, key string) ontraportfake.Amount {
	var n ontraportfake.Amount
	for _, tx := range e.fake.Transactions() {
		if tx.ExternalOrderID == key || strings.HasPrefix(tx.ExternalOrderID, key+":") {
			if tx.Status != 2 {
				n += tx.Total
			}
		}
	}
	return n
}

// TestChargebackTransactions: a chargeback is a negative transaction of the pseudo-product
// "Chargeback", a won dispute a positive one, each logged once under its own external id; the
// order's transactions add up to what the merchant keeps, and nothing is refunded.
func TestChargebackTransactions(t *testing.T) {
	e := newEnv(t)
	placed := orderFact("C-1", "cal@example.com", []domain.LineItem{lineItem("SKU-1", 1, "80.00")}, "0", "0", "0", "80.00")
	e.mustDeliver(placed)
	raised := chargebackFact(placed, "80.00", "80.00", "s1")
	out := e.mustDeliver(raised)
	if _, err := e.deliver(raised); err != nil { // redelivered before its marker: adopted
		t.Fatal(err)
	}
	txs := e.fake.TransactionsFor("ultracart:C-1:chargeback:s1")
	if len(txs) != 1 || txs[0].Total != ontraportfake.MustAmount("-80.00") {
		t.Fatalf("chargeback transactions %+v", txs)
	}
	if d := out.Done.(refundDone); d.Kind != "chargeback" || d.InvoiceID != txs[0].ID || d.Amount != "-80.00" {
		t.Fatalf("done %+v", d)
	}
	if n := net(e, "ultracart:C-1"); n != 0 {
		t.Fatalf("order nets %s while charged back, want 0", n)
	}
	won := chargebackFact(placed, "-80.00", "0.00", "s2")
	e.mustDeliver(won)
	if txs := e.fake.TransactionsFor("ultracart:C-1:chargeback:s2"); len(txs) != 1 || txs[0].Total != ontraportfake.MustAmount("80.00") {
		t.Fatalf("won dispute transactions %+v", txs)
	}
	if n := net(e, "ultracart:C-1"); n != ontraportfake.MustAmount("80.00") {
		t.Fatalf("order nets %s after the dispute was won, want 80.00", n)
	}
	if len(e.fake.Refunds()) != 0 {
		t.Fatalf("a chargeback refunded transactions: %+v", e.fake.Refunds())
	}
}

// TestReversals: an order rejected after it was logged is refunded with its own id (never an
// empty selection); one already partly refunded gets a negative transaction for what remained;
// an order that was never logged parks the reversal until it is.
func TestReversals(t *testing.T) {
	e := newEnv(t)
	whole := orderFact("V-1", "vic@example.com", []domain.LineItem{lineItem("SKU-1", 1, "40.00")}, "0", "0", "0", "40.00")
	e.mustDeliver(whole)
	inv := e.fake.TransactionsFor("ultracart:V-1")[0].ID
	rv := reversalFact(whole, "rejected", "40.00", "0", "0")
	out := e.mustDeliver(rv)
	if _, err := e.deliver(rv); err != nil { // a redelivery sees it refunded already
		t.Fatal(err)
	}
	var body struct {
		IDs []int64 `json:"ids"`
	}
	refunds := e.fake.CallsTo(http.MethodPut, pathRefund)
	if len(refunds) != 1 || json.Unmarshal([]byte(refunds[0].Body), &body) != nil || len(body.IDs) != 1 || body.IDs[0] != inv {
		t.Fatalf("refund requests %+v", refunds)
	}
	if d := out.Done.(refundDone); d.Kind != "full" || d.InvoiceID != inv || !strings.Contains(out.Note, "rejected") {
		t.Fatalf("done %+v note %q", d, out.Note)
	}

	part := orderFact("V-2", "vic@example.com", []domain.LineItem{lineItem("SKU-1", 2, "25.00")}, "0", "0", "0", "50.00")
	e.mustDeliver(part)
	e.mustDeliver(refundFact(part, "10.00", "10.00"))
	e.mustDeliver(chargebackFact(part, "15.00", "15.00", "s1"))
	e.mustDeliver(reversalFact(part, "deleted", "25.00", "10.00", "15.00"))
	if txs := e.fake.TransactionsFor("ultracart:V-2:reversal"); len(txs) != 1 || txs[0].Total != ontraportfake.MustAmount("-25.00") {
		t.Fatalf("reversal transactions %+v", txs)
	}
	if n := net(e, "ultracart:V-2"); n != 0 || len(e.fake.Refunds()) != 1 {
		t.Fatalf("order V-2 nets %s with %d refunds; want 0 and only V-1's", n, len(e.fake.Refunds()))
	}

	nothing := reversalFact(part, "deleted", "0.00", "50.00", "0")
	nothing.ID += "-again"
	if out, err := e.deliver(nothing); err != nil || out.Status != history.DeliverySkipped {
		t.Fatalf("nothing left to take back: %v %s", err, out.Status)
	}
	never := orderFact("V-3", "vic@example.com", []domain.LineItem{lineItem("SKU-1", 1, "5.00")}, "0", "0", "0", "5.00")
	if _, err := e.deliver(reversalFact(never, "rejected", "5.00", "0", "0")); !errors.Is(err, ErrNoTransaction) || !deliver.IsPermanent(err) {
		t.Fatalf("reversal of an order never logged: %v", err)
	}
}

// TestShipmentTags: shipments and deliveries tag the contact only when the account names a tag,
// and the tag is removed and added again so that every shipment starts an automation.
func TestShipmentTags(t *testing.T) {
	placed := orderFact("S-1", "sam@example.com", []domain.LineItem{lineItem("SKU-1", 1, "5.00")}, "0", "0", "0", "5.00")
	shipped := domain.Fact{ID: domain.OrderUntrackedShipmentID(testAcct, placed.Order.Key), Account: testAcct,
		Kind: domain.FactOrderShipped, Email: placed.Email, OccurredAt: t0, Order: placed.Order}
	delivered := shipped
	delivered.ID, delivered.Kind = domain.OrderDeliveredID(testAcct, placed.Order.Key), domain.FactOrderDelivered

	e := newEnv(t)
	if out, err := e.deliver(shipped); err != nil || out.Status != history.DeliverySkipped || !strings.Contains(out.Note, "ontraport.tags.shipped") {
		t.Fatalf("untagged shipment: %v %s %q", err, out.Status, out.Note)
	}
	e = newEnv(t, func(_ *ontraportfake.Options, _ *Options, a *accounts.Account) {
		set(a, "tags.shipped", "Order shipped", "tags.delivered", "Order delivered")
	})
	e.mustDeliver(shipped)
	e.mustDeliver(delivered)
	c, _ := e.fake.ContactByEmail("sam@example.com")
	if !c.Tags["Order shipped"] || !c.Tags["Order delivered"] {
		t.Fatalf("tags %v", c.Tags)
	}
	var adds, removes int
	for _, call := range e.fake.Calls() {
		if call.Path == pathTagByName && strings.Contains(call.Body, "Order shipped") {
			switch call.Method {
			case http.MethodPut:
				adds++
			case http.MethodDelete:
				removes++
			}
		}
	}
	if adds != 1 || removes != 1 {
		t.Fatalf("shipment tag: %d removals and %d additions, want one of each", removes, adds)
	}
}
