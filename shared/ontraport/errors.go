package ontraport

import (
	"errors"
	"fmt"
	"strings"
)

// Errors callers branch on with errors.Is.
var (
	// ErrSettings matches *SettingsError.
	ErrSettings = errors.New("invalid ONTRAPORT settings")
	// ErrEmptySelection is returned instead of sending a bulk operation (refund, tag) without
	// explicit ids: ONTRAPORT applies such an operation to every object of the type.
	ErrEmptySelection = errors.New("refusing an ONTRAPORT bulk operation without explicit ids")
	// ErrNoTransaction: a refund refers to an order whose purchase is not in ONTRAPORT.
	ErrNoTransaction = errors.New("no ONTRAPORT transaction for the order")
	// ErrRateLimited: the shared request budget would make this delivery wait longer than it
	// may; the queue brings it back later.
	ErrRateLimited = errors.New("ONTRAPORT request budget exhausted")
	// ErrInProgress: another process is logging the same transaction right now.
	ErrInProgress = errors.New("another delivery is logging this transaction")
	// ErrBadFact: the fact lacks what its kind needs; no retry can fix it.
	ErrBadFact = errors.New("fact cannot be delivered to ONTRAPORT")
	// ErrUnexpectedResponse: ONTRAPORT answered 2xx with something that is not what the call
	// returns (no id, not JSON). Retried: the next attempt looks up what may have been created.
	ErrUnexpectedResponse = errors.New("unexpected ONTRAPORT response")
)

// SettingsError is one malformed ONTRAPORT setting.
type SettingsError struct {
	Key    string
	Value  string
	Reason string
}

func (e *SettingsError) Error() string {
	return fmt.Sprintf("ontraport.%s = %q: %s", e.Key, e.Value, e.Reason)
}

// Is makes errors.Is(err, ErrSettings) true.
func (e *SettingsError) Is(target error) bool { return target == ErrSettings }

// APIError is a non-2xx answer from ONTRAPORT (or a 2xx whose envelope code is not 0).
type APIError struct {
	Method string
	Path   string
	Status int
	// Code is the envelope's code when the body was an envelope.
	Code int
	// Body is the response body, shortened, for the delivery log and the parked reason.
	Body string
}

func (e *APIError) Error() string {
	body := strings.TrimSpace(e.Body)
	if body == "" {
		body = "(empty body)"
	}
	return fmt.Sprintf("ontraport %s %s: HTTP %d: %s", e.Method, e.Path, e.Status, body)
}

// Temporary reports whether retrying later can succeed: rate limiting, timeouts and server
// errors. Other 4xx answers (bad request, authentication, permission, invalid email) need a
// change first.
func (e *APIError) Temporary() bool {
	return e.Status == 429 || e.Status == 408 || e.Status >= 500
}
