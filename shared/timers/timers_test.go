package timers_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
	"github.com/cartrelay/cartrelay/shared/store"
	storeembedded "github.com/cartrelay/cartrelay/shared/store/embedded"
	"github.com/cartrelay/cartrelay/shared/timers"
)

var t0 = time.Date(2026, 11, 22, 9, 0, 30, 0, time.UTC)

func openStore(t testing.TB, dir string, clk clock.Clock) (store.Store, *sqlitedb.DB) {
	t.Helper()
	db, err := sqlitedb.InDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := storeembedded.New(context.Background(), db, clk)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	return st, db
}

func timer(key string, due time.Time) timers.Timer {
	return timers.Timer{Account: "acme", Kind: "cart", Key: key, Due: due, Queue: iterable.Registration().Queue.Name,
		Message: queue.Message{Body: `{"id":"` + key + `"}`, GroupID: "acme|" + key, DedupID: "d-" + key}}
}

func repeat(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

// recorder is a FireFunc that remembers what fired.
type recorder struct {
	mu    sync.Mutex
	fired []string
}

func (r *recorder) fire(_ context.Context, t timers.Timer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fired = append(r.fired, t.Key)
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.fired)
}

// TestWaits drives timers of different lengths through a fake clock: each fires once, in the
// run at or after its due time, and never before.
func TestWaits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		wait  time.Duration
		steps []time.Duration // clock advances, one run after each
		want  []int           // cumulative fired count after each run
	}{
		{"already due", 0, []time.Duration{0, time.Minute}, []int{1, 1}},
		{"within the minute", 20 * time.Second, []time.Duration{0, 10 * time.Second, 15 * time.Second, time.Minute}, []int{0, 0, 1, 1}},
		{"one hour", time.Hour, []time.Duration{59 * time.Minute, time.Minute, time.Minute}, []int{0, 1, 1}},
		{"five hours in hourly runs", 5 * time.Hour, []time.Duration{time.Hour, time.Hour, time.Hour, time.Hour, time.Hour, time.Hour}, []int{0, 0, 0, 0, 1, 1}},
		{"a week in runs twice a day", 7 * 24 * time.Hour,
			append(repeat(13, 12*time.Hour), 12*time.Hour-2*time.Minute, time.Minute, time.Minute, time.Minute),
			append(make([]int, 15), 1, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(t0)
			st, db := openStore(t, t.TempDir(), clk)
			defer db.Close()
			r := timers.New(st, clk, timers.Options{})
			ctx := context.Background()
			if _, err := r.FireDue(ctx, (&recorder{}).fire); err != nil { // establishes the cursor
				t.Fatal(err)
			}
			if ok, err := r.Put(ctx, timer("k1", t0.Add(tc.wait))); err != nil || !ok {
				t.Fatalf("Put: %v %v", ok, err)
			}
			rec := &recorder{}
			for i, step := range tc.steps {
				clk.Advance(step)
				if _, err := r.FireDue(ctx, rec.fire); err != nil {
					t.Fatal(err)
				}
				if got := rec.count(); got != tc.want[i] {
					t.Fatalf("after run %d at +%s: fired %d, want %d", i+1, clk.Now().Sub(t0), got, tc.want[i])
				}
			}
		})
	}
}

// TestSurvivesReopen schedules a timer, closes the database as a restart would, and fires it
// from a fresh store hours later.
func TestSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(t0)
	ctx := context.Background()
	st, db := openStore(t, dir, clk)
	r := timers.New(st, clk, timers.Options{})
	if _, err := r.FireDue(ctx, (&recorder{}).fire); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Put(ctx, timer("k1", t0.Add(3*time.Hour))); err != nil {
		t.Fatal(err)
	}
	db.Close()

	clk.Advance(3*time.Hour + time.Minute)
	st, db = openStore(t, dir, clk)
	defer db.Close()
	rec := &recorder{}
	res, err := timers.New(st, clk, timers.Options{}).FireDue(ctx, rec.fire)
	if err != nil {
		t.Fatal(err)
	}
	if rec.count() != 1 || res.Fired != 1 {
		t.Fatalf("after reopen: fired %v (%+v)", rec.fired, res)
	}
	if _, err := timers.New(st, clk, timers.Options{}).Get(ctx, "acme", "cart", "k1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the fired timer is still stored: %v", err)
	}
}

