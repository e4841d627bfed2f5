package ultracart

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/cartrelay/cartrelay/shared/domain"
)

func FuzzDecodeDelivery(f *testing.F) {
	for _, file := range fixtures(f) {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	plain := readFixture(f, "order_create_kitchen_sink.json")
	for _, body := range compressedVariants(f, plain) {
		f.Add(body)
	}
	f.Add([]byte(`{"events":"H4sI"}`))
	f.Add([]byte(`[{"a":1},{"b":{}},"x",null]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		raws, err := DecodeDelivery(body)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			if raws != nil {
				t.Fatalf("events returned with an error")
			}
			return
		}
		for i, r := range raws {
			if r.Index != i {
				t.Fatalf("event %d has index %d", i, r.Index)
			}
			if r.Err != nil {
				if !errors.Is(r.Err, ErrBadElement) {
					t.Fatalf("event %d: untyped element error %v", i, r.Err)
				}
				continue
			}
			if r.Name == "" || len(r.Payload) == 0 || r.Payload[0] != '{' || !json.Valid(r.Payload) {
				t.Fatalf("event %d: name %q payload %q is not a named object", i, r.Name, r.Payload)
			}
			checkNormalize(t, r)
		}
	})
}

func FuzzNormalize(f *testing.F) {
	for _, r := range fixtureEvents(f) {
		f.Add(r.Name, []byte(r.Payload))
	}
	f.Add("order_create", []byte(`{"order_id":"1","billing":{"email":"a@b"},"summary":{"total":{"value":"1e400"}}}`))
	f.Add("auto_order_rebill", []byte(`{"auto_order_code":"A","rebill_orders":[{"order_id":"2","billing":{"email":"a@b"}}]}`))
	f.Fuzz(func(t *testing.T, name string, payload []byte) {
		checkNormalize(t, RawEvent{Index: 1, Name: name, Payload: payload})
	})
}

// checkNormalize asserts Normalize's contract on one event: no panic, typed errors, and
// well-formed events.
func checkNormalize(t *testing.T, r RawEvent) {
	t.Helper()
	evs, err := normalizeFull(r, receivedAt)
	if err != nil {
		var ee *EventError
		if !errors.As(err, &ee) || (!errors.Is(err, ErrUnknownEvent) && !errors.Is(err, ErrInvalidEvent)) {
			t.Fatalf("untyped error %T: %v", err, err)
		}
		if evs != nil {
			t.Fatalf("events returned with an error")
		}
		return
	}
	if len(evs) == 0 {
		t.Fatalf("no events and no error")
	}
	for _, e := range evs {
		if e.Source != domain.UltraCart || e.Name != r.Name || e.OccurredAt.IsZero() {
			t.Fatalf("bad event header %+v", e)
		}
		set := 0
		for _, p := range []bool{e.Order != nil, e.Sub != nil, e.Customer != nil, e.Item != nil, e.Cart != nil} {
			if p {
				set++
			}
		}
		if set != 1 {
			t.Fatalf("event of kind %s has %d parts set", e.Kind, set)
		}
		switch e.Kind {
		case domain.KindOrder:
			// A chargeback report without its order names only the order and the dispute; ingest
			// merges it into the order it holds.
			disputeOnly := e.Order != nil && e.Order.Partial && len(e.Order.Chargebacks) > 0
			if e.Order == nil || e.Order.Key == "" || !disputeOnly && (e.Order.Email == "" || e.Order.Status == "") {
				t.Fatalf("incomplete order %+v", e.Order)
			}
		case domain.KindSubscription:
			if e.Sub == nil || e.Sub.Key == "" || e.Sub.Email == "" || e.Sub.Status == "" || e.Sub.StatusAt.IsZero() {
				t.Fatalf("incomplete subscription %+v", e.Sub)
			}
		case domain.KindCustomer:
			if e.Customer == nil || e.Customer.CustomerID == "" {
				t.Fatalf("incomplete customer %+v", e.Customer)
			}
		case domain.KindItem:
			if e.Item == nil || e.Item.SKU == "" {
				t.Fatalf("incomplete item %+v", e.Item)
			}
		case domain.KindCart:
			if e.Cart == nil || e.Cart.CartID == "" || e.Cart.Email == "" {
				t.Fatalf("incomplete cart %+v", e.Cart)
			}
		default:
			t.Fatalf("unknown kind %q", e.Kind)
		}
		if _, err := json.Marshal(e); err != nil {
			t.Fatalf("event does not marshal: %v", err)
		}
	}
}

// FuzzDecodePayloadAsEncodingJSON holds decodePayload's first reading (the model decoder)
// to encoding/json: every payload it reads into a model, encoding/json reads too, to the same
// value. (What it refuses, decodePayload reads again with encoding/json.)
func FuzzDecodePayloadAsEncodingJSON(f *testing.F) {
	for _, r := range fixtureEvents(f) {
		f.Add([]byte(r.Payload))
	}
	for _, s := range []string{
		`{"ORDER_ID":"1","Billing":{"EMAIL":" a@b ","Day_Phone":"1"}}`,
		`{"order_id":"1","order_id":"2"}`,
		`{"order_id":"\u00e9\ud800","billing":{"email":"a\"b\\c"}}`,
		"{\"order_id\":\"\xff\"}",
		`{"order_id":12.50e3,"exchange_rate":"  1.5 ","items":[{"quantity":"2","kit":"yes","upsell":1}]}`,
		`{"items":null,"billing":null,"summary":{"total":{"value":null}}}`,
		`{"order_id":{},"items":{}}`,
		`{"utms":[{"iterableCampaignId":"1","ITERABLECAMPAIGNID":"2","iterable_campaign_id":"3"}]}`,
		`{"auto_order_oid":123456789012345678901234567890,"rebill_orders":[{"order_id":"2"}]}`,
		`{"merchant_item_oid":"  7 ","pricing":{"cost":-0.5}}`,
		` {"order_id" : "1" } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		readsAsEncodingJSON[Order](t, payload)
		readsAsEncodingJSON[AutoOrder](t, payload)
		readsAsEncodingJSON[Customer](t, payload)
		readsAsEncodingJSON[Item](t, payload)
		readsAsEncodingJSON[Cart](t, payload)
		readsAsEncodingJSON[ChargebackDispute](t, payload)
	})
}

func readsAsEncodingJSON[T any](t *testing.T, payload []byte) {
	t.Helper()
	var got T
	if err := readFast(payload, &got); err != nil {
		return
	}
	var want T
	if err := json.Unmarshal(payload, &want); err != nil {
		t.Fatalf("%T: the model decoder read %q, encoding/json refuses it: %v", got, payload, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%T read from %q:\n model decoder %+v\n encoding/json %+v", got, payload, got, want)
	}
}

// fixtureEvents are the events of every delivery in testdata.
func fixtureEvents(f testing.TB) []RawEvent {
	var all []RawEvent
	for _, file := range fixtures(f) {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		raws, err := DecodeDelivery(body)
		if err != nil {
			f.Fatal(err)
		}
		all = append(all, raws...)
	}
	return all
}
