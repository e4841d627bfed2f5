package ultracart

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// TestModelDecoderReadsFixtures: the model decoder itself reads every payload in testdata
// that encoding/json reads (none of them needs encoding/json), to the same value, and refuses
// the ones encoding/json refuses.
func TestModelDecoderReadsFixtures(t *testing.T) {
	for _, r := range fixtureEvents(t) {
		if r.Err != nil {
			continue
		}
		var err error
		switch interpreted[r.Name] {
		case kindOrder:
			err = readsAlike[Order](r.Payload)
		case kindAutoOrder:
			err = readsAlike[AutoOrder](r.Payload)
		case kindCustomer:
			err = readsAlike[Customer](r.Payload)
		case kindItem:
			err = readsAlike[Item](r.Payload)
		case kindCart:
			err = readsAlike[Cart](r.Payload)
		case kindChargeback:
			err = readsAlike[ChargebackDispute](r.Payload)
		default:
			continue
		}
		if err != nil {
			t.Errorf("%s (event %d): %v", r.Name, r.Index, err)
		}
	}
}

func readsAlike[T any](payload []byte) error {
	var got, want T
	fast := readFast(payload, &got)
	if err := json.Unmarshal(payload, &want); err != nil {
		if fast == nil {
			return fmt.Errorf("the model decoder read it, encoding/json refuses it: %w", err)
		}
		return nil
	}
	if fast != nil {
		return fast
	}
	if !reflect.DeepEqual(got, want) {
		return errors.New("the model decoder and encoding/json read it differently")
	}
	return nil
}

// TestModelDecoderGivesUp: what the model decoder does not read as encoding/json would, it
// leaves to encoding/json.
func TestModelDecoderGivesUp(t *testing.T) {
	for _, payload := range []string{
		`{"order_id":"1","order_id":"2"}`,
		`{"order_id":"1","ORDER_ID":"2"}`,
		`{"order\u005fid":"1"}`,
		`{"order_\u212aid":"1"}`,
		`{"order_id":{}}`,
		`{"items":{}}`,
		`{"billing":"x"}`,
		`{"exchange_rate":true}`,
		`{"order_id":"1"} x`,
		`{"order_id":"1",}`,
		`{"order_id":01}`,
		`{"order_id":"a` + "\x01" + `"}`,
		`{"x":[1,2,}`,
		`[]`,
		`null`,
	} {
		var o Order
		if err := readFast([]byte(payload), &o); err == nil {
			t.Errorf("%s: read as %+v, want it left to encoding/json", payload, o)
		}
	}
}
