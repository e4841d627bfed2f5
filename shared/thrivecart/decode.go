package thrivecart

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
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
// an event field. Decoding takes time and memory linear in the body's size; a body with more
// than maxFields values or nested deeper than maxDepth is refused as soon as that is seen.
func Decode(contentType string, body []byte) (Delivery, error) {
	var (
		f   Fields
		err error
	)
	switch kind, boundary := formatOf(contentType, body); kind {
	case formatJSON:
		f, err = decodeJSON(body)
	case formatMultipart:
		f, err = decodeMultipart(body, boundary)
	default:
		f, err = decodeForm(body)
	}
	if err != nil {
		return Delivery{}, err
	}
	d := Delivery{Fields: f}
	d.Secret = str(f[secretField])
	delete(f, secretField)
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

// secretField is the body field that carries the account's secret word.
const secretField = "thrivecart_secret"

// bodyFormat is how a webhook body is encoded.
type bodyFormat int

const (
	formatForm bodyFormat = iota
	formatJSON
	formatMultipart
)

// formatOf picks a body's format from its content type, or from its first byte when the type
// says nothing usable. The boundary is a multipart body's.
func formatOf(contentType string, body []byte) (bodyFormat, string) {
	media, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		media = ""
	}
	switch {
	case media == "application/json" || media == "text/json" || strings.HasSuffix(media, "+json"):
		return formatJSON, ""
	case media == "application/x-www-form-urlencoded":
		return formatForm, ""
	case media == "multipart/form-data":
		return formatMultipart, params["boundary"]
	}
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '{' {
		return formatJSON, ""
	}
	return formatForm, ""
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

func tooDeep() error {
	return &DecodeError{Reason: fmt.Sprintf("the body nests deeper than %d levels", maxDepth)}
}

// ---- JSON

// decodeJSON builds Fields token by token, so that the limits stop a hostile body (a JSON
// array of millions of numbers) after maxFields values instead of after it was all held.
func decodeJSON(body []byte) (Fields, error) {
	f, err := buildJSON(body)
	var se *json.SyntaxError
	if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) {
		// A token's syntax error points near the fault, not at it; one more pass that builds
		// nothing gives encoding/json's exact offset.
		if exact := json.NewDecoder(bytes.NewReader(body)).Decode(&skipValue{}); exact != nil {
			return nil, jsonError(exact)
		}
	}
	return f, err
}

// skipValue reads a JSON value and keeps nothing: encoding/json checks it in one pass and hands
// over the bytes without copying them.
type skipValue struct{}

// UnmarshalJSON implements json.Unmarshaler.
func (*skipValue) UnmarshalJSON([]byte) error { return nil }

func buildJSON(body []byte) (Fields, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, &DecodeError{Reason: fmt.Sprintf("the JSON body is %s; expected an object", tokenKind(tok))}
	}
	b := &builder{}
	f, err := b.jsonObject(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &DecodeError{Offset: dec.InputOffset(), Reason: "the JSON body has data after its end"}
	}
	return f, nil
}

// jsonObject reads an object's members after its '{'. As with encoding/json's maps, a later
// member replaces an earlier one of the same name; a null member is left out.
func (b *builder) jsonObject(dec *json.Decoder, depth int) (Fields, error) {
	f := Fields{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, innerError(err)
		}
		k, _ := kt.(string)
		v, err := b.jsonValue(dec, depth+1)
		if err != nil {
			return nil, err
		}
		if v == nil {
			delete(f, k)
			continue
		}
		f[k] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, innerError(err)
	}
	return f, nil
}

// jsonValue reads one value: text for a string, number or boolean (numbers and booleans keep
// their JSON text), Fields for an object, []any for an array, nil for null.
func (b *builder) jsonValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, innerError(err)
	}
	if tok == nil {
		return nil, nil
	}
	if depth > maxDepth {
		return nil, tooDeep()
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return b.jsonObject(dec, depth)
		}
		return b.jsonArray(dec, depth)
	case json.Number:
		return string(t), b.leaf()
	case bool:
		return strconv.FormatBool(t), b.leaf()
	case string:
		return t, b.leaf()
	}
	return nil, &DecodeError{Reason: fmt.Sprintf("unexpected JSON token %v", tok)}
}

