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
func (d *Decimal) UnmarshalJSON(b []byte) error {
	s, err := numberOrString(b, reflect.TypeFor[Decimal]())
	*d = Decimal(s)
	return err
}

// ID is an identifier that may arrive as a number or a string; "" when absent.
type ID string

// UnmarshalJSON accepts a JSON number or string.
func (id *ID) UnmarshalJSON(b []byte) error {
	s, err := numberOrString(b, reflect.TypeFor[ID]())
	*id = ID(s)
	return err
}

// numberOrString reads a JSON number as its exact text, or a string as its trimmed content;
// null or absent is "". Anything else is a type error naming typ.
func numberOrString(b []byte, typ reflect.Type) (string, error) {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		return "", nil
	case b[0] == '"':
		s, err := unquoteJSON(b)
		return strings.TrimSpace(s), err
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		return string(b), nil
	}
	return "", &json.UnmarshalTypeError{Value: jsonValueKind(b), Type: typ}
}

// Flag is a tri-state boolean: nil when the source did not say.
type Flag struct{ v *bool }

// Known reports whether the source said anything.
func (f Flag) Known() bool { return f.v != nil }

// True reports whether the source said true.
func (f Flag) True() bool { return f.v != nil && *f.v }

// False reports whether the source said false.
func (f Flag) False() bool { return f.v != nil && !*f.v }

// Ptr is the flag as a *bool for the domain (nil when unknown).
func (f Flag) Ptr() *bool {
	if f.v == nil {
		return nil
	}
	v := *f.v
	return &v
}

// UnmarshalJSON accepts true/false, null, and the strings "true"/"false"/"1"/"0"/"yes"/"no"/"".
func (f *Flag) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	set := func(v bool) { f.v = &v }
	switch string(b) {
	case "", "null":
		f.v = nil
		return nil
	case "true":
		set(true)
		return nil
	case "false":
		set(false)
		return nil
	}
	if b[0] == '"' {
		s, err := unquoteJSON(b)
		if err != nil {
			return err
		}
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "":
			f.v = nil
		case "true", "1", "yes", "y":
			set(true)
		case "false", "0", "no", "n":
			set(false)
		default:
			return &json.UnmarshalTypeError{Value: "string " + quoteShort(s), Type: reflect.TypeFor[bool]()}
		}
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

// Text is a string that tolerates a number or boolean in its place (kept as its JSON text).
type Text string

// UnmarshalJSON accepts a string, number, boolean or null.
func (t *Text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*t = ""
	case b[0] == '"':
		s, err := unquoteJSON(b)
		if err != nil {
			return err
		}
		*t = Text(s)
	case b[0] == '{' || b[0] == '[':
		return &json.UnmarshalTypeError{Value: jsonValueKind(b), Type: reflect.TypeFor[string]()}
	default:
		*t = Text(b)
	}
	return nil
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

// unquoteJSON reads a JSON string. Most strings have no escapes, and the decoder has already
// checked the syntax, so those are sliced directly; the rest go through encoding/json.
func unquoteJSON(b []byte) (string, error) {
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
			return string(inner), nil
		}
	}
	var s string
	err := json.Unmarshal(b, &s)
	return s, err
}