// TestConcurrentRunsFireOnce runs several schedule invocations at once over the same due
// timers: each timer fires exactly once.
func TestConcurrentRunsFireOnce(t *testing.T) {
	clk := clock.NewFake(t0)
	st, db := openStore(t, t.TempDir(), clk)
	defer db.Close()
	ctx := context.Background()
	r := timers.New(st, clk, timers.Options{})
	const n = 40
	for i := range n {
		if _, err := r.Put(ctx, timer(fmt.Sprintf("k%02d", i), t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Hour)
	var fired sync.Map
	var total atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := timers.New(st, clk, timers.Options{}).FireDue(ctx, func(_ context.Context, tm timers.Timer) error {
				if _, dup := fired.LoadOrStore(tm.Key, true); dup {
					t.Errorf("timer %s fired twice", tm.Key)
				}
				total.Add(1)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if total.Load() != n {
		t.Fatalf("fired %d timers, want %d", total.Load(), n)
	}
}

// TestFailedFireRetriesAfterLease: a run that fails to hand a timer on (or dies doing it)
// leaves it claimed; once the claim lapses a later run fires it.
func TestFailedFireRetriesAfterLease(t *testing.T) {
	clk := clock.NewFake(t0)
	st, db := openStore(t, t.TempDir(), clk)
	defer db.Close()
	ctx := context.Background()
	r := timers.New(st, clk, timers.Options{ClaimLease: 2 * time.Minute})
	if _, err := r.Put(ctx, timer("k1", t0)); err != nil {
		t.Fatal(err)
	}
	res, err := r.FireDue(ctx, func(context.Context, timers.Timer) error { return errors.New("queue unavailable") })
	if err != nil || res.Failed != 1 || res.Fired != 0 {
		t.Fatalf("failing run: %+v %v", res, err)
	}
	rec := &recorder{}
	clk.Advance(time.Minute)
	if _, err := r.FireDue(ctx, rec.fire); err != nil || rec.count() != 0 {
		t.Fatalf("fired while still claimed: %v %v", rec.fired, err)
	}
	clk.Advance(2 * time.Minute)
	if _, err := r.FireDue(ctx, rec.fire); err != nil || rec.count() != 1 {
		t.Fatalf("after the claim lapsed: fired %v, %v", rec.fired, err)
	}
}

func TestPutKeepsAndPutNewerReplaces(t *testing.T) {
	clk := clock.NewFake(t0)
	st, db := openStore(t, t.TempDir(), clk)
	defer db.Close()
	ctx := context.Background()
	r := timers.New(st, clk, timers.Options{})
	first := timer("k1", t0.Add(time.Hour))
	first.Seq = 10
	if ok, _ := r.Put(ctx, first); !ok {
		t.Fatal("first Put did not write")
	}
	later := timer("k1", t0.Add(5*time.Hour))
	later.Seq = 5
	if ok, _ := r.Put(ctx, later); ok {
		t.Fatal("Put replaced a waiting timer")
	}
	if ok, _ := r.PutNewer(ctx, later); ok {
		t.Fatal("PutNewer replaced a timer with a higher Seq")
	}
	later.Seq = 11
	if ok, err := r.PutNewer(ctx, later); !ok || err != nil {
		t.Fatalf("PutNewer with a higher Seq: %v %v", ok, err)
	}
	got, err := r.Get(ctx, "acme", "cart", "k1")
	if err != nil || !got.Due.Equal(t0.Add(5*time.Hour)) {
		t.Fatalf("stored timer %+v %v", got, err)
	}
	rec := &recorder{}
	clk.Advance(2 * time.Hour)
	if _, err := r.FireDue(ctx, rec.fire); err != nil || rec.count() != 0 {
		t.Fatalf("the replaced due time fired: %v", rec.fired)
	}
	if _, err := r.Put(ctx, timers.Timer{Account: "acme"}); !errors.Is(err, timers.ErrInvalid) {
		t.Fatalf("incomplete timer: %v", err)
	}
}

// TestCatchUpAfterOutage: with the schedule stopped for two days, the runs after it read at
// most MaxMinutesPerRun minutes each and still fire everything that came due.
func TestCatchUpAfterOutage(t *testing.T) {
	clk := clock.NewFake(t0)
	st, db := openStore(t, t.TempDir(), clk)
	defer db.Close()
	ctx := context.Background()
	r := timers.New(st, clk, timers.Options{MaxMinutesPerRun: 600})
	if _, err := r.FireDue(ctx, (&recorder{}).fire); err != nil {
		t.Fatal(err)
	}
	for i, wait := range []time.Duration{time.Hour, 20 * time.Hour, 40 * time.Hour} {
		if _, err := r.Put(ctx, timer(fmt.Sprintf("k%d", i), t0.Add(wait))); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(48 * time.Hour)
	rec := &recorder{}
	for run := 0; run < 10 && rec.count() < 3; run++ {
		res, err := r.FireDue(ctx, rec.fire)
		if err != nil {
			t.Fatal(err)
		}
		if res.Minutes > 600 {
			t.Fatalf("run read %d minutes", res.Minutes)
		}
	}
	if rec.count() != 3 {
		t.Fatalf("fired %v after catching up", rec.fired)
	}
}
