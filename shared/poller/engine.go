// Package poller walks UltraCart's order query forward from a stored cursor: the backstop for
// missed webhooks and the backfill of history. Each polled order goes onto the same ingest
// queue as a webhook's, so ingest's content dedupe makes a poll that repeats what a webhook
// (or an earlier poll) delivered harmless.
//
// One run handles one (account, stream) job. It holds the connection's lease, so two pollers
// never call UltraCart at once; admits every request through the table-backed hourly and daily
// buckets shared by every process; saves the cursor after every page under a version check;
// and stops before its time budget ends, saying whether the job should continue at once or
// later.
package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

// Streams.
const (
	// Orders walks payment dates: every paid order.
	Orders = "orders"
	// Refunds walks refund dates: orders refunded after they were walked as paid.
	Refunds = "refunds"
)

// Job is a poll-queue message.
type Job struct {
	Account string `json:"account"`
	Stream  string `json:"stream"`
}

// OrderSource is the part of the UltraCart client the engine uses.
type OrderSource interface {
	QueryOrders(ctx context.Context, f ultracartapi.OrderFilter, limit, offset int) (ultracartapi.Page, error)
}

// Batch is one page of orders for the ingest queue.
type Batch struct {
	Account string
	Stream  string
	// Delivery names the page ("poll:ultracart:orders:<window start>:<offset>"); a page
	// re-sent after a crash has the same name.
	Delivery string
	Orders   []json.RawMessage
}

// Sink puts a batch on the ingest queue; an error leaves the cursor where it was.
type Sink func(ctx context.Context, b Batch) error

// Options tune the walk. Zero values take the defaults in parentheses.
type Options struct {
	// Start is where a new cursor begins: the backfill's start date (a year ago).
	Start time.Time
	// Window is the first window's length (24h); a window after a quiet one doubles, up to
	// MaxWindow (30 days), and one after a busy one halves, down to Window.
	Window    time.Duration
	MaxWindow time.Duration
	// Overlap is re-read at the head on every run (15 min), for orders whose payment time is
	// earlier than the moment they became visible.
	Overlap time.Duration
	// Lag keeps the walk this far behind now (2 min).
	Lag time.Duration
	// Interval is how soon a caught-up stream polls again (10 min).
	Interval time.Duration
	// PageSize is the _limit (200, UltraCart's maximum).
	PageSize int
	// QueryTarget is "origin" (the default) or "cache".
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
	def(&o.Interval, 10*time.Minute)
	def(&o.LeaseTTL, 5*time.Minute)
	def(&o.Reserve, 90*time.Second)
	def(&o.Backoff, 30*time.Second)
	if o.PageSize <= 0 || o.PageSize > ultracartapi.MaxLimit {
		o.PageSize = ultracartapi.MaxLimit
	}
	if o.QueryTarget == "" {
		o.QueryTarget = "origin"
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
	Source OrderSource
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
		d.Sleep = sleepCtx
	}
	opt = opt.withDefaults(d.Clock.Now())
	if err := opt.Hour.Valid(); err != nil {
		return nil, fmt.Errorf("poller: hourly limit: %w", err)
	}
	if err := opt.Day.Valid(); err != nil {
		return nil, fmt.Errorf("poller: daily limit: %w", err)
	}
	return &Engine{d: d, opt: opt}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
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
	Outcome   Outcome
	Requests  int
	Orders    int
	NextRunAt time.Time
	Cursor    Cursor
}

// RateLimitKeys are the partitions of the account's shared UltraCart buckets.
func RateLimitKeys(account string) (hour, day string) {
	return "A#" + account + "#R#ultracart:hour", "A#" + account + "#R#ultracart:day"
}

