package dynamo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/store"
)

// sample holds a value of every kind, nested, with strings that need escaping.
func sample() Item {
	return Item{
		"s":     S("zoë \"quoted\" \\ \n\t\x01 \u2028 </script> &"),
		"n":     {Kind: KindN, Text: "-12.5E3"},
		"b":     B([]byte{0, 1, 2, 0xff}),
		"empty": B([]byte{}),
		"t":     {Kind: KindBOOL, Bool: true},
		"f":     {Kind: KindBOOL},
		"null":  {Kind: KindNULL, Bool: true},
		"m":     {Kind: KindM, Map: Item{"inner": {Kind: KindL, List: []Value{S("a"), N(1), {Kind: KindM, Map: Item{}}}}}},
		"l":     {Kind: KindL, List: []Value{}},
		"ss":    {Kind: KindSS, Strings: []string{"a", "b"}},
		"ns":    {Kind: KindNS, Strings: []string{"1", "2.5"}},
		"bs":    {Kind: KindBS, ByteSet: [][]byte{{1}, {2, 3}}},
		"":      S(""),
	}
}

// TestItemRoundTrip: what the encoder writes, the decoder reads back as it was, and
// encoding/json reads it as the same JSON.
func TestItemRoundTrip(t *testing.T) {
	it := sample()
	b, err := json.Marshal(it)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeItem(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !back.Equal(it) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, it)
	}
	ref, err := refItem(b)
	if err != nil || !ref.Equal(it) {
		t.Fatalf("encoding/json reads %s as %+v (%v)", b, ref, err)
	}
	// Attributes are written in name order, so a request is the same for the same item.
	if !strings.HasPrefix(string(b), `{"":{"S":""},"b":{"B":"AAEC/w=="},"bs":{"BS":["AQ==","AgM="]},`) {
		t.Errorf("encoded %s", b)
	}
}

