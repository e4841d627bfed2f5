package queue

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// SQS's limits on message attributes.
const (
	maxAttributes        = 10
	maxAttributeNameSize = 256
)

// CheckContents splits msgs into those SQS would accept and those it would refuse entry by
// entry rather than for the whole request: characters SQS does not accept, and malformed
// message attributes. Both adapters call it, so a message fails the same way on each.
func CheckContents(msgs []Message) (valid []Message, failed []FailedEntry) {
	for _, m := range msgs {
		if f, bad := checkContents(m); bad {
			failed = append(failed, f)
			continue
		}
		valid = append(valid, m)
	}
	return valid, failed
}

func checkContents(m Message) (FailedEntry, bool) {
	fail := func(code, format string, args ...any) (FailedEntry, bool) {
		return FailedEntry{ID: m.ID, Code: code, Reason: fmt.Sprintf(format, args...), SenderFault: true}, true
	}
	if !allowedText(m.Body) {
		return fail("InvalidMessageContents", "the body holds characters SQS does not accept (invalid UTF-8, or control characters other than tab, newline and carriage return)")
	}
	if len(m.Attributes) > maxAttributes {
		return fail("InvalidParameterValue", "%d message attributes, over the limit of %d", len(m.Attributes), maxAttributes)
	}
	for k, v := range m.Attributes {
		if !validAttributeName(k) {
			return fail("InvalidParameterValue", "message attribute name %q is invalid: use up to %d of A-Z a-z 0-9 _ - . , not starting with AWS. or Amazon.", k, maxAttributeNameSize)
		}
		if v == "" {
			return fail("InvalidParameterValue", "message attribute %q has an empty value", k)
		}
		if !allowedText(v) {
			return fail("InvalidMessageContents", "message attribute %q holds characters SQS does not accept", k)
		}
	}
	return FailedEntry{}, false
}

// allowedText reports whether s is valid UTF-8 made only of the characters SQS accepts:
// #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
func allowedText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == 0x9 || r == 0xA || r == 0xD:
		case r >= 0x20 && r <= 0xD7FF:
		case r >= 0xE000 && r <= 0xFFFD:
		case r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}

func validAttributeName(k string) bool {
	if k == "" || len(k) > maxAttributeNameSize {
		return false
	}
	lower := strings.ToLower(k)
	if strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon.") {
		return false
	}
	if k[0] == '.' || k[len(k)-1] == '.' || strings.Contains(k, "..") {
		return false
	}
	for _, c := range k {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// NotQueued marks every message in msgs as not queued for the same reason, as when a whole
// batch fails after earlier ones went through.
func NotQueued(msgs []Message, code, reason string) []FailedEntry {
	out := make([]FailedEntry, len(msgs))
	for i, m := range msgs {
		out[i] = FailedEntry{ID: m.ID, Code: code, Reason: reason}
	}
	return out
}
