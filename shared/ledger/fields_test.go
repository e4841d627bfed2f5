package ledger

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// These tests keep the merges and hashes honest when a domain type gains a field: every field
// must be either merged explicitly or part of the compared/hashed contents. A field that is
// neither would make a merge depend on arrival order, or a change invisible to destinations.

// mutate changes v to some other value of its type.
func mutate(v reflect.Value) {
	if t, ok := v.Interface().(time.Time); ok {
		v.Set(reflect.ValueOf(t.Add(time.Second)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Struct:
		mutate(v.Field(0))
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		} else {
			v.Set(reflect.Zero(v.Type()))
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for _, k := range v.MapKeys() {
			m.SetMapIndex(k, v.MapIndex(k))
		}
		m.SetMapIndex(reflect.ValueOf("added").Convert(v.Type().Key()), reflect.Zero(v.Type().Elem()))
		v.Set(m)
	default:
		panic("mutate: unhandled kind " + v.Kind().String())
	}
}

// checkFields mutates each field of base in turn: fields in excluded must exist, every other
// field must change encode's output.
func checkFields[T any](t *testing.T, base T, excluded map[string]bool, encode func(T) []byte) {
	t.Helper()
	typ := reflect.TypeFor[T]()
	for name := range excluded {
		if _, ok := typ.FieldByName(name); !ok {
			t.Errorf("%s has no field %s any more", typ.Name(), name)
		}
	}
	want := encode(base)
	for i := range typ.NumField() {
		f := typ.Field(i)
		if excluded[f.Name] {
			continue
		}
		x := base
		mutate(reflect.ValueOf(&x).Elem().Field(i))
		if bytes.Equal(encode(x), want) {
			t.Errorf("%s.%s is neither merged explicitly nor in the encoded contents", typ.Name(), f.Name)
		}
	}
}

func TestOrderFieldsAreAllMergedOrCompared(t *testing.T) {
	merged := map[string]bool{"Status": true, "Test": true, "CreatedAt": true, "PaidAt": true,
		"RefundedAt": true, "Refunded": true, "Refunds": true, "Tracking": true, "SourceUpdatedAt": true,
		"Partial": true, "ShippedAt": true, "OutForDeliveryAt": true, "DeliveredAt": true, "PaymentFailedAt": true, "Chargebacks": true,
		"ChargedBack": true, "ChargedBackAt": true}
	checkFields(t, kitchenSink(t), merged, func(o domain.Order) []byte {
		var e enc
		e.orderContents(o)
		return e.b
	})
}

func TestSubscriptionFieldsAreAllMergedOrCompared(t *testing.T) {
	derived := map[string]bool{"Status": true, "StatusAt": true, "Reason": true, "History": true}
	s := subAt(domain.SubActive, 1)
	s.NextAttempt, s.OriginalOrderID, s.Products = mins(100), "O1", []string{"A"}
	checkFields(t, s, derived, func(s domain.Subscription) []byte {
		var e enc
		e.subContents(s)
		return e.b
	})
}

func TestContactVisibleFields(t *testing.T) {
	internal := map[string]bool{"Account": true, "CustomerIDs": true, "CustomerProfile": true,
		"PreviousEmails": true, "DestinationIDs": true, "ErasedAt": true}
	c := Aggregate(domain.Contact{Account: acct, Email: "ann@example.com"}, []domain.Order{kitchenSink(t)},
		[]domain.Subscription{{Key: "k", Status: domain.SubActive}})
	checkFields(t, c, internal, func(c domain.Contact) []byte {
		var e enc
		e.visibleProfile(c)
		return e.b
	})
}

func TestItemFieldsAreHashed(t *testing.T) {
	it := domain.Item{Source: domain.UltraCart, SKU: "S", Name: "N", Price: usd(1), Categories: []string{"c"}}
	checkFields(t, it, map[string]bool{"UpdatedAt": true}, func(it domain.Item) []byte {
		var e enc
		e.itemContents(it)
		return e.b
	})
}
