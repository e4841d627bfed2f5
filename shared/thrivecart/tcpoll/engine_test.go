package tcpoll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/lease"
	"github.com/cartrelay/cartrelay/shared/poll"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/testenv"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartapi"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartfake"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const acct, key = "acme", "tc-key"

// recorder is the ingest side: it counts what arrives per event id.
type recorder struct {
	mu      sync.Mutex
	perID   map[string]int
	batches []Batch
	failAt  int // the failAt-th batch is delivered, then reported failed (0: never)
	// work is the time handing over a batch takes, on clk.
	work time.Duration
	clk  *clock.Fake
}

func newRecorder() *recorder { return &recorder{perID: map[string]int{}} }

var errSinkDown = errors.New("ingest queue unavailable")

func (r *recorder) sink(_ context.Context, b Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, b)
	if r.work > 0 {
		r.clk.Advance(r.work)
	}
	for _, raw := range b.Records {
		var doc struct {
			EventID thrivecartapi.Flex `json:"event_id"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			return err
		}
		r.perID[string(doc.EventID)]++
	}
	if r.failAt > 0 && len(r.batches) == r.failAt {
		// The page reached the queue but the process dies before it hears so.
		r.failAt = 0
		return errSinkDown
	}
	return nil
}

// check reports ids missing among want and the number of repeats.
func (r *recorder) check(want []string) (missing []string, repeats int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range want {
		if r.perID[id] == 0 {
			missing = append(missing, id)
		}
	}
	for _, n := range r.perID {
		repeats += n - 1
	}
	return missing, repeats
}

type env struct {
	t    *testing.T
	clk  *clock.Fake
	st   store.Store
	fake *thrivecartfake.Server
	rec  *recorder
	ids  []string
	next int
	opt  Options
	src  TransactionSource
	key  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clk := clock.NewFake(t0)
	fake := thrivecartfake.New(acct, key)
	t.Cleanup(fake.Close)
	fake.SetClock(clk)
	e := &env{t: t, clk: clk, st: testenv.EmbeddedStore(t, clk), fake: fake, rec: newRecorder(), next: 1,
		opt: Options{PerPage: 10}, key: key}
	e.src = thrivecartapi.Client{BaseURL: fake.URL}
	return e
}

// add seeds n transactions, the first at from and each step later.
func (e *env) add(n int, from time.Time, step time.Duration) {
	var txs []thrivecartapi.Transaction
	for i := range n {
		id := e.next
		e.next++
		at := from.Add(time.Duration(i) * step)
		typ := []string{"charge", "charge", "rebill", "refund", "cancel"}[id%5]
		txs = append(txs, thrivecartapi.Transaction{EventID: thrivecartapi.Flex(fmt.Sprint(id)),
			Timestamp: thrivecartapi.Flex(fmt.Sprint(at.Unix())), Date: at.Format("2006-01-02"), Time: at.Format("15:04:05"),
			TransactionType: typ, ItemType: "product", ItemID: "12", Amount: "4900", OrderID: thrivecartapi.Flex(fmt.Sprint(5000 + id)),
			InvoiceID: "000000001", Currency: "USD", Customer: thrivecartapi.Customer{Name: "Pat Doe", Email: fmt.Sprintf("p%d@example.com", id)}})
		e.ids = append(e.ids, fmt.Sprint(id))
	}
	e.fake.Add(acct, txs...)
}

func (e *env) engine() *Engine {
	e.t.Helper()
	eng, err := New(Deps{Deps: poll.Deps{Store: e.st, Clock: e.clk, Sleep: func(_ context.Context, d time.Duration) error { e.clk.Advance(d); return nil }}, Source: e.src, Sink: e.rec.sink, Key: func(context.Context, string) (string, error) { return e.key, nil }}, e.opt)
	if err != nil {
		e.t.Fatal(err)
	}
	return eng
}

// drive runs jobs until one catches up (or stops), the way the queue and the schedule would:
// Continue at once, Later at NextRunAt. Each run gets budget of fake time.
func (e *env) drive(budget time.Duration) Result {
	e.t.Helper()
	eng := e.engine()
	for range 500 {
		res, err := eng.Run(context.Background(), Job{Account: acct}, e.clk.Now().Add(budget))
		if err != nil {
			e.t.Fatalf("run: %v", err)
		}
		switch res.Outcome {
		case poll.CaughtUp, poll.Stopped:
			return res
		case poll.Later:
			if res.NextRunAt.After(e.clk.Now()) {
				e.clk.Set(res.NextRunAt)
			}
		case poll.Busy:
			e.t.Fatalf("busy with no other poller")
		}
	}
	e.t.Fatal("never caught up")
	return Result{}
}

func (e *env) assertRate() {
	e.t.Helper()
	if got := e.fake.MaxInMinute(acct); got > thrivecartfake.PerMinute {
		e.t.Errorf("%d requests in one minute", got)
	}
	for _, c := range e.fake.Calls() {
		if c.Status == http.StatusTooManyRequests {
			e.t.Errorf("the fake answered 429 at %s", c.At)
		}
	}
}

func TestBackfillThenIncremental(t *testing.T) {
	e := newEnv(t)
	e.add(1000, t0.AddDate(0, -6, 0), 3*time.Hour)
	res := e.drive(10 * time.Minute)
	if res.Outcome != poll.CaughtUp || !res.Cursor.Backfilled || res.Cursor.Done != 1000 || res.Cursor.Estimated != 1000 {
		t.Fatalf("backfill: %+v", res)
	}
	missing, repeats := e.rec.check(e.ids)
	if len(missing) > 0 || repeats != 0 {
		t.Fatalf("backfill: %d missing, %d repeats", len(missing), repeats)
	}
	// 100 pages at 60 a minute cannot be done in under a minute; the walk from the new mark
	// that follows a backfill takes one more.
	if calls := len(e.fake.Calls()); calls != 101 || e.clk.Now().Sub(t0) < time.Minute {
		t.Errorf("%d calls in %s", calls, e.clk.Now().Sub(t0))
	}
	e.assertRate()
	if res.Cursor.Order != OrderNewestFirst || res.Cursor.High != t0.AddDate(0, -6, 0).Add(999*3*time.Hour) {
		t.Errorf("cursor: order %q, high %s", res.Cursor.Order, res.Cursor.High)
	}
	if due, _ := Due(context.Background(), e.st, acct, e.clk.Now()); due {
		t.Errorf("due right after catching up")
	}

	// New transactions, one back-dated inside the overlap, come in once; the walk stops at
	// the first page reaching past the mark.
	e.clk.Advance(10 * time.Minute)
	if due, _ := Due(context.Background(), e.st, acct, e.clk.Now()); !due {
		t.Fatalf("not due after the interval")
	}
	high := res.Cursor.High
	e.add(3, e.clk.Now().Add(-time.Minute), time.Second)
	e.add(1, high.Add(-5*time.Minute), 0)
	before := len(e.fake.Calls())
	res = e.drive(10 * time.Minute)
	missing, repeats = e.rec.check(e.ids)
	if res.Outcome != poll.CaughtUp || len(missing) > 0 || repeats != 0 || res.Records != 4 {
		t.Fatalf("incremental: %+v, %d missing, %d repeats", res, len(missing), repeats)
	}
	if calls := len(e.fake.Calls()) - before; calls != 1 {
		t.Errorf("incremental walk took %d requests", calls)
	}
	// A quiet walk sends nothing.
	e.clk.Advance(10 * time.Minute)
	if res = e.drive(10 * time.Minute); res.Records != 0 {
		t.Errorf("quiet walk sent %d", res.Records)
	}
}

func TestBackfillWithArrivalsAndResume(t *testing.T) {
	e := newEnv(t)
	e.add(300, t0.AddDate(0, -1, 0), time.Hour)
	e.rec.failAt = 7 // the process dies while handing over page 7
	eng := e.engine()
	_, err := eng.Run(context.Background(), Job{Account: acct}, e.clk.Now().Add(time.Hour))
	if !errors.Is(err, errSinkDown) {
		t.Fatalf("run with a failing sink: %v", err)
	}
	cur, _, _ := LoadCursor(context.Background(), e.st, acct)
	if cur.Walk == nil || cur.Walk.Page != 7 || cur.Done != 60 {
		t.Fatalf("cursor after the failure: %+v", cur)
	}
	// Transactions arrive mid-walk, shifting every page of a newest-first list.
	e.add(25, t0.Add(-30*time.Minute), time.Second)
	// A short budget makes the walk continue over several runs.
	res := e.drive(40 * time.Second)
	missing, repeats := e.rec.check(e.ids)
	// Only the page in flight when the process died comes twice.
	if res.Outcome != poll.CaughtUp || len(missing) > 0 || repeats != 10 {
		t.Fatalf("after resume: %+v, missing %v, %d repeats", res.Outcome, missing, repeats)
	}
	e.assertRate()
}

func TestRunsContinueOnLowBudget(t *testing.T) {
	e := newEnv(t)
	e.add(200, t0.AddDate(0, -1, 0), time.Hour)
	e.rec.work, e.rec.clk = 2*time.Second, e.clk
	eng := e.engine()
	res, err := eng.Run(context.Background(), Job{Account: acct}, e.clk.Now().Add(35*time.Second))
	if err != nil || res.Outcome != poll.Continue || res.Cursor.Walk == nil || res.Requests != 3 {
		t.Fatalf("first run: %+v, %v", res, err)
	}
	if res.Cursor.Walk.Page != res.Requests+1 {
		t.Errorf("page %d after %d requests", res.Cursor.Walk.Page, res.Requests)
	}
}

func TestUnauthorizedStops(t *testing.T) {
	e := newEnv(t)
	e.add(50, t0.AddDate(0, -1, 0), time.Hour)
	e.fake.RevokeKey(key)
	res := e.drive(10 * time.Minute)
	if res.Outcome != poll.Stopped || res.Cursor.Status != StatusUnauthorized || res.Requests != 1 || res.Cursor.LastError == "" {
		t.Fatalf("revoked: %+v", res)
	}
	if StatusMessage(res.Cursor.Status) == "" {
		t.Errorf("no message for the merchant")
	}
	ctx := context.Background()
	if due, _ := Due(ctx, e.st, acct, e.clk.Now().Add(24*time.Hour)); due {
		t.Errorf("a stopped account is due")
	}
	res = e.drive(time.Minute)
	if res.Outcome != poll.Stopped || res.Requests != 0 {
		t.Errorf("second run: %+v", res)
	}
	e.fake.AddKey(acct, key)
	if err := Resume(ctx, e.st, acct); err != nil {
		t.Fatal(err)
	}
	if due, _ := Due(ctx, e.st, acct, e.clk.Now()); !due {
		t.Errorf("not due after resume")
	}
	if res = e.drive(10 * time.Minute); res.Outcome != poll.CaughtUp || res.Cursor.Done != 50 {
		t.Errorf("after resume: %+v", res)
	}
}

func TestNoKeyStopsUntilOneIsSaved(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.add(5, t0.AddDate(0, 0, -1), time.Hour)
	e.key = ""
	if res := e.drive(time.Minute); res.Outcome != poll.Stopped || res.Cursor.Status != StatusNoKey || len(e.fake.Calls()) != 0 {
		t.Fatalf("%+v", res)
	}
	// Not asked again before the recheck, then asked again by itself.
	if due, err := Due(ctx, e.st, acct, e.clk.Now().Add(NoKeyRecheck-time.Minute)); err != nil || due {
		t.Fatalf("due before the recheck: %v %v", due, err)
	}
	e.clk.Advance(NoKeyRecheck)
	if due, err := Due(ctx, e.st, acct, e.clk.Now()); err != nil || !due {
		t.Fatalf("not due after the recheck: %v %v", due, err)
	}
	// A key saved meanwhile (no Resume call) starts the walk.
	e.key = key
	res := e.drive(time.Minute)
	missing, _ := e.rec.check(e.ids)
	if res.Outcome != poll.CaughtUp || res.Cursor.Status != "" || len(missing) != 0 {
		t.Fatalf("after the key was saved: %s, status %q, missing %v", res.Outcome, res.Cursor.Status, missing)
	}
}

func TestServerErrorsAndRateLimit(t *testing.T) {
	e := newEnv(t)
	e.add(100, t0.AddDate(0, -1, 0), time.Hour)
	e.fake.FailNext(http.StatusInternalServerError, http.StatusBadGateway)
	res := e.drive(30 * time.Minute)
	if missing, repeats := e.rec.check(e.ids); res.Outcome != poll.CaughtUp || len(missing) > 0 || repeats != 0 {
		t.Fatalf("after 5xx: %+v", res)
	}

	// Another client of the same ThriveCart account uses most of the budget: the fake's limit
	// binds before the engine's, and every 429 pauses the shared bucket.
	e2 := newEnv(t)
	e2.add(100, t0.AddDate(0, -1, 0), time.Hour)
	e2.fake.SetLimit(4)
	res = e2.drive(30 * time.Minute)
	if missing, repeats := e2.rec.check(e2.ids); res.Outcome != poll.CaughtUp || len(missing) > 0 || repeats != 0 {
		t.Fatalf("with 429s: %+v, %v missing", res, missing)
	}
	limited := 0
	for _, c := range e2.fake.Calls() {
		if c.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 || limited > 10 {
		t.Errorf("%d requests refused with 429", limited)
	}
	blk, err := e2.st.Get(context.Background(), RateLimitKey(acct), "BLOCK")
	if err != nil || len(blk.Data) == 0 {
		t.Errorf("no pause recorded in the shared bucket: %v", err)
	}
}

func TestSharedBucketAcrossEngines(t *testing.T) {
	e := newEnv(t)
	e.add(100, t0.AddDate(0, -1, 0), time.Hour)
	// Something else (a second worker) already spent this minute's budget.
	b, err := ratelimit.NewShared(e.st, e.clk, RateLimitKey(acct), ratelimit.Limit{Requests: 60, Window: time.Minute, Buckets: 6})
	if err != nil {
		t.Fatal(err)
	}
	for range 60 {
		if w, err := b.Reserve(context.Background()); err != nil || w != 0 {
			break
		}
	}
	res, err := e.engine().Run(context.Background(), Job{Account: acct}, e.clk.Now().Add(35*time.Second))
	if err != nil || res.Outcome != poll.Later || res.Requests != 0 || !res.NextRunAt.After(e.clk.Now()) {
		t.Fatalf("with the bucket spent: %+v, %v", res, err)
	}
}

func TestBusy(t *testing.T) {
	e := newEnv(t)
	l := lease.New(e.st, e.clk, store.Key{PK: AccountPK(acct), SK: LeaseSK}, 5*time.Minute, "test")
	if err := l.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := e.engine().Run(context.Background(), Job{Account: acct}, e.clk.Now().Add(time.Minute))
	if err != nil || res.Outcome != poll.Busy {
		t.Fatalf("%+v, %v", res, err)
	}
	// A holder that died frees the account when its lease expires.
	e.clk.Advance(6 * time.Minute)
	e.add(5, t0, time.Second)
	if res := e.drive(time.Minute); res.Outcome != poll.CaughtUp || res.Records != 5 {
		t.Fatalf("after expiry: %+v", res)
	}
}

// ascending serves the fake's transactions oldest first, the order ThriveCart does not
// document but might use.
type ascending struct {
	mu  sync.Mutex
	txs []thrivecartapi.Transaction
}

func (a *ascending) Transactions(_ context.Context, _ string, q thrivecartapi.TransactionsQuery) (thrivecartapi.TransactionsPage, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	all := append([]thrivecartapi.Transaction(nil), a.txs...)
	sort.SliceStable(all, func(i, j int) bool { return all[i].At().Before(all[j].At()) })
	lo := min((q.Page-1)*q.PerPage, len(all))
	hi := min(lo+q.PerPage, len(all))
	p := thrivecartapi.TransactionsPage{Meta: thrivecartapi.Meta{Total: len(all), Results: hi - lo}}
	for _, t := range all[lo:hi] {
		raw, _ := json.Marshal(t)
		p.Transactions = append(p.Transactions, t)
		p.Raw = append(p.Raw, raw)
	}
	return p, nil
}

func TestOldestFirst(t *testing.T) {
	e := newEnv(t)
	src := &ascending{}
	e.src = src
	grow := func(n int, from time.Time) {
		start := len(e.ids)
		e.add(n, from, time.Minute)
		// Mirror what was seeded into the fake.
		for _, id := range e.ids[start:] {
			var n int
			fmt.Sscan(id, &n)
			at := from.Add(time.Duration(n-1-start) * time.Minute)
			src.txs = append(src.txs, thrivecartapi.Transaction{EventID: thrivecartapi.Flex(id),
				Timestamp: thrivecartapi.Flex(fmt.Sprint(at.Unix())), TransactionType: "charge", Amount: "100", OrderID: "1"})
		}
	}
	grow(95, t0.Add(-48*time.Hour))
	res := e.drive(10 * time.Minute)
	if res.Cursor.Order != OrderOldestFirst || res.Cursor.ResumePage != 10 || res.Cursor.Done != 95 {
		t.Fatalf("backfill: %+v", res.Cursor)
	}
	e.clk.Advance(10 * time.Minute)
	grow(12, e.clk.Now().Add(-time.Hour))
	res = e.drive(10 * time.Minute)
	missing, repeats := e.rec.check(e.ids)
	if len(missing) > 0 || repeats != 0 || res.Records != 12 || res.Requests != 2 || res.Cursor.ResumePage != 11 {
		t.Fatalf("incremental: %+v, missing %v, repeats %d", res, missing, repeats)
	}
}

func TestCrashResendsThePageUnderItsName(t *testing.T) {
	e := newEnv(t)
	e.add(50, t0.AddDate(0, -1, 0), time.Hour)
	e.rec.failAt = 3
	if _, err := e.engine().Run(context.Background(), Job{Account: acct}, e.clk.Now().Add(time.Hour)); !errors.Is(err, errSinkDown) {
		t.Fatalf("run: %v", err)
	}
	res := e.drive(10 * time.Minute)
	missing, repeats := e.rec.check(e.ids)
	if res.Outcome != poll.CaughtUp || len(missing) > 0 || repeats != 10 {
		t.Fatalf("%+v, missing %v, %d repeats", res.Outcome, missing, repeats)
	}
	if a, b := e.rec.batches[2].Delivery, e.rec.batches[3].Delivery; a != b || a != "poll:thrivecart:transactions:backfill:3" {
		t.Errorf("re-sent page named %s, first sent as %s", b, a)
	}
}

// rawPages serves fixed answers of GET /transactions, decoded as the client decodes them.
type rawPages struct{ bodies []string }

func (r rawPages) Transactions(_ context.Context, _ string, q thrivecartapi.TransactionsQuery) (thrivecartapi.TransactionsPage, error) {
	if q.Page > len(r.bodies) {
		return thrivecartapi.DecodeTransactionsPage([]byte(`{"transactions":[],"meta":{"total":2,"results":0}}`))
	}
	return thrivecartapi.DecodeTransactionsPage([]byte(r.bodies[q.Page-1]))
}

// TestUnreadableTransactionDoesNotStopTheWalk: a record the client cannot read still reaches
// the sink (ingest keeps it with its reason) and the walk catches up.
func TestUnreadableTransactionDoesNotStopTheWalk(t *testing.T) {
	e := newEnv(t)
	at := t0.Add(-time.Hour).Unix()
	e.src = rawPages{bodies: []string{fmt.Sprintf(`{"transactions":[{"event_id":"1","timestamp":%d,"transaction_type":"charge","amount":"100","order_id":"5"},`+
		`{"event_id":"2","timestamp":%d,"amount":{"USD":1}}],"meta":{"total":2,"results":2}}`, at, at)}}
	res := e.drive(10 * time.Minute)
	if res.Outcome != poll.CaughtUp || res.Cursor.Status != "" {
		t.Fatalf("%s, status %q, last error %q", res.Outcome, res.Cursor.Status, res.Cursor.LastError)
	}
	e.rec.mu.Lock()
	defer e.rec.mu.Unlock()
	n := 0
	for _, b := range e.rec.batches {
		n += len(b.Records)
	}
	if n < 2 {
		t.Fatalf("%d records reached the sink, want both", n)
	}
}
