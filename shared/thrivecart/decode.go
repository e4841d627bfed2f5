package thrivecart

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Limits on what one body may contain, so a hostile body cannot cost unbounded work.
const (
	maxDepth  = 32     // nesting of keys or JSON values
	maxFields = 10_000 // leaf values
)

// Delivery is one ThriveCart webhook, decoded.
type Delivery struct {
	// Event is the event name ("order.success").
	Event string
	// Secret is thrivecart_secret, the account's secret word. It is never part of Fields or
	// Payload, so it is not stored with the event.
	Secret string
	// Mode is "live" or "test" ("" when the body says neither).
	Mode string
	// Account is thrivecart_account, the ThriveCart subdomain.
	Account string
	// Fields is the whole body except the secret, nested: each value is a string, a Fields
	// (an object, or a form key's [...] level) or a []any (a JSON array). JSON numbers and
	// booleans are kept as their text; JSON nulls are left out.
	Fields Fields
}

// Fields is a decoded body or part of one.
type Fields map[string]any

// Payload is the delivery as JSON (the secret left out), for storing and replaying: Decode
// with content type application/json reads it back to the same Delivery, minus the secret.
func (d Delivery) Payload() (json.RawMessage, error) {
	b, err := json.Marshal(d.Fields)
	if err != nil {
		return nil, fmt.Errorf("thrivecart: encode payload: %w", err)
	}
	return b, nil
}

// CheckSecret reports whether the delivery carries the account's secret word, in constant
// time. An empty want never matches.
func CheckSecret(d Delivery, want string) bool {
	if want == "" || d.Secret == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(d.Secret), []byte(want)) == 1
}

// Decode reads a webhook body. contentType selects the format (application/json,
// application/x-www-form-urlencoded, multipart/form-data); when it is missing or something
// else, a body starting with '{' is read as JSON and any other as a form. The body must carry
// an event field.
func Decode(contentType string, body []byte) (Delivery, error) {
	var (
		f   Fields
		err error
	)
	media, params, perr := mime.ParseMediaType(contentType)
	if perr != nil {
		media = ""
	}
	switch {
	case media == "application/json" || media == "text/json" || strings.HasSuffix(media, "+json"):
		f, err = decodeJSON(body)
	case media == "application/x-www-form-urlencoded":
		f, err = decodeForm(body)
	case media == "multipart/form-data":
		f, err = decodeMultipart(body, params["boundary"])
	default:
		if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '{' {
			f, err = decodeJSON(body)
		} else {
			f, err = decodeForm(body)
		}
	}
	if err != nil {
		return Delivery{}, err
	}
	d := Delivery{Fields: f}
	d.Secret = str(f["thrivecart_secret"])
	delete(f, "thrivecart_secret")
	d.Event = strings.TrimSpace(str(f["event"]))
	if d.Event == "" {
		return Delivery{}, &DecodeError{Reason: "the body has no \"event\" field; this is not a ThriveCart webhook", Err: ErrNoEvent}
	}
	d.Account = strings.TrimSpace(str(f["thrivecart_account"]))
	d.Mode = strings.ToLower(strings.TrimSpace(str(f["mode"])))
	if d.Mode == "" {
		switch strings.TrimSpace(str(f["mode_int"])) {
		case "1":
			d.Mode = "test"
		case "2":
			d.Mode = "live"
		}
	}
	return d, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// builder enforces the limits while a body is read.
type builder struct{ leaves int }

func (b *builder) leaf() error {
	b.leaves++
	if b.leaves > maxFields {
		return &DecodeError{Reason: fmt.Sprintf("the body has more than %d fields", maxFields)}
	}
	return nil
}

// ---- JSON

func decodeJSON(body []byte) (Fields, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &DecodeError{Offset: dec.InputOffset(), Reason: "the JSON body has data after its end"}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &DecodeError{Reason: fmt.Sprintf("the JSON body is %s; expected an object", kindOf(v))}
	}
	b := &builder{}
	out, err := b.fromJSON(obj, 0)
	if err != nil {
		return nil, err
	}
	return out.(Fields), nil
}

func (b *builder) fromJSON(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, &DecodeError{Reason: fmt.Sprintf("the body nests deeper than %d levels", maxDepth)}
	}
	switch t := v.(type) {
	case map[string]any:
		f := make(Fields, len(t))
		for k, e := range t {
			if e == nil {
				continue
			}
			c, err := b.fromJSON(e, depth+1)
			if err != nil {
				return nil, err
			}
			f[k] = c
		}
		return f, nil
	case []any:
		l := make([]any, 0, len(t))
		for _, e := range t {
			if e == nil {
				l = append(l, "")
				continue
			}
			c, err := b.fromJSON(e, depth+1)
			if err != nil {
				return nil, err
			}
			l = append(l, c)
		}
		return l, nil
	case json.Number:
		return string(t), b.leaf()
	case bool:
		return strconv.FormatBool(t), b.leaf()
	case string:
		return t, b.leaf()
	}
	return nil, &DecodeError{Reason: fmt.Sprintf("unexpected JSON value %T", v)}
}

func jsonError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &DecodeError{Offset: se.Offset, Reason: "the body is not valid JSON: " + err.Error(), Err: err}
	}
	if errors.Is(err, io.EOF) {
		return &DecodeError{Reason: "the body is empty", Err: err}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &DecodeError{Reason: "the JSON body ends early", Err: err}
	}
	return &DecodeError{Reason: "the body is not valid JSON: " + err.Error(), Err: err}
}

func kindOf(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "an object"
}

// ---- form encoding

