// Package ucpoll walks UltraCart's REST API forward from a stored cursor: the backstop for
// missed webhooks and the backfill of history. Orders and refunds are walked in date windows of
// the order query; auto orders, customers and items through their "_since" listings
// (streams.go). Each polled record goes onto the same ingest queue as a webhook's, under the
// name of the webhook event that carries the same record, so ingest's content dedupe makes a
// poll that repeats what a webhook (or an earlier poll) delivered harmless.
//
// One run handles one (account, stream) job. It holds the connection's lease, so two pollers
// never call UltraCart at once; admits every request through the table-backed hourly and daily
// buckets shared by every process; saves the cursor after every page under a version check;
// and stops before its time budget ends, saying whether the job should continue at once or
// later.
package ucpoll

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
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

// Job is a poll-queue message.
type Job struct {
	Account string `json:"account"`
	Stream  string `json:"stream"`
}

// API is the part of the UltraCart client the engine uses (*ultracartapi.Client).
type API interface {
	QueryOrders(ctx context.Context, f ultracartapi.OrderFilter, limit, offset int) (ultracartapi.Page, error)
	AutoOrdersSince(ctx context.Context, since time.Time, limit, offset int) (ultracartapi.Page, error)
	CustomersSince(ctx context.Context, since time.Time, limit, offset int) (ultracartapi.Page, error)
	ItemsSince(ctx context.Context, since time.Time, limit, offset int) (ultracartapi.Page, error)
}

// Batch is one page of records for the ingest queue.
type Batch struct {
	Account string
	Stream  string
	// Event is the webhook event name the records are ingested as (EventOrder, ...).
	Event string
	// Delivery names the page ("poll:ultracart:orders:<window start>:<offset>", or
	// "poll:ultracart:customers:<walk start>:<_since>:<offset>"); a page re-sent after a crash
	// has the same name.
	Delivery string
	Records  []json.RawMessage
}

// Sink puts a batch on the ingest queue; an error leaves the cursor where it was.
type Sink func(ctx context.Context, b Batch) error

// Options tune the walk. Zero values take the defaults in parentheses.
type Options struct {
	// Start is where a new orders or refunds cursor begins: the backfill's start date (a year
	// ago). The "_since" streams begin with all of history instead: a customer, item or auto
	// order unchanged since before Start is as current as one changed yesterday.
	Start time.Time
	// Window is the first window's length (24h); a window after a quiet one doubles, up to
	// MaxWindow (30 days), and one after a busy one halves, down to Window.
	Window    time.Duration
	MaxWindow time.Duration
	// Overlap is re-read at the head on every run (15 min), for orders whose payment time is
	// earlier than the moment they became visible, and records whose change is stamped earlier.
	Overlap time.Duration
	// Lag keeps the walk this far behind now (2 min).
	Lag time.Duration
	// Interval is how soon a caught-up stream polls again (5 min).
	Interval time.Duration
	// PageSize is the _limit (200, UltraCart's maximum for orders, auto orders and customers).
	PageSize int
	// QueryTarget forces "origin" or "cache" for the order queries; empty reads windows that
	// ended over CacheAfter ago from the cache and the newest from the origin.
	QueryTarget string
	// LeaseTTL outlives one request plus one page's writes (5 min); the client's timeout
	// (60 s) must stay below it, or a stalled request could overlap the next holder's.
	LeaseTTL time.Duration
	// Reserve is the budget kept back at the end of a run (90 s): a request and a save.
	Reserve time.Duration
	// Hour and Day are UltraCart's limits (1,000/hour and 10,000/day).
	Hour ratelimit.Limit
	Day  ratelimit.Limit
	// Retries is how many times a failing request is repeated within one run (3).
	// Scope is who shares the buckets and the lease: ScopeAccount (the default) gives each
	// account its own, ScopeApp one for every account of this deployment. UltraCart enforces
	// its limits "per authorized application and per IP" without saying whether an application
	// authorized by several stores gets one budget or one per store; ScopeApp is the safe
	// reading when a deployment serves many stores through one OAuth application.
	Scope   string
	Retries int
	// Backoff is the first wait after a 429 or a server error (30 s); it doubles per attempt,
	// up to 15 minutes.
	Backoff time.Duration
}

