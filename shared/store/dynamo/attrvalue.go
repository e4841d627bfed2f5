package dynamo

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/cartrelay/cartrelay/shared/jsonmodel"
)

// DynamoDB's attribute values in its JSON protocol: {"S":"text"}, {"N":"12"}, {"B":"base64"},
// {"BOOL":true}, {"NULL":true}, {"M":{name: value}}, {"L":[value]}, {"SS":[...]}, {"NS":[...]},
// {"BS":[base64]}. They are written and read here by hand rather than through encoding/json's
// reflection: every item of every call goes through them.

// Kind is the type of an attribute value, DynamoDB's name for it.
type Kind uint8

// The kinds of attribute value.
const (
	KindS Kind = iota + 1
	KindN
	KindB
	KindBOOL
	KindNULL
	KindM
	KindL
	KindSS
	KindNS
	KindBS
)

var kindNames = [...]string{KindS: "S", KindN: "N", KindB: "B", KindBOOL: "BOOL", KindNULL: "NULL",
	KindM: "M", KindL: "L", KindSS: "SS", KindNS: "NS", KindBS: "BS"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one attribute value; Kind says which of its fields holds it.
type Value struct {
	Kind Kind
	// Text is an S's string or an N's number as DynamoDB writes it.
	Text string
	// Bytes is a B's value.
	Bytes []byte
	// Bool is a BOOL's value (and NULL's, which DynamoDB always sends as true).
	Bool bool
	// Map is an M's members, List an L's elements.
	Map  Item
	List []Value
	// Strings is an SS's strings or an NS's numbers; ByteSet a BS's values.
	Strings []string
	ByteSet [][]byte
}

// Item is an item or a key: attribute values by name.
type Item map[string]Value

// S is a string value.
func S(v string) Value { return Value{Kind: KindS, Text: v} }

// N is a whole number.
func N(n int64) Value { return Value{Kind: KindN, Text: strconv.FormatInt(n, 10)} }

// B is a binary value.
func B(v []byte) Value { return Value{Kind: KindB, Bytes: v} }

// Equal reports whether v and w are the same value (nil and empty byte slices, maps and lists
// count as the same).
func (v Value) Equal(w Value) bool {
	if v.Kind != w.Kind || v.Text != w.Text || v.Bool != w.Bool || !bytes.Equal(v.Bytes, w.Bytes) ||
		!slices.Equal(v.Strings, w.Strings) || !v.Map.Equal(w.Map) ||
		!slices.EqualFunc(v.List, w.List, Value.Equal) || !slices.EqualFunc(v.ByteSet, w.ByteSet, bytes.Equal) {
		return false
	}
	return true
}

// Equal reports whether it and other hold the same attributes.
func (it Item) Equal(other Item) bool {
	return maps.EqualFunc(it, other, Value.Equal)
}

// MarshalJSON writes the item with its attributes in name order.
func (it Item) MarshalJSON() ([]byte, error) {
	return appendItem(nil, it), nil
}

// UnmarshalJSON reads an item; null leaves it nil.
func (it *Item) UnmarshalJSON(data []byte) error {
	m, err := DecodeItem(data)
	if err != nil {
		return err
	}
	*it = m
	return nil
}

func appendItem(b []byte, it Item) []byte {
	if it == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	for i, name := range slices.Sorted(maps.Keys(it)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, name)
		b = append(b, ':')
		b = appendValue(b, it[name])
	}
	return append(b, '}')
}

