package ultracart

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// MaxDecompressed caps what the compressed parts of one delivery may expand to, so a small
// body cannot expand into more than the webhook function can hold (a zip bomb). UltraCart
// batches events up to the webhook's maximum_size: its webhook guide states 900 KB a message
// at most, and its own SDK sample sets 5,242,880 bytes, the largest value any source shows.
// cartrelay registers its webhook with 3 MiB and without compression. 6 MiB holds the largest
// delivery UltraCart is known to send, plus the one event a batch may carry past its limit,
// while the webhook function (256 MB) holds the body, the inflated events and their queue
// messages several times over.
const MaxDecompressed = 6 << 20

// maxNesting bounds how deep compressed data may nest inside compressed data.
const maxNesting = 3

// RawEvent is one event of a delivery, as UltraCart sent it.
type RawEvent struct {
	// Index is the event's position in the delivery (0-based, counted after decompression).
	Index int
	// Name is the event name, the key of the one-key object ("order_create").
	Name string
	// Payload is the resource object (an Order, AutoOrder, ...), byte for byte. When Err is
	// set it is the whole element instead, so nothing is lost.
	Payload json.RawMessage
	// Err is set when this element is not an event; it wraps ErrBadElement and says why.
	// The caller quarantines the element with that reason; the others are unaffected.
	Err error
}

// DecodeDelivery splits a webhook body into its events. It accepts a bare array of events and
// an object with an "events" array, each possibly compressed (see the package doc). A body
// that cannot be read at all is a *DecodeError; a single element that is not an event comes
// back with its Err set.
func DecodeDelivery(body []byte) ([]RawEvent, error) {
	d := &decoder{budget: MaxDecompressed}
	if err := d.body(body, 0, false); err != nil {
		return nil, err
	}
	return d.out, nil
}

type decoder struct {
	out    []RawEvent
	budget int64
}

func (d *decoder) body(body []byte, depth int, compressed bool) error {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return &DecodeError{Offset: -1, Index: -1, Compressed: compressed, Reason: "the body is empty; expected a JSON array of events or an object with an \"events\" array"}
	}
	switch b[0] {
	case '[':
		return d.array(b, depth, compressed)
	case '{':
		return d.object(b, depth, compressed)
	case '"':
		s, err := unquote(b, compressed)
		if err != nil {
			return err
		}
		inner, err := d.inflate(s, -1, depth)
		if err != nil {
			return err
		}
		return d.body(inner, depth+1, true)
	case 0x1f:
		inner, err := d.gunzip(b, -1, depth)
		if err != nil {
			return err
		}
		return d.body(inner, depth+1, true)
	}
	if looksBase64(b) {
		inner, err := d.inflate(string(b), -1, depth)
		if err != nil {
			return err
		}
		return d.body(inner, depth+1, true)
	}
	return &DecodeError{Offset: 0, Index: -1, Compressed: compressed,
		Reason: fmt.Sprintf("the body starts with %s; expected a JSON array of events or an object with an \"events\" array", describeByte(b[0]))}
}

