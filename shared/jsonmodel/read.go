package jsonmodel

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The readers below read one value into a field of a basic type exactly as encoding/json
// does, and give up (ErrNotSimple) wherever encoding/json would report an error or do
// something they do not copy.

// Struct reads an object or null at i into *p through T's field function: null leaves it nil.
func Struct[D Scanner, T any](d D, p **T, field func(*T, D) (int, error)) error {
	if d.Scan().Null() {
		return nil
	}
	v := new(T)
	if err := d.Scan().Object(func() (int, error) { return field(v, d) }); err != nil {
		return err
	}
	*p = v
	return nil
}

// Value reads an object or null at i into *v through T's field function: null leaves it as
// it is.
func Value[D Scanner, T any](d D, v *T, field func(*T, D) (int, error)) error {
	if d.Scan().Null() {
		return nil
	}
	return d.Scan().Object(func() (int, error) { return field(v, d) })
}

// Structs reads an array of objects at i into *s; a null element is a zero element.
func Structs[D Scanner, T any](d D, s *[]T, field func(*T, D) (int, error)) error {
	return Slice(d, s, func(d D, e *T) error { return Value(d, e, field) })
}

// Slice reads an array at i into *s, each element through read: null leaves *s nil, and []
// makes it empty, not nil, as encoding/json does.
func Slice[D Scanner, T any](d D, s *[]T, read func(D, *T) error) error {
	var zero T
	return d.Scan().Array(func() { *s = []T{} }, func() error {
		if *s == nil && d.Scan().FirstCap > 0 {
			*s = make([]T, 0, d.Scan().FirstCap)
		}
		*s = append(*s, zero)
		return read(d, &(*s)[len(*s)-1])
	})
}

// String reads a string or null at i into *s.
func (d *Decoder) String(s *string) error {
	kind, start, plain, err := d.Scalar()
	switch {
	case err != nil:
		return err
	case kind == '"' && plain:
		*s = d.src[start+1 : d.i-1]
	case kind == '"':
		*s = Unquote(d.src[start+1 : d.i-1])
	case kind != 'n':
		return ErrNotSimple
	}
	return nil
}

// Bool reads true, false or null at i into *b.
func (d *Decoder) Bool(b *bool) error {
	kind, _, _, err := d.Scalar()
	switch {
	case err != nil:
		return err
	case kind == 't':
		*b = true
	case kind == 'f':
		*b = false
	case kind != 'n':
		return ErrNotSimple
	}
	return nil
}

// BoolPtr reads true, false or null at i into *p: null makes it nil.
func (d *Decoder) BoolPtr(p **bool) error {
	if d.Null() {
		*p = nil
		return nil
	}
	var b bool
	if err := d.Bool(&b); err != nil {
		return err
	}
	*p = &b
	return nil
}

// Int64 reads an integer or null at i into *n.
func (d *Decoder) Int64(n *int64) error {
	v, null, err := d.integer(64)
	if err == nil && !null {
		*n = v
	}
	return err
}

// Int reads an integer or null at i into *n.
func (d *Decoder) Int(n *int) error {
	v, null, err := d.integer(strconv.IntSize)
	if err == nil && !null {
		*n = int(v)
	}
	return err
}

// integer reads an integer of the given size, or null.
func (d *Decoder) integer(bits int) (v int64, null bool, err error) {
	kind, start, _, err := d.Scalar()
	switch {
	case err != nil:
		return 0, false, err
	case kind == 'n':
		return 0, true, nil
	case kind != '-' && (kind < '0' || kind > '9'):
		return 0, false, ErrNotSimple
	}
	if v, err = strconv.ParseInt(d.src[start:d.i], 10, bits); err != nil {
		return 0, false, ErrNotSimple // a fraction, an exponent or out of range: encoding/json's type error
	}
	return v, false, nil
}

// StringMap reads an object of strings or null at i into *m: null leaves it nil, {} makes it
// empty; a member given twice keeps its last value, as encoding/json does.
func (d *Decoder) StringMap(m *map[string]string) error {
	if d.Null() {
		return nil
	}
	if *m == nil {
		*m = map[string]string{}
	}
	return d.Members(func(name string, plain bool) error {
		var v string
		if err := d.String(&v); err != nil {
			return err
		}
		if !plain {
			name = Unquote(name)
		}
		(*m)[name] = v
		return nil
	})
}

// Unmarshal hands the value at i to u's UnmarshalJSON, as encoding/json does for a type that
// has one (time.Time, domain.Money); an error gives up, so encoding/json reports it.
func (d *Decoder) Unmarshal(u interface{ UnmarshalJSON([]byte) error }) error {
	raw, err := d.Raw()
	if err != nil {
		return err
	}
	if u.UnmarshalJSON(raw) != nil {
		return ErrNotSimple
	}
	return nil
}

// Unquote returns the text of s, the content of a JSON string whose syntax is checked, as
// encoding/json reads it: escapes resolved, an unpaired surrogate and each byte of invalid
// UTF-8 replaced by U+FFFD.
func Unquote(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch e := s[i+1]; e {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(s[i+2 : i+6])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if pair := utf16.DecodeRune(r, hex4(s[i+2:i+6])); pair != utf8.RuneError {
							b = utf8.AppendRune(b, pair)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
				continue
			default: // '"', '\\', '/'
				b = append(b, e)
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			b = utf8.AppendRune(b, r) // U+FFFD for a byte of invalid UTF-8, size 1
			i += size
		}
	}
	return string(b)
}

// hex4 reads four hex digits (checked already).
func hex4(h string) rune {
	var r rune
	for i := 0; i < 4; i++ {
		c := h[i]
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