// jsonArray reads an array's elements after its '['; a null element becomes "".
func (b *builder) jsonArray(dec *json.Decoder, depth int) ([]any, error) {
	var l []any
	for dec.More() {
		v, err := b.jsonValue(dec, depth+1)
		if err != nil {
			return nil, err
		}
		if v == nil {
			v = ""
		}
		l = append(l, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, innerError(err)
	}
	if l == nil {
		l = []any{}
	}
	return l, nil
}

// innerError is jsonError for a token inside the body's object, where the end of the input
// means the body ends early.
func innerError(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return jsonError(err)
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

// tokenKind names the JSON value a token starts.
func tokenKind(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return "an array"
		}
		return "an object"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

// ---- form encoding

// eachFormPair calls fn with every name=value pair of a form body, still escaped, and the
// pair's offset in the trimmed body; empty pairs are skipped. It stops at fn's first error.
func eachFormPair(body []byte, fn func(offset int, rawKey, rawVal string) error) error {
	s := strings.TrimSpace(string(body))
	offset := 0
	for rest, more := s, true; more; {
		var pair string
		pair, rest, more = strings.Cut(rest, "&")
		start := offset
		offset += len(pair) + 1
		if pair == "" {
			continue
		}
		rawKey, rawVal, _ := strings.Cut(pair, "=")
		if err := fn(start, rawKey, rawVal); err != nil {
			return err
		}
	}
	return nil
}

func decodeForm(body []byte) (Fields, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &DecodeError{Reason: "the body is empty"}
	}
	b := &builder{}
	root := newLevel()
	err := eachFormPair(body, func(start int, rawKey, rawVal string) error {
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return &DecodeError{Offset: int64(start), Reason: fmt.Sprintf("form field %q has a bad %%-escape in its name", clip(rawKey)), Err: err}
		}
		val, err := url.QueryUnescape(rawVal)
		if err != nil {
			return &DecodeError{Offset: int64(start), Reason: fmt.Sprintf("form field %q has a bad %%-escape in its value", clip(key)), Err: err}
		}
		return b.set(root, key, val)
	})
	if err != nil {
		return nil, err
	}
	return root.f, nil
}

// eachPart calls fn with the name and reader of every field of a multipart body (files are
// skipped); it stops at fn's first error.
func eachPart(body []byte, boundary string, fn func(name string, value io.Reader) error) error {
	if boundary == "" {
		return &DecodeError{Reason: "multipart/form-data without a boundary"}
	}
	r := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &DecodeError{Reason: "the multipart body is malformed: " + err.Error(), Err: err}
		}
		if name := p.FormName(); name != "" && p.FileName() == "" {
			if err := fn(name, p); err != nil {
				return err
			}
		}
	}
}

func readPart(value io.Reader, limit int) (string, error) {
	v, err := io.ReadAll(io.LimitReader(value, int64(limit)))
	if err != nil {
		return "", &DecodeError{Reason: "the multipart body is malformed: " + err.Error(), Err: err}
	}
	return string(v), nil
}

func decodeMultipart(body []byte, boundary string) (Fields, error) {
	b := &builder{}
	root := newLevel()
	err := eachPart(body, boundary, func(name string, value io.Reader) error {
		v, err := readPart(value, len(body))
		if err != nil {
			return err
		}
		return b.set(root, name, v)
	})
	if err != nil {
		return nil, err
	}
	if len(root.f) == 0 {
		return nil, &DecodeError{Reason: "the multipart body has no fields"}
	}
	return root.f, nil
}

// level is one level of a form body being built: its fields, the levels below it by key, and
// PHP's next array index, kept as fields arrive so that an append ("a[]") costs the same
// however many came before.
type level struct {
	f    Fields
	kids map[string]*level
	next int
}

func newLevel() *level { return &level{f: Fields{}} }

// saw notes a key of this level: the next append goes after the largest integer key.
func (l *level) saw(key string) {
	if i, err := strconv.Atoi(key); err == nil && i >= l.next && i < math.MaxInt {
		l.next = i + 1
	}
}

// set stores one form field under its PHP-style key: a[b][c] nests, a[] appends. As in PHP, a
// later field replaces an earlier one at the same place, and text after a key's last ']' is
// ignored. A name whose brackets do not close is used as it is.
func (b *builder) set(root *level, key, val string) error {
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
	cur := root
	for i := -1; i < len(segs); i++ {
		seg := base
		if i >= 0 {
			seg = segs[i]
			if seg == "" {
				seg = strconv.Itoa(cur.next)
			}
		}
		cur.saw(seg)
		if i == len(segs)-1 {
			cur.f[seg] = val
			delete(cur.kids, seg)
			return nil
		}
		next := cur.kids[seg]
		if next == nil {
			next = newLevel()
			if cur.kids == nil {
				cur.kids = map[string]*level{}
			}
			cur.kids[seg] = next
			cur.f[seg] = next.f
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
