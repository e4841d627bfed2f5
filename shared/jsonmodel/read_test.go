package jsonmodel

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// sample is a struct with a field of every kind the readers read, and its field function
// written as gendecode would write it.
type sample struct {
	S  string            `json:"s"`
	B  bool              `json:"b"`
	N  int64             `json:"n"`
	I  int               `json:"i"`
	P  *bool             `json:"p"`
	M  map[string]string `json:"m"`
	T  time.Time         `json:"t"`
	L  []string          `json:"l"`
	V  inner             `json:"v"`
	SP *inner            `json:"sp"`
	SS []inner           `json:"ss"`
}

type inner struct {
	S string `json:"s"`
}

func (v *sample) field(d *Decoder) (int, error) {
	switch d.Member {
	case "s":
		return 0, d.String(&v.S)
	case "b":
		return 1, d.Bool(&v.B)
	case "n":
		return 2, d.Int64(&v.N)
	case "i":
		return 3, d.Int(&v.I)
	case "p":
		return 4, d.BoolPtr(&v.P)
	case "m":
		return 5, d.StringMap(&v.M)
	case "t":
		return 6, d.Unmarshal(&v.T)
	case "l":
		return 7, Slice(d, &v.L, func(d *Decoder, e *string) error { return d.String(e) })
	case "v":
		return 8, Value(d, &v.V, (*inner).field)
	case "sp":
		return 9, Struct(d, &v.SP, (*inner).field)
	case "ss":
		return 10, Structs(d, &v.SS, (*inner).field)
	}
	return -1, nil
}

func (v *inner) field(d *Decoder) (int, error) {
	if d.Member == "s" {
		return 0, d.String(&v.S)
	}
	return -1, nil
}

func readSample(doc []byte) (sample, error) {
	var v sample
	d := StartBytes(doc)
	return v, Read(&d, &v, (*sample).field)
}

// TestReadsAsEncodingJSON: documents the readers read, to encoding/json's values, and
// documents they leave to encoding/json.
func TestReadsAsEncodingJSON(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		read bool
	}{
		{`{"s":"a","b":true,"n":-12,"i":7,"p":false,"m":{"k":"v","k":"w","e":null},"t":"2025-01-02T03:04:05+01:00","l":["x",null],"v":{"s":"v"},"sp":{"s":"p"},"ss":[{"s":"1"},null]}`, true},
		{`{"S":"a","V":null,"SP":null,"SS":null,"L":null,"M":null,"P":null,"T":null,"N":null}`, true},
		{`{"l":[],"ss":[],"m":{}}`, true},
		{`{"s":"caf\u00e9 \ud83d\ude00 \ud800 \\ \/ \" \b\f\n\r\t"}`, true},
		{"{\"s\":\"\xff\xc3\"}", true},
		{"{\"m\":{\"\\u0041\":\"b\",\"\xff\":\"c\"}}", true},
		{`{"unknown":[{"deep":[1,-2.5e+3,true,false,null,"x"]}],"s":"a"}`, true},
		{`{"s":1}`, false},
		{`{"b":"true"}`, false},
		{`{"n":1.0}`, false},
		{`{"n":1e3}`, false},
		{`{"n":"1"}`, false},
		{`{"i":9223372036854775808}`, false},
		{`{"p":0}`, false},
		{`{"m":[]}`, false},
		{`{"m":{"a":1}}`, false},
		{`{"t":"2025-01-02"}`, false},
		{`{"t":1}`, false},
		{`{"l":"a"}`, false},
		{`{"v":[]}`, false},
		{`{"s":"a","s":"b"}`, false},
		{`{"s":"a","S":"b"}`, false},
		{`{"\u0073":"a"}`, false},
		{`{"\u017f":"a"}`, false},
		{`{"s":"a"`, false},
		{`{"s":"a"} {}`, false},
		{`{"s":"\x"}`, false},
		{`{"s":01}`, false},
		{`["s"]`, false},
	} {
		got, err := readSample([]byte(tc.doc))
		if (err == nil) != tc.read {
			t.Errorf("%s: read %v (%v), want %v", tc.doc, err == nil, err, tc.read)
			continue
		}
		if err != nil {
			continue
		}
		var want sample
		if err := json.Unmarshal([]byte(tc.doc), &want); err != nil {
			t.Errorf("%s: read, encoding/json refuses it: %v", tc.doc, err)
		} else if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n read          %+v\n encoding/json %+v", tc.doc, got, want)
		}
	}
}

// FuzzReadAsEncodingJSON: every document the readers read, encoding/json reads to the same
// value.
func FuzzReadAsEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"s":"a","b":true,"n":-12,"i":7,"p":false,"m":{"k":"v"},"t":"2025-01-02T03:04:05Z","l":["x"],"v":{"s":"v"},"sp":{"s":"p"},"ss":[{"s":"1"}]}`,
		`{"s":"caf\u00e9 \ud83d\ude00 \ud800\udbff \\ \/ \" \b\f\n\r\t"}`,
		"{\"s\":\"\xff\xc3\xa9\",\"m\":{\"\\u0041\":\"b\"}}",
		`{"unknown":[{"deep":[1,-2.5e+3,true,false,null,"x"]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		got, err := readSample(doc)
		if err != nil {
			return
		}
		var want sample
		if err := json.Unmarshal(doc, &want); err != nil {
			t.Fatalf("read %q, encoding/json refuses it: %v", doc, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n read          %+v\n encoding/json %+v", doc, got, want)
		}
	})
}
