package thrivecart

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

func TestKeyInvoice(t *testing.T) {
	tests := map[string]string{
		"000000004":     "",
		"000000004-1":   "",
		"000000004-2":   "000000004-2",
		"000000004-10":  "000000004-10",
		"000000004-02":  "",
		"000000004-":    "",
		"-2":            "",
		"":              "",
		"INV-2024-ABC":  "",
		"000000004-x2":  "",
		"000000004-123": "000000004-123",
	}
	for in, want := range tests {
		if got := keyInvoice(in); got != want {
			t.Errorf("keyInvoice(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOrderKeysFollowTheInvoiceRule(t *testing.T) {
	original := result(loadNamed(t, "order_success.json")).Events[0].Order
	rebill := result(loadNamed(t, "order_subscription_payment.json")).Events[1].Order
	refundOriginal := result(loadNamed(t, "order_refund_partial.json")).Events[0].Order
	refundRebill := result(loadNamed(t, "order_refund_rebill.json")).Events[0].Order
	if original.Key != "thrivecart:4417001" || refundOriginal.Key != original.Key {
		t.Errorf("original %s, refund of the original %s", original.Key, refundOriginal.Key)
	}
	if rebill.Key != "thrivecart:4417001:000000004-2" || refundRebill.Key != rebill.Key {
		t.Errorf("rebill %s, refund of the rebill %s", rebill.Key, refundRebill.Key)
	}
	if !rebill.Rebill || rebill.SubscriptionID != "3498801" || original.Rebill {
		t.Errorf("rebill flags: original %v, rebill %v (%s)", original.Rebill, rebill.Rebill, rebill.SubscriptionID)
	}
}

// TestRefundLinesUnion plays the ledger's rule on the refund fixtures: the cumulative refund
// is the sum of the union of lines by id, so redelivery does not double-count and a second
// partial refund adds up.
func TestRefundLinesUnion(t *testing.T) {
	var deliveries []Delivery
	for _, name := range []string{"order_refund_partial.form", "order_refund_partial.json", "order_refund_partial_second.json", "order_refund_partial.json"} {
		deliveries = append(deliveries, loadNamed(t, name))
	}
	lines := map[string]domain.Money{}
	for _, d := range deliveries {
		evs, err := normalizeFull(d, receivedAt)
		if err != nil {
			t.Fatal(err)
		}
		o := evs[0].Order
		if !o.Partial || len(o.Refunds) != 1 || o.Refunded != o.Refunds[0].Amount {
			t.Fatalf("refund order = partial %v, %d lines, refunded %s", o.Partial, len(o.Refunds), o.Refunded)
		}
		lines[o.Refunds[0].ID] = o.Refunds[0].Amount
	}
	var sum domain.Money
	for _, m := range lines {
		var err error
		if sum, err = sum.Add(m); err != nil {
			t.Fatal(err)
		}
	}
	if len(lines) != 2 || sum.String() != "29.96 GBP" {
		t.Errorf("union of %d lines sums to %s, want 2 lines, 11.98 + 17.98 = 29.96 GBP", len(lines), sum)
	}
}

func TestRefundLineID(t *testing.T) {
	base := func() Fields {
		return Fields{"event": EventOrderRefund, "order_id": "1", "invoice_id": "000000001", "currency": "USD",
			"customer": Fields{"email": "a@example.com"}, "refund": Fields{"type": "product", "id": "5", "amount": "500"}}
	}
	id := func(f Fields) string {
		evs, err := normalizeFull(Delivery{Event: EventOrderRefund, Fields: f}, receivedAt)
		if err != nil {
			t.Fatal(err)
		}
		return evs[0].Order.Refunds[0].ID
	}
	if got := id(base()); got != "000000001|product-5|500" {
		t.Errorf("id without a time = %q", got)
	}
	f := base()
	f["date_unix"] = "1715248800"
	if got := id(f); got != "000000001|product-5|500|1715248800" {
		t.Errorf("id with a time = %q", got)
	}
	f["refund"].(Fields)["transaction_id"] = "re_123"
	if got := id(f); got != "re_123" {
		t.Errorf("id with the processor's refund id = %q", got)
	}
}

func TestSubscriptionStatuses(t *testing.T) {
	tests := map[string]domain.SubscriptionStatus{
		"order_subscription_paused.json":    domain.SubPaused,
		"order_subscription_resumed.json":   domain.SubActive,
		"order_subscription_cancelled.json": domain.SubCancelled,
		"order_rebill_failed.json":          domain.SubPaymentFailed,
		"order_subscription_payment.json":   domain.SubActive,
	}
	for file, want := range tests {
		evs := result(loadNamed(t, file)).Events
		if len(evs) == 0 || evs[0].Sub == nil {
			t.Fatalf("%s: no subscription event", file)
		}
		s := evs[0].Sub
		if s.Status != want || s.ID != "3498801" || s.Key != "thrivecart:3498801" || s.Email != "olivia.grant@example.com" {
			t.Errorf("%s: %s %s %s, want %s", file, s.Key, s.Status, s.Email, want)
		}
	}
}

func TestSubscriptionIDResolution(t *testing.T) {
	tests := []struct {
		name string
		f    Fields
		want string
	}{
		{"subscription_id", Fields{"subscription_id": "9", "subscription": Fields{"id": "12"}}, "9"},
		{"subscription_ids entry of the item", Fields{"subscription_ids": Fields{"upsell-7": "8", "product-12": "7"},
			"subscription": Fields{"type": "upsell", "id": "7"}}, "8"},
		{"subscription_ids entry of the product", Fields{"subscription_ids": Fields{"product-12": "7"},
			"subscription": Fields{"product_id": "12"}}, "7"},
		{"subscription[id] as a last resort", Fields{"subscription": Fields{"id": "55"}}, "55"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f["customer"] = Fields{"email": "a@example.com"}
			evs, err := normalizeFull(Delivery{Event: EventSubscriptionCancelled, Fields: tt.f}, receivedAt)
			if err != nil {
				t.Fatal(err)
			}
			if s := evs[0].Sub; s.ID != tt.want || s.StatusAt != receivedAt {
				t.Errorf("id %q at %v, want %q at the receipt time", s.ID, s.StatusAt, tt.want)
			}
		})
	}
}

func TestFirstSubscriptionPaymentIsNotARebill(t *testing.T) {
	evs := result(loadNamed(t, "order_subscription_payment_first.json")).Events
	if len(evs) != 1 || evs[0].Sub == nil || evs[0].Sub.Status != domain.SubActive {
		t.Errorf("got %d events; want only the subscription", len(evs))
	}
}

func TestTestMode(t *testing.T) {
	o := result(loadNamed(t, "order_success_test.json")).Events[0].Order
	if !o.Test || o.Affiliate != nil || len(o.Coupons) != 0 {
		t.Errorf("test=%v affiliate=%v coupons=%v", o.Test, o.Affiliate, o.Coupons)
	}
	evs, err := normalizeFull(Delivery{Event: EventOrderSuccess, Fields: Fields{"mode_int": "1", "order_id": "1", "currency": "usd",
		"customer": Fields{"email": "a@example.com"}, "order": Fields{"total": "100"}}}, receivedAt)
	if err != nil || !evs[0].Order.Test || evs[0].Order.Total.String() != "1.00 USD" {
		t.Errorf("mode_int 1: %v, %+v", err, evs)
	}
}

func TestCustomerFields(t *testing.T) {
	f := Fields{"order_id": "1", "currency": "USD", "order": Fields{"total": "100"}, "affiliate": "4411",
		"customer": Fields{"email": " A@Example.com ", "name": "Ana Maria Souza", "phone": "(415) 555-0132",
			"address": Fields{"country": "us", "postcode": "94107"}}}
	evs, err := normalizeFull(Delivery{Event: EventOrderSuccess, Fields: f}, receivedAt)
	if err != nil {
		t.Fatal(err)
	}
	o := evs[0].Order
	if o.Email != "a@example.com" || o.Billing.FirstName != "Ana" || o.Billing.LastName != "Maria Souza" ||
		o.Billing.CountryCode != "US" || o.Billing.PostalCode != "94107" || o.Phone != "+14155550132" ||
		o.Affiliate == nil || o.Affiliate.ID != "4411" {
		t.Errorf("order contact = %s %+v %s %+v", o.Email, o.Billing, o.Phone, o.Affiliate)
	}
	if !o.CreatedAt.IsZero() || evs[0].OccurredAt != receivedAt {
		t.Errorf("an undated order occurs when received: %v", evs[0].OccurredAt)
	}
}

func TestNormalizeErrors(t *testing.T) {
	ok := func() Fields {
		return Fields{"order_id": "1", "invoice_id": "000000001", "currency": "USD", "subscription_id": "9",
			"customer": Fields{"email": "a@example.com"}, "order": Fields{"total": "100"},
			"refund": Fields{"amount": "50"}}
	}
	without := func(key string) Fields { f := ok(); delete(f, key); return f }
	with := func(key string, v any) Fields { f := ok(); f[key] = v; return f }
	tests := []struct {
		event   string
		f       Fields
		want    string
		unknown bool
	}{
		{EventOrderRefund, with("refund", Fields{"type": "product"}), "order.refund: refund[amount] is missing", false},
		{EventOrderRefund, with("refund", Fields{"amount": "12.5"}), `order.refund: refund[amount] "12.5" is not a whole number of cents`, false},
		{EventOrderRefund, with("refund", Fields{"amount": "ten"}), `order.refund: refund[amount] "ten" is not a number of cents`, false},
		{EventOrderRefund, without("currency"), "order.refund: currency is missing", false},
		{EventOrderSuccess, with("currency", "dollars"), `order.success: currency is "DOLLARS", which is not an ISO 4217 currency code, so the amounts cannot be counted`, false},
		{EventOrderSuccess, with("currency", "XYZ"), `order.success: currency is "XYZ", which is not an ISO 4217 currency code, so the amounts cannot be counted`, false},
		{EventOrderSuccess, without("customer"), "order.success: customer[email] is missing", false},
		{EventOrderSuccess, with("customer", Fields{"email": "nobody"}), `order.success: customer[email] is invalid: email "nobody" has no @`, false},
		{EventOrderSuccess, without("order_id"), "order.success: order_id is missing", false},
		{EventOrderSuccess, with("order", Fields{"tax": "1"}), "order.success: order[total] is missing", false},
		{EventOrderSuccess, with("order", Fields{"total": "1", "charges": []any{Fields{"reference": "1"}}}), "order.success: order[charges][0][amount] is missing", false},
		{EventOrderSuccess, with("order", Fields{"total": "1", "charges": []any{Fields{"reference": "1", "amount": "1.5"}}}), `order.success: order[charges][0][amount] "1.5" is not a whole number of cents`, false},
		{EventOrderSuccess, with("order", Fields{"total": "1", "charges": []any{Fields{"reference": "1", "amount": "10", "quantity": "3"}}}), "order.success: order[charges][0][amount] 10 cents do not divide into 3 equal units; unit_price is missing", false},
		{EventOrderSuccess, with("order", Fields{"total": "1", "charges": []any{"x"}}), "order.success: order[charges][0] is not an object", false},
		{EventSubscriptionCancelled, without("subscription_id"), "order.subscription_cancelled: subscription_id is missing", false},
		{EventSubscriptionPayment, with("subscription", Fields{"invoice_id": "000000001-2"}), "order.subscription_payment: subscription[amount] is missing", false},
		{EventCartAbandoned, Fields{"customer": Fields{"email": "a@example.com"}}, "cart.abandoned: base_product is missing", false},
		{"affiliate.commission_payout", ok(), "affiliate.commission_payout: is a ThriveCart event cartrelay does not interpret", true},
		{"order.teleported", ok(), "order.teleported: is not a ThriveCart webhook event cartrelay knows", true},
		{"", ok(), "(no event name): is not a ThriveCart webhook event cartrelay knows", true},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := normalizeFull(Delivery{Event: tt.event, Fields: tt.f}, receivedAt)
			var ee *EventError
			if !errors.As(err, &ee) {
				t.Fatalf("err = %v, want *EventError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("message:\n  got  %s\n  want %s", err, tt.want)
			}
			if errors.Is(err, ErrUnknownEvent) != tt.unknown || errors.Is(err, ErrInvalidEvent) == tt.unknown {
				t.Errorf("kind of %v", err)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	tests := map[string]string{
		"1714672981":                "2024-05-02T18:03:01Z",
		"2024-05-02T18:03:01+00:00": "2024-05-02T18:03:01Z",
		"2024-05-02T20:03:01+02:00": "2024-05-02T18:03:01Z",
		"2024-05-02 18:03:01":       "2024-05-02T18:03:01Z",
		"2024-05-02":                "2024-05-02T00:00:00Z",
		"0":                         "",
		"-5":                        "",
		"99999999999999":            "",
		"soon":                      "",
	}
	for in, want := range tests {
		got, ok := parseTime(in)
		if want == "" {
			if ok {
				t.Errorf("parseTime(%q) = %v, want no time", in, got)
			}
			continue
		}
		if !ok || got.Format(time.RFC3339) != want {
			t.Errorf("parseTime(%q) = %v %v, want %s", in, got, ok, want)
		}
	}
}

func TestHTMLEntitiesInNames(t *testing.T) {
	o := result(loadNamed(t, "order_success.form")).Events[0].Order
	if o.Items[0].Name != "Studio Membership & Community" || strings.Contains(o.Items[0].Name, "&amp;") {
		t.Errorf("name = %q", o.Items[0].Name)
	}
}
