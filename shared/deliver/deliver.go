// Package deliver is the port between the forwarder and each destination's API client: what a
// destination is, what a delivery produced, and which failures are permanent.
package deliver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
)

// Destination turns facts into API calls for one destination (ONTRAPORT, Iterable).
type Destination interface {
	// Name is the destination's queue and settings name ("ontraport", "iterable").
	Name() string
	// Deliver hands f to the destination. It returns what to remember about the delivery
	// (ids the destination assigned) and the HTTP exchanges it made, for the delivery log.
	// Errors marked Permanent are parked; others are retried with backoff.
	Deliver(ctx context.Context, acct accounts.Account, f domain.Fact) (Outcome, error)
}

// Outcome is what a delivery produced.
type Outcome struct {
	Status    string // history.DeliverySent, DeliveryDryRun or DeliverySkipped
	Exchanges []history.HTTPExchange
	Note      string
	// Done is stored with the fact-done marker (for example the transaction id to refund).
	Done any
	// RetryAfter is the destination's own hint when it asked to slow down.
	RetryAfter time.Duration
}

// ProfileBatcher is a destination that can take many profile refreshes (ContactChanged facts of
// different contacts) in one call, which a backlog needs to stay within the destination's rate.
type ProfileBatcher interface {
	DeliverProfiles(ctx context.Context, acct accounts.Account, facts []domain.Fact) (BatchOutcome, error)
}

// BatchOutcome is what a bulk delivery produced: the HTTP exchanges of the whole batch, and the
// facts that failed on their own (the others were delivered). An error returned beside it means
// the whole batch failed.
type BatchOutcome struct {
	Status    string
	Exchanges []history.HTTPExchange
	Errors    map[string]error
}

// RetryAfterError carries a destination's hint of when to try again (429 Retry-After,
// rate-limit reset headers).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter reads a destination's Retry-After header, given in seconds or as an HTTP date
// (RFC 9110); 0 when it is absent, unreadable or in the past.
func RetryAfter(header string, now time.Time) time.Duration {
	header = strings.TrimSpace(header)
	if header == "" {
		return 0
	}
	if n, err := strconv.ParseInt(header, 10, 64); err == nil && n >= 0 {
		// Ask for longer than a Duration holds, and get the longest.
		return time.Duration(min(n, int64(math.MaxInt64/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(header); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// permanent marks an error that retrying cannot fix; the forwarder parks the message at once.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that the forwarder parks the delivery instead of retrying it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// Backoff is the delay before retry number attempt (1-based): exponential from base, capped,
// with full jitter (rnd, or the shared source when nil) so that a burst of failures does not come back as a burst. A destination's
// own hint wins when it is longer.
func Backoff(attempt int, base, max time.Duration, hint time.Duration, rnd *rand.Rand) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := base << min(attempt-1, 20)
	if d <= 0 || d > max {
		d = max
	}
	if rnd != nil {
		d = time.Duration(rnd.Int64N(int64(d)) + 1)
	} else {
		d = time.Duration(rand.Int64N(int64(d)) + 1)
	}
	if hint > d {
		d = hint
	}
	return d
}

// ErrNotConfigured is returned by a destination whose settings are incomplete in a way that
// makes every request fail (for example an app id without an API key).
var ErrNotConfigured = errors.New("destination not configured")

// RecordOnly is the destination used when no API client exists for a destination yet, or when
// the account has no API key: it records the fact it would act on, so a newcomer sees the
// whole flow without any account.
type RecordOnly struct {
	Dest string
}

// Name implements Destination.
func (r RecordOnly) Name() string { return r.Dest }

// Deliver implements Destination.
func (r RecordOnly) Deliver(_ context.Context, _ accounts.Account, f domain.Fact) (Outcome, error) {
	return Outcome{Status: history.DeliveryDryRun, Note: fmt.Sprintf("no %s API key configured: recorded %s without sending", r.Dest, f.Kind)}, nil
}
