package ratelimit_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

func newStore(t *testing.T, clk clock.Clock) store.Store {
	t.Helper()
	return testenv.EmbeddedStore(t, clk)
}

// maxInRollingWindow is the most admissions inside any window of length w.
func maxInRollingWindow(ts []time.Time, w time.Duration) int {
	best, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// TestNoRollingWindowOverLimit admits requests from three limiter instances (three processes)
// over simulated minutes and checks that no rolling minute ever holds more than the limit,
// while the limit is still mostly used.
func TestNoRollingWindowOverLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limit   ratelimit.Limit
		maxStep time.Duration
	}{
		{"ontraport 180 per minute", ratelimit.Limit{Requests: 180, Window: time.Minute}, 400 * time.Millisecond},
		{"fine buckets", ratelimit.Limit{Requests: 30, Window: time.Minute, Buckets: 12}, 3 * time.Second},
		{"bursty", ratelimit.Limit{Requests: 10, Window: 10 * time.Second, Buckets: 2}, 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 7, 0, time.UTC))
			st := newStore(t, clk)
			ctx := context.Background()
			var ls []*ratelimit.Shared
			for range 3 {
				l, err := ratelimit.NewShared(st, clk, "A#acme#R#ontraport", tc.limit)
				if err != nil {
					t.Fatal(err)
				}
				ls = append(ls, l)
			}
			rnd := rand.New(rand.NewPCG(1, 2))
			var admitted []time.Time
			end := clk.Now().Add(10 * tc.limit.Window)
			for clk.Now().Before(end) {
				wait, err := ls[rnd.IntN(len(ls))].Reserve(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if wait == 0 {
					admitted = append(admitted, clk.Now())
				}
				clk.Advance(time.Duration(rnd.Int64N(int64(tc.maxStep))))
			}
			if got := maxInRollingWindow(admitted, tc.limit.Window); got > tc.limit.Requests {
				t.Fatalf("a rolling %s held %d requests, limit %d", tc.limit.Window, got, tc.limit.Requests)
			}
			// Conservative counting may waste up to one bucket, not more.
			minUse := len(admitted) * int(tc.limit.Window) / int(10*tc.limit.Window)
			if minUse < tc.limit.Requests/2 {
				t.Fatalf("only %d requests per window on average, limit %d: the limiter wastes too much", minUse, tc.limit.Requests)
			}
		})
	}
}

// TestConcurrentAdmissionsAtOneInstant races many goroutines at the same moment: exactly the
// limit gets through.
func TestConcurrentAdmissionsAtOneInstant(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	st := newStore(t, clk)
	limit := ratelimit.Limit{Requests: 25, Window: time.Minute}
	var mu sync.Mutex
	admitted := 0
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			l, _ := ratelimit.NewShared(st, clk, "A#acme#R#x", limit)
			for range 10 {
				wait, err := l.Reserve(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				if wait == 0 {
					mu.Lock()
					admitted++
					mu.Unlock()
				}
			}
		}(g)
	}
	wg.Wait()
	if admitted != limit.Requests {
		t.Fatalf("%d admitted at one instant, want exactly %d", admitted, limit.Requests)
	}
}

func TestBlockPausesEveryInstance(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	st := newStore(t, clk)
	ctx := context.Background()
	a, _ := ratelimit.NewShared(st, clk, "A#acme#R#x", ratelimit.Limit{Requests: 100, Window: time.Minute})
	b, _ := ratelimit.NewShared(st, clk, "A#acme#R#x", ratelimit.Limit{Requests: 100, Window: time.Minute})
	if err := a.Block(ctx, clk.Now().Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	// A shorter pause reported later does not shorten the first.
	if err := b.Block(ctx, clk.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	wait, err := b.Reserve(ctx)
	if err != nil || wait != 30*time.Second {
		t.Fatalf("Reserve during a pause = %v, %v; want 30s", wait, err)
	}
	clk.Advance(30 * time.Second)
	if wait, err := b.Reserve(ctx); err != nil || wait != 0 {
		t.Fatalf("Reserve after the pause = %v, %v; want admitted", wait, err)
	}
	slept := time.Duration(0)
	b.WithSleep(func(ctx context.Context, d time.Duration) error { slept += d; clk.Advance(d); return nil })
	if err := a.Block(ctx, clk.Now().Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if slept != 2*time.Second {
		t.Fatalf("Wait slept %s, want 2s", slept)
	}
}

func TestInvalidLimit(t *testing.T) {
	for _, l := range []ratelimit.Limit{{}, {Requests: 1}, {Window: time.Second}, {Requests: 1, Window: 3, Buckets: 10}} {
		if _, err := ratelimit.NewShared(nil, nil, "x", l); err == nil {
			t.Errorf("NewShared(%+v) accepted an unusable limit", l)
		}
	}
}