func (o Options) withDefaults(now time.Time) Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.Start.IsZero() {
		o.Start = now.AddDate(-1, 0, 0)
	}
	def(&o.Window, 24*time.Hour)
	def(&o.MaxWindow, 30*24*time.Hour)
	def(&o.Overlap, 15*time.Minute)
	def(&o.Lag, 2*time.Minute)
	def(&o.Interval, 5*time.Minute)
	def(&o.LeaseTTL, 5*time.Minute)
	def(&o.Reserve, 90*time.Second)
	def(&o.Backoff, 30*time.Second)
	if o.PageSize <= 0 || o.PageSize > ultracartapi.MaxLimit {
		o.PageSize = ultracartapi.MaxLimit
	}
	if o.Hour.Requests == 0 {
		o.Hour = ratelimit.Limit{Requests: 1000, Window: time.Hour, Buckets: 12}
	}
	if o.Day.Requests == 0 {
		o.Day = ratelimit.Limit{Requests: 10000, Window: 24 * time.Hour, Buckets: 24}
	}
	if o.Retries <= 0 {
		o.Retries = 3
	}
	return o
}

// Deps are the engine's ports.
type Deps struct {
	Store  store.Store
	Clock  clock.Clock
	Log    *slog.Logger
	Source API
	Sink   Sink
	// Sleep waits (tests advance a fake clock instead); nil sleeps for real.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Engine runs poll jobs for one connection's credentials.
type Engine struct {
	d   Deps
	opt Options
}

// New checks deps and returns an engine.
func New(d Deps, opt Options) (*Engine, error) {
	if d.Store == nil || d.Source == nil || d.Sink == nil {
		return nil, errors.New("poller: store, source and sink are required")
	}
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Sleep == nil {
		d.Sleep = clock.Sleep
	}
	opt = opt.withDefaults(d.Clock.Now())
	if err := opt.Hour.Valid(); err != nil {
		return nil, fmt.Errorf("poller: hourly limit: %w", err)
	}
	switch opt.Scope {
	case "":
		opt.Scope = ScopeAccount
	case ScopeAccount, ScopeApp:
	default:
		return nil, fmt.Errorf("poller: scope %q is neither %q nor %q", opt.Scope, ScopeAccount, ScopeApp)
	}
	if err := opt.Day.Valid(); err != nil {
		return nil, fmt.Errorf("poller: daily limit: %w", err)
	}
	return &Engine{d: d, opt: opt}, nil
}

// Outcome says what the caller does with the job after a run.
type Outcome int

const (
	// CaughtUp: the walk reached the present; the schedule starts it again at NextRunAt.
	CaughtUp Outcome = iota
	// Continue: the time budget ran out mid-walk; re-enqueue the job at once.
	Continue
	// Later: the rate budget or repeated failures stop the walk until NextRunAt.
	Later
	// Stopped: UltraCart disabled the app or refused the credentials; someone must act.
	Stopped
	// Busy: another poller holds the lease; that one carries on.
	Busy
)

func (o Outcome) String() string {
	return [...]string{"caught-up", "continue", "later", "stopped", "busy"}[o]
}

// Result reports one run.
type Result struct {
	Outcome  Outcome
	Requests int
	// Orders counts the records the run put on the ingest queue: orders, or the auto orders,
	// customers or items of those streams.
	Orders    int
	NextRunAt time.Time
	Cursor    Cursor
}

// Scopes of the UltraCart request budget and lease (Options.Scope).
const (
	ScopeAccount = "account"
	ScopeApp     = "app"
)

// RateLimitKeys are the partitions of the account's shared UltraCart buckets.
func RateLimitKeys(account string) (hour, day string) {
	return "A#" + account + "#R#ultracart:hour", "A#" + account + "#R#ultracart:day"
}

// appPK is the partition of the deployment-wide buckets and lease under ScopeApp.
const appPK = "APP#" + Source

// limits returns the partitions of the hourly and daily buckets and of the lease that a run
// for account shares with others under the engine's scope.
func (o Options) limits(account string) (hour, day, lease string) {
	if o.Scope == ScopeApp {
		return appPK + "#R#hour", appPK + "#R#day", appPK
	}
	hour, day = RateLimitKeys(account)
	return hour, day, AccountPK(account)
}

// run is the state of one Run.
type run struct {
	e        *Engine
	job      Job
	stream   stream
	deadline time.Time
	lease    *lease.Lease
	hour     *ratelimit.Shared
	day      *ratelimit.Shared
	cur      Cursor
	res      Result
	log      *slog.Logger
}

// Run walks job's stream until it catches up, its budget (deadline, on the engine's clock)
// runs low, or something stops it. An error means the run ended abnormally (ctx ended, the
// lease was lost, the store or the sink failed); the cursor then holds the last saved page, so
// a later run re-sends at most the page in flight.
func (e *Engine) Run(ctx context.Context, job Job, deadline time.Time) (Result, error) {
	s, ok := lookup(job.Stream, e.opt)
	if !ok {
		return Result{}, fmt.Errorf("poller: unknown stream %q", job.Stream)
	}
	r := &run{e: e, job: job, stream: s, deadline: deadline,
		log: e.d.Log.With(slog.String("account", job.Account), slog.String("stream", job.Stream))}
	hourPK, dayPK, leasePK := e.opt.limits(job.Account)
	r.lease = lease.New(e.d.Store, e.d.Clock, store.Key{PK: leasePK, SK: LeaseSK}, e.opt.LeaseTTL, "stream "+job.Stream)
	if err := r.lease.Acquire(ctx); err != nil {
		if errors.Is(err, ErrBusy) {
			return Result{Outcome: Busy}, nil
		}
		return Result{}, err
	}
	defer r.lease.Release(ctx)
	var err error
	if r.hour, err = ratelimit.NewShared(e.d.Store, e.d.Clock, hourPK, e.opt.Hour); err != nil {
		return Result{}, err
	}
	if r.day, err = ratelimit.NewShared(e.d.Store, e.d.Clock, dayPK, e.opt.Day); err != nil {
		return Result{}, err
	}
	cur, found, err := LoadCursor(ctx, e.d.Store, job.Account, job.Stream)
	if err != nil {
		return Result{}, err
	}
	if !found {
		s.walk.begin(&cur)
	}
	if cur.Status != "" {
		return Result{Outcome: Stopped, Cursor: cur}, nil
	}
	r.cur = cur
	r.cur.LastRunAt = e.d.Clock.Now()
	err = r.walk(ctx)
	r.res.Cursor = r.cur
	return r.res, err
}

func (r *run) walk(ctx context.Context) error {
	e := r.e
	failures := 0
	for {
		now := e.d.Clock.Now()
		if !r.stream.walk.open(&r.cur, now) {
			r.cur.CaughtUp = true
			r.cur.NextRunAt = now.Add(e.opt.Interval)
			r.res.Outcome, r.res.NextRunAt = CaughtUp, r.cur.NextRunAt
			return r.save(ctx)
		}
		if now.Add(e.opt.Reserve).After(r.deadline) {
			// The caller re-enqueues the job at once; the schedule only steps in if that
			// continuation is lost.
			r.cur.NextRunAt = now.Add(e.opt.LeaseTTL)
			r.res.Outcome, r.res.NextRunAt = Continue, now
			return r.save(ctx)
		}
		if err := r.lease.Renew(ctx); err != nil {
			return err
		}
		if wait, err := r.admit(ctx); err != nil {
			return err
		} else if wait > 0 {
			r.cur.NextRunAt = e.d.Clock.Now().Add(wait)
			r.res.Outcome, r.res.NextRunAt = Later, r.cur.NextRunAt
			return r.save(ctx)
		}
		page, err := r.stream.walk.fetch(ctx, e.d.Source, &r.cur)
		r.res.Requests++
		r.cur.Requests++
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failures++
			stop, err := r.failed(ctx, err, failures)
			if stop || err != nil {
				return err
			}
			continue
		}
		failures = 0
		delivery := r.stream.walk.page(&r.cur)
		if len(page.Records) > 0 {
			b := Batch{Account: r.job.Account, Stream: r.job.Stream, Event: r.stream.event, Records: page.Records, Delivery: delivery}
			if err := e.d.Sink(ctx, b); err != nil {
				return fmt.Errorf("enqueue %s: %w", b.Delivery, err)
			}
		}
		n := len(page.Records)
		r.res.Orders += n
		r.cur.Done += int64(n)
		r.cur.LastError = ""
		inOrder := !r.cur.ByOffset
		atHead := r.stream.walk.advance(&r.cur, page, e.d.Clock.Now())
		if inOrder && r.cur.ByOffset {
			r.log.Warn("listing not in the order of modification asked for; paging the rest of this walk by offset",
				slog.String("page", delivery), slog.Time("since", r.cur.Key))
		}
		if err := r.save(ctx); err != nil {
			return err
		}
		if atHead {
			r.res.Outcome, r.res.NextRunAt = CaughtUp, r.cur.NextRunAt
			return nil
		}
	}
}

