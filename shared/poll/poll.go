// Package poll is the engine every source's poller runs on (docs/architecture.md, The poll
// engine). A run holds the connection's lease, so two pollers never walk one connection at
// once; admits every request through table-backed buckets shared by every process; saves the
// cursor after every page in one transaction with the lease renewal, under the cursor's
// version; retries failed requests by one plan; and stops before its time budget ends, saying
// whether the job should continue at once or later.
//
// A source supplies only its streams: where the next page is, how to ask for it, how its
// records go to the ingest queue, and how the cursor moves past it (Walk), plus how to read its
// API's errors (Source).
package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/lease"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Outcome says what the caller does with the job after a run.
type Outcome int

const (
	// CaughtUp: the walk reached the present; the schedule starts it again at NextRunAt.
	CaughtUp Outcome = iota
	// Continue: the time budget ran out mid-walk; re-enqueue the job at once.
	Continue
	// Later: the rate budget or repeated failures stop the walk until NextRunAt.
	Later
	// Stopped: the source refused the credentials (or there are none); someone must act.
	Stopped
	// Busy: another poller holds the lease; that one carries on.
	Busy
)

func (o Outcome) String() string {
	return [...]string{"caught-up", "continue", "later", "stopped", "busy"}[o]
}

// ErrBusy is returned by Begin when another process holds the lease.
var ErrBusy = lease.ErrBusy

// ErrLeaseLost is returned when the lease expired or was taken while this process worked; the
// run stops at once, because another poller may already be requesting.
var ErrLeaseLost = lease.ErrLost

// Retry tunes PlanRetry.
type Retry struct {
	// Base is the first wait; it doubles per attempt, up to 15 minutes.
	Base time.Duration
	// Retries is how many times a failing request is repeated within one run.
	Retries int
	// Reserve is the budget a run keeps back at its end.
	Reserve time.Duration
}

// PlanRetry decides what a walk does after its attempt-th failed request in a row: wait
// backoff and repeat it, or give up (the run ends, due again after backoff). A hint (a
// Retry-After) lengthens the wait. A request that repeating cannot cure, one past the retries,
// or one whose wait would run past the deadline gives up; one that cannot be cured waits an
// hour, in case someone fixes its cause meanwhile.
func PlanRetry(o Retry, attempt int, retryable bool, hint time.Duration, now, deadline time.Time) (backoff time.Duration, giveUp bool) {
	backoff = max(min(o.Base<<(attempt-1), 15*time.Minute), hint)
	if !retryable {
		return time.Hour, true
	}
	return backoff, attempt > o.Retries || now.Add(backoff).Add(o.Reserve).After(deadline)
}

// Source is what the engine knows of a source's API: its name and how to read its errors.
type Source struct {
	// Name is the source's key segment and log name ("ultracart", "thrivecart").
	Name string
	// Stop is the status a failed request stops the stream with, "" when waiting may cure it.
	Stop func(err error) string
	// Retryable reports whether repeating the request may succeed.
	Retryable func(err error) bool
}

// RateLimit is a source API's answer that the request rate is too high (a 429), with its hint
// of when to try again (0 when it gave none).
type RateLimit interface {
	error
	RetryHint() time.Duration
}

// Options are the timings every source's walk has; the source fills in its defaults.
type Options struct {
	// Interval is how soon a caught-up stream polls again.
	Interval time.Duration
	// LeaseTTL outlives one request plus one page's writes.
	LeaseTTL time.Duration
	// Reserve is the budget kept back at the end of a run: a request and a save.
	Reserve time.Duration
	// Retries is how many times a failing request is repeated within one run.
	Retries int
	// Backoff is the first wait after a 429 or a server error; it doubles per attempt.
	Backoff time.Duration
}

