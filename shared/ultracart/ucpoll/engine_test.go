package ucpoll_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/poll"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/testenv"
	"github.com/cartrelay/cartrelay/shared/ultracart"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
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
	mu sync.Mutex
	// perOrder counts the deliveries of each record (order, auto order, customer, item) by id.
	perOrder  map[string]int
	latest    map[string]json.RawMessage
	hashes    map[string]bool
	perPage   map[string]int
	events    int
	runPages  []string // pages of the current run, in order
	lastPages []string // pages of the previous run
}

func newRecorder() *recorder {
	return &recorder{perOrder: map[string]int{}, latest: map[string]json.RawMessage{}, hashes: map[string]bool{}, perPage: map[string]int{}}
}

// wantEvent is the webhook event each stream's records must be ingested as.
func wantEvent(stream string) string {
	switch stream {
	case ucpoll.Orders, ucpoll.Refunds:
		return "order_update"
	case ucpoll.AutoOrders:
		return "auto_order_update"
	case ucpoll.Customers:
		return "customer_update"
	case ucpoll.Items:
		return "item_update"
	case ucpoll.Affiliates:
		return ultracart.EventAffiliate
	}
	return ""
}

// recordID is the identity ingest keys each kind of record by.
func recordID(rec json.RawMessage) (string, error) {
	var doc struct {
		OrderID       string      `json:"order_id"`
		AutoOrderCode string      `json:"auto_order_code"`
		CustomerOID   json.Number `json:"customer_profile_oid"`
		ItemID        string      `json:"merchant_item_id"`
		AffiliateOID  json.Number `json:"affiliate_oid"`
	}
	if err := json.Unmarshal(rec, &doc); err != nil {
		return "", err
	}
	for _, id := range []string{doc.OrderID, doc.AutoOrderCode, doc.CustomerOID.String(), doc.ItemID, doc.AffiliateOID.String()} {
		if id != "" {
			return id, nil
		}
	}
	return "", fmt.Errorf("record without an id: %.100s", rec)
}

func (r *recorder) sink(_ context.Context, b ucpoll.Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if want := wantEvent(b.Stream); b.Event != want {
		return fmt.Errorf("stream %s sent its records as %q, want %q", b.Stream, b.Event, want)
	}
	for i, o := range b.Records {
		id, err := recordID(o)
		if err != nil {
			return err
		}
		se := app.SourceEvent{Account: b.Account, Source: domain.UltraCart, Name: b.Event, Payload: o,
			Delivery: b.Delivery, Index: i, Via: "poll"}
		r.hashes[se.ContentHash()] = true
		r.perOrder[id]++
		r.latest[id] = o
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

type killCase struct {
	name     string
	stream   string
	seed     uint64
	killRate float64
}

// TestBackfillSurvivesKills walks 20,000 orders on a scaled-down rate while a random half of
// runs are killed mid-request (context cancelled, or the lease taken away), resuming each time.
func TestBackfillSurvivesKills(t *testing.T) {
	backfillWithKills(t, []killCase{
		{"no kills", ucpoll.Orders, 1, 0},
		{"kills, seed 7", ucpoll.Orders, 7, 0.08},
		{"kills, seed 42", ucpoll.Orders, 42, 0.15},
	})
}

// TestSinceBackfillSurvivesKills does the same through the "_since" listings: customers, whose
// walk moves its _since page by page, and auto orders, whose walk pages by offset.
func TestSinceBackfillSurvivesKills(t *testing.T) {
	backfillWithKills(t, []killCase{
		{"customers, seed 42", ucpoll.Customers, 42, 0.15},
		{"auto orders, seed 7", ucpoll.AutoOrders, 7, 0.1},
	})
}

func backfillWithKills(t *testing.T, cases []killCase) {
	const n = 20000
	const hourly, daily = 40, 100
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			clk := clock.NewFake(t0)
			st := newStore(t, clk)
			fo := ultracartfake.Options{Start: t0.AddDate(0, 0, -90), Spacing: 4 * time.Minute,
				SimpleKey: "k", Rate: hourly, Window: time.Hour, Clock: clk}
			switch tc.stream {
			case ucpoll.Customers:
				fo.Customers = n
			case ucpoll.AutoOrders:
				fo.AutoOrders = n
			default:
				fo.Orders = n
			}
			fake := ultracartfake.New(fo)
			defer fake.Close()
			rec := newRecorder()
			eng, err := ucpoll.New(ucpoll.Deps{Deps: poll.Deps{Store: st, Clock: clk, Sleep: func(_ context.Context, d time.Duration) error { clk.Advance(d); return nil }}, Source: ultracartapi.New(fake.URL, ultracartapi.Credentials{SimpleKey: "k"}, nil), Sink: rec.sink}, ucpoll.Options{
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
				if err := st.Write(ctx, store.DeleteKey(store.Key{PK: ucpoll.AccountPK("acme"), SK: ucpoll.LeaseSK}, store.Always)); err != nil {
					t.Error(err)
				}
			})
			job := ucpoll.Job{Account: "acme", Stream: tc.stream}
			outcomes := map[string]int{}
			began := clk.Now()
			var last ucpoll.Result
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
				case errors.Is(err, ucpoll.ErrLeaseLost):
					outcomes["killed: lease lost"]++
					continue
				case err != nil:
					t.Fatalf("run %d: %v", run, err)
				}
				outcomes[res.Outcome.String()]++
				last = res
				checkResend(t, rec)
				switch res.Outcome {
				case poll.CaughtUp:
				case poll.Continue:
					continue
				case poll.Later:
					clk.Set(res.NextRunAt)
					continue
				case poll.Busy:
					clk.Advance(5 * time.Minute)
					continue
				default:
					t.Fatalf("run %d: outcome %s, cursor %+v", run, res.Outcome, res.Cursor)
				}
				break
			}
			checkResend(t, rec)
			if len(rec.perOrder) != n {
				t.Fatalf("%d distinct records reached the ingest queue, want %d", len(rec.perOrder), n)
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
					t.Fatalf("a request asked for %d records", c.Limit)
				}
			}
			checkDaily(t, calls, daily)
			cur := last.Cursor
			elapsed := clk.Now().Sub(began)
			t.Logf("%d %s in %d requests (%.1f per request; %d re-sent); simulated %s; kills %v; outcomes %v",
				n, tc.stream, len(calls), float64(n)/float64(len(calls)), rec.events-n, elapsed.Round(time.Minute), kills, outcomes)
			// A record is only sent again as part of a killed run's page, re-sent by the next run.
			killed := outcomes["killed: cancelled"] + outcomes["killed: lease lost"]
			if resent := rec.events - n; resent > killed*ultracartapi.MaxLimit {
				t.Fatalf("%d records re-sent after %d kills", resent, killed)
			}
			t.Logf("at the real 1,000/hour and 10,000/day: %.0f records/hour, %.0f records/day; cursor done %d, estimated %d",
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
