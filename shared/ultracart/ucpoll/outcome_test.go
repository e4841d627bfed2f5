package ucpoll_test

import (
	"context"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/poll"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
)

type fixture struct {
	clk  *clock.Fake
	st   store.Store
	fake *ultracartfake.Server
	rec  *recorder
	eng  *ucpoll.Engine
}

func newFixture(t *testing.T, fo ultracartfake.Options, creds ultracartapi.Credentials, po ucpoll.Options) *fixture {
	t.Helper()
	f := &fixture{clk: clock.NewFake(t0), rec: newRecorder()}
	f.st = newStore(t, f.clk)
	fo.Clock = f.clk
	if fo.Start.IsZero() {
		fo.Start = t0.AddDate(0, 0, -20)
	}
	f.fake = ultracartfake.New(fo)
	t.Cleanup(f.fake.Close)
	if po.Start.IsZero() {
		po.Start = t0.AddDate(0, 0, -30)
	}
	var err error
	f.eng, err = ucpoll.New(ucpoll.Deps{Deps: poll.Deps{Store: f.st, Clock: f.clk, Sleep: func(_ context.Context, d time.Duration) error { f.clk.Advance(d); return nil }}, Source: ultracartapi.New(f.fake.URL, creds, nil), Sink: f.rec.sink}, po)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) run(t *testing.T, stream string, budget time.Duration) ucpoll.Result {
	t.Helper()
	res, err := f.eng.Run(context.Background(), ucpoll.Job{Account: "acme", Stream: stream}, f.clk.Now().Add(budget))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestStopsForPeople(t *testing.T) {
	for _, tc := range []struct {
		name       string
		creds      ultracartapi.Credentials
		disable    bool
		wantStatus string
	}{
		{"app disabled (410)", ultracartapi.Credentials{SimpleKey: "k"}, true, ucpoll.StatusDisabled},
		{"credentials refused (401)", ultracartapi.Credentials{SimpleKey: "wrong"}, false, ucpoll.StatusUnauthorized},
	} {
		for _, stream := range ucpoll.Streams() {
			t.Run(tc.name+", "+stream, func(t *testing.T) {
				f := newFixture(t, ultracartfake.Options{Orders: 50, AutoOrders: 50, Customers: 50, Items: 50, SimpleKey: "k"}, tc.creds, ucpoll.Options{})
				f.fake.SetDisabled(tc.disable)
				res := f.run(t, stream, 15*time.Minute)
				if res.Outcome != poll.Stopped || res.Cursor.Status != tc.wantStatus || res.Cursor.LastError == "" || len(f.rec.perOrder) != 0 {
					t.Fatalf("outcome %s, status %q, last error %q, %d records", res.Outcome, res.Cursor.Status, res.Cursor.LastError, len(f.rec.perOrder))
				}
				calls := len(f.fake.Calls())
				if res := f.run(t, stream, 15*time.Minute); res.Outcome != poll.Stopped || len(f.fake.Calls()) != calls {
					t.Fatalf("a stopped stream ran again: %s, %d calls", res.Outcome, len(f.fake.Calls())-calls)
				}
				cur, _, err := ucpoll.LoadCursor(context.Background(), f.st, "acme", stream)
				if err != nil || cur.Status != tc.wantStatus {
					t.Fatalf("stored cursor status %q (%v)", cur.Status, err)
				}
			})
		}
	}
}

func TestSecondPollerIsBusy(t *testing.T) {
	f := newFixture(t, ultracartfake.Options{Orders: 1000, SimpleKey: "k"}, ultracartapi.Credentials{SimpleKey: "k"}, ucpoll.Options{})
	var second []poll.Outcome
	f.fake.OnRequest(func(context.Context, ultracartfake.Call) {
		for _, stream := range ucpoll.Streams() {
			res, err := f.eng.Run(context.Background(), ucpoll.Job{Account: "acme", Stream: stream}, f.clk.Now().Add(time.Hour))
			if err != nil {
				t.Error(err)
			}
			second = append(second, res.Outcome)
		}
	})
	res := f.run(t, ucpoll.Orders, time.Hour)
	if res.Outcome != poll.CaughtUp {
		t.Fatalf("first poller: %s", res.Outcome)
	}
	for _, o := range second {
		if o != poll.Busy {
			t.Fatalf("a second poller got %s while the first was requesting", o)
		}
	}
	if len(second) == 0 || f.fake.Overlaps() != 0 {
		t.Fatalf("%d concurrent attempts, %d overlaps", len(second), f.fake.Overlaps())
	}
	// The lease is released at the end, so the next job starts at once.
	f.fake.OnRequest(nil)
	if res := f.run(t, ucpoll.Refunds, time.Hour); res.Outcome != poll.CaughtUp {
		t.Fatalf("after release: %s", res.Outcome)
	}
}

func TestBudgetContinues(t *testing.T) {
	f := newFixture(t, ultracartfake.Options{Orders: 3000, SimpleKey: "k", Spacing: 5 * time.Minute},
		ultracartapi.Credentials{SimpleKey: "k"}, ucpoll.Options{Reserve: time.Minute})
	f.fake.OnRequest(func(context.Context, ultracartfake.Call) { f.clk.Advance(20 * time.Second) })
	runs := 0
	for {
		runs++
		res := f.run(t, ucpoll.Orders, 2*time.Minute)
		if res.Outcome == poll.CaughtUp {
			break
		}
		if res.Outcome != poll.Continue || res.Requests > 4 {
			t.Fatalf("run %d: %s after %d requests", runs, res.Outcome, res.Requests)
		}
		if runs > 100 {
			t.Fatal("never caught up")
		}
	}
	if len(f.rec.perOrder) != 3000 || f.rec.events != 3000 {
		t.Fatalf("%d distinct orders, %d events", len(f.rec.perOrder), f.rec.events)
	}
	if runs < 5 {
		t.Fatalf("only %d runs; the budget did not bind", runs)
	}
}

func TestBacksOffOn429(t *testing.T) {
	for _, stream := range []string{ucpoll.Orders, ucpoll.Customers} {
		t.Run(stream, func(t *testing.T) {
			// UltraCart's own bucket is stricter than the one configured here, as when another
			// application shares the merchant's limit.
			f := newFixture(t, ultracartfake.Options{Orders: 2000, Customers: 2000, SimpleKey: "k", Rate: 3, Window: time.Hour},
				ultracartapi.Credentials{SimpleKey: "k"},
				ucpoll.Options{Hour: ratelimit.Limit{Requests: 100, Window: time.Hour}, Backoff: 10 * time.Minute})
			var last ucpoll.Result
			for i := 0; ; i++ {
				last = f.run(t, stream, time.Hour)
				if last.Outcome == poll.CaughtUp {
					break
				}
				if last.Outcome != poll.Later || i > 200 {
					t.Fatalf("run %d: %s", i, last.Outcome)
				}
				f.clk.Set(last.NextRunAt)
			}
			if len(f.rec.perOrder) != 2000 || f.rec.events != 2000 {
				t.Fatalf("%d distinct records, %d events", len(f.rec.perOrder), f.rec.events)
			}
			if f.fake.OverRate() == 0 {
				t.Fatal("the test never hit UltraCart's 429")
			}
			calls := f.fake.Calls()
			refused := 0
			for i, c := range calls {
				if c.Status != 429 {
					continue
				}
				refused++
				if i+1 < len(calls) && calls[i+1].At.Sub(c.At) < 10*time.Minute {
					t.Fatalf("request %d came %s after a 429", i+1, calls[i+1].At.Sub(c.At))
				}
			}
			t.Logf("%d requests, %d refused with 429", len(calls), refused)
		})
	}
}

func TestRefundsStream(t *testing.T) {
	f := newFixture(t, ultracartfake.Options{Orders: 1000, SimpleKey: "k", RefundEvery: 10, Spacing: 10 * time.Minute},
		ultracartapi.Credentials{SimpleKey: "k"}, ucpoll.Options{})
	if res := f.run(t, ucpoll.Refunds, time.Hour); res.Outcome != poll.CaughtUp {
		t.Fatalf("outcome %s", res.Outcome)
	}
	if len(f.rec.perOrder) != 100 {
		t.Fatalf("%d refunded orders polled, want 100", len(f.rec.perOrder))
	}
	for _, c := range f.fake.Calls() {
		if c.Query["refund_date_begin"] == "" || c.Query["payment_date_begin"] != "" {
			t.Fatalf("refund walk sent %v", c.Query)
		}
	}
}

func TestHeadOverlap(t *testing.T) {
	// Orders up to a minute ago; a caught-up stream re-reads only the overlap next time.
	f := newFixture(t, ultracartfake.Options{Orders: 600, SimpleKey: "k", Start: t0.Add(-600 * time.Minute)},
		ultracartapi.Credentials{SimpleKey: "k"}, ucpoll.Options{Start: t0.Add(-12 * time.Hour)})
	res := f.run(t, ucpoll.Orders, time.Hour)
	if res.Outcome != poll.CaughtUp || len(f.rec.perOrder) != 598 {
		t.Fatalf("outcome %s, %d orders (the last two minutes wait for the lag)", res.Outcome, len(f.rec.perOrder))
	}
	f.clk.Set(res.NextRunAt)
	before := f.rec.events
	res = f.run(t, ucpoll.Orders, time.Hour)
	if res.Outcome != poll.CaughtUp || res.Requests != 1 {
		t.Fatalf("second run: %s in %d requests", res.Outcome, res.Requests)
	}
	if len(f.rec.perOrder) != 600 {
		t.Fatalf("%d orders after the second run, want 600", len(f.rec.perOrder))
	}
	// The overlap (15 min) repeats the orders of the window's last 15 minutes; ingest drops them.
	if again := f.rec.events - before; again < 2 || again > 17 {
		t.Fatalf("second run sent %d orders", again)
	}
}

func TestDue(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ultracartfake.Options{Orders: 10, SimpleKey: "k"}, ultracartapi.Credentials{SimpleKey: "k"}, ucpoll.Options{})
	due := func() bool {
		ok, err := ucpoll.Due(ctx, f.st, "acme", ucpoll.Orders, f.clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !due() {
		t.Fatal("a stream that never ran is not due")
	}
	f.fake.OnRequest(func(context.Context, ultracartfake.Call) {
		if due() {
			t.Error("due while a poller holds the lease")
		}
	})
	res := f.run(t, ucpoll.Orders, time.Hour)
	if res.Outcome != poll.CaughtUp || due() {
		t.Fatalf("right after catching up: %s, due %v", res.Outcome, due())
	}
	f.clk.Set(res.NextRunAt)
	if !due() {
		t.Fatal("not due at NextRunAt")
	}
	f.fake.SetDisabled(true)
	f.fake.OnRequest(nil)
	f.run(t, ucpoll.Orders, time.Hour)
	f.clk.Advance(24 * time.Hour)
	if due() {
		t.Fatal("a disabled stream is due")
	}
}

// TestScopeDecidesWhoShares starts a second store's poller while the first one's request is in
// flight: with a lease per account it goes ahead (here into the fake's refusal of concurrent
// requests, as both share one fake), with one lease for the whole deployment it is Busy before
// it sends anything.
func TestScopeDecidesWhoShares(t *testing.T) {
	for _, tc := range []struct {
		scope string
		busy  bool
	}{
		{ucpoll.ScopeAccount, false},
		{ucpoll.ScopeApp, true},
	} {
		t.Run(tc.scope, func(t *testing.T) {
			f := newFixture(t, ultracartfake.Options{Orders: 10, SimpleKey: "k"}, ultracartapi.Credentials{SimpleKey: "k"},
				ucpoll.Options{Scope: tc.scope, Retries: 1})
			var other []poll.Outcome
			f.fake.OnRequest(func(ctx context.Context, _ ultracartfake.Call) {
				f.fake.OnRequest(nil)
				res, err := f.eng.Run(context.WithoutCancel(ctx), ucpoll.Job{Account: "bolt", Stream: ucpoll.Orders}, f.clk.Now().Add(time.Hour))
				if err != nil {
					t.Error(err)
				}
				other = append(other, res.Outcome)
			})
			calls := len(f.fake.Calls())
			if res := f.run(t, ucpoll.Orders, time.Hour); res.Outcome != poll.CaughtUp {
				t.Fatalf("first poller: %s", res.Outcome)
			}
			if len(other) != 1 || (other[0] == poll.Busy) != tc.busy {
				t.Fatalf("the other store's poller: %v, want busy %v", other, tc.busy)
			}
			if tc.busy && f.fake.Overlaps() != 0 {
				t.Errorf("%d concurrent requests under one deployment-wide lease (%d calls)", f.fake.Overlaps(), len(f.fake.Calls())-calls)
			}
		})
	}
	if _, err := ucpoll.New(ucpoll.Deps{Deps: poll.Deps{Store: newStore(t, clock.NewFake(t0))}, Source: ultracartapi.New("http://127.0.0.1:1", ultracartapi.Credentials{}, nil), Sink: func(context.Context, ucpoll.Batch) error { return nil }}, ucpoll.Options{Scope: "ip"}); err == nil {
		t.Error("an unknown scope was accepted")
	}
}

// TestQueryTargetCacheForOldWindows reads the history from UltraCart's faster cache and only
// the newest windows, which the cache may not have caught up with, from the origin.
func TestQueryTargetCacheForOldWindows(t *testing.T) {
	f := newFixture(t, ultracartfake.Options{Orders: 2000, SimpleKey: "k", Start: t0.AddDate(0, 0, -20), Spacing: 15 * time.Minute},
		ultracartapi.Credentials{SimpleKey: "k"}, ucpoll.Options{})
	if res := f.run(t, ucpoll.Orders, time.Hour); res.Outcome != poll.CaughtUp {
		t.Fatalf("outcome %s", res.Outcome)
	}
	var cache, origin int
	for _, c := range f.fake.Calls() {
		end, err := time.Parse(time.RFC3339, c.Query["payment_date_end"])
		if err != nil {
			t.Fatalf("call %+v: payment_date_end: %v", c, err)
		}
		switch target := c.Query["query_target"]; {
		case target == "cache" && end.Before(t0.Add(-ucpoll.CacheAfter)):
			cache++
		case target == "origin" && !end.Before(t0.Add(-ucpoll.CacheAfter-time.Minute)):
			origin++
		default:
			t.Errorf("window ending %s read from %q", end, target)
		}
	}
	if cache == 0 || origin == 0 {
		t.Errorf("%d reads from the cache, %d from the origin; want both", cache, origin)
	}
}