// Deps are the ports every poller has.
type Deps struct {
	Store store.Store
	Clock clock.Clock
	Log   *slog.Logger
	// Sleep waits (tests advance a fake clock instead); nil sleeps for real.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Engine runs the walks of one source.
type Engine struct {
	d   Deps
	src Source
}

// New returns an engine for src. A nil clock is the system's, a nil log discards, and a nil
// sleep waits for real.
func New(d Deps, src Source) *Engine {
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Sleep == nil {
		d.Sleep = clock.Sleep
	}
	return &Engine{d: d, src: src}
}

// Deps are the engine's ports, defaults filled in, for the source's own use.
func (e *Engine) Deps() Deps { return e.d }

// Bucket is one shared request budget a run's requests are admitted through.
type Bucket struct {
	PK    string
	Limit ratelimit.Limit
}

// Plan is one run: what it shares with other processes, and its timings.
type Plan struct {
	// Lease is the item whose holder alone may walk; Work says what it does, for whoever
	// finds the lease taken.
	Lease store.Key
	Work  string
	// Buckets admit every request, asked in order: put the longest window first, since it
	// binds rarely and a request a later bucket refused would be wasted in it. A rate limit
	// answered by the source pauses the last bucket, so every process sharing it waits.
	Buckets []Bucket
	// Log carries the run's account and stream.
	Log    *slog.Logger
	Timing Options
}

// Page is one page a walk read: its records for the ingest queue and the name of the delivery
// they go in (a page re-sent after a crash has the same name).
type Page struct {
	Records  []json.RawMessage
	Delivery string
}

// Walk is one source's stream in one run: everything the engine does not know.
type Walk interface {
	// Cursor is the cursor the walk moves; the engine saves it.
	Cursor() Cursor
	// Open reports whether there is a page to ask for at now; false means the walk is at the
	// present and the run ends caught up.
	Open(now time.Time) bool
	// Fetch asks for the next page. It may note in the cursor what the page showed.
	Fetch(ctx context.Context) (Page, error)
	// Send puts the page's records on the ingest queue; an error leaves the cursor where it
	// was.
	Send(ctx context.Context, p Page) error
	// Advance moves the cursor past the page just sent, whose records Done already counts.
	Advance(now time.Time)
	// Saved is called once the cursor is saved after a page; true ends the run caught up.
	Saved() (caughtUp bool)
}

// Result reports one run.
type Result struct {
	Outcome   Outcome
	Requests  int
	Records   int
	NextRunAt time.Time
}

// Run is one run in progress: it holds the lease and the buckets.
type Run struct {
	e        *Engine
	opt      Options
	deadline time.Time
	lease    *lease.Lease
	buckets  []*ratelimit.Shared
	log      *slog.Logger
	res      Result
}

// Begin takes p's lease (ErrBusy when another process holds it) and opens its buckets. The
// caller must End the run.
func (e *Engine) Begin(ctx context.Context, p Plan, deadline time.Time) (*Run, error) {
	r := &Run{e: e, opt: p.Timing, deadline: deadline, log: p.Log}
	if r.log == nil {
		r.log = e.d.Log
	}
	r.lease = lease.New(e.d.Store, e.d.Clock, p.Lease, r.opt.LeaseTTL, p.Work)
	if err := r.lease.Acquire(ctx); err != nil {
		return nil, err
	}
	for _, b := range p.Buckets {
		s, err := ratelimit.NewShared(e.d.Store, e.d.Clock, b.PK, b.Limit)
		if err != nil {
			r.End(ctx)
			return nil, err
		}
		r.buckets = append(r.buckets, s)
	}
	return r, nil
}

// End gives the lease back.
func (r *Run) End(ctx context.Context) { r.lease.Release(ctx) }

// Result is what the run did so far.
func (r *Run) Result() Result { return r.res }

// Walk walks w until it catches up, the run's budget (its deadline, on the engine's clock) runs
// low, or something stops it. An error means the run ended abnormally (ctx ended, the lease was
// lost, the store or the ingest queue failed); the cursor then holds the last saved page, so a
// later run re-sends at most the page in flight.
func (r *Run) Walk(ctx context.Context, w Walk) error {
	e := r.e
	c := w.Cursor()
	cur := c.Base()
	failures := 0
	for {
		now := e.d.Clock.Now()
		if !w.Open(now) {
			cur.CaughtUp = true
			cur.NextRunAt = now.Add(r.opt.Interval)
			r.res.Outcome, r.res.NextRunAt = CaughtUp, cur.NextRunAt
			return r.Save(ctx, c)
		}
		if now.Add(r.opt.Reserve).After(r.deadline) {
			// The caller re-enqueues the job at once; the schedule only steps in if that
			// continuation is lost.
			cur.NextRunAt = now.Add(r.opt.LeaseTTL)
			r.res.Outcome, r.res.NextRunAt = Continue, now
			return r.Save(ctx, c)
		}
		if err := r.lease.Renew(ctx); err != nil {
			return err
		}
		if wait, err := r.admit(ctx); err != nil {
			return err
		} else if wait > 0 {
			cur.NextRunAt = e.d.Clock.Now().Add(wait)
			r.res.Outcome, r.res.NextRunAt = Later, cur.NextRunAt
			return r.Save(ctx, c)
		}
		page, err := w.Fetch(ctx)
		r.res.Requests++
		cur.Requests++
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failures++
			stop, err := r.failed(ctx, c, err, failures)
			if stop || err != nil {
				return err
			}
			continue
		}
		failures = 0
		if len(page.Records) > 0 {
			if err := w.Send(ctx, page); err != nil {
				return fmt.Errorf("enqueue %s: %w", page.Delivery, err)
			}
		}
		n := len(page.Records)
		r.res.Records += n
		cur.Done += int64(n)
		cur.LastError = ""
		w.Advance(e.d.Clock.Now())
		if err := r.Save(ctx, c); err != nil {
			return err
		}
		if w.Saved() {
			r.res.Outcome, r.res.NextRunAt = CaughtUp, cur.NextRunAt
			return nil
		}
	}
}

