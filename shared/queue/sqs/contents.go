package sqs

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/cartrelay/cartrelay/shared/queue"
)

// SQS limits on message attributes. queue/embedded holds the same checks; the contract suite
// keeps the two in step.
const (
	maxAttributes        = 10
	maxAttributeNameSize = 256
)

// checkContents applies the per-message rules that SQS reports per batch entry rather than
// for the whole request: the characters SQS accepts and the form of message attributes.
// Checking them before the call also keeps invalid UTF-8 away from the SDK, whose JSON
// encoding would silently replace it and then fail the whole batch on a checksum mismatch.
func checkContents(m queue.Message) (queue.FailedEntry, bool) {
	fail := func(code, format string, args ...any) (queue.FailedEntry, bool) {
		return queue.FailedEntry{ID: m.ID, Code: code, Reason: fmt.Sprintf(format, args...), SenderFault: true}, true
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
	return queue.FailedEntry{}, false
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
