// Package timers keeps delayed work in the table: an abandoned-cart reminder an hour after the
// cart, a review request a week after a shipment. FIFO queues have no per-message delay and SQS
// delays stop at 15 minutes, so a wait of hours or days lives here and the schedule function
// fires it.
//
// A timer is one item, pk "A#<acct>#T#<kind>#<key>", sk "-". GSI1 indexes it by the minute it is
// due (gsi1pk "T#<yyyy-mm-ddThh:mm>", gsi1sk "<acct>#<kind>#<key>"), so firing reads only the
// minutes that came due since the last run, whose end is kept in a cursor item. Firing a timer
// hands its message to a queue: the timer itself knows nothing about what the message means.
//
// Each due timer is claimed with a version-conditional write before its message is sent and
// removed with a version-conditional delete after, so concurrent runs never both send it. A run
// that dies between the claim and the delete leaves a claim that lapses after ClaimLease; the
// timer is then re-indexed at the lapse minute and fired again. The message carries a
// deduplication id, and consumers treat it as an idempotency key, so that rare second send does
// nothing twice.
package timers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Defaults of Options.
const (
	// DefaultClaimLease is how long a claimed timer waits for its run to finish before another
	// run may fire it again.
	DefaultClaimLease = 2 * time.Minute
	// DefaultOverlap re-reads the last minutes before the cursor on every run: a timer written
	// by a process whose clock is slightly behind the schedule's lands in a minute the cursor
	// already passed.
	DefaultOverlap = 3 * time.Minute
	// DefaultFirstLookback is how far back the very first run (no cursor yet) looks.
	DefaultFirstLookback = 12 * time.Hour
	// DefaultMaxMinutesPerRun bounds one run's work after a long outage; the next run goes on
	// from where it stopped.
	DefaultMaxMinutesPerRun = 24 * 60
)

// Key layout (docs/architecture.md, Storage: timer).
const (
	skTimer      = "-"
	gsiPrefix    = "T#"
	minuteLayout = "2006-01-02T15:04"
	cursorPK     = "T#CURSOR"
)

// ErrInvalid is wrapped by errors about a timer that cannot be scheduled.
var ErrInvalid = errors.New("timers: invalid timer")

// Timer is one piece of delayed work: at Due, Message goes to Queue.
type Timer struct {
	Account string    `json:"account"`
	Kind    string    `json:"kind"`
	Key     string    `json:"key"`
	Due     time.Time `json:"due"`
	// Seq orders two versions of the same timer for PutNewer: the higher one wins (for
	// example the time of the cart activity behind a reminder).
	Seq     int64         `json:"seq,omitempty"`
	Queue   string        `json:"queue"`
	Message queue.Message `json:"message"`

	// ClaimedUntil is set while a run is firing the timer.
	ClaimedUntil time.Time `json:"claimed_until,omitzero"`
	version      int64
}

func (t Timer) validate() error {
	var missing []string
	for _, f := range []struct{ name, v string }{{"account", t.Account}, {"kind", t.Kind}, {"key", t.Key}, {"queue", t.Queue}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if t.Due.IsZero() {
		missing = append(missing, "due")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s missing", ErrInvalid, strings.Join(missing, ", "))
	}
	if strings.Contains(t.Kind, "#") {
		return fmt.Errorf("%w: kind %q contains '#'", ErrInvalid, t.Kind)
	}
	return nil
}

// PK is the partition key of a timer.
func PK(account, kind, key string) string { return "A#" + account + "#T#" + kind + "#" + key }

func minutePK(t time.Time) string { return gsiPrefix + t.UTC().Format(minuteLayout) }

// Options tune a Repo; zero values take the defaults.
type Options struct {
	ClaimLease       time.Duration
	Overlap          time.Duration
	FirstLookback    time.Duration
	MaxMinutesPerRun int
}

// Repo schedules and fires timers.
type Repo struct {
	st  store.Store
	clk clock.Clock
	opt Options
}

// New returns a Repo over st.
func New(st store.Store, clk clock.Clock, opt Options) *Repo {
	if opt.ClaimLease <= 0 {
		opt.ClaimLease = DefaultClaimLease
	}
	if opt.Overlap <= 0 {
		opt.Overlap = DefaultOverlap
	}
	if opt.FirstLookback <= 0 {
		opt.FirstLookback = DefaultFirstLookback
	}
	if opt.MaxMinutesPerRun <= 0 {
		opt.MaxMinutesPerRun = DefaultMaxMinutesPerRun
	}
	return &Repo{st: st, clk: clk, opt: opt}
}

// item lays a timer out. A timer already due is indexed at the current minute, not at its due
// minute, which the cursor may have passed.
func (r *Repo) item(t Timer, indexAt time.Time) (store.Item, error) {
	now := r.clk.Now()
	if indexAt.Before(now) {
		indexAt = now
	}
	data, err := json.Marshal(t)
	if err != nil {
		return store.Item{}, fmt.Errorf("encode timer %s/%s: %w", t.Kind, t.Key, err)
	}
	return store.Item{PK: PK(t.Account, t.Kind, t.Key), SK: skTimer,
		GSI1PK: minutePK(indexAt), GSI1SK: t.Account + "#" + t.Kind + "#" + t.Key,
		Version: t.version, Data: data}, nil
}

// Put schedules t unless a timer with the same account, kind and key is already waiting, in
// which case that one stays as it is (a redelivered fact must not push its timer back). It
// reports whether t was written.
func (r *Repo) Put(ctx context.Context, t Timer) (bool, error) {
	if err := t.validate(); err != nil {
		return false, err
	}
	t.ClaimedUntil, t.version = time.Time{}, 1
	it, err := r.item(t, t.Due)
	if err != nil {
		return false, err
	}
	err = r.st.Write(ctx, store.PutItem(it, store.NotExists))
	if errors.Is(err, store.ErrConditionFailed) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("schedule timer %s/%s of %s: %w", t.Kind, t.Key, t.Account, err)
	}
	return true, nil
}

