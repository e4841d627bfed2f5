package thrivecart

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime/multipart"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeForm(t *testing.T) {
	body := "event=order.success&thrivecart_secret=s3cret&mode=test" +
		"&customer%5Bemail%5D=a%40example.com&customer[name]=Ann+Lee" +
		"&customer[address][country]=GB" +
		"&order[charges][0][amount]=1499&order[charges][1][amount]=500&order[charges][10][amount]=1" +
		"&purchases[]=One&purchases[]=Two" +
		"&subscription_ids[product-12]=3498801" +
		"&dup=first&dup=second" +
		"&weird[unclosed=x&trailing[a]junk=y&&"
	d, err := Decode("application/x-www-form-urlencoded; charset=UTF-8", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if d.Event != "order.success" || d.Secret != "s3cret" || d.Mode != "test" {
		t.Errorf("envelope = %q %q %q", d.Event, d.Secret, d.Mode)
	}
	if _, ok := d.Fields["thrivecart_secret"]; ok {
		t.Errorf("the secret is left in Fields")
	}
	checks := []struct {
		path []string
		want string
	}{
		{p("customer", "email"), "a@example.com"},
		{p("customer", "name"), "Ann Lee"},
		{p("customer", "address", "country"), "GB"},
		{p("order", "charges", "1", "amount"), "500"},
		{p("purchases", "1"), "Two"},
		{p("subscription_ids", "product-12"), "3498801"},
		{p("dup"), "second"},
		{p("weird[unclosed"), "x"},
		{p("trailing", "a"), "y"},
	}
	for _, c := range checks {
		if got := d.Fields.Get(c.path...); got != c.want {
			t.Errorf("%s = %q, want %q", name(c.path...), got, c.want)
		}
	}
	charges := d.Fields.List("order", "charges")
	if len(charges) != 3 || charges[2].(Fields).Get("amount") != "1" {
		t.Errorf("charges are not in numeric order: %v", charges)
	}
	if got := d.Fields.List("purchases"); !reflect.DeepEqual(got, []any{"One", "Two"}) {
		t.Errorf("purchases[] = %v", got)
	}
}

