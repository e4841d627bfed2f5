// Package tcpoll walks ThriveCart's transaction list (GET /transactions) for an account: the
// backfill of its history and the backstop for missed webhooks. Each record goes onto the
// ingest queue as a "transaction" source event; package thrivecart's NormalizeTransaction
// maps it so that a record and the webhook of the same payment never count it twice.
//
// One run handles one account. It holds the account's lease, so two pollers never walk at
// once; admits every request through the table-backed per-minute bucket shared by every
// process; saves the cursor after every page under a version check; and stops before its time
// budget ends, saying whether the job should continue at once or later.
//
// The list has no date filter and its order is not documented, so the walk reads from the
// first page and detects the order from what it reads. Newest first (what ThriveCart appears
// to do): the backfill reads every page, and a later walk reads until a page reaches back past
// the high-water mark minus Overlap. Oldest first: new records are appended, so a walk starts
// again at the last page that held records.
package tcpoll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/lease"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartapi"
)

// Job is a poll-queue message.
type Job struct {
	Account string `json:"account"`
}

// TransactionSource is the part of the ThriveCart client the engine uses;
// thrivecartapi.Client implements it.
type TransactionSource interface {
	Transactions(ctx context.Context, key string, q thrivecartapi.TransactionsQuery) (thrivecartapi.TransactionsPage, error)
}

// Batch is one page of transaction records for the ingest queue.
type Batch struct {
	Account string
	// Delivery names the page ("poll:thrivecart:transactions:<walk floor>:<page>"); a page
	// re-sent after a crash has the same name.
	Delivery string
	// Records are the transactions as ThriveCart sent them, each the payload of a
	// "transaction" source event.
	Records []json.RawMessage
}

// Sink puts a batch on the ingest queue; an error leaves the cursor where it was.
type Sink func(ctx context.Context, b Batch) error

// KeyFunc returns the account's ThriveCart API key ("" when none is saved).
type KeyFunc func(ctx context.Context, account string) (string, error)