// PutNewer schedules t in place of a waiting timer with the same identity whose Seq is lower;
// one with an equal or higher Seq stays. It reports whether t was written. A timer being fired
// is replaced too: its run's conditional delete then fails and leaves t waiting.
func (r *Repo) PutNewer(ctx context.Context, t Timer) (bool, error) {
	if err := t.validate(); err != nil {
		return false, err
	}
	t.ClaimedUntil = time.Time{}
	for {
		cur, err := r.Get(ctx, t.Account, t.Kind, t.Key)
		var w store.Write
		switch {
		case errors.Is(err, store.ErrNotFound):
			t.version = 1
			it, err := r.item(t, t.Due)
			if err != nil {
				return false, err
			}
			w = store.PutItem(it, store.NotExists)
		case err != nil:
			return false, err
		case cur.Seq >= t.Seq:
			return false, nil
		default:
			t.version = cur.version + 1
			it, err := r.item(t, t.Due)
			if err != nil {
				return false, err
			}
			w = store.PutIfVersion(it, cur.version)
		}
		err = r.st.Write(ctx, w)
		if errors.Is(err, store.ErrConditionFailed) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("schedule timer %s/%s of %s: %w", t.Kind, t.Key, t.Account, err)
		}
		return true, nil
	}
}

// Get reads a waiting timer; the error matches store.ErrNotFound when there is none.
func (r *Repo) Get(ctx context.Context, account, kind, key string) (Timer, error) {
	it, err := r.st.Get(ctx, PK(account, kind, key), skTimer)
	if err != nil {
		return Timer{}, err
	}
	return decode(it)
}

func decode(it store.Item) (Timer, error) {
	var t Timer
	if err := json.Unmarshal(it.Data, &t); err != nil {
		return Timer{}, fmt.Errorf("timer %s is unreadable: %w", it.PK, err)
	}
	t.version = it.Version
	return t, nil
}

// Cancel removes a waiting timer; a missing one is not an error.
func (r *Repo) Cancel(ctx context.Context, account, kind, key string) error {
	err := r.st.Write(ctx, store.DeleteKey(store.Key{PK: PK(account, kind, key), SK: skTimer}, store.Always))
	if err != nil {
		return fmt.Errorf("cancel timer %s/%s of %s: %w", kind, key, account, err)
	}
	return nil
}

// CancelExisting removes a waiting timer and reports whether there was one.
func (r *Repo) CancelExisting(ctx context.Context, account, kind, key string) (bool, error) {
	ok, err := store.DeleteIfExists(ctx, r.st, store.Key{PK: PK(account, kind, key), SK: skTimer})
	if err != nil {
		return false, fmt.Errorf("cancel timer %s/%s of %s: %w", kind, key, account, err)
	}
	return ok, nil
}

// FireFunc hands a due timer's message on. An error leaves the timer claimed; it fires again
// once the claim lapses.
type FireFunc func(ctx context.Context, t Timer) error

// Result counts what one run did.
type Result struct {
	Minutes int // due-minute partitions read
	Fired   int
	Failed  int
	// Errors holds the first few failures, for the log.
	Errors []error
	// Through is the last minute read; the next run starts shortly before it.
	Through time.Time
}

