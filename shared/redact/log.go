package redact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

// emailRE finds email addresses in log text (fact ids carry them, and so do some errors).
var emailRE = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+`)

// Email is what a log line shows instead of a customer's address: a stable pseudonym, the same
// for the same address everywhere, so lines about one contact can still be found together.
func Email(addr string) string {
	sum := sha256.Sum256([]byte("cartrelay log ref\x00" + strings.ToLower(strings.TrimSpace(addr))))
	return "email#" + hex.EncodeToString(sum[:6])
}

// LogText is text as a log line may show it: secrets of s replaced by Mark, email addresses by
// their pseudonym. s may be nil.
func (s *Set) LogText(text string) string { return emails(s.String(text)) }

func emails(text string) string {
	if strings.IndexByte(text, '@') < 0 {
		return text
	}
	return emailRE.ReplaceAllStringFunc(text, Email)
}

// Handler wraps h so that every log line goes through LogText: the message and every attribute,
// errors and values of any type included. Attributes given to With are scrubbed then, with the
// values known at that moment. s may be nil (emails are still replaced).
func (s *Set) Handler(h slog.Handler) slog.Handler {
	if lh, ok := h.(*logHandler); ok {
		h = lh.inner
	}
	return &logHandler{inner: h, set: s}
}

type logHandler struct {
	inner slog.Handler
	set   *Set
}

func (h *logHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.set.LogText(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = h.attr(a)
	}
	return &logHandler{inner: h.inner.WithAttrs(clean), set: h.set}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{inner: h.inner.WithGroup(name), set: h.set}
}

func (h *logHandler) attr(a slog.Attr) slog.Attr {
	a.Value = h.value(a.Value.Resolve())
	return a
}

func (h *logHandler) value(v slog.Value) slog.Value {
	switch v.Kind() {
	case slog.KindString:
		return slog.StringValue(h.set.LogText(v.String()))
	case slog.KindGroup:
		as := v.Group()
		clean := make([]slog.Attr, len(as))
		for i, a := range as {
			clean[i] = h.attr(a)
		}
		return slog.GroupValue(clean...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.StringValue(h.set.LogText(x.Error()))
		case fmt.Stringer:
			return slog.StringValue(h.set.LogText(x.String()))
		case []byte:
			return slog.StringValue(h.set.LogText(string(x)))
		}
		// What the JSON handler would write; kept as is unless it holds something to hide.
		b, err := json.Marshal(v.Any())
		if err != nil {
			return slog.StringValue(h.set.LogText(fmt.Sprint(v.Any())))
		}
		// Secrets are replaced inside the JSON's strings only; an address never holds a quote
		// or a backslash, so replacing it keeps the JSON valid.
		if clean := emails(string(h.set.Bytes(b))); clean != string(b) {
			return slog.AnyValue(json.RawMessage(clean))
		}
	}
	return v
}