// run is the state of one Run.
type run struct {
	e        *Engine
	job      Job
	deadline time.Time
	lease    *lease
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
	if job.Stream != Orders && job.Stream != Refunds {
		return Result{}, fmt.Errorf("poller: unknown stream %q", job.Stream)
	}
	r := &run{e: e, job: job, deadline: deadline,
		log: e.d.Log.With(slog.String("account", job.Account), slog.String("stream", job.Stream))}
	r.lease = &lease{st: e.d.Store, clk: e.d.Clock, key: store.Key{PK: AccountPK(job.Account), SK: LeaseSK},
		ttl: e.opt.LeaseTTL, owner: newOwner(), stream: job.Stream}
	if err := r.lease.acquire(ctx); err != nil {
		if errors.Is(err, ErrBusy) {
			return Result{Outcome: Busy}, nil
		}
		return Result{}, err
	}
	defer r.lease.release(ctx)
	hourPK, dayPK := RateLimitKeys(job.Account)
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
		cur.Began, cur.From, cur.Window = e.opt.Start, e.opt.Start, e.opt.Window
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
		if r.cur.To.IsZero() && !r.openWindow(now) {
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
		if err := r.lease.renew(ctx); err != nil {
			return err
		}
		if wait, err := r.admit(ctx); err != nil {
			return err
		} else if wait > 0 {
			r.cur.NextRunAt = e.d.Clock.Now().Add(wait)
			r.res.Outcome, r.res.NextRunAt = Later, r.cur.NextRunAt
			return r.save(ctx)
		}
		page, err := e.d.Source.QueryOrders(ctx, r.filter(), e.opt.PageSize, r.cur.Offset)
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
		if len(page.Records) > 0 {
			b := Batch{Account: r.job.Account, Stream: r.job.Stream, Orders: page.Records,
				Delivery: fmt.Sprintf("poll:%s:%s:%d:%d", Source, r.job.Stream, r.cur.From.Unix(), r.cur.Offset)}
			if err := e.d.Sink(ctx, b); err != nil {
				return fmt.Errorf("enqueue %s: %w", b.Delivery, err)
			}
		}
		atHead := r.advance(page)
		if err := r.save(ctx); err != nil {
			return err
		}
		if atHead {
			r.res.Outcome, r.res.NextRunAt = CaughtUp, r.cur.NextRunAt
			return nil
		}
	}
}

// head is the latest time the walk may ask about.
func (r *run) head(now time.Time) time.Time { return now.Add(-r.e.opt.Lag) }

// openWindow picks the next window; false when there is nothing new to ask about yet.
func (r *run) openWindow(now time.Time) bool {
	head := r.head(now)
	if !r.cur.From.Before(head) {
		return false
	}
	if r.cur.Window <= 0 {
		r.cur.Window = r.e.opt.Window
	}
	to := r.cur.From.Add(r.cur.Window)
	if to.After(head) {
		to = head
	}
	r.cur.To, r.cur.Offset, r.cur.WindowTotal = to, 0, 0
	return true
}

func (r *run) filter() ultracartapi.OrderFilter {
	// To is exclusive; UltraCart's end is inclusive, and its times have whole seconds.
	end := r.cur.To.Add(-time.Millisecond)
	f := ultracartapi.OrderFilter{QueryTarget: r.e.opt.QueryTarget}
	if r.job.Stream == Refunds {
		f.RefundDateBegin, f.RefundDateEnd = r.cur.From, end
	} else {
		f.PaymentDateBegin, f.PaymentDateEnd = r.cur.From, end
	}
	return f
}

