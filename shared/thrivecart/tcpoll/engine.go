// Package tcpoll walks ThriveCart's transaction list (GET /transactions) for an account: the
// backfill of its history and the backstop for missed webhooks. Each record goes onto the
// ingest queue as a "transaction" source event; package thrivecart's NormalizeTransaction
// maps it so that a record and the webhook of the same payment never count it twice.
//
// One run handles one account on the poll engine (shared/poll), which holds the account's
// lease and admits every request through the per-minute bucket shared by every process; this
// package supplies only the walk of the list and how to read ThriveCart's errors.
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

	"github.com/cartrelay/cartrelay/shared/poll"
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

// Deps are the engine's ports: the poll engine's, and the source's.
type Deps struct {
	poll.Deps
	Source TransactionSource
	Key    KeyFunc
	Sink   Sink
}

// Engine runs poll jobs.
type Engine struct {
	d   Deps
	opt Options
	eng *poll.Engine
}

// New checks deps and returns an engine.
func New(d Deps, opt Options) (*Engine, error) {
	if d.Store == nil || d.Source == nil || d.Sink == nil || d.Key == nil {
		return nil, errors.New("tcpoll: store, source, key and sink are required")
	}
	eng := poll.New(d.Deps, source())
	d.Deps = eng.Deps()
	opt = opt.withDefaults()
	if err := opt.Minute.Valid(); err != nil {
		return nil, fmt.Errorf("tcpoll: per-minute limit: %w", err)
	}
	return &Engine{d: d, opt: opt, eng: eng}, nil
}

// source is how the engine reads ThriveCart's errors.
func source() poll.Source {
	return poll.Source{
		Name: Source,
		Stop: func(err error) string {
			if errors.Is(err, thrivecartapi.ErrKeyRefused) {
				return StatusUnauthorized
			}
			return ""
		},
		Retryable: thrivecartapi.Retryable,
	}
}

// Result reports one run.
type Result struct {
	Outcome   poll.Outcome
	Requests  int
	Records   int
	NextRunAt time.Time
	Cursor    Cursor
}

// Run walks the account's transactions until it catches up, its budget (deadline, on the
// engine's clock) runs low, or something stops it. An error means the run ended abnormally
// (ctx ended, the lease was lost, the store or the sink failed); the cursor then holds the last
// saved page, so a later run re-sends at most the page in flight.
func (e *Engine) Run(ctx context.Context, job Job, deadline time.Time) (Result, error) {
	if job.Account == "" {
		return Result{}, errors.New("tcpoll: the job names no account")
	}
	log := e.d.Log.With(slog.String("account", job.Account), slog.String("source", Source))
	r, err := e.eng.Begin(ctx, poll.Plan{Lease: store.Key{PK: AccountPK(job.Account), SK: LeaseSK}, Work: "thrivecart transactions",
		Buckets: []poll.Bucket{{PK: RateLimitKey(job.Account), Limit: e.opt.Minute}}, Log: log,
		Timing: poll.Options{Interval: e.opt.Interval, LeaseTTL: e.opt.LeaseTTL, Reserve: e.opt.Reserve, Retries: e.opt.Retries, Backoff: e.opt.Backoff}}, deadline)
	if errors.Is(err, ErrBusy) {
		return Result{Outcome: poll.Busy}, nil
	}
	if err != nil {
		return Result{}, err
	}
	defer r.End(ctx)
	cur, _, err := LoadCursor(ctx, e.d.Store, job.Account)
	if err != nil {
		return Result{}, err
	}
	// Only a missing key is looked at again by itself: a key saved later (by the CLI, say)
	// starts polling within NoKeyRecheck. A refused key waits for the merchant.
	if cur.Status != "" && cur.Status != StatusNoKey {
		return Result{Outcome: poll.Stopped, Cursor: cur}, nil
	}
	cur.LastRunAt = e.d.Clock.Now()
	key, err := e.d.Key(ctx, job.Account)
	if err != nil {
		return Result{}, fmt.Errorf("read the thrivecart key of %s: %w", job.Account, err)
	}
	if key == "" {
		cur.Status, cur.LastError, cur.LastErrorAt = StatusNoKey, StatusMessage(StatusNoKey), cur.LastRunAt
		cur.NextRunAt = cur.LastRunAt.Add(NoKeyRecheck)
		err = r.Save(ctx, &cur)
		return Result{Outcome: poll.Stopped, NextRunAt: cur.NextRunAt, Cursor: cur}, err
	}
	if cur.Status == StatusNoKey {
		cur.Status, cur.LastError, cur.LastErrorAt = "", "", time.Time{}
	}
	w := &walk{e: e, job: job, key: key, cur: &cur, log: log}
	if cur.Walk == nil {
		w.begin()
	}
	err = r.Walk(ctx, w)
	res := r.Result()
	return Result{Outcome: res.Outcome, Requests: res.Requests, Records: res.Records, NextRunAt: res.NextRunAt, Cursor: cur}, err
}