func decodeForm(body []byte) (Fields, error) {
	s := strings.TrimSpace(string(body))
	if s == "" {
		return nil, &DecodeError{Reason: "the body is empty"}
	}
	b := &builder{}
	f := Fields{}
	offset := 0
	for _, pair := range strings.Split(s, "&") {
		start := offset
		offset += len(pair) + 1
		if pair == "" {
			continue
		}
		rawKey, rawVal, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return nil, &DecodeError{Offset: int64(start), Reason: fmt.Sprintf("form field %q has a bad %%-escape in its name", clip(rawKey)), Err: err}
		}
		val, err := url.QueryUnescape(rawVal)
		if err != nil {
			return nil, &DecodeError{Offset: int64(start), Reason: fmt.Sprintf("form field %q has a bad %%-escape in its value", clip(key)), Err: err}
		}
		if err := b.set(f, key, val); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func decodeMultipart(body []byte, boundary string) (Fields, error) {
	if boundary == "" {
		return nil, &DecodeError{Reason: "multipart/form-data without a boundary"}
	}
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	b := &builder{}
	f := Fields{}
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &DecodeError{Reason: "the multipart body is malformed: " + err.Error(), Err: err}
		}
		name := p.FormName()
		if name == "" || p.FileName() != "" {
			continue
		}
		v, err := io.ReadAll(io.LimitReader(p, int64(len(body))))
		if err != nil {
			return nil, &DecodeError{Reason: "the multipart body is malformed: " + err.Error(), Err: err}
		}
		if err := b.set(f, name, string(v)); err != nil {
			return nil, err
		}
	}
	if len(f) == 0 {
		return nil, &DecodeError{Reason: "the multipart body has no fields"}
	}
	return f, nil
}

// set stores one form field under its PHP-style key: a[b][c] nests, a[] appends. As in PHP, a
// later field replaces an earlier one at the same place, and text after a key's last ']' is
// ignored. A name whose brackets do not close is used as it is.
func (b *builder) set(f Fields, key, val string) error {
	if err := b.leaf(); err != nil {
		return err
	}
	// Bytes that are not UTF-8 become U+FFFD, as encoding/json does with JSON bodies, so the
	// stored payload reads back to exactly these fields.
	key, val = strings.ToValidUTF8(key, "\uFFFD"), strings.ToValidUTF8(val, "\uFFFD")
	base, segs := splitKey(key)
	if len(segs) > maxDepth {
		return &DecodeError{Reason: fmt.Sprintf("form field %q nests deeper than %d levels", clip(key), maxDepth)}
	}
	path := append([]string{base}, segs...)
	cur := f
	for i, seg := range path {
		if seg == "" && i > 0 {
			seg = strconv.Itoa(nextIndex(cur))
		}
		if i == len(path)-1 {
			cur[seg] = val
			return nil
		}
		next, ok := cur[seg].(Fields)
		if !ok {
			next = Fields{}
			cur[seg] = next
		}
		cur = next
	}
	return nil
}

// splitKey splits "a[b][c]" into "a" and ["b", "c"].
func splitKey(key string) (string, []string) {
	i := strings.IndexByte(key, '[')
	if i <= 0 {
		return key, nil
	}
	base, rest := key[:i], key[i:]
	var segs []string
	for strings.HasPrefix(rest, "[") {
		j := strings.IndexByte(rest, ']')
		if j < 0 {
			if len(segs) == 0 {
				return key, nil
			}
			break
		}
		segs = append(segs, rest[1:j])
		rest = rest[j+1:]
	}
	return base, segs
}

// nextIndex is PHP's next array index: one more than the largest integer key, or 0.
func nextIndex(f Fields) int {
	n := 0
	for k := range f {
		if i, err := strconv.Atoi(k); err == nil && i >= n {
			n = i + 1
		}
	}
	return n
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// ---- reading Fields

// value walks a path of keys; a numeric key indexes a JSON array.
func (f Fields) value(path ...string) any {
	var cur any = f
	for _, p := range path {
		switch t := cur.(type) {
		case Fields:
			cur = t[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(t) {
				return nil
			}
			cur = t[i]
		default:
			return nil
		}
	}
	return cur
}

// Get returns the trimmed text at a path ("" when absent, not text, or ThriveCart's "null").
func (f Fields) Get(path ...string) string {
	s, _ := f.value(path...).(string)
	s = strings.TrimSpace(s)
	if s == "null" {
		return ""
	}
	return s
}

// Has reports whether a path holds a non-empty value.
func (f Fields) Has(path ...string) bool {
	switch t := f.value(path...).(type) {
	case string:
		s := strings.TrimSpace(t)
		return s != "" && s != "null"
	case Fields:
		return len(t) > 0
	case []any:
		return len(t) > 0
	}
	return false
}

// Map returns the object at a path (nil when absent or not an object).
func (f Fields) Map(path ...string) Fields {
	m, _ := f.value(path...).(Fields)
	return m
}

// List returns the elements at a path in order: a JSON array as it is, or a form level with
// numeric keys ([0], [1], ...) sorted by number.
func (f Fields) List(path ...string) []any {
	switch t := f.value(path...).(type) {
	case []any:
		return t
	case Fields:
		type kv struct {
			i int
			v any
		}
		var items []kv
		for k, v := range t {
			i, err := strconv.Atoi(k)
			if err != nil {
				return nil
			}
			items = append(items, kv{i, v})
		}
		sort.Slice(items, func(a, b int) bool { return items[a].i < items[b].i })
		out := make([]any, len(items))
		for i, it := range items {
			out[i] = it.v
		}
		return out
	}
	return nil
}

// Keys returns an object's keys, sorted.
func (f Fields) Keys(path ...string) []string {
	m := f.Map(path...)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