// Options tune the walk. Zero values take the defaults in parentheses.
type Options struct {
	// PerPage is perPage (100, ThriveCart's maximum).
	PerPage int
	// Overlap is re-read below the high-water mark on every walk (15 min), for transactions
	// that became visible after newer ones had been walked.
	Overlap time.Duration
	// Interval is how soon a caught-up account polls again (5 min).
	Interval time.Duration
	// LeaseTTL outlives one request plus one page's writes (5 min).
	LeaseTTL time.Duration
	// Reserve is the budget kept back at the end of a run (30 s): a request and a save.
	Reserve time.Duration
	// Minute is the account's limit (60 requests per minute).
	Minute ratelimit.Limit
	// Retries is how many times a failing request is repeated within one run (3).
	Retries int
	// Backoff is the first wait after a 429 or a server error (60 s); it doubles per attempt,
	// up to 15 minutes.
	Backoff time.Duration
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Overlap, 15*time.Minute)
	def(&o.Interval, 5*time.Minute)
	def(&o.LeaseTTL, 5*time.Minute)
	def(&o.Reserve, 30*time.Second)
	def(&o.Backoff, time.Minute)
	if o.PerPage <= 0 || o.PerPage > thrivecartapi.MaxPerPage {
		o.PerPage = thrivecartapi.MaxPerPage
	}
	if o.Minute.Requests == 0 {
		o.Minute = ratelimit.Limit{Requests: 60, Window: time.Minute, Buckets: 6}
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
	Source TransactionSource
	Key    KeyFunc
	Sink   Sink
	// Sleep waits (tests advance a fake clock instead); nil sleeps for real.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Engine runs poll jobs.
type Engine struct {
	d   Deps
	opt Options
}

// New checks deps and returns an engine.
func New(d Deps, opt Options) (*Engine, error) {
	if d.Store == nil || d.Source == nil || d.Sink == nil || d.Key == nil {
		return nil, errors.New("tcpoll: store, source, key and sink are required")
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
	opt = opt.withDefaults()
	if err := opt.Minute.Valid(); err != nil {
		return nil, fmt.Errorf("tcpoll: per-minute limit: %w", err)
	}
	return &Engine{d: d, opt: opt}, nil
}

// Outcome says what the caller does with the job after a run; the same outcomes as
// UltraCart's poller, so the poll consumer and backfill treat both sources alike.
type Outcome = ucpoll.Outcome

// Outcomes; Stopped means ThriveCart refused the key or there is none, so the merchant must
// act (Cursor.Status, StatusMessage).
const (
	CaughtUp = ucpoll.CaughtUp
	Continue = ucpoll.Continue
	Later    = ucpoll.Later
	Stopped  = ucpoll.Stopped
	Busy     = ucpoll.Busy
)

// Result reports one run.
type Result struct {
	Outcome   Outcome
	Requests  int
	Records   int
	NextRunAt time.Time
	Cursor    Cursor
}

type run struct {
	e        *Engine
	job      Job
	key      string
	deadline time.Time
	lease    *lease.Lease
	bucket   *ratelimit.Shared
	cur      Cursor
	res      Result
	log      *slog.Logger
}

// Run walks the account's transactions until it catches up, its budget (deadline, on the
// engine's clock) runs low, or something stops it. An error means the run ended abnormally
// (ctx ended, the lease was lost, the store or the sink failed); the cursor then holds the last
// saved page, so a later run re-sends at most the page in flight.
func (e *Engine) Run(ctx context.Context, job Job, deadline time.Time) (Result, error) {
	if job.Account == "" {
		return Result{}, errors.New("tcpoll: the job names no account")
	}
	r := &run{e: e, job: job, deadline: deadline, log: e.d.Log.With(slog.String("account", job.Account), slog.String("source", Source))}
	r.lease = lease.New(e.d.Store, e.d.Clock, store.Key{PK: AccountPK(job.Account), SK: LeaseSK}, e.opt.LeaseTTL, "thrivecart transactions")
	if err := r.lease.Acquire(ctx); err != nil {
		if errors.Is(err, ErrBusy) {
			return Result{Outcome: Busy}, nil
		}
		return Result{}, err
	}
	defer r.lease.Release(ctx)
	var err error
	if r.bucket, err = ratelimit.NewShared(e.d.Store, e.d.Clock, RateLimitKey(job.Account), e.opt.Minute); err != nil {
		return Result{}, err
	}
	cur, _, err := LoadCursor(ctx, e.d.Store, job.Account)
	if err != nil {
		return Result{}, err
	}
	// Only a missing key is looked at again by itself: a key saved later (by the CLI, say)
	// starts polling within NoKeyRecheck. A refused key waits for the merchant.
	if cur.Status != "" && cur.Status != StatusNoKey {
		return Result{Outcome: Stopped, Cursor: cur}, nil
	}
	r.cur = cur
	r.cur.LastRunAt = e.d.Clock.Now()
	if r.key, err = e.d.Key(ctx, job.Account); err != nil {
		return Result{}, fmt.Errorf("read the thrivecart key of %s: %w", job.Account, err)
	}
	if r.key == "" {
		r.cur.Status, r.cur.LastError, r.cur.LastErrorAt = StatusNoKey, StatusMessage(StatusNoKey), r.cur.LastRunAt
		r.cur.NextRunAt = r.cur.LastRunAt.Add(NoKeyRecheck)
		r.res.Outcome, r.res.NextRunAt = Stopped, r.cur.NextRunAt
		err = r.save(ctx)
	} else {
		if r.cur.Status == StatusNoKey {
			r.cur.Status, r.cur.LastError, r.cur.LastErrorAt = "", "", time.Time{}
		}
		err = r.walk(ctx)
	}
	r.res.Cursor = r.cur
	return r.res, err
}

func (r *run) walk(ctx context.Context) error {
	e := r.e
	failures := 0
	if r.cur.Walk == nil {
		r.begin()
	}
	for {
		now := e.d.Clock.Now()
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
		w := r.cur.Walk
		page, err := e.d.Source.Transactions(ctx, r.key, thrivecartapi.TransactionsQuery{
			Type: thrivecartapi.TypeAny, Page: w.Page, PerPage: e.opt.PerPage})
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
		backfill := !r.cur.Backfilled
		records, done := r.take(page)
		if len(records) > 0 {
			b := Batch{Account: r.job.Account, Records: records,
				Delivery: fmt.Sprintf("poll:%s:%s:%d:%d", Source, Stream, w.Floor.Unix(), w.Page)}
			if w.Floor.IsZero() {
				b.Delivery = fmt.Sprintf("poll:%s:%s:backfill:%d", Source, Stream, w.Page)
			}
			if err := e.d.Sink(ctx, b); err != nil {
				return fmt.Errorf("enqueue %s: %w", b.Delivery, err)
			}
		}
		r.res.Records += len(records)
		r.cur.Done += int64(len(records))
		r.cur.LastError = ""
		if done {
			r.finish()
		} else {
			w.Page++
		}
		if err := r.save(ctx); err != nil {
			return err
		}
		if done && backfill {
			// A backfill can take hours; what arrived meanwhile sits above its mark, so a
			// walk from the new mark follows at once rather than after Interval.
			r.begin()
			continue
		}
		if done {
			r.res.Outcome, r.res.NextRunAt = CaughtUp, r.cur.NextRunAt
			return nil
		}
	}
}

// begin starts a walk from the saved high-water mark.
func (r *run) begin() {
	w := &Walk{Page: 1}
	if !r.cur.High.IsZero() {
		w.Floor = r.cur.High.Add(-r.e.opt.Overlap)
		if r.cur.Order == OrderOldestFirst && r.cur.ResumePage > 0 {
			w.Page = r.cur.ResumePage
		}
	}
	r.cur.Walk = w
}

// finish ends the walk: its newest time becomes the high-water mark.
func (r *run) finish() {
	w := r.cur.Walk
	if w.Top.After(r.cur.High) {
		r.cur.High = w.Top
	}
	r.cur.Seen = pruneSeen(append(w.Sent, r.cur.Seen...), r.cur.High.Add(-r.e.opt.Overlap))
	if r.cur.Order == OrderOldestFirst {
		r.cur.ResumePage = max(1, w.Page)
	}
	if !r.cur.Backfilled {
		r.cur.Backfilled = true
		r.cur.Estimated = max(r.cur.Estimated, r.cur.Done)
	}
	r.cur.Walk = nil
	r.cur.CaughtUp = true
	r.cur.NextRunAt = r.e.d.Clock.Now().Add(r.e.opt.Interval)
}

// take picks the records of page to send and reports whether the walk is over.
func (r *run) take(page thrivecartapi.TransactionsPage) (records []json.RawMessage, done bool) {
	w := r.cur.Walk
	txs := page.Transactions
	if w.Total == 0 || !r.cur.Backfilled {
		w.Total = max(w.Total, page.Meta.Total)
		if !r.cur.Backfilled {
			r.cur.Estimated = max(r.cur.Estimated, int64(page.Meta.Total))
		}
	}
	r.order(txs)
	asc := r.cur.Order == OrderOldestFirst
	// Oldest first, records before the mark minus Overlap were sent by earlier walks.
	var below time.Time
	if asc && !r.cur.High.IsZero() {
		below = r.cur.High.Add(-r.e.opt.Overlap)
	}
	reachedFloor := false
	for i, t := range txs {
		at, id := t.At(), string(t.EventID)
		if !asc && !w.Floor.IsZero() && !at.IsZero() && at.Before(w.Floor) {
			reachedFloor = true
			continue
		}
		if !below.IsZero() && !at.IsZero() && at.Before(below) {
			continue
		}
		if id != "" && hasID(r.cur.Seen, id) {
			continue
		}
		if !w.Unordered && r.beforeEdge(at, id, asc) {
			continue
		}
		records = append(records, page.Raw[i])
		if at.IsZero() {
			// Without a time a record cannot move the mark; it is sent on every walk that
			// reads it, and ingest's content dedupe keeps that harmless.
			continue
		}
		if at.After(w.Top) {
			w.Top = at
		}
		if !at.Equal(w.Edge) {
			w.Edge, w.EdgeIDs = at, nil
		}
		if id != "" {
			w.EdgeIDs = append(w.EdgeIDs, id)
			w.Sent = append(w.Sent, Seen{ID: id, At: at})
		}
	}
	w.Sent = pruneSeen(w.Sent, w.Top.Add(-r.e.opt.Overlap))
	n := len(txs)
	switch {
	case n == 0, n < r.e.opt.PerPage, reachedFloor:
		done = true
		if asc && n == 0 && w.Page > 1 {
			w.Page-- // the last page that held records, for ResumePage
		}
	case page.Meta.Total > 0 && w.Page*r.e.opt.PerPage >= page.Meta.Total:
		done = true
	}
	return records, done
}

// beforeEdge reports whether a record lies before the walk's edge in list order: sent already,
// or listed since the walk began.
func (r *run) beforeEdge(at time.Time, id string, asc bool) bool {
	w := r.cur.Walk
	if w.Edge.IsZero() || at.IsZero() {
		return false
	}
	if at.Equal(w.Edge) {
		return slices.Contains(w.EdgeIDs, id)
	}
	if asc {
		return at.Before(w.Edge)
	}
	return at.After(w.Edge)
}

// order learns the list order from a page, and marks the walk unordered when a page
// contradicts it.
func (r *run) order(txs []thrivecartapi.Transaction) {
	var first, last time.Time
	asc, desc := false, false
	for _, t := range txs {
		at := t.At()
		if at.IsZero() {
			continue
		}
		if first.IsZero() {
			first = at
		} else if at.Before(last) {
			desc = true
		} else if at.After(last) {
			asc = true
		}
		last = at
	}
	seen := ""
	switch {
	case asc && desc:
		r.cur.Walk.Unordered = true
		r.log.Warn("thrivecart transactions are not sorted by time; sending every unseen record of this walk")
		return
	case asc:
		seen = OrderOldestFirst
	case desc:
		seen = OrderNewestFirst
	default:
		return
	}
	if r.cur.Order == "" {
		r.cur.Order = seen
		r.log.Info("thrivecart transaction order detected", slog.String("order", seen))
		return
	}
	if r.cur.Order != seen {
		r.cur.Walk.Unordered = true
		r.log.Warn("thrivecart transaction order changed", slog.String("was", r.cur.Order), slog.String("now", seen))
		r.cur.Order = seen
	}
}

// admit takes one request from the shared bucket; a positive wait means the budget is spent
// beyond this run's deadline.
func (r *run) admit(ctx context.Context) (time.Duration, error) {
	for {
		wait, err := r.bucket.Reserve(ctx)
		if err != nil || wait == 0 {
			return 0, err
		}
		if r.e.d.Clock.Now().Add(wait).Add(r.e.opt.Reserve).After(r.deadline) {
			return wait, nil
		}
		if err := r.sleep(ctx, wait); err != nil {
			return 0, err
		}
	}
}

// failed handles a failed request; stop ends the run (the cursor is saved).
func (r *run) failed(ctx context.Context, err error, attempt int) (stop bool, _ error) {
	e := r.e
	now := e.d.Clock.Now()
	r.cur.LastError, r.cur.LastErrorAt = err.Error(), now
	r.log.Warn("thrivecart request failed", slog.Int("attempt", attempt), slog.Any("error", err))
	if errors.Is(err, thrivecartapi.ErrKeyRefused) {
		r.cur.Status = StatusUnauthorized
		r.res.Outcome = Stopped
		return true, r.save(ctx)
	}
	var rl *thrivecartapi.RateLimitedError
	var hint time.Duration
	if errors.As(err, &rl) {
		hint = rl.RetryAfter
	}
	backoff, giveUp := ucpoll.PlanRetry(ucpoll.Retry{Base: e.opt.Backoff, Retries: e.opt.Retries, Reserve: e.opt.Reserve},
		attempt, thrivecartapi.Retryable(err), hint, now, r.deadline)
	if rl != nil {
		// Every process sharing the account's bucket pauses, not only this run.
		if berr := r.bucket.Block(ctx, now.Add(backoff)); berr != nil {
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
		return false, nil // admit waits out the pause recorded in the bucket
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
			return fmt.Errorf("save thrivecart cursor of %s: another writer moved it: %w", r.job.Account, err)
		}
		return fmt.Errorf("save thrivecart cursor of %s: %w", r.job.Account, err)
	}
	r.cur = next
	return nil
}
