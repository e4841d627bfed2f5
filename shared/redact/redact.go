// Package redact keeps the merchant's secrets out of everything cartrelay records or prints, and
// customers' email addresses out of its logs.
//
// A Set holds the secret values a process has in memory: every value shared/secrets opens or
// seals is added to it, and so are the deployment's own secrets. The same Set then scrubs every
// sink: the table (Store: delivery log, parked failures, quarantine reasons, poll errors), the
// log (Handler) and the operator's terminal (Writer). Whatever a vendor echoes back in a
// response body or an error message is replaced by Mark before it is kept or shown.
//
// A value is recognised as written, JSON-escaped and URL-escaped. Values shorter than MinLen are
// not scrubbed: matching them would mangle ordinary text.
package redact

import (
	"bytes"
	"encoding/json"
	"html"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Mark replaces a secret.
const Mark = "[redacted]"

// MinLen is the shortest value a Set scrubs. Eight characters make an accidental match with
// ordinary text (or with a sealed value's base64) negligible.
const MinLen = 8

// DefaultMax bounds a Set: a process that has opened more values than this forgets the oldest
// (rotated OAuth tokens, accounts it served long ago).
const DefaultMax = 4096

// headLen is the prefix every pattern is indexed by; MinLen is at least this long.
const headLen = 4

// Set is the secret values to scrub. It is safe for concurrent use; the zero value is not
// usable, use NewSet. A nil *Set scrubs nothing.
type Set struct {
	mu     sync.RWMutex
	max    int
	values map[string]bool
	order  []string // insertion order, for forgetting the oldest
	forms  map[string]int
	// byHead indexes every form of every value by its first headLen bytes, longest first,
	// so a text is scanned once whatever the number of values.
	byHead map[uint32][]string
	// pairs counts the forms starting with each two bytes: most positions of a text are
	// passed over by this one array lookup, without touching the map.
	pairs [1 << 16]uint16
}

// NewSet returns an empty set that keeps at most DefaultMax values.
func NewSet() *Set {
	return &Set{max: DefaultMax, values: map[string]bool{}, forms: map[string]int{}, byHead: map[uint32][]string{}}
}

// Add remembers values. Values shorter than MinLen are ignored.
func (s *Set) Add(values ...string) {
	if s == nil {
		return
	}
	var fresh []string
	for _, v := range values {
		if len(v) >= MinLen {
			fresh = append(fresh, v)
		}
	}
	if len(fresh) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range fresh {
		if s.values[v] {
			continue
		}
		s.values[v] = true
		s.order = append(s.order, v)
		for _, f := range forms(v) {
			s.index(f, +1)
		}
	}
	for len(s.order) > s.max {
		old := s.order[0]
		s.order = s.order[1:]
		delete(s.values, old)
		for _, f := range forms(old) {
			s.index(f, -1)
		}
	}
}

// Len is how many values the set holds.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.values)
}

// index counts one more (or one fewer) value having form f; two values can share a form (the
// query escape of "a b" is the value "a+b").
func (s *Set) index(f string, delta int) {
	s.forms[f] += delta
	head := headOf(f, 0)
	switch n := s.forms[f]; {
	case n == 1 && delta > 0:
		s.pairs[uint16(head)]++
		fs := append(s.byHead[head], f)
		sort.SliceStable(fs, func(i, j int) bool { return len(fs[i]) > len(fs[j]) })
		s.byHead[head] = fs
	case n == 0:
		s.pairs[uint16(head)]--
		delete(s.forms, f)
		fs := s.byHead[head][:0]
		for _, g := range s.byHead[head] {
			if g != f {
				fs = append(fs, g)
			}
		}
		if len(fs) == 0 {
			delete(s.byHead, head)
		} else {
			s.byHead[head] = fs
		}
	}
}

// forms are the ways v can appear in text cartrelay keeps or shows: as is, inside a JSON string
// (with and without encoding/json's HTML escaping), URL-encoded (a query or a form body), and
// HTML-escaped (a page).
func forms(v string) []string {
	all := []string{v, url.QueryEscape(v), url.PathEscape(v), html.EscapeString(v)}
	if b, err := json.Marshal(v); err == nil {
		all = append(all, string(b[1:len(b)-1]))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) == nil {
		b := bytes.TrimRight(buf.Bytes(), "\n")
		all = append(all, string(b[1:len(b)-1]))
	}
	var out []string
	for _, f := range all {
		if len(f) >= headLen && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// String returns text with every form of every value replaced by Mark.
func (s *Set) String(text string) string {
	if s == nil || len(text) < MinLen {
		return text
	}
	// The scan holds the read lock: Add changes the index in place.
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.byHead) == 0 {
		return text
	}
	var b *strings.Builder
	last := 0
	for i := 0; i+headLen <= len(text); {
		if s.pairs[uint16(text[i])|uint16(text[i+1])<<8] == 0 {
			i++
			continue
		}
		n := match(s.byHead, text, i)
		if n == 0 {
			i++
			continue
		}
		if b == nil {
			b = &strings.Builder{}
			b.Grow(len(text))
		}
		b.WriteString(text[last:i])
		b.WriteString(Mark)
		i += n
		last = i
	}
	if b == nil {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// headOf packs text[i:i+headLen] into one map key.
func headOf(text string, i int) uint32 {
	return uint32(text[i]) | uint32(text[i+1])<<8 | uint32(text[i+2])<<16 | uint32(text[i+3])<<24
}

// match is the length of the longest pattern at text[i:], or 0.
func match(idx map[uint32][]string, text string, i int) int {
	for _, p := range idx[headOf(text, i)] {
		if strings.HasPrefix(text[i:], p) {
			return len(p)
		}
	}
	return 0
}

// Contains reports whether text holds a value of the set.
func (s *Set) Contains(text string) bool { return s.String(text) != text }

// Bytes scrubs a stored document. A JSON document is scrubbed inside its strings only and
// written back as JSON, so a value that happens to look like a number elsewhere in the document
// cannot break it; anything else is scrubbed as text. b is returned as is when it holds no
// value, which is the usual case, at the cost of one scan.
func (s *Set) Bytes(b []byte) []byte {
	if s.Len() == 0 || !s.Contains(string(b)) {
		return b
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err == nil && !dec.More() {
		var out bytes.Buffer
		enc := json.NewEncoder(&out)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s.walk(doc)); err == nil {
			return bytes.TrimRight(out.Bytes(), "\n")
		}
	}
	return []byte(s.String(string(b)))
}

// walk scrubs every string of a decoded JSON document, keys included.
func (s *Set) walk(v any) any {
	switch t := v.(type) {
	case string:
		return s.String(t)
	case []any:
		for i := range t {
			t[i] = s.walk(t[i])
		}
		return t
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[s.String(k)] = s.walk(x)
		}
		return out
	}
	return v
}
