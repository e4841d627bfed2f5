package ultracart

import (
	"errors"
	"strings"
	"unicode/utf8"
)

//go:generate go run ./internal/gendecode

// modelDecoder is decodePayload's first reading: a scanner over the payload that knows the
// models (their field methods are generated into model_decode.go from model.go), so it reads
// an order in one pass, without reflection, skips the members the models do not name after
// checking their syntax, and gives every Text, Decimal and ID a slice of one string holding
// the payload instead of a string of its own.
//
// It reads only what it can read exactly as encoding/json would. Anything else (a syntax
// error, a type mismatch, a name that is escaped, not ASCII, or given twice, nesting deeper
// than maxModelDepth, a string with escapes in a Flag) makes it give up with errNotSimple,
// and decodePayload reads the payload again with encoding/json, so results and errors in
// those cases are encoding/json's own. FuzzDecodePayloadAsEncodingJSON checks that every
// payload it reads, encoding/json reads to the same value.
type modelDecoder struct {
	src string // the payload
	i   int    // the next byte to read
	// depth counts the objects and arrays open around i.
	depth int
	// member is the name of the member being read, lower-cased, for the models' field methods.
	member string
	// currencies is the block the next Currency is taken from (see currency).
	currencies []Currency
}

// errNotSimple: the payload needs encoding/json (see modelDecoder).
var errNotSimple = errors.New("payload needs the general decoder")

// maxModelDepth is far deeper than any model nests and far below encoding/json's limit.
const maxModelDepth = 200

// model is a decoding struct of model.go: field reads the value of the member d.member names
// into the field of that name (without regard to case) and returns the field's index, or
// returns -1 without reading anything when no field has that name.
type model interface {
	field(d *modelDecoder) (int, error)
}

// readModel reads payload into v, which must hold the zero value.
func readModel(payload string, v model) error {
	d := modelDecoder{src: payload}
	d.space()
	if err := d.object(v); err != nil {
		return err
	}
	d.space()
	if d.i != len(d.src) {
		return errNotSimple
	}
	return nil
}

func (d *modelDecoder) space() {
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
func (d *modelDecoder) next() byte {
	d.space()
	if d.i < len(d.src) {
		return d.src[d.i]
	}
	return 0
}

// literal consumes word (true, false or null) at i.
func (d *modelDecoder) literal(word string) error {
	if len(d.src)-d.i < len(word) || d.src[d.i:d.i+len(word)] != word {
		return errNotSimple
	}
	d.i += len(word)
	return nil
}

// null consumes a null at i, if there is one.
func (d *modelDecoder) null() bool {
	if d.next() == 'n' && d.literal("null") == nil {
		return true
	}
	return false
}

// object reads an object at i into v.
func (d *modelDecoder) object(v model) error {
	var seen uint64
	return d.members(func(name string, plain bool) error {
		upper := false
		for i := 0; i < len(name); i++ {
			c := name[i]
			if c >= utf8.RuneSelf {
				return errNotSimple // encoding/json folds some non-ASCII letters to ASCII ones
			}
			upper = upper || 'A' <= c && c <= 'Z'
		}
		if !plain {
			return errNotSimple
		}
		d.member = name
		if upper {
			// Names match without regard to case; UltraCart's own are lower-case.
			d.member = strings.ToLower(name)
		}
		idx, err := v.field(d)
		switch {
		case err != nil:
			return err
		case idx < 0:
			return d.skip()
		case seen&(1<<idx) != 0:
			// Two members naming one field: encoding/json merges them, which is not worth
			// copying here.
			return errNotSimple
		}
		seen |= 1 << idx
		return nil
	})
}

// members reads the object at i, calling member at each member's value with the member's name
// as it stands in the payload (plain when it has no escape and is valid UTF-8).
func (d *modelDecoder) members(member func(name string, plain bool) error) error {
	if d.next() != '{' {
		return errNotSimple
	}
	d.i++
	if d.depth++; d.depth > maxModelDepth {
		return errNotSimple
	}
	if d.next() == '}' {
		d.i++
		d.depth--
		return nil
	}
	for {
		if d.next() != '"' {
			return errNotSimple
		}
		start := d.i
		plain, err := d.str()
		if err != nil {
			return err
		}
		name := d.src[start+1 : d.i-1]
		if d.next() != ':' {
			return errNotSimple
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
			return errNotSimple
		}
	}
}

// array reads an array at i, calling elem at each element; null leaves it unread, [] is
// reported by empty (encoding/json makes an empty slice of it, not nil).
func (d *modelDecoder) array(empty func(), elem func() error) error {
	if d.null() {
		return nil
	}
	if d.next() != '[' {
		return errNotSimple
	}
	d.i++
	if d.depth++; d.depth > maxModelDepth {
		return errNotSimple
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
			return errNotSimple
		}
	}
}

// decodeStruct reads an object or null at i into *p: null leaves it nil.
func decodeStruct[T any, PT interface {
	*T
	model
}](d *modelDecoder, p **T) error {
	if d.null() {
		return nil
	}
	v := new(T)
	if err := d.object(PT(v)); err != nil {
		return err
	}
	*p = v
	return nil
}

