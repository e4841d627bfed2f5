// Package jsonmodel reads JSON into Go structs without reflection, for the hot decoders whose
// field switches are generated from the structs (gendecode, run by `go generate`): UltraCart's
// payloads (shared/ultracart) and cartrelay's own stored records (shared/domain).
//
// It reads only what it can read exactly as encoding/json would. Anything else (a syntax
// error, a type mismatch, a member name that is escaped, not ASCII or given twice, nesting
// deeper than maxDepth) makes it give up with ErrNotSimple, and the caller reads the document
// again with encoding/json, so results and errors in those cases are encoding/json's own. Each
// user holds its decoder to encoding/json with a fuzz test.
//
// A document is copied once into a string, and every string read from it is a slice of that
// copy: reading an order's dozens of short strings costs one allocation. A result that is kept
// keeps the document's text with it.
package jsonmodel

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// ErrNotSimple says the document needs encoding/json (see the package comment).
var ErrNotSimple = errors.New("JSON needs the general decoder")

// maxDepth is far deeper than any model nests and far below encoding/json's limit.
const maxDepth = 200

// Decoder is a scanner over one JSON document. A package's generated field functions take it,
// or a type of the package's own that embeds it (to keep state of its own, such as blocks to
// allocate from), as their D.
type Decoder struct {
	src string // the document
	// data is the document as the caller gave it, when it was bytes, for the readers that
	// hand a []byte to an Unmarshaler (nil otherwise).
	data []byte
	i    int // the next byte to read
	// depth counts the objects and arrays open around i.
	depth int
	// Member is the name of the member whose value is at i, lower-cased, while a field
	// function runs (see Object).
	Member string
	// FirstCap is the capacity a slice read by Slice or Structs starts with. 0 lets append
	// size it (1, 2, 4, ...), which keeps short arrays small; a document whose arrays are
	// mostly of a few elements (an UltraCart order's) spares their growth with 4.
	FirstCap int
}

// Start returns a decoder at the start of src.
func Start(src string) Decoder { return Decoder{src: src} }

// StartBytes returns a decoder at the start of data, which it copies once into the string its
// strings are sliced from. data must not change while the decoder reads it.
func StartBytes(data []byte) Decoder { return Decoder{src: string(data), data: data} }

// Scanner is what generated code needs of a decoder: the embedded Decoder.
type Scanner interface {
	Scan() *Decoder
}

// Scan returns d: a package's own decoder type gets it by embedding Decoder.
func (d *Decoder) Scan() *Decoder { return d }

// Document reads the whole document as one object, calling field at each member (see Object);
// anything after the object but white space gives up.
func (d *Decoder) Document(field func() (int, error)) error {
	if err := d.Object(field); err != nil {
		return err
	}
	if d.space(); d.i != len(d.src) {
		return ErrNotSimple
	}
	return nil
}

// Read reads the document into v, which must hold the zero value, through v's generated field
// function.
func Read[D Scanner, T any](d D, v *T, field func(*T, D) (int, error)) error {
	return d.Scan().Document(func() (int, error) { return field(v, d) })
}

