package ultracart

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func b64gz(t testing.TB, b []byte) string { return base64.StdEncoding.EncodeToString(gz(t, b)) }

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

// compressedVariants builds, from a plain bare-array delivery, the places compress_events
// could put the compressed data (the placement is not documented).
func compressedVariants(t testing.TB, array []byte) map[string][]byte {
	t.Helper()
	var elems []json.RawMessage
	if err := json.Unmarshal(array, &elems); err != nil {
		t.Fatal(err)
	}
	perElem := make([]string, len(elems))
	for i, e := range elems {
		perElem[i] = jsonString(b64gz(t, e))
	}
	return map[string][]byte{
		"events value is a compressed string":     []byte(`{"events":` + jsonString(b64gz(t, array)) + `}`),
		"each element is a compressed string":     []byte(`{"events":[` + strings.Join(perElem, ",") + `]}`),
		"bare array of compressed strings":        []byte(`[` + strings.Join(perElem, ",") + `]`),
		"whole body is a compressed JSON string":  []byte(jsonString(b64gz(t, array))),
		"whole body is bare base64 text":          []byte(b64gz(t, array)),
		"whole body is gzip bytes":                gz(t, array),
		"compressed envelope inside a string":     []byte(jsonString(b64gz(t, []byte(`{"events":`+string(array)+`}`)))),
		"base64 with line breaks (MIME style)":    []byte(`{"events":` + jsonString(wrap(b64gz(t, array), 76)) + `}`),
		"element string holding an events array":  []byte(`[` + jsonString(b64gz(t, array)) + `]`),
		"url-safe base64 without padding, events": []byte(`{"events":` + jsonString(base64.RawURLEncoding.EncodeToString(gz(t, array))) + `}`),
	}
}

func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n])
		b.WriteString("\r\n")
		s = s[n:]
	}
	b.WriteString(s)
	return b.String()
}

func TestDecodeDeliveryEnvelopes(t *testing.T) {
	one := `{"order_create":{"order_id":"A1"}}`
	two := `{"order_update":{"order_id":"A2"}}`
	tests := []struct {
		name  string
		body  string
		names []string
	}{
		{"bare array", `[` + one + `,` + two + `]`, []string{"order_create", "order_update"}},
		{"events object", `{"events":[` + one + `,` + two + `]}`, []string{"order_create", "order_update"}},
		{"events object with other members", `{"merchant_id":"DEMO","events":[` + one + `]}`, []string{"order_create"}},
		{"whitespace around", " \n\t[" + one + "]\n", []string{"order_create"}},
		{"empty array", `[]`, nil},
		{"empty events", `{"events":[]}`, nil},
		{"single event without envelope", one, []string{"order_create"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeDelivery([]byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeDelivery: %v", err)
			}
			if len(got) != len(tt.names) {
				t.Fatalf("got %d events, want %d", len(got), len(tt.names))
			}
			for i, r := range got {
				if r.Index != i || r.Name != tt.names[i] || r.Err != nil {
					t.Errorf("event %d = {%d %q err=%v}, want {%d %q}", i, r.Index, r.Name, r.Err, i, tt.names[i])
				}
				if !json.Valid(r.Payload) || r.Payload[0] != '{' {
					t.Errorf("event %d payload %s is not an object", i, r.Payload)
				}
			}
		})
	}
}

func TestDecodeDeliveryPayloadKeptByteForByte(t *testing.T) {
	payload := `{ "order_id" : "A1",  "summary": {"total": {"value": 10.10}} }`
	got, err := DecodeDelivery([]byte(`[{"order_create":` + payload + `}]`))
	if err != nil {
		t.Fatal(err)
	}
	if string(got[0].Payload) != payload {
		t.Errorf("payload = %s, want %s", got[0].Payload, payload)
	}
}

func TestDecodeDeliveryCompressed(t *testing.T) {
	plain := readFixture(t, "order_create_kitchen_sink.json")
	want, err := DecodeDelivery(plain)
	if err != nil {
		t.Fatal(err)
	}
	// Two events, so per-element compression is exercised with more than one element.
	var two []json.RawMessage
	if err := json.Unmarshal(plain, &two); err != nil {
		t.Fatal(err)
	}
	two = append(two, json.RawMessage(`{"order_update":{"order_id":"X-2"}}`))
	array, _ := json.Marshal(two)
	want, err = DecodeDelivery(array)
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range compressedVariants(t, array) {
		t.Run(name, func(t *testing.T) {
			got, err := DecodeDelivery(body)
			if err != nil {
				t.Fatalf("DecodeDelivery: %v", err)
			}
			if len(got) != len(want) {
				t.Fatalf("got %d events, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i].Name != want[i].Name || got[i].Index != i || got[i].Err != nil {
					t.Errorf("event %d = %q (err %v), want %q", i, got[i].Name, got[i].Err, want[i].Name)
				}
				if !jsonEqual(got[i].Payload, want[i].Payload) {
					t.Errorf("event %d payload differs after decompression", i)
				}
			}
		})
	}
}

