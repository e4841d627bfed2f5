package ultracart

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

func TestParseTime(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		in      string
		want    string // RFC 3339 UTC; "" for the zero time
		wantErr bool
	}{
		{"", "", false},
		{"2021-05-18T14:03:01-04:00", "2021-05-18T18:03:01Z", false},
		{"2021-05-18T14:03:01.123-04:00", "2021-05-18T18:03:01.123Z", false},
		{"2021-05-18T18:03:01Z", "2021-05-18T18:03:01Z", false},
		{"2021-05-18T14:03:01-0400", "2021-05-18T18:03:01Z", false},
		{"2021-05-18 14:03:01-04:00", "2021-05-18T18:03:01Z", false},
		{" 2021-05-18T14:03:01+02:00 ", "2021-05-18T12:03:01Z", false},
		// No offset: US Eastern wall time.
		{"2021-05-18T14:03:01", "2021-05-18T18:03:01Z", false},     // EDT
		{"2021-01-18T14:03:01", "2021-01-18T19:03:01Z", false},     // EST
		{"2021-01-18T14:03:01.5", "2021-01-18T19:03:01.5Z", false}, // fraction
		{"2021-01-18 14:03:01", "2021-01-18T19:03:01Z", false},     // space
		{"2024-03-14", "2024-03-14T04:00:00Z", false},              // date only, EDT
		{"2024-03-10T01:59:59", "2024-03-10T06:59:59Z", false},     // last EST second
		{"2024-03-10T03:00:00", "2024-03-10T07:00:00Z", false},     // first EDT second
		{"2024-11-03T00:59:59", "2024-11-03T04:59:59Z", false},     // EDT
		{"2024-11-03T01:30:00", "2024-11-03T05:30:00Z", false},     // repeated hour: read as EDT
		{"2024-11-03T02:00:00", "2024-11-03T07:00:00Z", false},     // EST again
		{"2006-04-02T03:00:00", "2006-04-02T07:00:00Z", false},     // pre-2007 rule: EDT from first Sunday of April
		{"2006-03-15T12:00:00", "2006-03-15T17:00:00Z", false},     // pre-2007 rule: still EST in March
		{"2006-10-29T01:00:00", "2006-10-29T05:00:00Z", false},     // pre-2007 rule: last Sunday of October
		{"2006-10-29T02:30:00", "2006-10-29T07:30:00Z", false},     //   and EST after 02:00
		{"yesterday", "", true},
		{"05/18/2021", "", true},
		{"2021-13-01T00:00:00Z", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTime(Text(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.want == "" {
				if !got.IsZero() {
					t.Errorf("got %v, want zero", got)
				}
				return
			}
			if w := utc(tt.want); !got.Equal(w) || got.Location() != time.UTC {
				t.Errorf("got %v, want %v", got, w)
			}
		})
	}
}

