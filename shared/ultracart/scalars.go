package ultracart

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"unicode/utf8"
)

// UltraCart's models are generated from Java classes: amounts are BigDecimals written as JSON
// numbers, ids are longs, flags are booleans. Payloads that passed through other tools carry
// the same values as strings, so the scalar types below accept both and keep numbers as text
// (never a float).

// Decimal is a number kept as its exact decimal text; "" when absent, null or an empty string.
type Decimal string

// UnmarshalJSON accepts a JSON number or a string holding one.
func (d *Decimal) UnmarshalJSON(b []byte) error { return d.read(copied(b)) }

func (d *Decimal) read(v value) error {
	s, err := numberOrString(v, reflect.TypeFor[Decimal]())
	*d = Decimal(s)
	return err
}

// ID is an identifier that may arrive as a number or a string; "" when absent.
type ID string

// UnmarshalJSON accepts a JSON number or string.
func (id *ID) UnmarshalJSON(b []byte) error { return id.read(copied(b)) }

func (id *ID) read(v value) error {
	s, err := numberOrString(v, reflect.TypeFor[ID]())
	*id = ID(s)
	return err
}

// numberOrString reads a JSON number as its exact text, or a string as its trimmed content;
// null or absent is "". Anything else is a type error naming typ.
func numberOrString(v value, typ reflect.Type) (string, error) {
	b := bytes.TrimSpace(v.raw)
	switch {
	case len(b) == 0 || string(b) == "null":
		return "", nil
	case b[0] == '"':
		s, err := unquoteJSON(v, b)
		return strings.TrimSpace(s), err
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		return v.str(b), nil
	}
	return "", &json.UnmarshalTypeError{Value: jsonValueKind(b), Type: typ}
}

// Flag is a tri-state boolean: unknown when the source did not say. (It holds no pointer, so
// reading one allocates nothing.)
type Flag struct{ known, v bool }

// Known reports whether the source said anything.
func (f Flag) Known() bool { return f.known }

// True reports whether the source said true.
func (f Flag) True() bool { return f.known && f.v }

// False reports whether the source said false.
func (f Flag) False() bool { return f.known && !f.v }

// Ptr is the flag as a *bool for the domain (nil when unknown).
func (f Flag) Ptr() *bool {
	if !f.known {
		return nil
	}
	v := f.v
	return &v
}

// UnmarshalJSON accepts true/false, null, and the strings "true"/"false"/"1"/"0"/"yes"/"no"/"".
func (f *Flag) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	set := func(v bool) { *f = Flag{known: true, v: v} }
	switch string(b) {
	case "", "null":
		*f = Flag{}
		return nil
	case "true":
		set(true)
		return nil
	case "false":
		set(false)
		return nil
	}
	if b[0] == '"' {
		s, err := unquoteJSON(copied(b), b)
		if err != nil {
			return err
		}
		v, ok := flagText(s)
		if !ok {
			return &json.UnmarshalTypeError{Value: "string " + quoteShort(s), Type: reflect.TypeFor[bool]()}
		}
		*f = v
		return nil
	}
	switch string(b) {
	case "1":
		set(true)
		return nil
	case "0":
		set(false)
		return nil
	}
	return &json.UnmarshalTypeError{Value: jsonValueKind(b), Type: reflect.TypeFor[bool]()}
}

// flagText reads a Flag written as a string; ok is false when s says neither yes nor no.
func flagText(s string) (f Flag, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return Flag{}, true
	case "true", "1", "yes", "y":
		return Flag{known: true, v: true}, true
	case "false", "0", "no", "n":
		return Flag{known: true}, true
	}
	return Flag{}, false
}

// Text is a string that tolerates a number or boolean in its place (kept as its JSON text).
type Text string

// UnmarshalJSON accepts a string, number, boolean or null.
func (t *Text) UnmarshalJSON(b []byte) error { return t.read(copied(b)) }

func (t *Text) read(v value) error {
	b := bytes.TrimSpace(v.raw)
	switch {
	case len(b) == 0 || string(b) == "null":
		*t = ""
	case b[0] == '"':
		s, err := unquoteJSON(v, b)
		if err != nil {
			return err
		}
		*t = Text(s)
	case b[0] == '{' || b[0] == '[':
		return &json.UnmarshalTypeError{Value: jsonValueKind(b), Type: reflect.TypeFor[string]()}
	default:
		*t = Text(v.str(b))
	}
	return nil
}

// value is one JSON value a scalar reads: raw, and where raw lies in src, a string holding the
// whole payload, when it was read from one (at is -1 otherwise). A part of raw becomes a slice
// of src rather than a string of its own, so reading the many short strings of an order costs
// one allocation (src) instead of one each (see decodePayload).
type value struct {
	raw []byte
	src string
	at  int
}

// copied is a value whose parts are copied out: raw may be reused after the call (as
// encoding/json's Unmarshaler contract allows).
func copied(raw []byte) value { return value{raw: raw, at: -1} }

// str returns part, a slice of v.raw, as a string.
func (v value) str(part []byte) string {
	if v.at < 0 || len(part) == 0 {
		return string(part)
	}
	// part is v.raw[i:j] for some i, j (bytes.TrimSpace and unquoteJSON only reslice), so i is
	// the difference of their capacities.
	off := v.at + cap(v.raw) - cap(part)
	if off < v.at || off+len(part) > len(v.src) {
		return string(part)
	}
	return v.src[off : off+len(part)]
}

func jsonValueKind(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// unquoteJSON reads b, a JSON string that is a part of v. Most strings have no escapes, and
// the decoder has already checked the syntax, so those are sliced directly; the rest go
// through encoding/json.
func unquoteJSON(v value, b []byte) (string, error) {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		inner := b[1 : len(b)-1]
		simple := true
		for _, c := range inner {
			if c == '\\' || c == '"' || c < 0x20 {
				simple = false
				break
			}
		}
		if simple && utf8.Valid(inner) {
			return v.str(inner), nil
		}
	}
	var s string
	err := json.Unmarshal(b, &s)
	return s, err
}