func TestDecodeJSON(t *testing.T) {
	body := `{"event":"order.refund","thrivecart_secret":"s3cret","mode_int":1,"order_id":4417001,
		"refund":{"amount":1198,"ok":true,"gone":null},"order":{"charges":[{"amount":"1"},null]}}`
	d, err := Decode("application/json", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if d.Event != "order.refund" || d.Secret != "s3cret" || d.Mode != "test" {
		t.Errorf("envelope = %q %q %q", d.Event, d.Secret, d.Mode)
	}
	if d.Fields.Get("order_id") != "4417001" || d.Fields.Get("refund", "amount") != "1198" || d.Fields.Get("refund", "ok") != "true" {
		t.Errorf("numbers and booleans are not kept as text: %v", d.Fields)
	}
	if d.Fields.Has("refund", "gone") {
		t.Errorf("null is kept")
	}
	if d.Fields.Get("order", "charges", "0", "amount") != "1" || len(d.Fields.List("order", "charges")) != 2 {
		t.Errorf("arrays are not indexable: %v", d.Fields["order"])
	}
}

func TestDecodeContentTypes(t *testing.T) {
	form := "event=order.success&thrivecart_secret=x"
	js := `{"event":"order.success","thrivecart_secret":"x"}`
	var mp bytes.Buffer
	w := multipart.NewWriter(&mp)
	w.WriteField("event", "order.success")
	w.WriteField("customer[email]", "a@example.com")
	w.WriteField("thrivecart_secret", "x")
	w.Close()
	tests := []struct {
		name, contentType string
		body              []byte
	}{
		{"form", "application/x-www-form-urlencoded", []byte(form)},
		{"json", "application/json", []byte(js)},
		{"json with charset", "application/json; charset=utf-8", []byte(js)},
		{"vendor json", "application/vnd.thrivecart+json", []byte(js)},
		{"no content type, json", "", []byte(js)},
		{"no content type, form", "", []byte(form)},
		{"text/plain json", "text/plain", []byte(js)},
		{"garbage content type", ";;;", []byte(form)},
		{"multipart", w.FormDataContentType(), mp.Bytes()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decode(tt.contentType, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if d.Event != "order.success" || d.Secret != "x" {
				t.Errorf("got event %q secret %q", d.Event, d.Secret)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 40) + `"x"` + strings.Repeat(`}`, 40)
	many := "event=x" + strings.Repeat("&a[]=1", maxFields+1)
	tests := []struct {
		name, contentType, body, want string
		noEvent                       bool
	}{
		{"empty form", "application/x-www-form-urlencoded", "", "the body is empty", false},
		{"empty json", "application/json", "", "the body is empty", false},
		{"no event", "application/x-www-form-urlencoded", "mode=live&thrivecart_secret=x", `no "event" field`, true},
		{"blank event", "application/json", `{"event":"  "}`, `no "event" field`, true},
		{"event not text", "application/json", `{"event":{"a":"b"}}`, `no "event" field`, true},
		{"bad escape in name", "application/x-www-form-urlencoded", "event=x&a%zz=1", `bad %-escape in its name`, false},
		{"bad escape in value", "application/x-www-form-urlencoded", "event=x&a=%G1", `form field "a" has a bad %-escape in its value`, false},
		{"bad json", "application/json", `{"event":"x",}`, "byte 14: the body is not valid JSON", false},
		{"truncated json", "application/json", `{"event":"x"`, "ends early", false},
		{"json array", "application/json", `[{"event":"x"}]`, "the JSON body is an array; expected an object", false},
		{"json after json", "application/json", `{"event":"x"} {}`, "data after its end", false},
		{"too deep json", "application/json", `{"event":"x","d":` + deep + `}`, "nests deeper than 32 levels", false},
		{"too deep form", "", "event=x&a" + strings.Repeat("[a]", 40) + "=1", "nests deeper than 32 levels", false},
		{"too many fields", "", many, "more than 10000 fields", false},
		{"multipart without boundary", "multipart/form-data", "x", "without a boundary", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.contentType, []byte(tt.body))
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want *DecodeError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("message %q does not contain %q", err, tt.want)
			}
			if errors.Is(err, ErrNoEvent) != tt.noEvent {
				t.Errorf("ErrNoEvent = %v, want %v", errors.Is(err, ErrNoEvent), tt.noEvent)
			}
		})
	}
}

func TestCheckSecret(t *testing.T) {
	d := Delivery{Secret: "TESTSECRETWORD01"}
	tests := []struct {
		d    Delivery
		want string
		ok   bool
	}{
		{d, "TESTSECRETWORD01", true},
		{d, "TESTSECRETWORD02", false},
		{d, "TESTSECRETWORD0", false},
		{d, "", false},
		{Delivery{}, "", false},
		{Delivery{}, "x", false},
	}
	for _, tt := range tests {
		if got := CheckSecret(tt.d, tt.want); got != tt.ok {
			t.Errorf("CheckSecret(%q, %q) = %v", tt.d.Secret, tt.want, got)
		}
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	for _, f := range fixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			d := load(t, f)
			payload, err := d.Payload()
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(payload, []byte(secret)) {
				t.Fatalf("the payload keeps the secret word")
			}
			back, err := Decode("application/json", payload)
			if err != nil {
				t.Fatal(err)
			}
			if back.Secret != "" || back.Event != d.Event || back.Mode != d.Mode || !reflect.DeepEqual(back.Fields, d.Fields) {
				t.Errorf("round trip changed the delivery")
			}
			again, _ := back.Payload()
			if !bytes.Equal(again, payload) {
				t.Errorf("the payload is not deterministic")
			}
			a, _ := json.Marshal(result(d).Events)
			b, _ := json.Marshal(result(back).Events)
			if !bytes.Equal(a, b) {
				t.Errorf("replaying the payload normalizes differently")
			}
		})
	}
}