// orderWith returns the plain order fixture's payload with fields replaced (nil deletes).
func orderWith(t *testing.T, changes map[string]any) json.RawMessage {
	t.Helper()
	var env struct {
		Events []map[string]map[string]any `json:"events"`
	}
	if err := json.Unmarshal(readFixture(t, "order_create.json"), &env); err != nil {
		t.Fatal(err)
	}
	o := env.Events[0]["order_create"]
	for k, v := range changes {
		if v == nil {
			delete(o, k)
			continue
		}
		o[k] = v
	}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func normalizeOrder(t *testing.T, name string, payload json.RawMessage) *domain.Order {
	t.Helper()
	evs, err := normalizeFull(RawEvent{Index: 0, Name: name, Payload: payload}, receivedAt)
	if err != nil {
		t.Fatalf("Normalize: %v", err)
	}
	if len(evs) != 1 || evs[0].Order == nil {
		t.Fatalf("got %d events, want one order event", len(evs))
	}
	return evs[0].Order
}

func TestOrderStatus(t *testing.T) {
	processed := map[string]any{"payment_dts": "2024-05-02T14:03:09-04:00", "payment_status": "Processed"}
	unpaid := map[string]any{"payment_status": "Unprocessed"}
	tracking := map[string]any{"tracking_numbers": []string{"1Z999"}, "country_code": "US"}
	tests := []struct {
		name    string
		event   string
		changes map[string]any
		want    domain.OrderStatus
	}{
		{"paid by payment_dts", "order_create", map[string]any{"current_stage": "Accounts Receivable", "payment": processed}, domain.OrderPaid},
		{"unpaid accounts receivable", "order_create", map[string]any{"current_stage": "Accounts Receivable", "payment": unpaid}, domain.OrderPending},
		{"payment status Processed without date", "order_update", map[string]any{"payment": map[string]any{"payment_status": "Processed"}}, domain.OrderPaid},
		{"payment status Refunded counts as paid", "order_refund", map[string]any{"payment": map[string]any{"payment_status": "Refunded"}}, domain.OrderPaid},
		{"shipping department without payment details", "order_update", map[string]any{"current_stage": "Shipping Department", "payment": nil}, domain.OrderPaid},
		{"completed order with a declined payment", "order_update", map[string]any{"current_stage": "Completed Order", "payment": map[string]any{"payment_status": "Declined"}}, domain.OrderPending},
		{"pending clearance", "order_update", map[string]any{"current_stage": "Pending Clearance", "payment": unpaid}, domain.OrderPending},
		{"paid with tracking", "order_update", map[string]any{"payment": processed, "shipping": tracking}, domain.OrderShipped},
		{"paid and order_ship", "order_ship", map[string]any{"payment": processed}, domain.OrderShipped},
		{"unpaid with tracking stays pending", "order_update", map[string]any{"current_stage": "Accounts Receivable", "payment": unpaid, "shipping": tracking}, domain.OrderPending},
		{"quote request", "order_create", map[string]any{"current_stage": "Quote Request", "payment": processed}, domain.OrderPending},
		{"quote sent", "order_update", map[string]any{"current_stage": "Quote Sent"}, domain.OrderPending},
		{"rejected stage", "order_update", map[string]any{"current_stage": "Rejected"}, domain.OrderRejected},
		{"reject_dts", "order_update", map[string]any{"reject_dts": "2024-05-04T08:12:00-04:00"}, domain.OrderRejected},
		{"order_reject event", "order_reject", map[string]any{}, domain.OrderRejected},
		{"order_delete wins", "order_delete", map[string]any{"current_stage": "Rejected"}, domain.OrderDeleted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := normalizeOrder(t, tt.event, orderWith(t, tt.changes)).Status; got != tt.want {
				t.Errorf("status = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestOrderRebill(t *testing.T) {
	ao := func(orig string) map[string]any {
		return map[string]any{"auto_order_oid": 5, "auto_order_code": "AO-X", "original_order_id": orig,
			"items": []map[string]any{{"original_item_id": "TEA-SAMPLER"}}}
	}
	tests := []struct {
		name      string
		autoOrder any
		rebill    bool
		subID     string
		itemSubID [2]string
	}{
		{"no auto order", nil, false, "", [2]string{}},
		{"original subscription order", ao("DEMO-0002001"), false, "AO-X", [2]string{"AO-X", ""}},
		{"rebill", ao("DEMO-0001000"), true, "AO-X", [2]string{"AO-X", ""}},
		// Without the auto order's items, every line of a rebill is the subscription's.
		{"oid only", map[string]any{"auto_order_oid": "77", "original_order_id": "DEMO-0001000"}, true, "77", [2]string{"77", "77"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := normalizeOrder(t, "order_create", orderWith(t, map[string]any{"auto_order": tt.autoOrder}))
			if o.Rebill != tt.rebill || o.SubscriptionID != tt.subID {
				t.Errorf("rebill=%v sub=%q, want %v %q", o.Rebill, o.SubscriptionID, tt.rebill, tt.subID)
			}
			if got := [2]string{o.Items[0].SubscriptionID, o.Items[1].SubscriptionID}; got != tt.itemSubID {
				t.Errorf("item subscription ids = %q, want %q", got, tt.itemSubID)
			}
		})
	}
}

func TestOrderCurrency(t *testing.T) {
	eur := map[string]any{"value": 10.00, "localized": 9.20, "currency_code": "EUR"}
	gbp := map[string]any{"value": "10.00", "localized": "10.00", "currency_code": "GBP"}
	tests := []struct {
		name         string
		opt          Options
		changes      map[string]any
		wantCurrency string
		wantCustomer string
	}{
		{"usd order", Options{}, map[string]any{}, "USD", "59.98 USD"},
		{"gbp merchant selling in gbp", Options{}, map[string]any{"currency_code": "GBP", "exchange_rate": 1,
			"summary": map[string]any{"total": gbp}}, "GBP", "10.00 GBP"},
		{"foreign order without configured base assumes usd", Options{}, map[string]any{"currency_code": "EUR", "exchange_rate": 0.92,
			"summary": map[string]any{"total": eur}}, "USD", "9.20 EUR"},
		{"configured base currency", Options{BaseCurrency: "cad"}, map[string]any{"currency_code": "EUR", "exchange_rate": 0.68,
			"summary": map[string]any{"total": eur}}, "CAD", "9.20 EUR"},
		{"localized rounded half-even", Options{}, map[string]any{"currency_code": "EUR", "exchange_rate": 0.92,
			"summary": map[string]any{"total": map[string]any{"value": 10, "localized": 9.205, "currency_code": "EUR"}}}, "USD", "9.20 EUR"},
		{"no currency code falls back to the summary's", Options{}, map[string]any{"currency_code": nil, "exchange_rate": nil,
			"summary": map[string]any{"total": gbp}}, "GBP", "10.00 GBP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := NormalizeWith(RawEvent{Name: "order_create", Payload: orderWith(t, tt.changes)}, receivedAt, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			o := evs[0].Order
			if o.Currency != tt.wantCurrency || o.Total.Currency != tt.wantCurrency || o.CustomerTotal.String() != tt.wantCustomer {
				t.Errorf("currency %s total %s customer %s; want %s, customer %s", o.Currency, o.Total, o.CustomerTotal, tt.wantCurrency, tt.wantCustomer)
			}
		})
	}
	for _, base := range []string{"dollars", "XYZ"} {
		_, err := NormalizeWith(RawEvent{Name: "order_create", Payload: orderWith(t, nil)}, receivedAt, Options{BaseCurrency: base})
		if !errors.Is(err, ErrInvalidEvent) || !errors.Is(err, domain.ErrUnknownCurrency) ||
			!strings.Contains(err.Error(), `ultracart.base_currency "`+base+`"`) {
			t.Errorf("base currency %q: err = %v", base, err)
		}
	}
}

// TestUnknownCurrencyIsRefused: a currency code the payload gives must be an ISO 4217 one,
// wherever it is, or the event is refused with the field named.
func TestUnknownCurrencyIsRefused(t *testing.T) {
	xyz := map[string]any{"value": "10.00", "localized": "10.00", "currency_code": "XYZ"}
	for _, tt := range []struct {
		name    string
		event   string
		payload json.RawMessage
		field   string
	}{
		{"order currency", "order_create", orderWith(t, map[string]any{"currency_code": "XYZ", "exchange_rate": 1}), "currency_code"},
		{"foreign order currency", "order_create", orderWith(t, map[string]any{"currency_code": "XYZ", "exchange_rate": 0.9}), "currency_code"},
		{"summary total currency", "order_create", orderWith(t, map[string]any{"currency_code": nil,
			"summary": map[string]any{"total": xyz}}), "summary.total.currency_code"},
		{"cart base currency", "checkout_cart_abandon", json.RawMessage(`{"cart_id":"C1","base_currency_code":"XYZ",
			"billing":{"email":"a@example.com"}}`), "base_currency_code"},
		{"item pricing currency", "item_update", json.RawMessage(`{"merchant_item_id":"SKU1","pricing":{"currency_code":"ABC","cost":"5"}}`),
			"pricing.currency_code"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NormalizeWith(RawEvent{Name: tt.event, Payload: tt.payload}, receivedAt, Options{})
			var ee *EventError
			if !errors.As(err, &ee) || !errors.Is(err, ErrInvalidEvent) || !errors.Is(err, domain.ErrUnknownCurrency) ||
				ee.Field != tt.field || !strings.Contains(err.Error(), "not an ISO 4217 currency code") {
				t.Fatalf("err = %v, want an invalid event naming %s", err, tt.field)
			}
		})
	}
}

func TestPartialWithoutSummary(t *testing.T) {
	o := normalizeOrder(t, "order_update", orderWith(t, map[string]any{"summary": nil}))
	if !o.Partial || !o.Total.IsZero() || o.Total.Currency != "USD" {
		t.Errorf("partial=%v total=%v; want a partial order with zero USD amounts", o.Partial, o.Total)
	}
	if o = normalizeOrder(t, "order_update", orderWith(t, nil)); o.Partial {
		t.Errorf("an order with a summary is not partial")
	}
}

func TestLineTotalComputedWhenAbsent(t *testing.T) {
	o := normalizeOrder(t, "order_create", orderWith(t, map[string]any{"items": []map[string]any{{
		"merchant_item_id": "A", "quantity": "3.000", "cost": map[string]any{"value": "2.50"}, "discount": map[string]any{"value": 1}}}}))
	if got := o.Items[0]; got.Quantity != 3 || got.Total.String() != "6.50 USD" {
		t.Errorf("line = %d × %s → %s, want 3 × 2.50 − 1.00 = 6.50 USD", got.Quantity, got.UnitPrice, got.Total)
	}
}

func TestPhoneChoice(t *testing.T) {
	tests := []struct {
		name    string
		billing map[string]any
		want    string
	}{
		{"cell e164 first", map[string]any{"cell_phone_e164": "+14155550132", "cell_phone": "212 555 0143", "day_phone": "212 555 0199"}, "+14155550132"},
		{"cell before day", map[string]any{"cell_phone": "(415) 555-0132", "day_phone": "212 555 0143"}, "+14155550132"},
		{"day e164 before day", map[string]any{"day_phone_e164": "+12125550199", "day_phone": "212 555 0143"}, "+12125550199"},
		{"unparseable cell falls through to evening", map[string]any{"cell_phone": "call me", "evening_phone": "212-555-0143"}, "+12125550143"},
		{"national number read in the billing country", map[string]any{"day_phone": "030 901820", "country_code": "de"}, "+4930901820"},
		{"nothing usable", map[string]any{"day_phone": "555-1234"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := map[string]any{"email": "a@example.com", "country_code": "US"}
			for k, v := range tt.billing {
				b[k] = v
			}
			if got := normalizeOrder(t, "order_create", orderWith(t, map[string]any{"billing": b})).Phone; got != tt.want {
				t.Errorf("phone = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIterableIDsFromProperties(t *testing.T) {
	props := []map[string]any{{"name": "iterable_campaign_id", "value": "111"}, {"name": "IterableTemplateId", "value": "222"}}
	o := normalizeOrder(t, "order_create", orderWith(t, map[string]any{"properties": props}))
	if len(o.UTMs) != 1 || o.UTMs[0].IterableCampaignID != "111" || o.UTMs[0].IterableTemplateID != "222" {
		t.Errorf("utms = %+v, want one touch carrying the Iterable ids", o.UTMs)
	}
	o = normalizeOrder(t, "order_create", orderWith(t, map[string]any{"properties": props, "utms": []map[string]any{
		{"utm_source": "last"}, {"utm_source": "first", "iterable_campaign_id": "999"}}}))
	if len(o.UTMs) != 2 || o.UTMs[0].Source != "first" || o.UTMs[0].IterableCampaignID != "999" ||
		o.UTMs[1].Source != "last" || o.UTMs[1].IterableCampaignID != "111" {
		t.Errorf("utms = %+v, want first touch first and the property ids on the last touch", o.UTMs)
	}
}

func TestEventErrorMessages(t *testing.T) {
	tests := []struct {
		name    string
		ev      RawEvent
		want    string
		unknown bool
	}{
		{"missing email", RawEvent{Index: 3, Name: "order_refund", Payload: orderWith(t, map[string]any{"billing": map[string]any{"first_name": "A"}})},
			"event 3 (order_refund): billing.email is missing", false},
		{"missing billing", RawEvent{Index: 1, Name: "order_create", Payload: orderWith(t, map[string]any{"billing": nil})},
			"event 1 (order_create): billing.email is missing (the order has no billing object: add billing to the webhook's expansion)", false},
		{"missing order id", RawEvent{Index: 0, Name: "order_update", Payload: json.RawMessage(`{"billing":{"email":"a@example.com"}}`)},
			"event 0 (order_update): order_id is missing", false},
		{"wrong type", RawEvent{Index: 2, Name: "order_create", Payload: json.RawMessage(`{"order_id":"1","billing":{"email":["a"]}}`)},
			"event 2 (order_create): billing.email is a JSON array, expected a string", false},
		{"amount not a number", RawEvent{Index: 2, Name: "order_create", Payload: json.RawMessage(`{"order_id":"1","summary":{"total":{"value":true}}}`)},
			"event 2 (order_create): summary.total.value is a JSON bool, expected a number", false},
		{"amount with a thousands separator", RawEvent{Index: 2, Name: "order_create", Payload: orderWith(t, map[string]any{"summary": map[string]any{"total": map[string]any{"value": "1,299.00"}}})},
			`event 2 (order_create): summary.total.value is invalid: amount "1,299.00" USD: is not a decimal number`, false},
		{"auto order without email", RawEvent{Index: 0, Name: "auto_order_cancel", Payload: json.RawMessage(`{"auto_order_code":"AO-1","status":"canceled"}`)},
			"event 0 (auto_order_cancel): original_order.billing.email is missing (an auto order names its customer only through its orders: add original_order.billing to the webhook's expansion)", false},
		{"cart without email", RawEvent{Index: 0, Name: "checkout_cart_abandon", Payload: json.RawMessage(`{"cart_id":"C1"}`)},
			"event 0 (checkout_cart_abandon): billing.email is missing", false},
		{"customer update without profile id", RawEvent{Index: 0, Name: "customer_update", Payload: json.RawMessage(`{"email":"a@example.com"}`)},
			"event 0 (customer_update): customer_profile_oid is missing", false},
		{"item without id", RawEvent{Index: 0, Name: "item_update", Payload: json.RawMessage(`{"description":"x"}`)},
			"event 0 (item_update): merchant_item_id is missing", false},
		{"not interpreted", RawEvent{Index: 5, Name: "fulfillment_hold", Payload: json.RawMessage(`{}`)},
			"event 5 (fulfillment_hold): is an UltraCart event cartrelay does not interpret", true},
		{"unknown name", RawEvent{Index: 5, Name: "order_teleport", Payload: json.RawMessage(`{}`)},
			"event 5 (order_teleport): is not an UltraCart event name", true},
		{"empty payload", RawEvent{Index: 0, Name: "order_create"}, "event 0 (order_create): payload is empty", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := normalizeFull(tt.ev, receivedAt)
			var ee *EventError
			if !errors.As(err, &ee) {
				t.Fatalf("err = %v, want *EventError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("message:\n  got  %s\n  want %s", err, tt.want)
			}
			if errors.Is(err, ErrUnknownEvent) != tt.unknown || errors.Is(err, ErrInvalidEvent) == tt.unknown {
				t.Errorf("kind: unknown=%v invalid=%v, want unknown=%v", errors.Is(err, ErrUnknownEvent), errors.Is(err, ErrInvalidEvent), tt.unknown)
			}
		})
	}
}

func TestMoneyErrorIsReachable(t *testing.T) {
	_, err := normalizeFull(RawEvent{Name: "order_create", Payload: orderWith(t, map[string]any{"summary": map[string]any{"total": map[string]any{"value": "19.995"}}})}, receivedAt)
	if !errors.Is(err, domain.ErrInvalidMoney) || !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("err = %v, want ErrInvalidEvent wrapping domain.ErrInvalidMoney", err)
	}
}

func TestSubscriptionStatus(t *testing.T) {
	flag := func(v bool) Flag { return Flag{known: true, v: v} }
	tests := []struct {
		event string
		ao    AutoOrder
		want  domain.SubscriptionStatus
	}{
		{"auto_order_create", AutoOrder{Status: "active", Enabled: flag(true)}, domain.SubActive},
		{"auto_order_rebill", AutoOrder{Status: "active"}, domain.SubActive},
		{"auto_order_update", AutoOrder{Status: "active", Enabled: flag(false)}, domain.SubDisabled},
		{"auto_order_update", AutoOrder{Status: "canceled"}, domain.SubCancelled},
		{"auto_order_update", AutoOrder{Status: "disabled"}, domain.SubDisabled},
		{"auto_order_update", AutoOrder{Status: "merged"}, domain.SubMerged},
		{"auto_order_update", AutoOrder{Status: "active", Completed: flag(true)}, domain.SubCancelled},
		{"auto_order_update", AutoOrder{Status: "active", Items: []AutoOrderItem{{Paused: flag(true)}, {Paused: flag(true)}}}, domain.SubPaused},
		{"auto_order_update", AutoOrder{Status: "active", Items: []AutoOrderItem{{Paused: flag(true)}, {Paused: flag(false)}}}, domain.SubActive},
		{"auto_order_preshipment", AutoOrder{}, domain.SubActive},
		{"auto_order_decline", AutoOrder{Status: "active"}, domain.SubPaymentFailed},
		{"auto_order_decline", AutoOrder{Status: "disabled"}, domain.SubDisabled},
		{"auto_order_cancel", AutoOrder{Status: "active"}, domain.SubCancelled},
		{"auto_order_cancel", AutoOrder{Status: "canceled", CancelUpgrade: flag(true)}, domain.SubMerged},
		{"auto_order_cancel", AutoOrder{Status: "canceled", CancelDowngrade: flag(true)}, domain.SubDowngraded},
		{"auto_order_cancel", AutoOrder{Status: "canceled", CancelReason: "Customer downgraded to basic"}, domain.SubDowngraded},
		{"auto_order_update", AutoOrder{Status: "canceled", CancelDowngrade: flag(true)}, domain.SubDowngraded},
		{"auto_order_cancel", AutoOrder{Status: "canceled", CancelReason: "Customer upgraded to annual"}, domain.SubMerged},
		{"auto_order_cancel", AutoOrder{Status: "canceled", MergedIntoAutoOrderOID: "9"}, domain.SubMerged},
		{"auto_order_disable", AutoOrder{Status: "active"}, domain.SubDisabled},
	}
	for _, tt := range tests {
		got, _ := subscriptionStatus(tt.event, &tt.ao)
		if got != tt.want {
			t.Errorf("%s %+v: status %s, want %s", tt.event, tt.ao, got, tt.want)
		}
	}
}

func TestRebillEventYieldsSubscriptionAndOrder(t *testing.T) {
	raws, err := DecodeDelivery(readFixture(t, "auto_order_rebill.json"))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := normalizeFull(raws[0], receivedAt)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Kind != domain.KindSubscription || evs[1].Kind != domain.KindOrder {
		t.Fatalf("got %d events, want a subscription then an order", len(evs))
	}
	sub, ord := evs[0].Sub, evs[1].Order
	if ord.OrderID != "DEMO-0003342" || !ord.Rebill || ord.SubscriptionID != sub.ID || ord.Key != "ultracart:DEMO-0003342" {
		t.Errorf("rebill order = %s rebill=%v sub=%q; want the newest rebill linked to %s", ord.OrderID, ord.Rebill, ord.SubscriptionID, sub.ID)
	}
	if sub.Status != domain.SubActive || !sub.StatusAt.Equal(ord.PaidAt) || sub.Amount.String() != "25.98 USD" {
		t.Errorf("subscription = %s at %v amount %s", sub.Status, sub.StatusAt, sub.Amount)
	}
}

func TestKitchenSink(t *testing.T) {
	got := normalizeDelivery(t, readFixture(t, "order_create_kitchen_sink.json"))
	o := got[0].Events[0].Order
	checks := []struct {
		what      string
		got, want any
	}{
		{"email", o.Email, "jana.mueller+shop@example.com"},
		{"status", o.Status, domain.OrderShipped},
		{"total", o.Total.String(), "185.74 USD"},
		{"customer total", o.CustomerTotal.String(), "170.88 EUR"},
		{"refunded", o.Refunded.String(), "12.50 USD"},
		{"discount", o.Discount.String(), "8.00 USD"},
		{"shipping", o.Shipping.String(), "9.95 USD"},
		{"handling", o.Handling.String(), "0.00 USD"},
		{"items", len(o.Items), 6},
		{"coupons", strings.Join(o.Coupons, ","), "SPRING10,VIP-7H2K,FREESHIP-EU"},
		{"first touch", o.UTMs[0].Source, "facebook"},
		{"last touch", o.UTMs[2].Source, "iterable"},
		{"gclid from glcid", o.UTMs[1].ClickIDs["gclid"], "EAIaIQobChMI-demo-gclid"},
		{"affiliate", *o.Affiliate, domain.Affiliate{ID: "4411", SubID: "spring-newsletter"}},
		{"phone", o.Phone, "+4915123456789"},
		{"email opt-in", *o.EmailOptIn, true},
		{"sms opt-in", *o.SMSOptIn, false},
		{"subscription", o.SubscriptionID, "AO-7Q4N2X"},
		{"rebill", o.Rebill, false},
		{"customer id", o.CustomerID, "552201"},
		{"tracking", len(o.Tracking), 2},
		{"updated", o.SourceUpdatedAt.Format(time.RFC3339), "2024-03-20T13:30:00Z"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestRefundsOfOneOrderOnlyGrow(t *testing.T) {
	part := normalizeDelivery(t, readFixture(t, "order_refund_partial.json"))[0].Events[0].Order
	full := normalizeDelivery(t, readFixture(t, "order_refund_full.json"))[0].Events[0].Order
	if part.Key != full.Key {
		t.Fatalf("keys differ: %s, %s", part.Key, full.Key)
	}
	if part.Refunded.String() != "20.00 USD" || full.Refunded.String() != "59.98 USD" || full.Refunded != full.Total {
		t.Errorf("refunded partial %s full %s (total %s)", part.Refunded, full.Refunded, full.Total)
	}
	if !full.SourceUpdatedAt.After(part.SourceUpdatedAt) {
		t.Errorf("the full refund is not newer than the partial one")
	}
}

// TestItemErrorsNameTheItem: an unreadable line of an order is refused with the path of the
// field at fault, its item's index included.
func TestItemErrorsNameTheItem(t *testing.T) {
	good := map[string]any{"merchant_item_id": "SKU1", "quantity": 1, "cost": map[string]any{"value": "5.00"}}
	for _, tt := range []struct {
		bad   map[string]any
		field string
	}{
		{map[string]any{"merchant_item_id": "SKU2", "quantity": 1.5}, "items[1].quantity"},
		{map[string]any{"merchant_item_id": "SKU2", "quantity": 1, "quantity_refunded": "x"}, "items[1].quantity_refunded"},
		{map[string]any{"quantity": 1}, "items[1].merchant_item_id"},
		{map[string]any{"merchant_item_id": "SKU2", "quantity": 1, "cost": map[string]any{"value": "5.x"}}, "items[1].cost.value"},
		{map[string]any{"merchant_item_id": "SKU2", "quantity": 1, "discount": map[string]any{"value": "abc"}}, "items[1].discount.value"},
	} {
		_, err := NormalizeWith(RawEvent{Name: "order_create", Payload: orderWith(t, map[string]any{"items": []any{good, tt.bad}})}, receivedAt, Options{})
		var ee *EventError
		if !errors.As(err, &ee) || !errors.Is(err, ErrInvalidEvent) || ee.Field != tt.field {
			t.Errorf("%v: err = %v, want an invalid event naming %s", tt.bad, err, tt.field)
		}
	}
}
