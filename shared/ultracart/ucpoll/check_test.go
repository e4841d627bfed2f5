package ucpoll_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/lease"
	"github.com/cartrelay/cartrelay/shared/poll"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
)

func TestCheckAsksOneCheapQuestion(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	st := newStore(t, clk)
	fake := ultracartfake.New(ultracartfake.Options{Orders: 5, Start: t0.Add(-3 * time.Hour), Spacing: 30 * time.Minute, SimpleKey: "good", Clock: clk})
	t.Cleanup(fake.Close)
	hour := ratelimit.Limit{Requests: 2, Window: time.Hour, Buckets: 12}
	check := func(key string) error {
		eng, err := ucpoll.New(ucpoll.Deps{Deps: poll.Deps{Store: st, Clock: clk}, Source: ultracartapi.New(fake.URL, ultracartapi.Credentials{SimpleKey: key}, nil), Sink: func(context.Context, ucpoll.Batch) error { return nil }}, ucpoll.Options{Hour: hour})
		if err != nil {
			t.Fatal(err)
		}
		return eng.Check(ctx, "acme")
	}
	if err := check("good"); err != nil {
		t.Fatalf("a good key: %v", err)
	}
	if err := check("bad"); !errors.Is(err, ultracartapi.ErrUnauthorized) {
		t.Fatalf("a bad key: %v, want ErrUnauthorized", err)
	}
	calls := fake.Calls()
	if len(calls) != 2 || calls[0].Path != "/rest/v2/order/orders/query" || calls[0].Limit != 1 || calls[0].Query["payment_date_begin"] == "" {
		t.Fatalf("calls %+v, want order queries for one order of a payment date range", calls)
	}
	// The checks counted against the shared budget: the third is refused without asking.
	if err := check("good"); !errors.Is(err, ucpoll.ErrNoBudget) {
		t.Fatalf("over the budget: %v, want ErrNoBudget", err)
	}
	if len(fake.Calls()) != 2 {
		t.Fatal("a request was sent over the budget")
	}
	// The lease was given back.
	if held, err := lease.Held(ctx, st, store.Key{PK: ucpoll.AccountPK("acme"), SK: ucpoll.LeaseSK}); err != nil || held {
		t.Fatalf("lease held after the check: %v %v", held, err)
	}
}

// failing answers every request with a server error.
type failing struct{ calls int }

func (f *failing) err() error {
	f.calls++
	return &ultracartapi.StatusError{Status: http.StatusInternalServerError, Message: "database unavailable"}
}
func (f *failing) QueryOrders(context.Context, ultracartapi.OrderFilter, int, int) (ultracartapi.Page, error) {
	return ultracartapi.Page{}, f.err()
}
func (f *failing) AutoOrdersSince(context.Context, time.Time, int, int) (ultracartapi.Page, error) {
	return ultracartapi.Page{}, f.err()
}
func (f *failing) CustomersSince(context.Context, time.Time, int, int) (ultracartapi.Page, error) {
	return ultracartapi.Page{}, f.err()
}
func (f *failing) ItemsSince(context.Context, time.Time, int, int) (ultracartapi.Page, error) {
	return ultracartapi.Page{}, f.err()
}
func (f *failing) Affiliates(context.Context, int, int) (ultracartapi.Page, error) {
	return ultracartapi.Page{}, f.err()
}

// TestAFailedRequestShowsBeforeTheRetry checks that the cursor carries a failed request's error
// while the run waits to retry it, not only once the run gives up.
func TestAFailedRequestShowsBeforeTheRetry(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	st := newStore(t, clk)
	src := &failing{}
	var seen []string
	eng, err := ucpoll.New(ucpoll.Deps{Deps: poll.Deps{Store: st, Clock: clk, Sleep: func(_ context.Context, d time.Duration) error {
		cur, _, err := ucpoll.LoadCursor(ctx, st, "acme", ucpoll.Orders)
		if err != nil {
			return err
		}
		seen = append(seen, cur.LastError)
		clk.Advance(d)
		return nil
	}}, Source: src, Sink: func(context.Context, ucpoll.Batch) error { return nil }}, ucpoll.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.Run(ctx, ucpoll.Job{Account: "acme", Stream: ucpoll.Orders}, t0.Add(14*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) == 0 || src.calls < 2 {
		t.Fatalf("no retry happened (%d calls, %d waits)", src.calls, len(seen))
	}
	for i, e := range seen {
		if !strings.Contains(e, "database unavailable") {
			t.Fatalf("wait %d: the stored cursor says %q while the run waits to retry", i, e)
		}
	}
	if res.Outcome != poll.Later || !strings.Contains(res.Cursor.LastError, "database unavailable") {
		t.Fatalf("result %v %q", res.Outcome, res.Cursor.LastError)
	}
}

func TestRewindStartsAWalkFurtherBack(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	st := newStore(t, clk)
	fake := ultracartfake.New(ultracartfake.Options{Orders: 40, Start: t0.AddDate(0, 0, -40).Add(time.Hour), Spacing: 24 * time.Hour, SimpleKey: "k", Clock: clk})
	t.Cleanup(fake.Close)
	var sent int
	eng, err := ucpoll.New(ucpoll.Deps{Deps: poll.Deps{Store: st, Clock: clk}, Source: ultracartapi.New(fake.URL, ultracartapi.Credentials{SimpleKey: "k"}, nil), Sink: func(_ context.Context, b ucpoll.Batch) error { sent += len(b.Records); return nil }}, ucpoll.Options{Start: t0.AddDate(0, 0, -10)})
	if err != nil {
		t.Fatal(err)
	}
	job := ucpoll.Job{Account: "acme", Stream: ucpoll.Orders}
	res, err := eng.Run(ctx, job, t0.Add(14*time.Minute))
	if err != nil || res.Outcome != poll.CaughtUp || sent != 10 {
		t.Fatalf("first walk: %v %v, %d orders", res.Outcome, err, sent)
	}
	if moved, err := ucpoll.Rewind(ctx, st, "acme", ucpoll.Orders, t0.AddDate(0, 0, -5)); err != nil || moved {
		t.Fatalf("a later date moved the walk: %v %v", moved, err)
	}
	moved, err := ucpoll.Rewind(ctx, st, "acme", ucpoll.Orders, t0.AddDate(0, -3, 0))
	if err != nil || !moved {
		t.Fatalf("rewind: %v %v", moved, err)
	}
	cur, _, _ := ucpoll.LoadCursor(ctx, st, "acme", ucpoll.Orders)
	if !cur.Began.Equal(t0.AddDate(0, -3, 0)) || cur.CaughtUp || cur.Done != 0 {
		t.Fatalf("rewound cursor %+v", cur)
	}
	sent = 0
	if res, err = eng.Run(ctx, job, t0.Add(14*time.Minute)); err != nil || res.Outcome != poll.CaughtUp || sent != 40 {
		t.Fatalf("walk after the rewind: %v %v, %d orders, want all 40", res.Outcome, err, sent)
	}
	if moved, _ := ucpoll.Rewind(ctx, st, "acme", ucpoll.Customers, t0.AddDate(-5, 0, 0)); moved {
		t.Fatal("a stream that reads all of history was rewound")
	}
}