// appendValue writes v. A Value of no kind is written as NULL, which DynamoDB accepts anywhere
// a value may be absent; the store never makes one.
func appendValue(b []byte, v Value) []byte {
	b = append(b, `{"`...)
	switch v.Kind {
	case KindS, KindN:
		b = append(b, v.Kind.String()...)
		b = append(b, `":`...)
		b = appendString(b, v.Text)
	case KindB:
		b = append(b, `B":`...)
		b = appendBase64(b, v.Bytes)
	case KindBOOL:
		b = append(b, `BOOL":`...)
		b = strconv.AppendBool(b, v.Bool)
	case KindM:
		b = append(b, `M":`...)
		if v.Map == nil {
			b = append(b, "{}"...)
		} else {
			b = appendItem(b, v.Map)
		}
	case KindL:
		b = append(b, `L":[`...)
		for i, e := range v.List {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, e)
		}
		b = append(b, ']')
	case KindSS, KindNS:
		b = append(b, v.Kind.String()...)
		b = append(b, `":[`...)
		for i, s := range v.Strings {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		b = append(b, ']')
	case KindBS:
		b = append(b, `BS":[`...)
		for i, e := range v.ByteSet {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendBase64(b, e)
		}
		b = append(b, ']')
	default:
		b = append(b, `NULL":true`...)
	}
	return append(b, '}')
}

func appendBase64(b []byte, v []byte) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string as encoding/json does, except that it leaves <, >
// and & as they are: invalid UTF-8 becomes U+FFFD, and U+2028 and U+2029 are escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// maxDepth bounds how deeply values read nest: DynamoDB allows 32 levels.
const maxDepth = 64

// DecodeItem reads an item (a JSON object of attribute values) or null, which gives nil. It
// reads exactly what encoding/json would read into the same shape, and refuses anything
// DynamoDB does not write: a value with no type or two, a type DynamoDB does not have, bad
// base64.
func DecodeItem(data []byte) (Item, error) {
	r := reader{src: data}
	r.space()
	var it Item
	if r.literal("null") {
		it = nil
	} else {
		var err error
		if it, err = r.item(0); err != nil {
			return nil, err
		}
	}
	r.space()
	if r.i != len(r.src) {
		return nil, r.fail("data after the item")
	}
	return it, nil
}

// errAttrJSON is wrapped by every error of the reader.
var errAttrJSON = errors.New("DynamoDB attribute value JSON")

type reader struct {
	src []byte
	i   int
}

func (r *reader) fail(what string) error {
	return fmt.Errorf("%w: %s at offset %d", errAttrJSON, what, r.i)
}