func (d *Decoder) space() {
	for d.i < len(d.src) {
		switch d.src[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next returns the byte at i after any white space (0 at the end).
func (d *Decoder) next() byte {
	d.space()
	if d.i < len(d.src) {
		return d.src[d.i]
	}
	return 0
}

// literal consumes word (true, false or null) at i.
func (d *Decoder) literal(word string) error {
	if len(d.src)-d.i < len(word) || d.src[d.i:d.i+len(word)] != word {
		return ErrNotSimple
	}
	d.i += len(word)
	return nil
}

// Null consumes a null at i, if there is one.
func (d *Decoder) Null() bool {
	return d.next() == 'n' && d.literal("null") == nil
}

// Object reads an object at i as a struct: for each member it sets Member to the member's
// name, lower-cased, and calls field, which reads the value into the struct field of that name
// (matched without regard to case, as encoding/json matches a name no field has exactly) and
// returns the field's index, at most 63, or returns -1 without reading anything when no field
// has that name (the value is then skipped, its syntax checked). A name given twice, escaped or
// not ASCII gives up.
//
// It is not inlined: every struct type's generated reading calls it, and each inlined copy
// would cost a bootstrap half a kilobyte.
//
//go:noinline
func (d *Decoder) Object(field func() (int, error)) error {
	var seen uint64
	return d.Members(func(name string, plain bool) error {
		upper := false
		for i := 0; i < len(name); i++ {
			c := name[i]
			if c >= utf8.RuneSelf {
				return ErrNotSimple // encoding/json folds some non-ASCII letters to ASCII ones
			}
			upper = upper || 'A' <= c && c <= 'Z'
		}
		if !plain {
			return ErrNotSimple
		}
		d.Member = name
		if upper {
			d.Member = strings.ToLower(name)
		}
		idx, err := field()
		switch {
		case err != nil:
			return err
		case idx < 0:
			return d.Skip()
		case seen&(1<<idx) != 0:
			// Two members naming one field: encoding/json merges them, which is not worth
			// copying here.
			return ErrNotSimple
		}
		seen |= 1 << idx
		return nil
	})
}

// Members reads the object at i, calling member at each member's value with the member's name
// as it stands in the document (plain when it has no escape and is valid UTF-8, so that it is
// its own text; see Unquote).
func (d *Decoder) Members(member func(name string, plain bool) error) error {
	if d.next() != '{' {
		return ErrNotSimple
	}
	d.i++
	if d.depth++; d.depth > maxDepth {
		return ErrNotSimple
	}
	if d.next() == '}' {
		d.i++
		d.depth--
		return nil
	}
	for {
		if d.next() != '"' {
			return ErrNotSimple
		}
		start := d.i
		plain, err := d.str()
		if err != nil {
			return err
		}
		name := d.src[start+1 : d.i-1]
		if d.next() != ':' {
			return ErrNotSimple
		}
		d.i++
		if err := member(name, plain); err != nil {
			return err
		}
		switch d.next() {
		case ',':
			d.i++
		case '}':
			d.i++
			d.depth--
			return nil
		default:
			return ErrNotSimple
		}
	}
}

// Array reads an array at i, calling elem at each element; null leaves it unread, [] is
// reported by empty (encoding/json makes an empty slice of it, not nil).
func (d *Decoder) Array(empty func(), elem func() error) error {
	if d.Null() {
		return nil
	}
	if d.next() != '[' {
		return ErrNotSimple
	}
	d.i++
	if d.depth++; d.depth > maxDepth {
		return ErrNotSimple
	}
	if d.next() == ']' {
		d.i++
		d.depth--
		empty()
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch d.next() {
		case ',':
			d.i++
		case ']':
			d.i++
			d.depth--
			return nil
		default:
			return ErrNotSimple
		}
	}
}

// Scalar consumes the scalar at i and returns its kind (its first byte: '"', 't', 'f', 'n',
// or a digit or '-' for a number), where it starts, and for a string whether it is plain (its
// content is its text).
func (d *Decoder) Scalar() (kind byte, start int, plain bool, err error) {
	kind = d.next()
	start = d.i
	switch {
	case kind == '"':
		plain, err = d.str()
	case kind == 't':
		err = d.literal("true")
	case kind == 'f':
		err = d.literal("false")
	case kind == 'n':
		err = d.literal("null")
	case kind == '-' || '0' <= kind && kind <= '9':
		err = d.number()
	default:
		err = ErrNotSimple
	}
	return kind, start, plain, err
}

// Source is the whole document; Span(start) is the part of it from start to the next byte to
// read.
func (d *Decoder) Source() string { return d.src }

// Span is the document from start up to the next byte to read.
func (d *Decoder) Span(start int) string { return d.src[start:d.i] }

// Raw consumes the value at i, checking its syntax, and returns its text as the caller gave
// the document (a slice of it when that was bytes), for an Unmarshaler.
func (d *Decoder) Raw() ([]byte, error) {
	d.space()
	start := d.i
	if err := d.Skip(); err != nil {
		return nil, err
	}
	if d.data != nil {
		return d.data[start:d.i:d.i], nil
	}
	return []byte(d.src[start:d.i]), nil
}

// str consumes a string at i, checking its syntax; plain reports that it holds no escape and
// only valid UTF-8, so its content is its text.
func (d *Decoder) str() (plain bool, err error) {
	i := d.i + 1
	plain = true
	ascii := true
	for i < len(d.src) {
		for i < len(d.src) && asciiText[d.src[i]] {
			i++
		}
		if i >= len(d.src) {
			break
		}
		c := d.src[i]
		switch {
		case c == '"':
			if !ascii && !utf8.ValidString(d.src[d.i+1:i]) {
				plain = false
			}
			d.i = i + 1
			return plain, nil
		case c == '\\':
			plain = false
			if i+1 >= len(d.src) {
				return false, ErrNotSimple
			}
			switch d.src[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d.src) {
					return false, ErrNotSimple
				}
				for _, h := range []byte(d.src[i+2 : i+6]) {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false, ErrNotSimple
					}
				}
				i += 6
			default:
				return false, ErrNotSimple
			}
		case c < 0x20:
			return false, ErrNotSimple
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			i++
		}
	}
	return false, ErrNotSimple
}

// asciiText marks the bytes a string holds as themselves: printable ASCII but the quote and
// the backslash.
var asciiText = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// number consumes a number at i, checking it is one by JSON's grammar.
func (d *Decoder) number() error {
	s, i := d.src, d.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	default:
		return ErrNotSimple
	}
	digits := func() bool {
		j := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return ErrNotSimple
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return ErrNotSimple
		}
	}
	d.i = i
	return nil
}

// Skip consumes the value at i, of a member no field names, checking its syntax.
func (d *Decoder) Skip() error {
	switch c := d.next(); c {
	case '{':
		return d.Members(func(string, bool) error { return d.Skip() })
	case '[':
		return d.Array(func() {}, d.Skip)
	}
	_, _, _, err := d.Scalar()
	return err
}
