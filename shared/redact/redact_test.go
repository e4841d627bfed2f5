package redact_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/redact"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

const key = `it-Key/with "quotes" & <html>+spaces 0001`

func set(values ...string) *redact.Set {
	s := redact.NewSet()
	s.Add(values...)
	return s
}

func TestStringFindsEveryForm(t *testing.T) {
	s := set(key, "op-api-key-777")
	jsonForm, _ := json.Marshal(key)
	for _, tc := range []struct{ name, in string }{
		{"as is", "401: invalid key " + key + " (check it)"},
		{"json escaped", `{"msg":"bad key ` + string(jsonForm[1:len(jsonForm)-1]) + `"}`},
		{"query escaped", "GET /x?api_key=" + url.QueryEscape(key)},
		{"path escaped", "GET /keys/" + url.PathEscape(key)},
		{"twice and another", key + key + " op-api-key-777."},
	} {
		got := s.String(tc.in)
		if strings.Contains(got, "Key/with") || strings.Contains(got, "op-api-key-777") || strings.Contains(got, "quotes") {
			t.Errorf("%s: %q still holds the secret", tc.name, got)
		}
		if !strings.Contains(got, redact.Mark) {
			t.Errorf("%s: %q has no mark", tc.name, got)
		}
	}
	if got := s.String("nothing to hide here"); got != "nothing to hide here" {
		t.Errorf("clean text changed: %q", got)
	}
}

func TestShortValuesAndNilSet(t *testing.T) {
	s := set("short", "")
	if s.Len() != 0 || s.String("a short text") != "a short text" {
		t.Errorf("values under %d characters must not be scrubbed (len %d)", redact.MinLen, s.Len())
	}
	var none *redact.Set
	none.Add("op-api-key-777")
	if none.String("op-api-key-777") != "op-api-key-777" || none.Len() != 0 {
		t.Error("a nil set must scrub nothing")
	}
}

func TestLongestFormWins(t *testing.T) {
	s := set("abcdefgh", "abcdefgh-ijkl")
	if got := s.String("x abcdefgh-ijkl y"); got != "x "+redact.Mark+" y" {
		t.Errorf("got %q, want the longer value replaced whole", got)
	}
}

func TestSetForgetsTheOldest(t *testing.T) {
	s := redact.NewSet()
	for i := range redact.DefaultMax + 10 {
		s.Add(fmt.Sprintf("token-%08d", i))
	}
	if s.Len() != redact.DefaultMax {
		t.Fatalf("len %d, want %d", s.Len(), redact.DefaultMax)
	}
	if s.Contains("token-00000000") || !s.Contains(fmt.Sprintf("token-%08d", redact.DefaultMax+9)) {
		t.Error("the oldest value should be forgotten first")
	}
}