// admit takes one request from both shared buckets; a positive wait means the budget is spent
// beyond this run's deadline. The daily bucket is asked first: it binds rarely, and a request
// the hourly bucket counted but the daily refused would be wasted.
func (r *run) admit(ctx context.Context) (time.Duration, error) {
	for _, b := range []*ratelimit.Shared{r.day, r.hour} {
		for {
			wait, err := b.Reserve(ctx)
			if err != nil {
				return 0, err
			}
			if wait == 0 {
				break
			}
			now := r.e.d.Clock.Now()
			if now.Add(wait).Add(r.e.opt.Reserve).After(r.deadline) {
				return wait, nil
			}
			if err := r.sleep(ctx, wait); err != nil {
				return 0, err
			}
		}
	}
	return 0, nil
}

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
// hour, in case someone fixes its cause meanwhile. Shared by every source's poller.
func PlanRetry(o Retry, attempt int, retryable bool, hint time.Duration, now, deadline time.Time) (backoff time.Duration, giveUp bool) {
	backoff = max(min(o.Base<<(attempt-1), 15*time.Minute), hint)
	if !retryable {
		return time.Hour, true
	}
	return backoff, attempt > o.Retries || now.Add(backoff).Add(o.Reserve).After(deadline)
}

// failed handles a failed request; stop ends the run (the cursor is saved).
func (r *run) failed(ctx context.Context, err error, attempt int) (stop bool, _ error) {
	e := r.e
	now := e.d.Clock.Now()
	r.cur.LastError, r.cur.LastErrorAt = err.Error(), now
	r.log.Warn("ultracart request failed", slog.Int("attempt", attempt), slog.Any("error", err))
	switch {
	case errors.Is(err, ultracartapi.ErrAppDisabled):
		r.cur.Status = StatusDisabled
		r.res.Outcome = Stopped
		return true, r.save(ctx)
	case errors.Is(err, ultracartapi.ErrUnauthorized):
		r.cur.Status = StatusUnauthorized
		r.res.Outcome = Stopped
		return true, r.save(ctx)
	}
	var rl *ultracartapi.RateLimitedError
	var hint time.Duration
	if errors.As(err, &rl) {
		hint = rl.RetryAfter
	}
	backoff, giveUp := PlanRetry(Retry{Base: e.opt.Backoff, Retries: e.opt.Retries, Reserve: e.opt.Reserve},
		attempt, ultracartapi.Retryable(err), hint, now, r.deadline)
	if rl != nil {
		// Every process sharing the account's bucket pauses, not only this run.
		if berr := r.hour.Block(ctx, now.Add(backoff)); berr != nil {
			return true, berr
		}
	}
	if giveUp {
		r.cur.NextRunAt = now.Add(backoff)
		r.res.Outcome, r.res.NextRunAt = Later, r.cur.NextRunAt
		return true, r.save(ctx)
	}
	// Saved now, so the error shows at once (backfill's progress line, --status, the console)
	// rather than only when the run gives up, minutes later.
	if err := r.save(ctx); err != nil {
		return true, err
	}
	if rl != nil {
		// The pause is recorded in the bucket; admit waits it out.
		return false, nil
	}
	return false, r.sleep(ctx, backoff)
}

// sleep waits d, renewing the lease meanwhile.
func (r *run) sleep(ctx context.Context, d time.Duration) error {
	return r.lease.Sleep(ctx, d, r.e.d.Sleep)
}

// save writes the cursor and renews the lease in one transaction, so a poller that lost its
// lease can never move the cursor.
func (r *run) save(ctx context.Context) error {
	w, next, err := r.cur.write()
	if err != nil {
		return err
	}
	if err := r.lease.Commit(ctx, w); err != nil {
		switch {
		case errors.Is(err, lease.ErrLost):
			return ErrLeaseLost
		case errors.Is(err, store.ErrConditionFailed):
			return fmt.Errorf("save cursor %s/%s: another writer moved it: %w", r.job.Account, r.job.Stream, err)
		}
		return fmt.Errorf("save cursor %s/%s: %w", r.job.Account, r.job.Stream, err)
	}
	r.cur = next
	return nil
}
