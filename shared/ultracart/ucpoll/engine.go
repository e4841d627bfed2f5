// Package ucpoll walks UltraCart's REST API forward from a stored cursor: the backstop for
// missed webhooks and the backfill of history. Orders and refunds are walked in date windows of
// the order query; auto orders, customers and items through their "_since" listings
// (streams.go). Each polled record goes onto the same ingest queue as a webhook's, under the
// name of the webhook event that carries the same record, so ingest's content dedupe makes a
// poll that repeats what a webhook (or an earlier poll) delivered harmless.
//
// One run handles one (account, stream) job on the poll engine (shared/poll): this package
// supplies only the streams (streams.go) and how to read UltraCart's errors.
package ucpoll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cartrelay/cartrelay/shared/poll"
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
	Affiliates(ctx context.Context, limit, offset int) (ultracartapi.Page, error)
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

// Deps are the engine's ports: the poll engine's, and the source's.
type Deps struct {
	poll.Deps
	Source API
	Sink   Sink
}

// Engine runs poll jobs for one connection's credentials.
type Engine struct {
	d   Deps
	opt Options
	eng *poll.Engine
}

// New checks deps and returns an engine.
func New(d Deps, opt Options) (*Engine, error) {
	if d.Store == nil || d.Source == nil || d.Sink == nil {
		return nil, errors.New("ucpoll: store, source and sink are required")
	}
	eng := poll.New(d.Deps, source())
	d.Deps = eng.Deps()
	opt = opt.withDefaults(d.Clock.Now())
	if err := opt.Hour.Valid(); err != nil {
		return nil, fmt.Errorf("ucpoll: hourly limit: %w", err)
	}
	switch opt.Scope {
	case "":
		opt.Scope = ScopeAccount
	case ScopeAccount, ScopeApp:
	default:
		return nil, fmt.Errorf("ucpoll: scope %q is neither %q nor %q", opt.Scope, ScopeAccount, ScopeApp)
	}
	if err := opt.Day.Valid(); err != nil {
		return nil, fmt.Errorf("ucpoll: daily limit: %w", err)
	}
	return &Engine{d: d, opt: opt, eng: eng}, nil
}

// source is how the engine reads UltraCart's errors.
func source() poll.Source {
	return poll.Source{
		Name: Source,
		Stop: func(err error) string {
			switch {
			case errors.Is(err, ultracartapi.ErrAppDisabled):
				return StatusDisabled
			case errors.Is(err, ultracartapi.ErrUnauthorized):
				return StatusUnauthorized
			}
			return ""
		},
		Retryable: ultracartapi.Retryable,
	}
}

// Result reports one run.
type Result struct {
	Outcome  poll.Outcome
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

// Run walks job's stream until it catches up, its budget (deadline, on the engine's clock)
// runs low, or something stops it. An error means the run ended abnormally (ctx ended, the
// lease was lost, the store or the sink failed); the cursor then holds the last saved page, so
// a later run re-sends at most the page in flight.
func (e *Engine) Run(ctx context.Context, job Job, deadline time.Time) (Result, error) {
	s, ok := lookup(job.Stream, e.opt)
	if !ok {
		return Result{}, fmt.Errorf("ucpoll: unknown stream %q", job.Stream)
	}
	log := e.d.Log.With(slog.String("account", job.Account), slog.String("stream", job.Stream))
	hourPK, dayPK, leasePK := e.opt.limits(job.Account)
	// The daily bucket is asked first: it binds rarely, and a request the hourly bucket
	// counted but the daily refused would be wasted.
	r, err := e.eng.Begin(ctx, poll.Plan{Lease: store.Key{PK: leasePK, SK: LeaseSK}, Work: "stream " + job.Stream,
		Buckets: []poll.Bucket{{PK: dayPK, Limit: e.opt.Day}, {PK: hourPK, Limit: e.opt.Hour}}, Log: log,
		Timing: poll.Options{Interval: e.opt.Interval, LeaseTTL: e.opt.LeaseTTL, Reserve: e.opt.Reserve, Retries: e.opt.Retries, Backoff: e.opt.Backoff}}, deadline)
	if errors.Is(err, ErrBusy) {
		return Result{Outcome: poll.Busy}, nil
	}
	if err != nil {
		return Result{}, err
	}
	defer r.End(ctx)
	cur, found, err := LoadCursor(ctx, e.d.Store, job.Account, job.Stream)
	if err != nil {
		return Result{}, err
	}
	if !found {
		s.walk.begin(&cur)
	}
	if cur.Status != "" {
		return Result{Outcome: poll.Stopped, Cursor: cur}, nil
	}
	cur.LastRunAt = e.d.Clock.Now()
	err = r.Walk(ctx, &streamWalk{e: e, job: job, stream: s, cur: &cur, log: log})
	res := r.Result()
	return Result{Outcome: res.Outcome, Requests: res.Requests, Orders: res.Records, NextRunAt: res.NextRunAt, Cursor: cur}, err
}

// streamWalk is one stream's walk in one run, on the poll engine.
type streamWalk struct {
	e        *Engine
	job      Job
	stream   stream
	cur      *Cursor
	log      *slog.Logger
	page     ultracartapi.Page
	delivery string
	atHead   bool
}

func (w *streamWalk) Cursor() poll.Cursor     { return w.cur }
func (w *streamWalk) Open(now time.Time) bool { return w.stream.walk.open(w.cur, now) }

func (w *streamWalk) Fetch(ctx context.Context) (poll.Page, error) {
	p, err := w.stream.walk.fetch(ctx, w.e.d.Source, w.cur)
	if err != nil {
		return poll.Page{}, err
	}
	w.page, w.delivery = p, w.stream.walk.page(w.cur)
	return poll.Page{Records: p.Records, Delivery: w.delivery}, nil
}

func (w *streamWalk) Send(ctx context.Context, p poll.Page) error {
	return w.e.d.Sink(ctx, Batch{Account: w.job.Account, Stream: w.job.Stream, Event: w.stream.event,
		Records: p.Records, Delivery: p.Delivery})
}

func (w *streamWalk) Advance(now time.Time) {
	inOrder := !w.cur.ByOffset
	w.atHead = w.stream.walk.advance(w.cur, w.page, now)
	if inOrder && w.cur.ByOffset {
		w.log.Warn("listing not in the order of modification asked for; paging the rest of this walk by offset",
			slog.String("page", w.delivery), slog.Time("since", w.cur.Key))
	}
}

func (w *streamWalk) Saved() bool { return w.atHead }