// TestBytesKeepsJSONValid: a value that looks like a number must not break a document where the
// number appears outside a string, but is scrubbed inside one.
func TestBytesKeepsJSONValid(t *testing.T) {
	s := set("12345678", key)
	in := []byte(`{"total":12345678,"note":"password 12345678","nested":[{"k":"` + strings.ReplaceAll(key, `"`, `\"`) + `"}]}`)
	out := s.Bytes(in)
	if !json.Valid(out) {
		t.Fatalf("invalid JSON: %s", out)
	}
	var doc struct {
		Total  json.Number `json:"total"`
		Note   string      `json:"note"`
		Nested []struct{ K string }
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Total != "12345678" || doc.Note != "password "+redact.Mark || doc.Nested[0].K != redact.Mark {
		t.Errorf("got %+v", doc)
	}
	if plain := s.Bytes([]byte("raw text op 12345678")); string(plain) != "raw text op "+redact.Mark {
		t.Errorf("non-JSON: %q", plain)
	}
	clean := []byte(`{"a":1}`)
	if out := s.Bytes(clean); &out[0] != &clean[0] {
		t.Error("a clean document should come back as is, not copied")
	}
}

func TestStoreScrubsWhatIsWritten(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := set("it-secret-key-0001")
	st := redact.Store(testenv.EmbeddedStore(t, clk), s)
	doc := []byte(`{"response_body":"{\"msg\":\"Invalid API key: it-secret-key-0001\"}","pk":"it-secret-key-0001"}`)
	if err := st.Write(ctx, store.PutItem(store.Item{PK: "A#acme#E#x", SK: "DL#1", Data: doc}, store.Always)); err != nil {
		t.Fatal(err)
	}
	if err := st.Transact(ctx, []store.Write{
		store.PutItem(store.Item{PK: "A#acme#E#x", SK: "DL#2", Data: doc}, store.Always),
		store.DeleteKey(store.Key{PK: "A#acme#E#x", SK: "DL#0"}, store.Always),
	}); err != nil {
		t.Fatal(err)
	}
	for _, sk := range []string{"DL#1", "DL#2"} {
		it, err := st.Get(ctx, "A#acme#E#x", sk)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(it.Data, []byte("it-secret-key-0001")) || !json.Valid(it.Data) {
			t.Errorf("%s stored %s", sk, it.Data)
		}
	}
}

func TestWriterKeepsTheShapeOfTheOutput(t *testing.T) {
	var buf bytes.Buffer
	w := redact.Writer(&buf, set("tc-secret-word-9"))
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(map[string]string{"error": "ThriveCart said tc-secret-word-9 is wrong"}); err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"error\": \"ThriveCart said " + redact.Mark + " is wrong\"\n}\n"
	if buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}

type account struct {
	ID, Note string
}

func TestHandlerScrubsEveryPartOfALine(t *testing.T) {
	var buf bytes.Buffer
	s := set("op-api-key-777")
	log := slog.New(s.Handler(slog.NewJSONHandler(&buf, nil))).With(slog.String("fact_id", "acme:ContactChanged:Jane.Doe@Example.com:abc"))
	log.Warn("refused op-api-key-777",
		slog.String("body", `{"key":"op-api-key-777"}`),
		slog.Any("error", errors.New("ontraport: Api-Key op-api-key-777 is not valid")),
		slog.Group("req", slog.String("url", "https://x.test/?key=op-api-key-777")),
		slog.Any("acct", account{ID: "acme", Note: "op-api-key-777 for jane.doe@example.com"}),
		slog.Int("attempt", 3))
	line := buf.String()
	for _, leak := range []string{"op-api-key-777", "jane.doe", "Jane.Doe", "example.com"} {
		if strings.Contains(strings.ToLower(line), strings.ToLower(leak)) {
			t.Errorf("log line holds %q: %s", leak, line)
		}
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, line)
	}
	ref := redact.Email("jane.doe@example.com")
	if got["fact_id"] != "acme:ContactChanged:"+ref+":abc" || got["attempt"] != 3.0 || got["msg"] != "refused "+redact.Mark {
		t.Errorf("line %s; want the fact id with %s, the attempt kept and the message scrubbed", line, ref)
	}
	if ref != redact.Email(" JANE.DOE@example.COM") {
		t.Error("the pseudonym must not depend on case or spaces")
	}
}

func FuzzBytes(f *testing.F) {
	f.Add([]byte(`{"a":"op-api-key-777","n":12345678}`), "op-api-key-777")
	f.Add([]byte(`not json op-api-key-777`), "op-api-key-777")
	f.Add([]byte(`["\"quoted\" secret!"]`), `"quoted" secret!`)
	f.Fuzz(func(t *testing.T, doc []byte, secret string) {
		s := set(secret)
		out := s.Bytes(doc)
		if json.Valid(doc) && !json.Valid(out) {
			t.Fatalf("valid JSON became invalid: %q -> %q", doc, out)
		}
		if len(secret) < redact.MinLen || !json.Valid(doc) {
			return
		}
		var v any
		if json.Unmarshal(out, &v) != nil {
			return
		}
		if containsString(v, secret) {
			t.Fatalf("a string of %q still holds %q", out, secret)
		}
	})
}

func containsString(v any, s string) bool {
	switch t := v.(type) {
	case string:
		return strings.Contains(t, s)
	case []any:
		for _, x := range t {
			if containsString(x, s) {
				return true
			}
		}
	case map[string]any:
		for k, x := range t {
			if strings.Contains(k, s) || containsString(x, s) {
				return true
			}
		}
	}
	return false
}

func BenchmarkString(b *testing.B) {
	s := redact.NewSet()
	for i := range 1000 {
		s.Add(fmt.Sprintf("account-%04d-api-key-%08x", i, i*7919))
	}
	body := strings.Repeat(`{"email":"jane@example.com","total":"129.90","items":[{"sku":"A-1"}]}`, 120)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_ = s.String(body)
	}
}
