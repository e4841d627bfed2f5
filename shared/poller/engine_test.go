package poller_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/poller"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/testenv"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newStore(t *testing.T, clk clock.Clock) store.Store {
	t.Helper()
	return testenv.EmbeddedStore(t, clk)
}

// recorder is the ingest side of the test: it keeps what ingest would see.
type recorder struct {
	mu        sync.Mutex
	perOrder  map[string]int
	hashes    map[string]bool
	perPage   map[string]int
	events    int
	runPages  []string // pages of the current run, in order
	lastPages []string // pages of the previous run
}

func newRecorder() *recorder {
	return &recorder{perOrder: map[string]int{}, hashes: map[string]bool{}, perPage: map[string]int{}}
}

func (r *recorder) sink(_ context.Context, b poller.Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, o := range b.Orders {
		var doc struct {
			OrderID string `json:"order_id"`
		}
		if err := json.Unmarshal(o, &doc); err != nil {
			return err
		}
		se := app.SourceEvent{Account: b.Account, Source: domain.UltraCart, Name: "order_update", Payload: o,
			Delivery: b.Delivery, Index: i, Via: "poll"}
		r.hashes[se.ContentHash()] = true
		r.perOrder[doc.OrderID]++
		r.events++
	}
	r.perPage[b.Delivery]++
	r.runPages = append(r.runPages, b.Delivery)
	return nil
}

func (r *recorder) nextRun() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.runPages) > 0 {
		r.lastPages = r.runPages
	}
	r.runPages = nil
}

// TestBackfillSurvivesKills walks 20,000 orders on a scaled-down rate while a random half of
// runs are killed mid-request (context cancelled, or the lease taken away), resuming each time.
func TestBackfillSurvivesKills(t *testing.T) {
	const n = 20000
	const hourly, daily = 40, 100
	for _, tc := range []struct {
		name     string
		seed     uint64
		killRate float64
	}{
		{"no kills", 1, 0},
		{"kills, seed 7", 7, 0.08},
		{"kills, seed 42", 42, 0.15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			clk := clock.NewFake(t0)
			st := newStore(t, clk)
			fake := ultracartfake.New(ultracartfake.Options{Orders: n, Start: t0.AddDate(0, 0, -90), Spacing: 4 * time.Minute,
				SimpleKey: "k", Rate: hourly, Window: time.Hour, Clock: clk})
			defer fake.Close()
			rec := newRecorder()
			eng, err := poller.New(poller.Deps{Store: st, Clock: clk, Source: ultracartapi.New(fake.URL, ultracartapi.Credentials{SimpleKey: "k"}, nil),
				Sink:  rec.sink,
				Sleep: func(_ context.Context, d time.Duration) error { clk.Advance(d); return nil },
			}, poller.Options{
				Start: t0.AddDate(-1, 0, 0),
				Hour:  ratelimit.Limit{Requests: hourly, Window: time.Hour, Buckets: 12},
				Day:   ratelimit.Limit{Requests: daily, Window: 24 * time.Hour, Buckets: 24},
			})
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(tc.seed, 1))
			var cancel context.CancelFunc
			kills := map[string]int{}
			fake.OnRequest(func(_ context.Context, _ ultracartfake.Call) {
				clk.Advance(2 * time.Second) // the request's own latency
				if rng.Float64() >= tc.killRate {
					return
				}
				if rng.IntN(2) == 0 {
					kills["cancel"]++
					cancel()
					return
				}
				kills["lease"]++
				if err := st.Write(ctx, store.DeleteKey(store.Key{PK: poller.AccountPK("acme"), SK: poller.LeaseSK}, store.Always)); err != nil {
					t.Error(err)
				}
			})
			job := poller.Job{Account: "acme", Stream: poller.Orders}
			outcomes := map[string]int{}
			began := clk.Now()
			var last poller.Result
			for run := 0; ; run++ {
				if run > 2000 {
					t.Fatalf("not caught up after %d runs: %+v", run, last.Cursor)
				}
				rec.nextRun()
				var rctx context.Context
				rctx, cancel = context.WithCancel(ctx)
				res, err := eng.Run(rctx, job, clk.Now().Add(15*time.Minute))
				cancel()
				switch {
				case errors.Is(err, context.Canceled):
					outcomes["killed: cancelled"]++
					continue
				case errors.Is(err, poller.ErrLeaseLost):
					outcomes["killed: lease lost"]++
					continue
				case err != nil:
					t.Fatalf("run %d: %v", run, err)
				}
				outcomes[res.Outcome.String()]++
				last = res
				checkResend(t, rec)
				switch res.Outcome {
				case poller.CaughtUp:
				case poller.Continue:
					continue
				case poller.Later:
					clk.Set(res.NextRunAt)
					continue
				case poller.Busy:
					clk.Advance(5 * time.Minute)
					continue
				default:
					t.Fatalf("run %d: outcome %s, cursor %+v", run, res.Outcome, res.Cursor)
				}
				break
			}
			checkResend(t, rec)
			if len(rec.perOrder) != n {
				t.Fatalf("%d distinct orders reached the ingest queue, want %d", len(rec.perOrder), n)
			}
			if len(rec.hashes) != n {
				t.Fatalf("%d distinct events after content dedupe, want %d", len(rec.hashes), n)
			}
			if o := fake.Overlaps(); o != 0 {
				t.Fatalf("%d requests overlapped", o)
			}
			if o := fake.OverRate(); o != 0 {
				t.Fatalf("%d requests were over the rate", o)
			}
			calls := fake.Calls()
			for _, c := range calls {
				if c.Limit > ultracartapi.MaxLimit {
					t.Fatalf("a request asked for %d orders", c.Limit)
				}
			}
			checkDaily(t, calls, daily)
			cur := last.Cursor
			elapsed := clk.Now().Sub(began)
			t.Logf("%d orders in %d requests (%.1f orders/request; %d re-sent); simulated %s; kills %v; outcomes %v",
				n, len(calls), float64(n)/float64(len(calls)), rec.events-n, elapsed.Round(time.Minute), kills, outcomes)
			t.Logf("at the real 1,000/hour and 10,000/day: %.0f orders/hour, %.0f orders/day; cursor done %d, estimated %d",
				float64(n)/float64(len(calls))*1000, float64(n)/float64(len(calls))*10000, cur.Done, cur.Estimated)
			if !cur.CaughtUp || cur.Done < n {
				t.Fatalf("cursor after the backfill: %+v", cur)
			}
		})
	}
}

// checkResend asserts that a page is only ever sent twice when it is the last page a killed
// run sent, re-sent as the first page of the next run.
func checkResend(t *testing.T, rec *recorder) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, p := range rec.runPages {
		if rec.perPage[p] <= 1 {
			continue
		}
		if i != 0 || len(rec.lastPages) == 0 || rec.lastPages[len(rec.lastPages)-1] != p {
			t.Fatalf("page %s sent %d times, and not as the re-send of a killed run's last page", p, rec.perPage[p])
		}
	}
}

// checkDaily asserts no rolling day holds more answered requests than the daily limit.
func checkDaily(t *testing.T, calls []ultracartfake.Call, limit int) {
	t.Helper()
	j := 0
	for i := range calls {
		for calls[i].At.Sub(calls[j].At) >= 24*time.Hour {
			j++
		}
		if i-j+1 > limit {
			t.Fatalf("%d requests within a day, limit %d", i-j+1, limit)
		}
	}
}