func jsonEqual(a, b []byte) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// TestDecodeDeliveryZipBomb: a few KB that inflate to one byte more than MaxDecompressed are
// refused before anything past the cap is held; exactly MaxDecompressed is decoded.
func TestDecodeDeliveryZipBomb(t *testing.T) {
	enc := b64gz(t, paddedArray(MaxDecompressed+1))
	if len(enc) > 64<<10 {
		t.Fatalf("the bomb is %d bytes; it should be small", len(enc))
	}
	for name, body := range map[string]string{
		"events value": `{"events":"` + enc + `"}`,
		"element":      `["` + enc + `"]`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeDelivery([]byte(body))
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want a *DecodeError wrapping ErrTooLarge", err)
			}
			for _, want := range []string{"6 MiB", "maximum_size", "compress_events"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q does not mention %s", err, want)
				}
			}
		})
	}
	atCap := b64gz(t, paddedArray(MaxDecompressed))
	evs, err := DecodeDelivery([]byte(`{"events":"` + atCap + `"}`))
	if err != nil || len(evs) != 1 || evs[0].Name != "order_create" {
		t.Fatalf("a delivery inflating to exactly the cap: %d events, %v", len(evs), err)
	}
}

// paddedArray is an events array of one small order, padded with spaces to exactly n bytes.
func paddedArray(n int) []byte {
	head := []byte(`[{"order_create":{"order_id":"DEMO-1"}}`)
	out := make([]byte, 0, n)
	out = append(out, head...)
	out = append(out, bytes.Repeat([]byte(" "), n-len(head)-1)...)
	return append(out, ']')
}

func TestDecodeDeliveryBudgetIsShared(t *testing.T) {
	// Each element is under the cap, together they are over it.
	big := append(append([]byte("["), bytes.Repeat([]byte(" "), MaxDecompressed*2/3)...), ']')
	enc := jsonString(b64gz(t, big))
	_, err := DecodeDelivery([]byte("[" + enc + "," + enc + "]"))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestDecodeDeliveryMalformed(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		offset int64
		want   string // part of the message
	}{
		{"empty", "", -1, "body is empty"},
		{"only spaces", "  \n ", -1, "body is empty"},
		{"truncated array", `[{"order_create":{"order_id":"A1"}`, 34, "not valid JSON"},
		{"bad token", `[{"order_create":{"order_id":A1}}]`, 30, "invalid character 'A'"},
		{"trailing garbage", `[{"order_create":{}}] x`, 23, "not valid JSON"},
		{"object without events", `{"orders":[]}`, -1, `no "events" member (keys: "orders")`},
		{"events is null", `{"events":null}`, -1, `"events" is null`},
		{"events is a number", `{"events":5}`, -1, `"events" is a number`},
		{"body is xml", `<events/>`, 0, `starts with '<'`},
		{"body is a number", `42`, 0, `starts with '4'`},
		{"compressed string is not base64", `{"events":"@@@@"}`, -1, "not valid base64"},
		{"compressed string is not gzip", `{"events":"` + base64.StdEncoding.EncodeToString([]byte("hello")) + `"}`, -1, "not gzip data"},
		{"compressed data is not JSON", `{"events":"` + b64gz(t, []byte("[{oops")) + `"}`, 3, "compressed data"},
		{"truncated gzip", `{"events":"` + base64.StdEncoding.EncodeToString(gz(t, []byte(`[{"a":{}}]`))[:15]) + `"}`, -1, "corrupt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeDelivery([]byte(tt.body))
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v (events %v), want *DecodeError", err, got)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("err does not wrap ErrMalformed")
			}
			if de.Offset != tt.offset {
				t.Errorf("offset = %d, want %d (%v)", de.Offset, tt.offset, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("message %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestDecodeDeliveryBadElements(t *testing.T) {
	body := `[
		{"order_create":{"order_id":"A1"}},
		42,
		{"a":{},"b":{}},
		{"order_refund":"A3"},
		{"order_refund":null},
		{},
		{"":{"order_id":"A6"}},
		"not-base64-gzip",
		{"order_update":{"order_id":"A8"}}
	]`
	got, err := DecodeDelivery([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name string
		bad  string
	}{
		{"order_create", ""},
		{"", "element is a number"},
		{"", `element has 2 keys ("a", "b")`},
		{"order_refund", "payload of order_refund is a string"},
		{"order_refund", "payload of order_refund is null"},
		{"", "element has 0 keys"},
		{"", "event name (the object's key) is empty"},
		{"", "string that is not base64 gzip data"},
		{"order_update", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i, w := range want {
		r := got[i]
		if r.Index != i || r.Name != w.name {
			t.Errorf("event %d = {%d %q}, want {%d %q}", i, r.Index, r.Name, i, w.name)
		}
		switch {
		case w.bad == "" && r.Err != nil:
			t.Errorf("event %d: unexpected error %v", i, r.Err)
		case w.bad != "" && (r.Err == nil || !errors.Is(r.Err, ErrBadElement) || !strings.Contains(r.Err.Error(), w.bad)):
			t.Errorf("event %d: err = %v, want ErrBadElement containing %q", i, r.Err, w.bad)
		}
		if !json.Valid(r.Payload) {
			t.Errorf("event %d: payload %q is not JSON; bad elements keep the whole element", i, r.Payload)
		}
		if w.bad != "" {
			_, err := normalizeFull(r, receivedAt)
			if !errors.Is(err, ErrInvalidEvent) || !strings.Contains(err.Error(), w.bad) {
				t.Errorf("event %d: Normalize err = %v, want ErrInvalidEvent with the decode reason", i, err)
			}
		}
	}
}

func TestDecodeDeliveryNestingLimit(t *testing.T) {
	s := []byte(`[{"order_create":{"order_id":"A1"}}]`)
	for i := 0; i < 5; i++ {
		s = []byte(jsonString(b64gz(t, s)))
	}
	_, err := DecodeDelivery(s)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "nests too deeply") {
		t.Fatalf("err = %v, want a nesting error", err)
	}
}
