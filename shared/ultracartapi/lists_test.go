package ultracartapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
)

type lister func(c *ultracartapi.Client, ctx context.Context, since time.Time, limit, offset int) (ultracartapi.Page, error)

type listingCase struct {
	name string
	list lister
	sort string
	// id is the field holding the record's identity.
	id string
}

func listings() []listingCase {
	return []listingCase{
		{ultracartfake.AutoOrders, (*ultracartapi.Client).AutoOrdersSince, "", "auto_order_code"},
		{ultracartfake.Customers, (*ultracartapi.Client).CustomersSince, "+last_modified_dts", "customer_profile_oid"},
		{ultracartfake.Items, (*ultracartapi.Client).ItemsSince, "+last_modified_dts", "merchant_item_id"},
	}
}

// TestListingPages pages through each "_since" listing of the fake, with and without a since.
func TestListingPages(t *testing.T) {
	const n = 500
	fake := ultracartfake.New(ultracartfake.Options{AutoOrders: n, Customers: n, Items: n, Start: start, Spacing: time.Minute, SimpleKey: "k"})
	defer fake.Close()
	c := ultracartapi.New(fake.URL, ultracartapi.Credentials{SimpleKey: "k"}, nil)
	for _, l := range listings() {
		for _, tc := range []struct {
			name  string
			since time.Time
			limit int
			want  int
		}{
			{"all of history", time.Time{}, 200, n},
			{"since the 400th, odd page", start.Add(400 * time.Minute), 33, 100},
			{"since after the last", start.Add(n * time.Minute), 200, 0},
		} {
			t.Run(l.name+", "+tc.name, func(t *testing.T) {
				seen := map[string]bool{}
				offset, pages := 0, 0
				var prev time.Time
				for {
					p, err := l.list(c, context.Background(), tc.since, tc.limit, offset)
					if err != nil {
						t.Fatal(err)
					}
					pages++
					if p.Total() != tc.want {
						t.Fatalf("total %d, want %d", p.Total(), tc.want)
					}
					for _, r := range p.Records {
						var doc map[string]any
						if err := json.Unmarshal(r, &doc); err != nil || doc[l.id] == nil {
							t.Fatalf("record without %s: %s", l.id, r)
						}
						seen[fmt.Sprint(doc[l.id])] = true
						if s, ok := doc["last_modified_dts"].(string); ok {
							at, err := ultracartapi.ParseTime(s)
							if err != nil || at.Before(prev) || at.Before(tc.since) {
								t.Fatalf("last_modified_dts %s after %s, since %s (%v)", s, prev, tc.since, err)
							}
							prev = at
						}
					}
					if !p.ResultSet.More {
						break
					}
					offset = p.ResultSet.NextOffset
				}
				if len(seen) != tc.want {
					t.Fatalf("saw %d distinct records, want %d", len(seen), tc.want)
				}
				if want := max((tc.want+tc.limit-1)/tc.limit, 1); pages != want {
					t.Fatalf("%d pages, want %d", pages, want)
				}
			})
		}
	}
	for _, call := range fake.Calls() {
		if call.Method != http.MethodGet || call.Status != http.StatusOK || call.Query["_expand"] == "" {
			t.Fatalf("call %+v", call)
		}
	}
}

