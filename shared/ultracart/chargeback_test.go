package ultracart

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/domain"
)

func TestChargebackStatusWords(t *testing.T) {
	for _, c := range []struct {
		event, status string
		want          domain.ChargebackStatus
	}{
		{"chargeback_create", "Pending", domain.ChargebackOpen},
		{"chargeback_create", "", domain.ChargebackOpen},
		{"chargeback_update", "In Review", domain.ChargebackOpen},
		{"chargeback_update", "Something New", domain.ChargebackOpen}, // unknown: it stands
		{"chargeback_update", "Won", domain.ChargebackWon},
		{"chargeback_update", "Reversed", domain.ChargebackWon},
		{"chargeback_update", "withdrawn by cardholder", domain.ChargebackWon},
		{"chargeback_update", "Cancelled", domain.ChargebackWon},
		{"chargeback_update", "LOST", domain.ChargebackLost},
		{"chargeback_update", "Accepted", domain.ChargebackLost},
		{"chargeback_update", "Lost-Won", domain.ChargebackWon}, // a lost dispute later won
		{"chargeback_delete", "Pending", domain.ChargebackDeleted},
	} {
		if got := chargebackStatus(c.event, c.status); got != c.want {
			t.Errorf("%s %q: %s, want %s", c.event, c.status, got, c.want)
		}
	}
}

func TestChargebackEvents(t *testing.T) {
	base := func(changes map[string]any) json.RawMessage {
		m := map[string]any{"chargeback_dispute_oid": 5, "order_id": "O-1", "amount": "12.50", "currency": "USD",
			"status": "Pending", "chargeback_dts": "2024-06-10T10:15:00-04:00", "reason_code": "fraud"}
		for k, v := range changes {
			if v == nil {
				delete(m, k)
				continue
			}
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return b
	}
	t.Run("without the order: a partial version of it with the dispute", func(t *testing.T) {
		evs, err := Normalize(RawEvent{Name: "chargeback_create", Payload: base(nil)}, receivedAt)
		if err != nil {
			t.Fatal(err)
		}
		o := evs[0].Order
		l := o.Chargebacks[0]
		if o.Key != "ultracart:O-1" || !o.Partial || l.ID != "5" || l.Amount != (domain.Money{Minor: 1250, Currency: "USD"}) ||
			l.Status != domain.ChargebackOpen || !l.At.Equal(evs[0].OccurredAt) || l.At.Hour() != 14 || !l.ResolvedAt.IsZero() {
			t.Fatalf("order %+v line %+v", o, l)
		}
	})
	t.Run("won: resolved when received", func(t *testing.T) {
		evs, err := Normalize(RawEvent{Name: "chargeback_update", Payload: base(map[string]any{"status": "Won"})}, receivedAt)
		if err != nil {
			t.Fatal(err)
		}
		if l := evs[0].Order.Chargebacks[0]; l.Status != domain.ChargebackWon || !l.ResolvedAt.Equal(receivedAt) {
			t.Fatalf("line %+v", l)
		}
	})
	t.Run("base currency from the account when the dispute names none", func(t *testing.T) {
		evs, err := NormalizeWith(RawEvent{Name: "chargeback_create", Payload: base(map[string]any{"currency": nil, "amount": "1250"})}, receivedAt,
			Options{BaseCurrency: "JPY"})
		if err != nil {
			t.Fatal(err)
		}
		if a := evs[0].Order.Chargebacks[0].Amount; a != (domain.Money{Minor: 1250, Currency: "JPY"}) {
			t.Fatalf("amount %v", a)
		}
	})
	for _, c := range []struct {
		name    string
		payload json.RawMessage
		field   string
	}{
		{"no dispute id", base(map[string]any{"chargeback_dispute_oid": nil}), "chargeback_dispute_oid"},
		{"no order", base(map[string]any{"order_id": nil}), "order_id"},
		{"unknown currency", base(map[string]any{"currency": "XYZ"}), "currency"},
		{"no currency anywhere", base(map[string]any{"currency": nil}), "currency"},
		{"negative", base(map[string]any{"amount": "-1"}), "amount"},
		{"no amount on a standing dispute", base(map[string]any{"amount": nil}), "amount"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Normalize(RawEvent{Name: "chargeback_create", Payload: c.payload}, receivedAt)
			var ee *EventError
			if !errors.As(err, &ee) || !errors.Is(err, ErrInvalidEvent) || ee.Field != c.field {
				t.Fatalf("err = %v, want an invalid event naming %s", err, c.field)
			}
		})
	}
	t.Run("a deleted dispute needs no amount", func(t *testing.T) {
		evs, err := Normalize(RawEvent{Name: "chargeback_delete", Payload: base(map[string]any{"amount": nil})}, receivedAt)
		if err != nil || evs[0].Order.Chargebacks[0].Status != domain.ChargebackDeleted {
			t.Fatalf("%v %+v", err, evs)
		}
	})
}

func TestChargebackWithTheOrderExpanded(t *testing.T) {
	evs, err := Normalize(RawEvent{Name: "chargeback_create", Payload: payloadOf(t, "chargeback_create.json")}, receivedAt)
	if err != nil {
		t.Fatal(err)
	}
	o := evs[0].Order
	if o.Partial || o.Email != "marcus.reyes@example.com" || o.Total.Decimal() != "59.98" || len(o.Chargebacks) != 1 {
		t.Fatalf("order %+v", o)
	}
	if !strings.Contains(o.Chargebacks[0].Reason, "Fraud") {
		t.Errorf("reason %q", o.Chargebacks[0].Reason)
	}
}

// payloadOf is the payload of the one event of a fixture.
func payloadOf(t *testing.T, name string) json.RawMessage {
	t.Helper()
	raws, err := DecodeDelivery(readFixture(t, name))
	if err != nil || len(raws) != 1 {
		t.Fatalf("%s: %v", name, err)
	}
	return raws[0].Payload
}