// advance moves the cursor past page, and past the window when it was the last page. It
// reports whether that window reached the head, which ends the run.
func (r *run) advance(page ultracartapi.Page) (atHead bool) {
	n := len(page.Records)
	r.res.Orders += n
	r.cur.Done += int64(n)
	r.cur.WindowTotal = page.Total()
	r.cur.LastError = ""
	if page.ResultSet.More && n > 0 {
		r.cur.Offset = max(page.ResultSet.NextOffset, r.cur.Offset+n)
		r.estimate()
		return false
	}
	total := r.cur.Offset + n
	r.cur.Walked += int64(total)
	now := r.e.d.Clock.Now()
	next := r.cur.To
	if !next.Before(r.head(now).Add(-r.e.opt.Overlap)) {
		// At the head: start the next window Overlap back, to pick up orders that became
		// visible after their payment time had already been walked past.
		next = r.cur.To.Add(-r.e.opt.Overlap)
		if next.Before(r.cur.From) {
			next = r.cur.From
		}
		atHead = true
		r.cur.CaughtUp = true
		r.cur.NextRunAt = now.Add(r.e.opt.Interval)
	}
	switch {
	case total < r.e.opt.PageSize:
		r.cur.Window = min(r.cur.Window*2, r.e.opt.MaxWindow)
	case total > 10*r.e.opt.PageSize:
		r.cur.Window = max(r.cur.Window/2, time.Minute)
	}
	r.cur.From, r.cur.To, r.cur.Offset, r.cur.WindowTotal = next, time.Time{}, 0, 0
	r.estimate()
	return atHead
}

// estimate extrapolates the density of the walked span to what is left up to now.
func (r *run) estimate() {
	now := r.e.d.Clock.Now()
	pos := r.cur.From
	walked := pos.Sub(r.cur.Began)
	left := r.head(now).Sub(pos)
	est := r.cur.Walked + int64(r.cur.WindowTotal)
	if walked > 0 && left > 0 {
		if !r.cur.To.IsZero() {
			left = r.head(now).Sub(r.cur.To)
		}
		est += int64(float64(r.cur.Walked) * float64(left) / float64(walked))
	}
	r.cur.Estimated = est
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
	backoff := min(e.opt.Backoff<<(attempt-1), 15*time.Minute)
	var rl *ultracartapi.RateLimitedError
	if errors.As(err, &rl) {
		backoff = max(backoff, rl.RetryAfter)
		// Every process sharing the account's bucket pauses, not only this run.
		if berr := r.hour.Block(ctx, now.Add(backoff)); berr != nil {
			return true, berr
		}
	}
	if !ultracartapi.Retryable(err) || attempt > e.opt.Retries || now.Add(backoff).Add(e.opt.Reserve).After(r.deadline) {
		if !ultracartapi.Retryable(err) {
			backoff = time.Hour
		}
		r.cur.NextRunAt = now.Add(backoff)
		r.res.Outcome, r.res.NextRunAt = Later, r.cur.NextRunAt
		return true, r.save(ctx)
	}
	if rl != nil {
		// The pause is recorded in the bucket; admit waits it out.
		return false, nil
	}
	return false, r.sleep(ctx, backoff)
}

// sleep waits d in steps of a third of the lease's lifetime, renewing the lease after each,
// so a long wait for the rate bucket never lets the lease lapse.
func (r *run) sleep(ctx context.Context, d time.Duration) error {
	step := r.e.opt.LeaseTTL / 3
	for d > 0 {
		s := min(d, step)
		if err := r.e.d.Sleep(ctx, s); err != nil {
			return err
		}
		if err := r.lease.renew(ctx); err != nil {
			return err
		}
		d -= s
	}
	return nil
}

// save writes the cursor and renews the lease in one transaction, so a poller that lost its
// lease can never move the cursor.
func (r *run) save(ctx context.Context) error {
	w, next, err := r.cur.write()
	if err != nil {
		return err
	}
	renew := r.lease.renewWrite()
	if err := r.e.d.Store.Transact(ctx, []store.Write{w, renew}); err != nil {
		var te *store.TransactionError
		if errors.As(err, &te) {
			for _, f := range te.Failed {
				if f.Index == 1 {
					return ErrLeaseLost
				}
			}
		}
		if errors.Is(err, store.ErrConditionFailed) {
			return fmt.Errorf("save cursor %s/%s: another writer moved it: %w", r.job.Account, r.job.Stream, err)
		}
		return fmt.Errorf("save cursor %s/%s: %w", r.job.Account, r.job.Stream, err)
	}
	r.cur = next
	r.lease.version++
	return nil
}