// currency reads a Currency object or null at i into *p. An order holds dozens of them (five
// an item, ten in the summary), so they are allocated in blocks rather than one by one.
func (d *modelDecoder) currency(p **Currency) error {
	if d.null() {
		return nil
	}
	if len(d.currencies) == cap(d.currencies) {
		d.currencies = make([]Currency, 0, 16)
	}
	d.currencies = d.currencies[:len(d.currencies)+1]
	v := &d.currencies[len(d.currencies)-1]
	if err := d.object(v); err != nil {
		return err
	}
	*p = v
	return nil
}

// decodeStructs reads an array of objects at i into *s; a null element is a zero element.
func decodeStructs[T any, PT interface {
	*T
	model
}](d *modelDecoder, s *[]T) error {
	return d.array(func() { *s = []T{} }, func() error {
		if *s == nil {
			// Most arrays of an order are short: one allocation for up to four elements.
			*s = make([]T, 0, 4)
		}
		*s = append(*s, *new(T))
		if d.null() {
			return nil
		}
		return d.object(PT(&(*s)[len(*s)-1]))
	})
}

// texts reads an array of strings at i into *s.
func (d *modelDecoder) texts(s *[]Text) error {
	return d.array(func() { *s = []Text{} }, func() error {
		*s = append(*s, "")
		return d.text(&(*s)[len(*s)-1])
	})
}

// scalar consumes the scalar at i and returns its kind (its first byte) and where it starts.
func (d *modelDecoder) scalar() (kind byte, start int, plain bool, err error) {
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
		err = errNotSimple
	}
	return kind, start, plain, err
}

// copyValue is the scalar the scalar types' own reading takes, for the values that are not
// sliced here: it copies the bytes (those readings take a []byte), which only unusual values
// pay for.
func (d *modelDecoder) copyValue(start int) value {
	return value{raw: []byte(d.src[start:d.i]), src: d.src, at: start}
}

// text reads a Text at i: a plain string, as a slice of the payload (the usual case), or
// whatever else Text's own reading reads alike.
func (d *modelDecoder) text(t *Text) error {
	kind, start, plain, err := d.scalar()
	switch {
	case err != nil:
		return err
	case kind == '"' && plain:
		*t = Text(d.src[start+1 : d.i-1])
	case kind == 'n':
		*t = ""
	case kind == '"':
		return notSimple(t.read(d.copyValue(start)))
	default: // a number or a boolean, as its text
		*t = Text(d.src[start:d.i])
	}
	return nil
}

// numberOrString is what Decimal and ID read (see numberOrString in scalars.go).
func (d *modelDecoder) numberOrString() (string, error) {
	kind, start, plain, err := d.scalar()
	switch {
	case err != nil:
		return "", err
	case kind == '"' && plain:
		return strings.TrimSpace(d.src[start+1 : d.i-1]), nil
	case kind == 'n':
		return "", nil
	case kind == '"':
		s, err := numberOrString(d.copyValue(start), nil)
		return s, notSimple(err)
	case kind == 't' || kind == 'f':
		return "", errNotSimple
	}
	return d.src[start:d.i], nil
}

func (d *modelDecoder) decimal(n *Decimal) error {
	s, err := d.numberOrString()
	*n = Decimal(s)
	return err
}

func (d *modelDecoder) id(id *ID) error {
	s, err := d.numberOrString()
	*id = ID(s)
	return err
}

func (d *modelDecoder) flag(f *Flag) error {
	kind, start, plain, err := d.scalar()
	switch {
	case err != nil:
		return err
	case kind == '"' && plain:
		v, ok := flagText(d.src[start+1 : d.i-1])
		if !ok {
			return errNotSimple
		}
		*f = v
	case kind == 't':
		*f = Flag{known: true, v: true}
	case kind == 'f':
		*f = Flag{known: true}
	case kind == 'n':
		*f = Flag{}
	default:
		return notSimple(f.UnmarshalJSON([]byte(d.src[start:d.i])))
	}
	return nil
}

// notSimple turns a scalar's type error into errNotSimple: encoding/json would go on reading
// the rest of the payload and report the first such error, so it is left to say.
func notSimple(err error) error {
	if err != nil {
		return errNotSimple
	}
	return nil
}

// str consumes a string at i, checking its syntax; plain reports that it holds no escape and
// only valid UTF-8, so its content is its text.
func (d *modelDecoder) str() (plain bool, err error) {
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
				return false, errNotSimple
			}
			switch d.src[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d.src) {
					return false, errNotSimple
				}
				for _, h := range []byte(d.src[i+2 : i+6]) {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false, errNotSimple
					}
				}
				i += 6
			default:
				return false, errNotSimple
			}
		case c < 0x20:
			return false, errNotSimple
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			i++
		}
	}
	return false, errNotSimple
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
func (d *modelDecoder) number() error {
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
		return errNotSimple
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
			return errNotSimple
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return errNotSimple
		}
	}
	d.i = i
	return nil
}

// skip consumes the value at i, of a member no model names, checking its syntax.
func (d *modelDecoder) skip() error {
	switch c := d.next(); c {
	case '{':
		return d.members(func(string, bool) error { return d.skip() })
	case '[':
		return d.array(func() {}, d.skip)
	}
	_, _, _, err := d.scalar()
	return err
}
