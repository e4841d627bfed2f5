package ontraport

import (
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/domain"
)

// declinedFact is OrderPaymentFailed for an order that was not paid.
func declinedFact(id, email string) domain.Fact {
	f := orderFact(id, email, []domain.LineItem{lineItem("SKU-1", 1, "20.00")}, "0", "0", "0", "20.00")
	o := *f.Order
	o.Status, o.PaidAt, o.PaymentFailedAt = domain.OrderPending, time.Time{}, t0
	return domain.Fact{ID: domain.OrderPaymentFailedID(testAcct, o.Key), Account: testAcct, Kind: domain.FactOrderPaymentFailed,
		Email: email, OccurredAt: t0, Order: &o}
}

// TestPaymentDeclined: a declined one-off payment sets the contact's payment status field to the
// declined word and tags the contact (removed and added again at every decline, so an automation
// runs each time); the order paid after all sets the field to paid and takes the tag off.
func TestPaymentDeclined(t *testing.T) {
	e := newEnv(t)
	key := e.fake.AddField("Last Payment Status")
	first := declinedFact("D-1", "dee@example.com")
	out := e.mustDeliver(first)
	c, ok := e.fake.ContactByEmail("dee@example.com")
	if !ok || c.Fields[key] != "card declined" || !c.Tags["Payment declined"] || c.Fields["firstname"] != "Ann" {
		t.Fatalf("after a decline: %+v (done %+v)", c, out.Done)
	}
	if n := len(e.fake.Transactions()); n != 0 {
		t.Fatalf("a declined payment logged %d transactions", n)
	}
	e.mustDeliver(declinedFact("D-2", "dee@example.com"))
	if adds, removes := calls(e, "PUT", "/objects/tagByName"), calls(e, "DELETE", "/objects/tagByName"); adds != 2 || removes != 2 {
		t.Fatalf("two declines: %d tag adds, %d removals; want the tag removed and added each time", adds, removes)
	}

	paid := orderFact("D-1", "dee@example.com", []domain.LineItem{lineItem("SKU-1", 1, "20.00")}, "0", "0", "0", "20.00")
	paid.Order.PaymentFailedAt = t0
	e.mustDeliver(paid)
	c, _ = e.fake.ContactByEmail("dee@example.com")
	if c.Fields[key] != "paid" || c.Tags["Payment declined"] || len(e.fake.Transactions()) != 1 {
		t.Fatalf("after the declined order was paid: field %q, tags %v, %d transactions", c.Fields[key], c.Tags, len(e.fake.Transactions()))
	}
}

// TestPaymentDeclinedSettings: the word follows subscription_status.payment_failed, the tag
// tags.payment_declined ("-": none), and orders off turn the flow off.
func TestPaymentDeclinedSettings(t *testing.T) {
	e := newEnv(t, withAccount(func(a *accounts.Account) {
		set(a, "subscription_status.payment_failed", "declined", "tags.payment_declined", "-", "fields.payment_status", "Pay")
	}))
	key := e.fake.AddField("Pay")
	e.mustDeliver(declinedFact("D-3", "eve@example.com"))
	c, _ := e.fake.ContactByEmail("eve@example.com")
	if c.Fields[key] != "declined" || len(c.Tags) != 0 || calls(e, "PUT", "/objects/tagByName") != 0 {
		t.Fatalf("field %q tags %v", c.Fields[key], c.Tags)
	}

	off := newEnv(t, withAccount(func(a *accounts.Account) { set(a, "disable_orders", true) }))
	out := off.mustDeliver(declinedFact("D-4", "eve@example.com"))
	if out.Status != "skipped" || len(off.fake.Calls()) != 0 {
		t.Fatalf("orders off: status %s, %d calls", out.Status, len(off.fake.Calls()))
	}
}
