package domain

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/jsonmodel"
)

// storedRecords are the records of testdata/records, as encoding/json wrote them (one is
// indented), by file name.
func storedRecords(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/records/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no records in testdata/records: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// TestUnmarshalRecordReadsStoredRecords: the generated decoder itself reads every stored record
// of testdata (none of them needs encoding/json), to the value encoding/json reads.
func TestUnmarshalRecordReadsStoredRecords(t *testing.T) {
	for name, data := range storedRecords(t) {
		t.Run(name, func(t *testing.T) {
			var err error
			if strings.HasPrefix(name, "order") {
				err = readsAlike(data, (*Order).field)
			} else {
				err = readsAlike(data, (*Subscription).field)
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func readsAlike[T any](data []byte, field func(*T, *jsonmodel.Decoder) (int, error)) error {
	var got, want T
	if err := readRecord(data, &got, field); err != nil {
		return fmt.Errorf("the generated decoder left it to encoding/json: %w", err)
	}
	if err := json.Unmarshal(data, &want); err != nil {
		return fmt.Errorf("the generated decoder read it, encoding/json refuses it: %w", err)
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("read differently:\n generated     %+v\n encoding/json %+v", got, want)
	}
	return nil
}

// TestUnmarshalRecordGivesUp: what the generated decoder does not read as encoding/json would,
// it leaves to encoding/json, and UnmarshalRecord's result and error are then encoding/json's.
func TestUnmarshalRecordGivesUp(t *testing.T) {
	for _, data := range []string{
		`{"key":"a","key":"b"}`,
		`{"key":"a","KEY":"b"}`,
		`{"k\u0065y":"a"}`,
		`{"\u212aey":"a"}`,
		`{"key":1}`,
		`{"test":"true"}`,
		`{"items":[{"quantity":1.5}]}`,
		`{"items":[{"quantity":9223372036854775808}]}`,
		`{"items":{}}`,
		`{"billing":[]}`,
		`{"total":{"amount":"1.001","currency":"USD"}}`,
		`{"total":"12"}`,
		`{"created_at":"yesterday"}`,
		`{"created_at":0}`,
		`{"utms":[{"click_ids":{"a":1}}]}`,
		`{"email_opt_in":"yes"}`,
		`{"key":"a"} x`,
		`{"key":"a",}`,
		`{"key":"a` + "\x01" + `"}`,
		`[]`,
		`null`,
		``,
	} {
		var fast Order
		if err := readRecord([]byte(data), &fast, (*Order).field); err == nil {
			t.Errorf("%s: read as %+v, want it left to encoding/json", data, fast)
		}
		var got, want Order
		gotErr, wantErr := UnmarshalRecord([]byte(data), &got), json.Unmarshal([]byte(data), &want)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: UnmarshalRecord gave %+v, %v; encoding/json %+v, %v", data, got, gotErr, want, wantErr)
		}
	}
}

// FuzzUnmarshalRecordAsEncodingJSON holds UnmarshalRecord to encoding/json: the same value and
// the same error for every input, and every input the generated decoder reads, encoding/json
// reads to the same value.
func FuzzUnmarshalRecordAsEncodingJSON(f *testing.F) {
	for _, data := range storedRecords(f) {
		f.Add(data)
	}
	for _, s := range []string{
		`{"KEY":"1","Billing":{"CITY":" x ","Postal_Code":"1"},"ship_to":null,"affiliate":null}`,
		`{"key":"\u00e9\ud800\udc00\ud800x\udc00","email":"a\"b\\c\/d\b\f\n\r\t"}`,
		"{\"key\":\"\xff\xfe a\",\"utms\":[{\"click_ids\":{\"\xff\":\"\xfe\",\"a\\u0041\":null,\"a\":\"1\",\"a\":\"2\"}}]}",
		`{"items":[null,{"quantity":-0,"thumbnails":[{"width":1e2}]},{"categories":[null,"a"]}],"coupons":[]}`,
		`{"items":null,"refunds":[],"chargebacks":null,"utms":[{}],"tracking":[{"number":"1","number":"2"}]}`,
		`{"total":{"amount":12.5,"currency":"USD"},"tax":{ "amount" : "1.00" , "currency" : "USD" },"handling":null}`,
		`{"total":{"currency":"JPY","amount":"12"},"refunded":{"amount":"-0.50","currency":"usd"}}`,
		`{"created_at":null,"paid_at":"2025-03-01T10:00:00+01:00","refunded_at":"2025-03-01T10:00:00.5Z","shipped_at":"\u0032025-01-01T00:00:00Z"}`,
		`{"email_opt_in":true,"sms_opt_in":null,"test":null,"rebill":false,"partial":true}`,
		`{"status_at":"2025-01-01T00:00:00Z","history":[{"status":"active","at":"0001-01-01T00:00:00Z"}],"products":["a"],"amount":{"amount":"1","currency":"JPY"}}`,
		` {"key" : "1" , "unknown":{"a":[1,2,{"b":null}],"c":"\u0000"}} `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		asEncodingJSON(t, data, (*Order).field)
		asEncodingJSON(t, data, (*Subscription).field)
	})
}

func asEncodingJSON[T Order | Subscription](t *testing.T, data []byte, field func(*T, *jsonmodel.Decoder) (int, error)) {
	t.Helper()
	var fast T
	if readRecord(data, &fast, field) == nil {
		var want T
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("%T: the generated decoder read %q, encoding/json refuses it: %v", fast, data, err)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("%T read from %q:\n generated     %+v\n encoding/json %+v", fast, data, fast, want)
		}
	}
	var got, want T
	gotErr, wantErr := UnmarshalRecord(data, &got), json.Unmarshal(data, &want)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
		t.Fatalf("%T from %q: UnmarshalRecord gave %+v, %v; encoding/json %+v, %v", got, data, got, gotErr, want, wantErr)
	}
}
