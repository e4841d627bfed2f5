package ultracart

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
	// ErrMalformed: the delivery body is not a readable UltraCart delivery.
	ErrMalformed = errors.New("malformed UltraCart delivery")
	// ErrTooLarge: compressed events expand beyond MaxDecompressed.
	ErrTooLarge = errors.New("decompressed events too large")
	// ErrBadElement: one element of a delivery is not an event ({name: object}). It is set on
	// that RawEvent's Err; the rest of the delivery goes through.
	ErrBadElement = errors.New("not an UltraCart event")
)

// DecodeError says why a delivery body could not be split into events. The webhook handler
// answers 400 with its message.
type DecodeError struct {
	// Offset is the byte offset of the problem in the JSON being read, or -1.
	Offset int64
	// Index is the event index the problem was found in, or -1 for the envelope.
	Index int
	// Compressed is true when the problem is inside decompressed data; Offset then counts in
	// the decompressed bytes.
	Compressed bool
	Reason     string
	Err        error
}

func (e *DecodeError) Error() string {
	msg := "UltraCart delivery"
	if e.Index >= 0 {
		msg += fmt.Sprintf(", event %d", e.Index)
	}
	if e.Compressed {
		msg += ", compressed data"
	}
	if e.Offset >= 0 {
		msg += fmt.Sprintf(", byte %d", e.Offset)
	}
	return msg + ": " + e.Reason
}

// Unwrap exposes ErrMalformed (always) and the cause.
func (e *DecodeError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrMalformed}
	}
	return []error{ErrMalformed, e.Err}
}

// EventError says why one event could not be normalized: "event 3 (order_refund):
// billing.email is missing". errors.Is matches ErrUnknownEvent or ErrInvalidEvent, and the
// cause when there is one.
type EventError struct {
	Index int    // the event's index in its delivery
	Name  string // the UltraCart event name
	// Field is the payload path at fault ("billing.email"), when one is.
	Field  string
	Reason string
	Kind   error // ErrUnknownEvent or ErrInvalidEvent
	Err    error // the cause, if any
}

func (e *EventError) Error() string {
	name := e.Name
	if name == "" {
		name = "unnamed"
	}
	msg := fmt.Sprintf("event %d (%s): ", e.Index, name)
	if e.Field != "" {
		msg += e.Field + " "
	}
	return msg + e.Reason
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

func invalid(field string, err error) error {
	return &fieldError{field: field, reason: "is invalid: " + err.Error(), err: err}
}
