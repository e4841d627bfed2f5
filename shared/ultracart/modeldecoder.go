package ultracart

import (
	"strings"

	"github.com/cartrelay/cartrelay/shared/jsonmodel"
)

//go:generate go run ../jsonmodel/gendecode -in model.go -out model_decode.go -decoder *modelDecoder -read Text=d.text,Decimal=d.decimal,ID=d.id,Flag=d.flag,*Currency=d.currency

// modelDecoder is decodePayload's first reading: a jsonmodel decoder over the payload that
// knows the models (their field functions are generated into model_decode.go from model.go),
// so it reads an order in one pass, without reflection, skips the members the models do not
// name after checking their syntax, and gives every Text, Decimal and ID a slice of one string
// holding the payload instead of a string of its own.
//
// It reads only what it can read exactly as encoding/json would. Anything else (a syntax
// error, a type mismatch, a name that is escaped, not ASCII, or given twice, a string with
// escapes in a Flag) makes it give up with jsonmodel.ErrNotSimple, and decodePayload reads the
// payload again with encoding/json, so results and errors in those cases are encoding/json's
// own. FuzzDecodePayloadAsEncodingJSON checks that every payload it reads, encoding/json reads
// to the same value.
type modelDecoder struct {
	jsonmodel.Decoder
	// currencies is the block the next Currency is taken from (see currency).
	currencies []Currency
}

// errNotSimple: the payload needs encoding/json (see modelDecoder).
var errNotSimple = jsonmodel.ErrNotSimple

// model is a decoding struct of model.go: field reads the value of the member d.Member names
// into the field of that name (without regard to case) and returns the field's index, or
// returns -1 without reading anything when no field has that name.
type model interface {
	field(d *modelDecoder) (int, error)
}

// readModel reads payload into v, which must hold the zero value.
func readModel(payload string, v model) error {
	d := &modelDecoder{Decoder: jsonmodel.Start(payload)}
	// Most arrays of an order are short: one allocation for up to four elements.
	d.FirstCap = 4
	return d.Document(func() (int, error) { return v.field(d) })
}

// currency reads a Currency object or null at i into *p. An order holds dozens of them (five
// an item, ten in the summary), so they are allocated in blocks rather than one by one.
func (d *modelDecoder) currency(p **Currency) error {
	if d.Null() {
		return nil
	}
	if len(d.currencies) == cap(d.currencies) {
		d.currencies = make([]Currency, 0, 16)
	}
	d.currencies = d.currencies[:len(d.currencies)+1]
	v := &d.currencies[len(d.currencies)-1]
	if err := jsonmodel.Value(d, v, (*Currency).field); err != nil {
		return err
	}
	*p = v
	return nil
}

// copyValue is the scalar the scalar types' own reading takes, for the values that are not
// sliced here: it copies the bytes (those readings take a []byte), which only unusual values
// pay for.
func (d *modelDecoder) copyValue(start int) value {
	return value{raw: []byte(d.Span(start)), src: d.Source(), at: start}
}

// content is the text of the plain string that starts at start.
func (d *modelDecoder) content(start int) string {
	s := d.Span(start)
	return s[1 : len(s)-1]
}

// text reads a Text at i: a plain string, as a slice of the payload (the usual case), or
// whatever else Text's own reading reads alike.
func (d *modelDecoder) text(t *Text) error {
	kind, start, plain, err := d.Scalar()
	switch {
	case err != nil:
		return err
	case kind == '"' && plain:
		*t = Text(d.content(start))
	case kind == 'n':
		*t = ""
	case kind == '"':
		return notSimple(t.read(d.copyValue(start)))
	default: // a number or a boolean, as its text
		*t = Text(d.Span(start))
	}
	return nil
}

// numberOrString is what Decimal and ID read (see numberOrString in scalars.go).
func (d *modelDecoder) numberOrString() (string, error) {
	kind, start, plain, err := d.Scalar()
	switch {
	case err != nil:
		return "", err
	case kind == '"' && plain:
		return strings.TrimSpace(d.content(start)), nil
	case kind == 'n':
		return "", nil
	case kind == '"':
		s, err := numberOrString(d.copyValue(start), nil)
		return s, notSimple(err)
	case kind == 't' || kind == 'f':
		return "", errNotSimple
	}
	return d.Span(start), nil
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
	kind, start, plain, err := d.Scalar()
	switch {
	case err != nil:
		return err
	case kind == '"' && plain:
		v, ok := flagText(d.content(start))
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
		return notSimple(f.UnmarshalJSON([]byte(d.Span(start))))
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