func (d *decoder) array(b []byte, depth int, compressed bool) error {
	// Fast path: every element a one-key object, read in one pass.
	var objs []map[string]json.RawMessage
	if json.Unmarshal(b, &objs) == nil && d.simple(objs) {
		for _, m := range objs {
			for name, payload := range m {
				d.out = append(d.out, RawEvent{Index: len(d.out), Name: name, Payload: payload})
			}
		}
		return nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(b, &elems); err != nil {
		return syntaxError(err, -1, compressed, "the events array is not valid JSON")
	}
	for _, el := range elems {
		if err := d.element(el, depth, compressed); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) object(b []byte, depth int, compressed bool) error {
	// Fast path for the usual {"events":[{name:{...}}, ...]}: one pass over the body instead of
	// one for the envelope and another for the array.
	var env struct {
		Events []map[string]json.RawMessage `json:"events"`
	}
	if json.Unmarshal(b, &env) == nil && len(env.Events) > 0 && d.simple(env.Events) {
		for _, m := range env.Events {
			for name, payload := range m {
				d.out = append(d.out, RawEvent{Index: len(d.out), Name: name, Payload: payload})
			}
		}
		return nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return syntaxError(err, -1, compressed, "the body is not valid JSON")
	}
	events, ok := top["events"]
	if !ok {
		// A single event outside any envelope, when its key is a known event name.
		if len(top) == 1 {
			for name := range top {
				if knownEvent(name) {
					d.add(name, top[name], b)
					return nil
				}
			}
		}
		return &DecodeError{Offset: -1, Index: -1, Compressed: compressed,
			Reason: fmt.Sprintf("the object has no \"events\" member (keys: %s); expected a JSON array of events or {\"events\": [...]}", keyList(top))}
	}
	ev := bytes.TrimSpace(events)
	switch {
	case len(ev) == 0 || bytes.Equal(ev, []byte("null")):
		return &DecodeError{Offset: -1, Index: -1, Compressed: compressed, Reason: "\"events\" is null; expected an array of events"}
	case ev[0] == '[':
		return d.array(ev, depth, compressed)
	case ev[0] == '"':
		s, err := unquote(ev, compressed)
		if err != nil {
			return err
		}
		inner, err := d.inflate(s, -1, depth)
		if err != nil {
			return err
		}
		return d.body(inner, depth+1, true)
	}
	return &DecodeError{Offset: -1, Index: -1, Compressed: compressed,
		Reason: fmt.Sprintf("\"events\" is %s; expected an array of events or a compressed string", jsonKind(ev))}
}

// simple reports whether every element is a well-formed event, so no element needs a reason.
func (d *decoder) simple(objs []map[string]json.RawMessage) bool {
	for _, m := range objs {
		if len(m) != 1 {
			return false
		}
		for name, payload := range m {
			if strings.TrimSpace(name) == "" || len(payload) == 0 || payload[0] != '{' {
				return false
			}
		}
	}
	return true
}

// element handles one member of an events array.
func (d *decoder) element(el json.RawMessage, depth int, compressed bool) error {
	el = bytes.TrimSpace(el)
	idx := len(d.out)
	if len(el) > 0 && el[0] == '"' {
		s, err := unquote(el, compressed)
		if err != nil {
			return err
		}
		inner, err := d.inflate(s, idx, depth)
		if err != nil {
			var de *DecodeError
			if errors.As(err, &de) && errors.Is(err, ErrTooLarge) {
				return err
			}
			// Not compressed data after all: this element alone is unusable.
			d.out = append(d.out, RawEvent{Index: idx, Payload: el,
				Err: fmt.Errorf("%w: element is a string that is not base64 gzip data (%v)", ErrBadElement, err)})
			return nil
		}
		inner = bytes.TrimSpace(inner)
		if len(inner) > 0 && inner[0] == '[' {
			if depth+1 > maxNesting {
				return &DecodeError{Offset: -1, Index: idx, Compressed: true, Reason: "compressed data nests too deeply"}
			}
			return d.array(inner, depth+1, true)
		}
		if !json.Valid(inner) {
			d.out = append(d.out, RawEvent{Index: idx, Payload: el,
				Err: fmt.Errorf("%w: compressed element is not valid JSON", ErrBadElement)})
			return nil
		}
		return d.element(inner, depth+1, true)
	}
	if len(el) == 0 || el[0] != '{' {
		d.out = append(d.out, RawEvent{Index: idx, Payload: el,
			Err: fmt.Errorf("%w: element is %s, expected an object {\"event_name\": {...}}", ErrBadElement, jsonKind(el))})
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(el, &m); err != nil {
		d.out = append(d.out, RawEvent{Index: idx, Payload: el,
			Err: fmt.Errorf("%w: element is not a JSON object: %v", ErrBadElement, err)})
		return nil
	}
	if len(m) != 1 {
		d.out = append(d.out, RawEvent{Index: idx, Payload: el,
			Err: fmt.Errorf("%w: element has %d keys (%s), expected exactly one: the event name", ErrBadElement, len(m), keyList(m))})
		return nil
	}
	for name, payload := range m {
		d.add(name, payload, el)
	}
	return nil
}

func (d *decoder) add(name string, payload, whole json.RawMessage) {
	idx := len(d.out)
	p := bytes.TrimSpace(payload)
	switch {
	case strings.TrimSpace(name) == "":
		d.out = append(d.out, RawEvent{Index: idx, Payload: whole,
			Err: fmt.Errorf("%w: the event name (the object's key) is empty", ErrBadElement)})
	case len(p) == 0 || p[0] != '{':
		d.out = append(d.out, RawEvent{Index: idx, Name: name, Payload: whole,
			Err: fmt.Errorf("%w: the payload of %s is %s, expected an object", ErrBadElement, name, jsonKind(p))})
	default:
		d.out = append(d.out, RawEvent{Index: idx, Name: name, Payload: p})
	}
}

// inflate decodes base64 text and gunzips it.
func (d *decoder) inflate(s string, idx, depth int) ([]byte, error) {
	if depth >= maxNesting {
		return nil, &DecodeError{Offset: -1, Index: idx, Compressed: true, Reason: "compressed data nests too deeply"}
	}
	raw, err := decodeBase64(s)
	if err != nil {
		return nil, &DecodeError{Offset: -1, Index: idx, Compressed: depth > 0,
			Reason: "a compressed events string is not valid base64: " + err.Error(), Err: err}
	}
	return d.gunzip(raw, idx, depth)
}

func (d *decoder) gunzip(raw []byte, idx, depth int) ([]byte, error) {
	if depth >= maxNesting {
		return nil, &DecodeError{Offset: -1, Index: idx, Compressed: true, Reason: "compressed data nests too deeply"}
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, &DecodeError{Offset: -1, Index: idx, Compressed: true,
			Reason: "compressed events are not gzip data: " + err.Error(), Err: err}
	}
	out, err := io.ReadAll(io.LimitReader(zr, d.budget+1))
	if err != nil {
		return nil, &DecodeError{Offset: -1, Index: idx, Compressed: true,
			Reason: "compressed events are corrupt: " + err.Error(), Err: err}
	}
	if int64(len(out)) > d.budget {
		return nil, &DecodeError{Offset: -1, Index: idx, Compressed: true,
			Reason: fmt.Sprintf("compressed events expand to more than %d MiB, more than UltraCart sends in one delivery; "+
				"lower the webhook's maximum_size (at most 5242880 bytes) or turn compress_events off", MaxDecompressed>>20), Err: ErrTooLarge}
	}
	d.budget -= int64(len(out))
	return out, nil
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\n', '\r', '\t':
			return -1
		}
		return r
	}, s)
	if strings.ContainsAny(s, "-_") {
		if strings.HasSuffix(s, "=") {
			return base64.URLEncoding.DecodeString(s)
		}
		return base64.RawURLEncoding.DecodeString(s)
	}
	if strings.HasSuffix(s, "=") || len(s)%4 == 0 {
		return base64.StdEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// looksBase64 reports whether a body is bare base64 text of gzip data ("H4sI" encodes the
// gzip magic bytes).
func looksBase64(b []byte) bool { return bytes.HasPrefix(b, []byte("H4sI")) }

func unquote(b []byte, compressed bool) (string, error) {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return "", syntaxError(err, -1, compressed, "a compressed events string is not a valid JSON string")
	}
	return s, nil
}

func syntaxError(err error, idx int, compressed bool, what string) error {
	off := int64(-1)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		off = te.Offset
	}
	return &DecodeError{Offset: off, Index: idx, Compressed: compressed, Reason: what + ": " + err.Error(), Err: err}
}

func jsonKind(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "empty"
	}
	switch b[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func describeByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func keyList(m map[string]json.RawMessage) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, fmt.Sprintf("%q", k))
	}
	sort.Strings(keys)
	if len(keys) > 5 {
		keys = append(keys[:5], "...")
	}
	if len(keys) == 0 {
		return "none"
	}
	return strings.Join(keys, ", ")
}
