package ultracartapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
)

var start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func TestAuth(t *testing.T) {
	fake := ultracartfake.New(ultracartfake.Options{Orders: 5, Start: start, BearerToken: "tok", SimpleKey: "key"})
	defer fake.Close()
	f := ultracartapi.OrderFilter{PaymentDateBegin: start, PaymentDateEnd: start.Add(time.Hour), QueryTarget: "origin"}
	for _, tc := range []struct {
		name    string
		creds   ultracartapi.Credentials
		wantErr error
	}{
		{"bearer", ultracartapi.Credentials{BearerToken: "tok"}, nil},
		{"simple key", ultracartapi.Credentials{SimpleKey: "key"}, nil},
		{"wrong bearer", ultracartapi.Credentials{BearerToken: "nope"}, ultracartapi.ErrUnauthorized},
		{"wrong key", ultracartapi.Credentials{SimpleKey: "nope"}, ultracartapi.ErrUnauthorized},
		{"none", ultracartapi.Credentials{}, ultracartapi.ErrUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ultracartapi.New(fake.URL, tc.creds, nil).QueryOrders(context.Background(), f, 200, 0)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil && len(p.Records) != 5 {
				t.Fatalf("got %d orders, want 5", len(p.Records))
			}
		})
	}
}

func TestPagination(t *testing.T) {
	fake := ultracartfake.New(ultracartfake.Options{Orders: 1000, Start: start, Spacing: time.Minute, SimpleKey: "k", RefundEvery: 10})
	defer fake.Close()
	c := ultracartapi.New(fake.URL, ultracartapi.Credentials{SimpleKey: "k"}, nil)
	for _, tc := range []struct {
		name   string
		filter ultracartapi.OrderFilter
		limit  int
		want   int
	}{
		{"all payments", ultracartapi.OrderFilter{PaymentDateBegin: start, PaymentDateEnd: start.Add(1000 * time.Minute)}, 200, 1000},
		{"first 100 minutes, odd page", ultracartapi.OrderFilter{PaymentDateBegin: start, PaymentDateEnd: start.Add(99 * time.Minute)}, 33, 100},
		{"open end", ultracartapi.OrderFilter{PaymentDateBegin: start.Add(900 * time.Minute)}, 200, 100},
		{"refunds", ultracartapi.OrderFilter{RefundDateBegin: start, RefundDateEnd: start.Add(30 * 24 * time.Hour)}, 7, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[string]bool{}
			offset, pages := 0, 0
			for {
				p, err := c.QueryOrders(context.Background(), tc.filter, tc.limit, offset)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if p.Total() != tc.want {
					t.Fatalf("total %d, want %d", p.Total(), tc.want)
				}
				for _, r := range p.Records {
					var o struct {
						OrderID string `json:"order_id"`
					}
					if err := json.Unmarshal(r, &o); err != nil || o.OrderID == "" {
						t.Fatalf("record without order_id: %s", r)
					}
					seen[o.OrderID] = true
				}
				if !p.ResultSet.More {
					break
				}
				offset = p.ResultSet.NextOffset
			}
			if len(seen) != tc.want {
				t.Fatalf("saw %d distinct orders, want %d", len(seen), tc.want)
			}
			if wantPages := (tc.want + tc.limit - 1) / tc.limit; pages != wantPages {
				t.Fatalf("%d pages, want %d", pages, wantPages)
			}
		})
	}
}

func TestErrorMapping(t *testing.T) {
	f := ultracartapi.OrderFilter{PaymentDateBegin: start}
	t.Run("410 disabled", func(t *testing.T) {
		fake := ultracartfake.New(ultracartfake.Options{Orders: 1, Start: start, SimpleKey: "k"})
		defer fake.Close()
		fake.SetDisabled(true)
		_, err := ultracartapi.New(fake.URL, ultracartapi.Credentials{SimpleKey: "k"}, nil).QueryOrders(context.Background(), f, 10, 0)
		if !errors.Is(err, ultracartapi.ErrAppDisabled) || ultracartapi.Retryable(err) {
			t.Fatalf("err = %v, want a permanent ErrAppDisabled", err)
		}
	})
	t.Run("429 over the rate", func(t *testing.T) {
		clk := clock.NewFake(start)
		fake := ultracartfake.New(ultracartfake.Options{Orders: 1, Start: start, SimpleKey: "k", Rate: 2, Window: time.Hour, Clock: clk})
		defer fake.Close()
		c := ultracartapi.New(fake.URL, ultracartapi.Credentials{SimpleKey: "k"}, nil)
		for range 2 {
			if _, err := c.QueryOrders(context.Background(), f, 10, 0); err != nil {
				t.Fatal(err)
			}
		}
		_, err := c.QueryOrders(context.Background(), f, 10, 0)
		var rl *ultracartapi.RateLimitedError
		if !errors.As(err, &rl) || !ultracartapi.Retryable(err) {
			t.Fatalf("err = %v, want *RateLimitedError", err)
		}
		clk.Advance(time.Hour + time.Second)
		if _, err := c.QueryOrders(context.Background(), f, 10, 0); err != nil {
			t.Fatalf("after the window: %v", err)
		}
	})
	t.Run("429 on overlap", func(t *testing.T) {
		fake := ultracartfake.New(ultracartfake.Options{Orders: 1, Start: start, SimpleKey: "k"})
		defer fake.Close()
		c := ultracartapi.New(fake.URL, ultracartapi.Credentials{SimpleKey: "k"}, nil)
		release := make(chan struct{})
		entered := make(chan struct{}, 1)
		fake.OnRequest(func(context.Context, ultracartfake.Call) {
			select {
			case entered <- struct{}{}:
				<-release
			default:
			}
		})
		done := make(chan error, 1)
		go func() { _, err := c.QueryOrders(context.Background(), f, 10, 0); done <- err }()
		<-entered
		_, err := c.QueryOrders(context.Background(), f, 10, 0)
		close(release)
		var rl *ultracartapi.RateLimitedError
		if !errors.As(err, &rl) {
			t.Fatalf("overlapping request: err = %v, want 429", err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if fake.Overlaps() != 1 {
			t.Fatalf("overlaps = %d, want 1", fake.Overlaps())
		}
	})
	t.Run("5xx retryable, 400 not", func(t *testing.T) {
		for _, tc := range []struct {
			status    int
			retryable bool
		}{{500, true}, {503, true}, {400, false}, {404, false}} {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("UC-REST-ERROR", "boom")
				w.WriteHeader(tc.status)
			}))
			_, err := ultracartapi.New(srv.URL, ultracartapi.Credentials{SimpleKey: "k"}, nil).QueryOrders(context.Background(), f, 10, 0)
			srv.Close()
			if err == nil || ultracartapi.Retryable(err) != tc.retryable {
				t.Fatalf("status %d: err = %v, retryable = %v", tc.status, err, ultracartapi.Retryable(err))
			}
		}
	})
	t.Run("empty query refused locally", func(t *testing.T) {
		_, err := ultracartapi.New("http://127.0.0.1:1", ultracartapi.Credentials{SimpleKey: "k"}, nil).QueryOrders(context.Background(), ultracartapi.OrderFilter{QueryTarget: "origin"}, 10, 0)
		if !errors.Is(err, ultracartapi.ErrBadRequest) {
			t.Fatalf("err = %v", err)
		}
	})
}
