package thrivecart

import (
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/cartrelay/cartrelay/shared/domain"
)

func FuzzDecode(f *testing.F) {
	for _, fx := range fixtures(f) {
		body, err := os.ReadFile(fx.path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(fx.contentType, body)
	}
	f.Add("", []byte("event=x&a[][b][]=1&a[0][b]=2&a=3"))
	f.Add("multipart/form-data; boundary=zz", []byte("--zz\r\nContent-Disposition: form-data; name=\"event\"\r\n\r\nx\r\n--zz--\r\n"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		d, err := Decode(contentType, body)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		if d.Event == "" {
			t.Fatalf("decoded without an event")
		}
		if _, ok := d.Fields["thrivecart_secret"]; ok {
			t.Fatalf("the secret is in Fields")
		}
		payload, err := d.Payload()
		if err != nil {
			t.Fatalf("Payload: %v", err)
		}
		back, err := Decode("application/json", payload)
		if err != nil || back.Event != d.Event {
			t.Fatalf("payload does not decode back: %v", err)
		}
		checkNormalize(t, d)
	})
}

// FuzzScanSecret: the secret the webhook authenticates with is the one Decode reads, for any
// body Decode accepts, and a body the scanner cannot read gets a typed error.
func FuzzScanSecret(f *testing.F) {
	for _, fx := range fixtures(f) {
		body, err := os.ReadFile(fx.path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(fx.contentType, body)
	}
	f.Add("", []byte("event=x&thrivecart_secret=a&thrivecart_secret[b]=c"))
	f.Add("", []byte("event=x&thrivecart%5Fsecret=a%20b&%74hrivecart_secret=z"))
	f.Add("application/json", []byte(`{"event":"x","thrivecart_secret":12.5e3,"a":[{"b":null}],"thrivecart\u005fsecret":"w"}`))
	f.Add("application/json", []byte(`{"event":"x","thrivecart_secret":"a","thrivecart_secret":null}`))
	f.Add("multipart/form-data; boundary=zz", []byte("--zz\r\nContent-Disposition: form-data; name=\"event\"\r\n\r\nx\r\n"+
		"--zz\r\nContent-Disposition: form-data; name=\"thrivecart_secret\"\r\n\r\nw\r\n--zz--\r\n"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		secret, scanErr := ScanSecret(contentType, body)
		if scanErr != nil && !errors.Is(scanErr, ErrMalformed) {
			t.Fatalf("untyped error %T: %v", scanErr, scanErr)
		}
		d, err := Decode(contentType, body)
		if err != nil {
			return
		}
		if scanErr != nil {
			t.Fatalf("Decode reads the body but ScanSecret does not: %v", scanErr)
		}
		if secret != d.Secret {
			t.Fatalf("ScanSecret found %q, Decode %q", secret, d.Secret)
		}
	})
}

func FuzzNormalize(f *testing.F) {
	for _, fx := range fixtures(f) {
		d := load(f, fx)
		payload, err := d.Payload()
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(payload))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		d, err := Decode("application/json", payload)
		if err != nil {
			return
		}
		checkNormalize(t, d)
	})
}

func checkNormalize(t *testing.T, d Delivery) {
	t.Helper()
	evs, err := normalizeFull(d, receivedAt)
	if err != nil {
		var ee *EventError
		if !errors.As(err, &ee) || (!errors.Is(err, ErrUnknownEvent) && !errors.Is(err, ErrInvalidEvent)) {
			t.Fatalf("untyped error %T: %v", err, err)
		}
		return
	}
	if len(evs) == 0 {
		t.Fatalf("no events and no error")
	}
	for _, e := range evs {
		if e.Source != domain.ThriveCart || e.Name != d.Event || e.OccurredAt.IsZero() {
			t.Fatalf("bad event header %+v", e)
		}
		switch e.Kind {
		case domain.KindOrder:
			if e.Order == nil || e.Order.Key == "" || e.Order.Email == "" {
				t.Fatalf("incomplete order %+v", e.Order)
			}
			if e.Order.Partial && len(e.Order.Refunds) > 0 && e.Order.Refunded != e.Order.Refunds[0].Amount {
				t.Fatalf("refunded %v is not the refund line %v", e.Order.Refunded, e.Order.Refunds[0].Amount)
			}
		case domain.KindSubscription:
			if e.Sub == nil || e.Sub.Key == "" || e.Sub.Email == "" || e.Sub.StatusAt.IsZero() {
				t.Fatalf("incomplete subscription %+v", e.Sub)
			}
		case domain.KindCart:
			if e.Cart == nil || e.Cart.CartID == "" || e.Cart.Email == "" {
				t.Fatalf("incomplete cart %+v", e.Cart)
			}
		case domain.KindAffiliate:
			if a := e.AffiliateSignup; a == nil || a.AffiliateID == "" || a.Email == "" || a.Status == "" || a.At.IsZero() {
				t.Fatalf("incomplete affiliate %+v", e.AffiliateSignup)
			}
		default:
			t.Fatalf("unexpected kind %q", e.Kind)
		}
		if _, err := json.Marshal(e); err != nil {
			t.Fatalf("event does not marshal: %v", err)
		}
	}
}