// TestDecodeDynamoDBAnswers reads items as DynamoDB writes them (testdata/*.json, answers of
// DynamoDB Local), each against encoding/json's reading of the same text.
func TestDecodeDynamoDBAnswers(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var answer struct{ Item json.RawMessage }
			if err := json.Unmarshal(data, &answer); err != nil {
				t.Fatal(err)
			}
			got, err := DecodeItem(answer.Item)
			if err != nil {
				t.Fatal(err)
			}
			want, err := refItem(answer.Item)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 || !got.Equal(want) {
				t.Fatalf("read %+v, want %+v", got, want)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, doc := range []string{
		``, `[]`, `{"a":{}}`, `{"a":{"S":"x","N":"1"}}`, `{"a":{"X":"x"}}`, `{"a":{"S":1}}`,
		`{"a":{"B":"not base64!"}}`, `{"a":{"BOOL":"true"}}`, `{"a":{"NULL":null}}`, `{"a":{"L":{}}}`,
		`{"a":{"M":[]}}`, `{"a":{"SS":["x",1]}}`, `{"a":{"S":"x"}} x`, `{"a":{"S":"x"},}`, `{"a":{"S":"\x01"}}`,
		`{"a":{"S":"\q"}}`, `{"a":{"S":"\u12"}}`, `{"a":{"S":"x}}`, `{a:{"S":"x"}}`,
		`{"a":` + strings.Repeat(`{"L":[`, maxDepth+2) + `{"S":"x"}` + strings.Repeat(`]}`, maxDepth+2) + `}`,
	} {
		if it, err := DecodeItem([]byte(doc)); err == nil {
			t.Errorf("%q decoded as %+v", doc, it)
		} else if !errors.Is(err, errAttrJSON) {
			t.Errorf("%q: error %v does not say what it was reading", doc, err)
		}
	}
	if it, err := DecodeItem([]byte(` null `)); err != nil || it != nil {
		t.Errorf("null: %+v, %v", it, err)
	}
}

// TestStringsAsEncodingJSON: escapes, surrogates and invalid UTF-8 read as encoding/json reads
// them.
func TestStringsAsEncodingJSON(t *testing.T) {
	for _, s := range []string{
		`plain`, `zoë`, `\u00e9\n\/\b\f\r\t\"\\`, `\ud83d\ude00`, `\ud83d`, `\ude00x`, `\ud83d\u0041`,
		`\ud83d\ud83d\ude00`, "\xff\xfe", "ok\xc3", `\u0000`, "caf\xc3\xa9\\n",
	} {
		doc := `{"a":{"S":"` + s + `"}}`
		got, err := DecodeItem([]byte(doc))
		if err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		var want string
		if err := json.Unmarshal([]byte(`"`+s+`"`), &want); err != nil {
			t.Fatal(err)
		}
		if got["a"].Text != want {
			t.Errorf("%q read as %q, encoding/json reads %q", s, got["a"].Text, want)
		}
		// What is read is written so that encoding/json reads it the same again.
		var again string
		if err := json.Unmarshal(appendString(nil, want), &again); err != nil || again != want {
			t.Errorf("%q written as %s", want, appendString(nil, want))
		}
	}
}

// FuzzDecodeItem: the decoder reads what DynamoDB answers, which comes from outside. It must
// not panic on anything; what it reads, encoding/json reads the same; and what it reads, written
// again, reads back the same.
func FuzzDecodeItem(f *testing.F) {
	b, _ := json.Marshal(sample())
	f.Add(b)
	f.Add([]byte(`{"pk":{"S":"A#1"},"v":{"N":"3"},"dz":{"B":"eJw="}}`))
	f.Add([]byte(`{"a":{"S":"\ud83d\ude00\u00e9"},"b":{"L":[{"NULL":true},{"BOOL":false}]}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		it, err := DecodeItem(data)
		if err != nil {
			return
		}
		ref, rerr := refItem(data)
		if rerr != nil {
			t.Fatalf("read %q as %+v; encoding/json: %v", data, it, rerr)
		}
		if !ref.Equal(it) {
			t.Fatalf("read %q as %+v; encoding/json reads %+v", data, it, ref)
		}
		again, err := DecodeItem(appendItem(nil, it))
		if err != nil || !again.Equal(it) {
			t.Fatalf("%+v written as %s reads back as %+v (%v)", it, appendItem(nil, it), again, err)
		}
	})
}

// refItem reads an item with encoding/json, as a reference for the hand-written reader.
func refItem(data []byte) (Item, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, nil
	}
	it := Item{}
	for name, r := range raw {
		v, err := refValue(r)
		if err != nil {
			return nil, err
		}
		it[name] = v
	}
	return it, nil
}

func refValue(data []byte) (Value, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return Value{}, err
	}
	if len(raw) != 1 {
		return Value{}, fmt.Errorf("%d types", len(raw))
	}
	for name, r := range raw {
		var v Value
		var err error
		switch name {
		case "S":
			v.Kind = KindS
			err = json.Unmarshal(r, &v.Text)
		case "N":
			v.Kind = KindN
			err = json.Unmarshal(r, &v.Text)
		case "B":
			v.Kind = KindB
			err = json.Unmarshal(r, &v.Bytes)
		case "BOOL":
			v.Kind = KindBOOL
			err = json.Unmarshal(r, &v.Bool)
		case "NULL":
			v.Kind = KindNULL
			err = json.Unmarshal(r, &v.Bool)
		case "M":
			v.Kind = KindM
			v.Map, err = refItem(r)
		case "L":
			v.Kind = KindL
			var rs []json.RawMessage
			err = json.Unmarshal(r, &rs)
			for _, e := range rs {
				ev, eerr := refValue(e)
				err = errors.Join(err, eerr)
				v.List = append(v.List, ev)
			}
		case "SS", "NS":
			v.Kind = map[string]Kind{"SS": KindSS, "NS": KindNS}[name]
			err = json.Unmarshal(r, &v.Strings)
		case "BS":
			v.Kind = KindBS
			err = json.Unmarshal(r, &v.ByteSet)
		default:
			return Value{}, fmt.Errorf("type %q", name)
		}
		return v, err
	}
	panic("unreachable")
}

// BenchmarkQueryAnswer reads a page of 25 stored orders as a Query answer, and writes one of
// them as a PutItem request.
func BenchmarkQueryAnswer(b *testing.B) {
	order := bytes.Repeat([]byte(`{"sku":"TEA-SAMPLER","quantity":2,"unit_price":"19.99","currency":"USD"},`), 20)
	it := encodeItem(store.Item{PK: "A#acct#E#zoe@example.com", SK: "O#ultracart#12345", GSI1PK: "O#acct#ultracart#12345",
		GSI1SK: "-", Version: 3, Data: order, Labels: map[string]string{"state": "forwarded"}})
	items := make([]Item, 25)
	for i := range items {
		items[i] = it
	}
	page, err := json.Marshal(struct{ Items []Item }{items})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("read", func(b *testing.B) {
		b.SetBytes(int64(len(page)))
		b.ReportAllocs()
		for b.Loop() {
			var out queryOutput
			if err := json.Unmarshal(page, &out); err != nil || len(out.Items) != 25 {
				b.Fatal(err)
			}
		}
	})
	b.Run("write", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(&putItemInput{conditional: conditional{TableName: "t"}, Item: it}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