// admit takes one request from every bucket; a positive wait means the budget is spent beyond
// this run's deadline.
func (r *Run) admit(ctx context.Context) (time.Duration, error) {
	for _, b := range r.buckets {
		for {
			wait, err := b.Reserve(ctx)
			if err != nil {
				return 0, err
			}
			if wait == 0 {
				break
			}
			if r.e.d.Clock.Now().Add(wait).Add(r.opt.Reserve).After(r.deadline) {
				return wait, nil
			}
			if err := r.sleep(ctx, wait); err != nil {
				return 0, err
			}
		}
	}
	return 0, nil
}

// failed handles a failed request; stop ends the run (the cursor is saved).
func (r *Run) failed(ctx context.Context, c Cursor, err error, attempt int) (stop bool, _ error) {
	e := r.e
	cur := c.Base()
	now := e.d.Clock.Now()
	cur.LastError, cur.LastErrorAt = err.Error(), now
	r.log.Warn(e.src.Name+" request failed", slog.Int("attempt", attempt), slog.Any("error", err))
	if status := e.src.Stop(err); status != "" {
		cur.Status = status
		r.res.Outcome = Stopped
		return true, r.Save(ctx, c)
	}
	var rl RateLimit
	var hint time.Duration
	limited := errors.As(err, &rl)
	if limited {
		hint = rl.RetryHint()
	}
	backoff, giveUp := PlanRetry(Retry{Base: r.opt.Backoff, Retries: r.opt.Retries, Reserve: r.opt.Reserve},
		attempt, e.src.Retryable(err), hint, now, r.deadline)
	if limited && len(r.buckets) > 0 {
		// Every process sharing the bucket pauses, not only this run.
		if berr := r.buckets[len(r.buckets)-1].Block(ctx, now.Add(backoff)); berr != nil {
			return true, berr
		}
	}
	if giveUp {
		cur.NextRunAt = now.Add(backoff)
		r.res.Outcome, r.res.NextRunAt = Later, cur.NextRunAt
		return true, r.Save(ctx, c)
	}
	// Saved now, so the error shows at once (backfill's progress line, --status, the console)
	// rather than only when the run gives up, minutes later.
	if err := r.Save(ctx, c); err != nil {
		return true, err
	}
	if limited {
		return false, nil // admit waits out the pause recorded in the bucket
	}
	return false, r.sleep(ctx, backoff)
}

// sleep waits d, renewing the lease meanwhile.
func (r *Run) sleep(ctx context.Context, d time.Duration) error {
	return r.lease.Sleep(ctx, d, r.e.d.Sleep)
}

// Save writes the cursor and renews the lease in one transaction, so a poller that lost its
// lease can never move the cursor.
func (r *Run) Save(ctx context.Context, c Cursor) error {
	p := c.Base()
	w, err := write(c)
	if err != nil {
		return err
	}
	if err := r.lease.Commit(ctx, w); err != nil {
		switch {
		case errors.Is(err, lease.ErrLost):
			return ErrLeaseLost
		case errors.Is(err, store.ErrConditionFailed):
			return fmt.Errorf("save the %s cursor of %s/%s: another writer moved it: %w", p.Source, p.Account, p.Stream, err)
		}
		return fmt.Errorf("save the %s cursor of %s/%s: %w", p.Source, p.Account, p.Stream, err)
	}
	p.version++
	return nil
}