type cursorDoc struct {
	Through time.Time `json:"through"`
}

// FireDue fires every timer due by now, reading the due minutes from the cursor (less Overlap)
// to the current minute, at most MaxMinutesPerRun of them, and then moves the cursor. Errors of
// single timers are counted in Result and do not stop the run; an error reading the table does.
func (r *Repo) FireDue(ctx context.Context, fire FireFunc) (Result, error) {
	now := r.clk.Now()
	nowMin := now.UTC().Truncate(time.Minute)
	cur, curVersion, err := r.cursor(ctx)
	if err != nil {
		return Result{}, err
	}
	from := nowMin.Add(-r.opt.FirstLookback)
	if !cur.IsZero() {
		from = cur.Add(-r.opt.Overlap)
	}
	through := nowMin
	if limit := from.Add(time.Duration(r.opt.MaxMinutesPerRun-1) * time.Minute); through.After(limit) {
		through = limit
	}
	res := Result{Through: through}
	for m := from; !m.After(through); m = m.Add(time.Minute) {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		items, err := store.QueryAll(ctx, r.st, store.Query{Index: store.GSI1, PK: minutePK(m)})
		if err != nil {
			return res, fmt.Errorf("read timers due at %s: %w", m.Format(minuteLayout), err)
		}
		res.Minutes++
		for _, it := range items {
			r.fireOne(ctx, it, now, fire, &res)
		}
	}
	if through.After(cur) {
		if err := r.moveCursor(ctx, through, curVersion); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (r *Repo) fireOne(ctx context.Context, it store.Item, now time.Time, fire FireFunc, res *Result) {
	fail := func(err error) {
		res.Failed++
		if len(res.Errors) < 5 {
			res.Errors = append(res.Errors, err)
		}
	}
	t, err := decode(it)
	if err != nil {
		fail(err)
		return
	}
	if t.Due.After(now) || t.ClaimedUntil.After(now) {
		return
	}
	// Claim: a new version, indexed at the minute the claim lapses, so that a run that dies
	// here leaves the timer where a later run finds it.
	claimed := t
	claimed.ClaimedUntil = now.Add(r.opt.ClaimLease)
	claimed.version = t.version + 1
	ci, err := r.item(claimed, claimed.ClaimedUntil)
	if err != nil {
		fail(err)
		return
	}
	if err := r.st.Write(ctx, store.PutIfVersion(ci, t.version)); err != nil {
		if !errors.Is(err, store.ErrConditionFailed) {
			fail(fmt.Errorf("claim timer %s: %w", it.PK, err))
		}
		// Another run claimed it, or it was replaced: either way it is not ours to fire.
		return
	}
	if err := fire(ctx, t); err != nil {
		fail(fmt.Errorf("fire timer %s: %w", it.PK, err))
		return
	}
	res.Fired++
	del := store.Write{Op: store.OpDelete, Key: store.Key{PK: ci.PK, SK: ci.SK}, Cond: store.VersionEquals, Expect: claimed.version}
	if err := r.st.Write(ctx, del); err != nil && !errors.Is(err, store.ErrConditionFailed) {
		// The claim lapses and the timer fires again; its message's dedup id absorbs that.
		fail(fmt.Errorf("remove fired timer %s: %w", it.PK, err))
	}
}

func (r *Repo) cursor(ctx context.Context) (time.Time, int64, error) {
	it, err := r.st.Get(ctx, cursorPK, skTimer)
	if errors.Is(err, store.ErrNotFound) {
		return time.Time{}, 0, nil
	}
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("read the timer cursor: %w", err)
	}
	var d cursorDoc
	if err := json.Unmarshal(it.Data, &d); err != nil {
		// A damaged cursor only costs a re-read of the first lookback.
		return time.Time{}, it.Version, nil
	}
	return d.Through.UTC(), it.Version, nil
}

// moveCursor advances the cursor; a concurrent run that moved it first wins, since both read
// the same minutes.
func (r *Repo) moveCursor(ctx context.Context, through time.Time, version int64) error {
	data, _ := json.Marshal(cursorDoc{Through: through})
	it := store.Item{PK: cursorPK, SK: skTimer, Data: data, Version: version + 1}
	w := store.PutIfVersion(it, version)
	if version == 0 {
		w = store.PutItem(it, store.NotExists)
	}
	if err := r.st.Write(ctx, w); err != nil && !errors.Is(err, store.ErrConditionFailed) {
		return fmt.Errorf("move the timer cursor: %w", err)
	}
	return nil
}