func (r *reader) space() {
	for r.i < len(r.src) {
		switch r.src[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// next skips space and tells whether the next byte is c, consuming it if so.
func (r *reader) next(c byte) bool {
	r.space()
	if r.i < len(r.src) && r.src[r.i] == c {
		r.i++
		return true
	}
	return false
}

func (r *reader) literal(word string) bool {
	if bytes.HasPrefix(r.src[r.i:], []byte(word)) {
		r.i += len(word)
		return true
	}
	return false
}

// members reads an object, calling member with each member's name with the reader at its
// value.
func (r *reader) members(member func(name string) error) error {
	if !r.next('{') {
		return r.fail("want an object")
	}
	if r.next('}') {
		return nil
	}
	for {
		r.space()
		name, err := r.string()
		if err != nil {
			return err
		}
		if !r.next(':') {
			return r.fail("want ':'")
		}
		r.space()
		if err := member(name); err != nil {
			return err
		}
		if r.next(',') {
			continue
		}
		if r.next('}') {
			return nil
		}
		return r.fail("want ',' or '}'")
	}
}

// elements reads an array, calling element with the reader at each element.
func (r *reader) elements(element func() error) error {
	if !r.next('[') {
		return r.fail("want an array")
	}
	if r.next(']') {
		return nil
	}
	for {
		r.space()
		if err := element(); err != nil {
			return err
		}
		if r.next(',') {
			continue
		}
		if r.next(']') {
			return nil
		}
		return r.fail("want ',' or ']'")
	}
}

func (r *reader) item(depth int) (Item, error) {
	if depth > maxDepth {
		return nil, r.fail("values nested too deeply")
	}
	it := Item{}
	err := r.members(func(name string) error {
		v, err := r.value(depth + 1)
		it[name] = v
		return err
	})
	return it, err
}

func (r *reader) value(depth int) (Value, error) {
	var v Value
	err := r.members(func(name string) error {
		if v.Kind != 0 {
			return r.fail("a value with more than one type")
		}
		switch name {
		case "S", "N":
			v.Kind = KindS
			if name == "N" {
				v.Kind = KindN
			}
			s, err := r.string()
			v.Text = s
			return err
		case "B":
			v.Kind = KindB
			b, err := r.base64()
			v.Bytes = b
			return err
		case "BOOL", "NULL":
			v.Kind = KindBOOL
			if name == "NULL" {
				v.Kind = KindNULL
			}
			switch {
			case r.literal("true"):
				v.Bool = true
			case r.literal("false"):
			default:
				return r.fail("want true or false")
			}
			return nil
		case "M":
			v.Kind = KindM
			m, err := r.item(depth + 1)
			v.Map = m
			return err
		case "L":
			v.Kind = KindL
			v.List = []Value{}
			if depth+1 > maxDepth {
				return r.fail("values nested too deeply")
			}
			return r.elements(func() error {
				e, err := r.value(depth + 1)
				v.List = append(v.List, e)
				return err
			})
		case "SS", "NS":
			v.Kind = KindSS
			if name == "NS" {
				v.Kind = KindNS
			}
			v.Strings = []string{}
			return r.elements(func() error {
				s, err := r.string()
				v.Strings = append(v.Strings, s)
				return err
			})
		case "BS":
			v.Kind = KindBS
			v.ByteSet = [][]byte{}
			return r.elements(func() error {
				b, err := r.base64()
				v.ByteSet = append(v.ByteSet, b)
				return err
			})
		}
		return r.fail(fmt.Sprintf("attribute type %q", name))
	})
	if err == nil && v.Kind == 0 {
		return v, r.fail("a value without a type")
	}
	return v, err
}

func (r *reader) base64() ([]byte, error) {
	s, err := r.string()
	if err != nil {
		return nil, err
	}
	// encoding/json's reading of []byte: the standard alphabet, padded, line breaks ignored.
	b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(b, []byte(s))
	if err != nil {
		return nil, fmt.Errorf("%w: binary value at offset %d: %w", errAttrJSON, r.i, err)
	}
	return b[:n], nil
}

// string reads a JSON string as encoding/json does: escapes resolved, invalid UTF-8 and lone
// surrogates replaced by U+FFFD. It checks the syntax here and leaves the unescaping to
// jsonmodel.Unquote, which the stored records' decoder uses too.
func (r *reader) string() (string, error) {
	if r.i >= len(r.src) || r.src[r.i] != '"' {
		return "", r.fail("want a string")
	}
	r.i++
	start := r.i
	plain := true // no escape, and valid UTF-8: the text is the string
	for r.i < len(r.src) {
		c := r.src[r.i]
		switch {
		case c == '"':
			text := r.src[start:r.i]
			r.i++
			if plain && utf8.Valid(text) {
				return string(text), nil
			}
			return jsonmodel.Unquote(string(text)), nil
		case c < 0x20:
			return "", r.fail("control character in a string")
		case c == '\\':
			plain = false
			r.i++
			if r.i >= len(r.src) {
				return "", r.fail("unfinished escape")
			}
			switch r.src[r.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				r.i++
			case 'u':
				r.i++
				if !r.hex4() {
					return "", r.fail("bad \\u escape")
				}
			default:
				return "", r.fail("bad escape")
			}
		default:
			r.i++
		}
	}
	return "", r.fail("unfinished string")
}

// hex4 checks four hex digits and steps over them.
func (r *reader) hex4() bool {
	if r.i+4 > len(r.src) {
		return false
	}
	for _, c := range r.src[r.i : r.i+4] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	r.i += 4
	return true
}