// walk is the transaction list's walk in one run, on the poll engine.
type walk struct {
	e   *Engine
	job Job
	key string
	cur *Cursor
	log *slog.Logger
	// done and backfill are what the last page showed: the walk is over, and it was the
	// backfill.
	done, backfill bool
}

func (w *walk) Cursor() poll.Cursor { return w.cur }
func (w *walk) Open(time.Time) bool { return true }

func (w *walk) Fetch(ctx context.Context) (poll.Page, error) {
	cw := w.cur.Walk
	page, err := w.e.d.Source.Transactions(ctx, w.key, thrivecartapi.TransactionsQuery{
		Type: thrivecartapi.TypeAny, Page: cw.Page, PerPage: w.e.opt.PerPage})
	if err != nil {
		return poll.Page{}, err
	}
	w.backfill = !w.cur.Backfilled
	var p poll.Page
	p.Records, w.done = w.take(page)
	p.Delivery = fmt.Sprintf("poll:%s:%s:%d:%d", Source, Stream, cw.Floor.Unix(), cw.Page)
	if cw.Floor.IsZero() {
		p.Delivery = fmt.Sprintf("poll:%s:%s:backfill:%d", Source, Stream, cw.Page)
	}
	return p, nil
}

func (w *walk) Send(ctx context.Context, p poll.Page) error {
	return w.e.d.Sink(ctx, Batch{Account: w.job.Account, Records: p.Records, Delivery: p.Delivery})
}

func (w *walk) Advance(time.Time) {
	if w.done {
		w.finish()
	} else {
		w.cur.Walk.Page++
	}
}

func (w *walk) Saved() bool {
	if w.done && w.backfill {
		// A backfill can take hours; what arrived meanwhile sits above its mark, so a walk
		// from the new mark follows at once rather than after Interval.
		w.begin()
		return false
	}
	return w.done
}

// begin starts a walk from the saved high-water mark.
func (w *walk) begin() {
	cw := &Walk{Page: 1}
	if !w.cur.High.IsZero() {
		cw.Floor = w.cur.High.Add(-w.e.opt.Overlap)
		if w.cur.Order == OrderOldestFirst && w.cur.ResumePage > 0 {
			cw.Page = w.cur.ResumePage
		}
	}
	w.cur.Walk = cw
}

// finish ends the walk: its newest time becomes the high-water mark.
func (w *walk) finish() {
	cw := w.cur.Walk
	if cw.Top.After(w.cur.High) {
		w.cur.High = cw.Top
	}
	w.cur.Seen = pruneSeen(append(cw.Sent, w.cur.Seen...), w.cur.High.Add(-w.e.opt.Overlap))
	if w.cur.Order == OrderOldestFirst {
		w.cur.ResumePage = max(1, cw.Page)
	}
	if !w.cur.Backfilled {
		w.cur.Backfilled = true
		w.cur.Estimated = max(w.cur.Estimated, w.cur.Done)
	}
	w.cur.Walk = nil
	w.cur.CaughtUp = true
	w.cur.NextRunAt = w.e.d.Clock.Now().Add(w.e.opt.Interval)
}

