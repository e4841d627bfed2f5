package thrivecart

import (
	"errors"
	"fmt"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrUnknownEvent: the event name is not one Normalize interprets. Keep the event raw.
	ErrUnknownEvent = domain.ErrUnknownEvent
	// ErrInvalidEvent: the event cannot be normalized. Quarantine it with the message.
	ErrInvalidEvent = domain.ErrInvalidEvent
	// ErrMalformed: the body is not a readable ThriveCart webhook.
	ErrMalformed = errors.New("malformed ThriveCart webhook")
	// ErrNoEvent: the body has no event field.
	ErrNoEvent = errors.New("no event field")
)

// DecodeError says why a body could not be read. The webhook handler answers 400 with it.
type DecodeError struct {
	// Offset is the byte offset of the problem, or 0 when not known.
	Offset int64
	Reason string
	Err    error
}

func (e *DecodeError) Error() string {
	if e.Offset > 0 {
		return fmt.Sprintf("ThriveCart webhook, byte %d: %s", e.Offset, e.Reason)
	}
	return "ThriveCart webhook: " + e.Reason
}

// Unwrap exposes ErrMalformed (always) and the cause.
func (e *DecodeError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrMalformed}
	}
	return []error{ErrMalformed, e.Err}
}

// EventError says why a delivery could not be normalized: "order.refund: refund[amount] is
// missing". errors.Is matches ErrUnknownEvent or ErrInvalidEvent, and the cause.
type EventError struct {
	Event string
	// Field is the body field at fault in ThriveCart's bracket form ("customer[email]").
	Field  string
	Reason string
	Kind   error
	Err    error
}

func (e *EventError) Error() string {
	name := e.Event
	if name == "" {
		name = "(no event name)"
	}
	if e.Field != "" {
		return name + ": " + e.Field + " " + e.Reason
	}
	return name + ": " + e.Reason
}

// Unwrap exposes the kind and the cause.
func (e *EventError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// fieldError is raised inside the mappers and turned into an *EventError by Normalize.
type fieldError struct {
	field  string
	reason string
	err    error
}

func (e *fieldError) Error() string { return e.field + " " + e.reason }
func (e *fieldError) Unwrap() error { return e.err }

func missing(field string) error { return &fieldError{field: field, reason: "is missing"} }