// TestListingWire checks the query string UltraCart gets: _since as ISO-8601 with an offset and
// left out for all of history, and the sort's '+' encoded, so it is not read as a space.
func TestListingWire(t *testing.T) {
	var got []url.Values
	var raw []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Query())
		raw = append(raw, r.URL.RawQuery)
		_, _ = w.Write([]byte(`{"success":true}`))
	}))
	defer srv.Close()
	c := ultracartapi.New(srv.URL, ultracartapi.Credentials{SimpleKey: "k"}, nil)
	since := time.Date(2026, 3, 1, 12, 30, 5, 0, time.FixedZone("EST", -5*3600))
	for _, l := range listings() {
		got, raw = nil, nil
		if _, err := l.list(c, context.Background(), since, 500, 40); err != nil {
			t.Fatal(err)
		}
		if _, err := l.list(c, context.Background(), time.Time{}, 0, 0); err != nil {
			t.Fatal(err)
		}
		q := got[0]
		if q.Get("_since") != "2026-03-01T12:30:05.000-05:00" || q.Get("_limit") != "200" || q.Get("_offset") != "40" || q.Get("_sort") != l.sort {
			t.Fatalf("%s: query %v", l.name, q)
		}
		if l.sort != "" && !strings.Contains(raw[0], "_sort=%2Blast_modified_dts") {
			t.Fatalf("%s: raw query %s", l.name, raw[0])
		}
		if got[1].Has("_since") || got[1].Get("_limit") != "200" {
			t.Fatalf("%s: all of history asked with %v", l.name, got[1])
		}
	}
}

func TestListingErrors(t *testing.T) {
	for _, l := range listings() {
		t.Run(l.name, func(t *testing.T) {
			clk := clock.NewFake(start)
			fake := ultracartfake.New(ultracartfake.Options{AutoOrders: 3, Customers: 3, Items: 3, Start: start, SimpleKey: "k",
				Rate: 2, Window: time.Hour, Clock: clk})
			defer fake.Close()
			c := ultracartapi.New(fake.URL, ultracartapi.Credentials{SimpleKey: "k"}, nil)
			if _, err := l.list(ultracartapi.New(fake.URL, ultracartapi.Credentials{SimpleKey: "nope"}, nil), context.Background(), time.Time{}, 10, 0); !errors.Is(err, ultracartapi.ErrUnauthorized) {
				t.Fatalf("wrong key: %v", err)
			}
			for range 2 {
				if _, err := l.list(c, context.Background(), time.Time{}, 10, 0); err != nil {
					t.Fatal(err)
				}
			}
			_, err := l.list(c, context.Background(), time.Time{}, 10, 0)
			var rl *ultracartapi.RateLimitedError
			if !errors.As(err, &rl) || !ultracartapi.Retryable(err) {
				t.Fatalf("over the rate: %v", err)
			}
			fake.SetDisabled(true)
			if _, err := l.list(c, context.Background(), time.Time{}, 10, 0); !errors.Is(err, ultracartapi.ErrAppDisabled) || ultracartapi.Retryable(err) {
				t.Fatalf("disabled: %v", err)
			}
		})
	}
}

// TestFakeListingLimits checks the fake refuses what UltraCart refuses, so a client that sent it
// would fail here first.
func TestFakeListingLimits(t *testing.T) {
	fake := ultracartfake.New(ultracartfake.Options{AutoOrders: 3, Customers: 3, Items: 3, Start: start, SimpleKey: "k"})
	defer fake.Close()
	for _, tc := range []struct {
		path, query string
		want        int
	}{
		{"/auto_order/auto_orders", "_limit=200", 200},
		{"/auto_order/auto_orders", "_limit=201", 400},
		{"/auto_order/auto_orders", "_sort=%2Blast_modified_dts", 400},
		{"/customer/customers", "_limit=201", 400},
		{"/customer/customers", "_sort=%2Blast_modified_dts&_since=2024-01-01T00:00:00.000%2B00:00", 200},
		{"/customer/customers", "_since=yesterday", 400},
		{"/item/items", "_limit=2000", 200},
		{"/item/items", "_limit=2001", 400},
		{"/item/items", "_sort=%2Bprice", 400},
	} {
		req, _ := http.NewRequest(http.MethodGet, fake.URL+"/rest/v2"+tc.path+"?"+tc.query, nil)
		req.Header.Set("X-UltraCart-Api-Version", ultracartapi.APIVersion)
		req.Header.Set("x-ultracart-simple-key", "k")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s?%s: %d, want %d", tc.path, tc.query, resp.StatusCode, tc.want)
		}
	}
}