// take picks the records of page to send and reports whether the walk is over.
func (w *walk) take(page thrivecartapi.TransactionsPage) (records []json.RawMessage, done bool) {
	cw := w.cur.Walk
	txs := page.Transactions
	if cw.Total == 0 || !w.cur.Backfilled {
		cw.Total = max(cw.Total, page.Meta.Total)
		if !w.cur.Backfilled {
			w.cur.Estimated = max(w.cur.Estimated, int64(page.Meta.Total))
		}
	}
	w.order(txs)
	asc := w.cur.Order == OrderOldestFirst
	// Oldest first, records before the mark minus Overlap were sent by earlier walks.
	var below time.Time
	if asc && !w.cur.High.IsZero() {
		below = w.cur.High.Add(-w.e.opt.Overlap)
	}
	reachedFloor := false
	for i, t := range txs {
		at, id := t.At(), string(t.EventID)
		if !asc && !cw.Floor.IsZero() && !at.IsZero() && at.Before(cw.Floor) {
			reachedFloor = true
			continue
		}
		if !below.IsZero() && !at.IsZero() && at.Before(below) {
			continue
		}
		if id != "" && hasID(w.cur.Seen, id) {
			continue
		}
		if !cw.Unordered && w.beforeEdge(at, id, asc) {
			continue
		}
		records = append(records, page.Raw[i])
		if at.IsZero() {
			// Without a time a record cannot move the mark; it is sent on every walk that
			// reads it, and ingest's content dedupe keeps that harmless.
			continue
		}
		if at.After(cw.Top) {
			cw.Top = at
		}
		if !at.Equal(cw.Edge) {
			cw.Edge, cw.EdgeIDs = at, nil
		}
		if id != "" {
			cw.EdgeIDs = append(cw.EdgeIDs, id)
			cw.Sent = append(cw.Sent, Seen{ID: id, At: at})
		}
	}
	cw.Sent = pruneSeen(cw.Sent, cw.Top.Add(-w.e.opt.Overlap))
	n := len(txs)
	switch {
	case n == 0, n < w.e.opt.PerPage, reachedFloor:
		done = true
		if asc && n == 0 && cw.Page > 1 {
			cw.Page-- // the last page that held records, for ResumePage
		}
	case page.Meta.Total > 0 && cw.Page*w.e.opt.PerPage >= page.Meta.Total:
		done = true
	}
	return records, done
}

// beforeEdge reports whether a record lies before the walk's edge in list order: sent already,
// or listed since the walk began.
func (w *walk) beforeEdge(at time.Time, id string, asc bool) bool {
	cw := w.cur.Walk
	if cw.Edge.IsZero() || at.IsZero() {
		return false
	}
	if at.Equal(cw.Edge) {
		return slices.Contains(cw.EdgeIDs, id)
	}
	if asc {
		return at.Before(cw.Edge)
	}
	return at.After(cw.Edge)
}

// order learns the list order from a page, and marks the walk unordered when a page
// contradicts it.
func (w *walk) order(txs []thrivecartapi.Transaction) {
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
		w.cur.Walk.Unordered = true
		w.log.Warn("thrivecart transactions are not sorted by time; sending every unseen record of this walk")
		return
	case asc:
		seen = OrderOldestFirst
	case desc:
		seen = OrderNewestFirst
	default:
		return
	}
	if w.cur.Order == "" {
		w.cur.Order = seen
		w.log.Info("thrivecart transaction order detected", slog.String("order", seen))
		return
	}
	if w.cur.Order != seen {
		w.cur.Walk.Unordered = true
		w.log.Warn("thrivecart transaction order changed", slog.String("was", w.cur.Order), slog.String("now", seen))
		w.cur.Order = seen
	}
}
