package ucpoll_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/poll"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
)

// listingID is the id the recorder keys record i of a listing by.
func listingID(listing string, i int) string {
	switch listing {
	case ultracartfake.AutoOrders:
		return ultracartfake.AutoOrderCode(i)
	case ultracartfake.Customers:
		return strconv.Itoa(ultracartfake.CustomerOID(i))
	}
	return ultracartfake.ItemID(i)
}

// runToHead runs a job until it catches up, continuing it as the poll consumer would.
func (f *fixture) runToHead(t *testing.T, stream string) (ucpoll.Result, int) {
	t.Helper()
	for runs := 1; runs < 100; runs++ {
		res := f.run(t, stream, time.Hour)
		switch res.Outcome {
		case poll.CaughtUp:
			return res, runs
		case poll.Continue:
			continue
		}
		t.Fatalf("run %d: outcome %s, cursor %+v", runs, res.Outcome, res.Cursor)
	}
	t.Fatal("never caught up")
	return ucpoll.Result{}, 0
}

// TestSinceStreams walks each "_since" listing from nothing: every record arrives, re-reads stay
// within their bound, a record changed or created during the walk arrives in its latest form by
// the next run, the next run asks only for what changed since (less the overlap), and a change
// between runs is picked up by the run after it.
func TestSinceStreams(t *testing.T) {
	const n = 1000
	for _, tc := range []struct {
		name    string
		stream  string
		listing string
		spacing time.Duration
		sort    string
		change  map[string]any
		// maxReread bounds the first walk's records read twice.
		maxReread int
	}{
		{"auto orders", ucpoll.AutoOrders, ultracartfake.AutoOrders, time.Minute, "",
			map[string]any{"status": "canceled", "cancel_reason": "too much tea"}, 0},
		{"customers", ucpoll.Customers, ultracartfake.Customers, time.Minute, ultracartapi.SortByModified,
			map[string]any{"email": "renamed@example.com"}, 0},
		{"items", ucpoll.Items, ultracartfake.Items, time.Minute, ultracartapi.SortByModified,
			map[string]any{"description": "Tea blend, renamed"}, 0},
		// 500 changes a second: more than a page shares each second, so the walk pages by offset
		// inside a second and re-reads (at most) the second before each move of its _since.
		{"customers changed in bursts", ucpoll.Customers, ultracartfake.Customers, 2 * time.Millisecond, ultracartapi.SortByModified,
			map[string]any{"email": "renamed@example.com"}, n},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fo := ultracartfake.Options{SimpleKey: "k", Spacing: tc.spacing}
			switch tc.listing {
			case ultracartfake.AutoOrders:
				fo.AutoOrders = n
			case ultracartfake.Customers:
				fo.Customers = n
			case ultracartfake.Items:
				fo.Items = n
			}
			f := newFixture(t, fo, ultracartapi.Credentials{SimpleKey: "k"}, ucpoll.Options{})
			requests := 0
			f.fake.OnRequest(func(context.Context, ultracartfake.Call) {
				f.clk.Advance(20 * time.Second)
				if requests++; requests == 3 {
					// Record 0 was on the first page; the new one was never seen.
					f.fake.Modify(tc.listing, 0, tc.change)
					f.fake.Add(tc.listing)
				}
			})

			// A budget for one request: the first page's total_records sets the estimate.
			res := f.run(t, tc.stream, 100*time.Second)
			if res.Outcome != poll.Continue || res.Cursor.Done != ultracartapi.MaxLimit || res.Cursor.Estimated != n || res.Cursor.CaughtUp {
				t.Fatalf("after one page: %s, done %d, estimated %d, caught up %v", res.Outcome, res.Cursor.Done, res.Cursor.Estimated, res.Cursor.CaughtUp)
			}
			res, _ = f.runToHead(t, tc.stream)
			cur := res.Cursor
			if len(f.rec.perOrder) < n || len(f.rec.perOrder) > n+1 {
				t.Fatalf("%d distinct records after the first walk, want %d (or %d with the one created during it)", len(f.rec.perOrder), n, n+1)
			}
			reread := f.rec.events - len(f.rec.perOrder)
			t.Logf("first walk: %d records in %d requests, %d read again", f.rec.events, len(f.fake.Calls()), reread)
			if reread > tc.maxReread+1 { // +1: record 0, changed behind the walk's position
				t.Fatalf("%d records read again, want at most %d", reread, tc.maxReread+1)
			}
			if !cur.CaughtUp || cur.Since.IsZero() || !cur.WalkStarted.IsZero() || cur.Done != int64(f.rec.events) || cur.Estimated != cur.Done {
				t.Fatalf("cursor after the first walk: %+v", cur)
			}
			calls := f.fake.Calls()
			for i, c := range calls {
				if c.Path != "/rest/v2/"+map[string]string{ultracartfake.AutoOrders: "auto_order/auto_orders",
					ultracartfake.Customers: "customer/customers", ultracartfake.Items: "item/items"}[tc.listing] ||
					c.Method != "GET" || c.Status != 200 || c.Limit != ultracartapi.MaxLimit || c.Query["_sort"] != tc.sort {
					t.Fatalf("request %d: %+v", i, c)
				}
			}
			if calls[0].Query["_since"] != "" {
				t.Fatalf("the first walk asked for changes since %s; it must read all of history", calls[0].Query["_since"])
			}

			// The next run asks for what changed since the first walk, less the overlap.
			f.clk.Set(res.NextRunAt)
			before, first := f.rec.events, len(calls)
			res, _ = f.runToHead(t, tc.stream)
			calls = f.fake.Calls()
			since, err := ultracartapi.ParseTime(calls[first].Query["_since"])
			if err != nil || !since.Equal(cur.Since.Add(-15*time.Minute)) {
				t.Fatalf("second walk asked since %q (%v), want the cursor's %s less the overlap", calls[first].Query["_since"], err, cur.Since)
			}
			if again := f.rec.events - before; again > 3 {
				t.Fatalf("the second walk sent %d records; only the two changed near its start are new", again)
			}
			if len(f.rec.perOrder) != n+1 {
				t.Fatalf("%d distinct records, want %d", len(f.rec.perOrder), n+1)
			}
			for _, i := range []int{0, n} {
				if got, want := f.rec.latest[listingID(tc.listing, i)], f.fake.Record(tc.listing, i); !bytes.Equal(got, want) {
					t.Fatalf("record %d arrived as %s, want its latest version %s", i, got, want)
				}
			}

			// A change an hour later is picked up by the run after it.
			f.fake.OnRequest(nil)
			f.clk.Set(res.NextRunAt.Add(time.Hour))
			f.fake.Modify(tc.listing, 7, tc.change)
			before = f.rec.events
			res, _ = f.runToHead(t, tc.stream)
			if got, want := f.rec.latest[listingID(tc.listing, 7)], f.fake.Record(tc.listing, 7); !bytes.Equal(got, want) || f.rec.events-before > 3 {
				t.Fatalf("third walk: %d records, record 7 as %s", f.rec.events-before, got)
			}
			if !res.Cursor.Since.After(cur.Since) {
				t.Fatalf("the cursor did not move: %s after %s", res.Cursor.Since, cur.Since)
			}
		})
	}
}

// listStub serves customers from memory in a chosen order, ignoring _sort, as a listing whose
// order cannot be relied on would.
type listStub struct {
	ucpoll.API
	recs []json.RawMessage
	at   []time.Time
	desc bool
}

func (s *listStub) CustomersSince(_ context.Context, since time.Time, limit, offset int) (ultracartapi.Page, error) {
	var idx []int
	for i, t := range s.at {
		if !t.Before(since) {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool {
		if s.desc {
			return s.at[idx[a]].After(s.at[idx[b]])
		}
		return s.at[idx[a]].Before(s.at[idx[b]])
	})
	total := len(idx)
	from, to := min(offset, total), min(offset+limit, total)
	p := ultracartapi.Page{ResultSet: ultracartapi.ResultSet{Offset: from, Limit: limit, Count: to - from, More: to < total, NextOffset: to, TotalRecords: &total}}
	for _, i := range idx[from:to] {
		p.Records = append(p.Records, s.recs[i])
	}
	return p, nil
}

// TestSinceListingOutOfOrder checks the walk does not trust an order the pages contradict, nor a
// modification time in the future.
func TestSinceListingOutOfOrder(t *testing.T) {
	const n = 450
	for _, tc := range []struct {
		name   string
		desc   bool
		future bool
	}{
		{"newest first", true, false},
		{"one change stamped in the future", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub := &listStub{desc: tc.desc}
			for i := range n {
				at := t0.AddDate(0, 0, -20).Add(time.Duration(i) * time.Minute)
				if tc.future && i == n-1 {
					at = t0.AddDate(70, 0, 0)
				}
				stub.at = append(stub.at, at)
				stub.recs = append(stub.recs, json.RawMessage(fmt.Sprintf(`{"customer_profile_oid":%d,"email":"c%d@example.com","last_modified_dts":%q}`,
					i, i, at.Format(time.RFC3339))))
			}
			f := newFixture(t, ultracartfake.Options{}, ultracartapi.Credentials{}, ucpoll.Options{})
			eng, err := ucpoll.New(ucpoll.Deps{Deps: poll.Deps{Store: f.st, Clock: f.clk}, Source: stub, Sink: f.rec.sink}, ucpoll.Options{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := eng.Run(context.Background(), ucpoll.Job{Account: "acme", Stream: ucpoll.Customers}, f.clk.Now().Add(time.Hour))
			if err != nil || res.Outcome != poll.CaughtUp {
				t.Fatalf("%s: %v", res.Outcome, err)
			}
			if len(f.rec.perOrder) != n || f.rec.events != n {
				t.Fatalf("%d distinct customers in %d events, want %d once each", len(f.rec.perOrder), f.rec.events, n)
			}
			if res.Cursor.Since.After(f.clk.Now()) {
				t.Fatalf("the next walk would start at %s, after now", res.Cursor.Since)
			}
		})
	}
}

// TestSinceStopKeepsPosition disables the application in the middle of a walk: the stream
// stops with the walk's position saved, so clearing the status resumes it where it was.
func TestSinceStopKeepsPosition(t *testing.T) {
	f := newFixture(t, ultracartfake.Options{Items: 1000, SimpleKey: "k"}, ultracartapi.Credentials{SimpleKey: "k"}, ucpoll.Options{})
	pages := 0
	f.fake.OnRequest(func(context.Context, ultracartfake.Call) {
		if pages++; pages == 2 {
			f.fake.SetDisabled(true)
		}
	})
	res := f.run(t, ucpoll.Items, time.Hour)
	cur := res.Cursor
	if res.Outcome != poll.Stopped || cur.Status != ucpoll.StatusDisabled || cur.Done != 2*ultracartapi.MaxLimit ||
		cur.WalkStarted.IsZero() || cur.Key.IsZero() || cur.CaughtUp {
		t.Fatalf("%s: cursor %+v", res.Outcome, cur)
	}
	if len(f.rec.perOrder) != 2*ultracartapi.MaxLimit {
		t.Fatalf("%d items before the stop", len(f.rec.perOrder))
	}
	stored, _, err := ucpoll.LoadCursor(context.Background(), f.st, "acme", ucpoll.Items)
	if err != nil || !stored.Key.Equal(cur.Key) || stored.Offset != cur.Offset || !stored.WalkStarted.Equal(cur.WalkStarted) {
		t.Fatalf("stored cursor %+v (%v), want the walk's position %+v", stored, err, cur)
	}

	// Reconnected: the walk resumes where it stopped rather than starting over.
	f.fake.SetDisabled(false)
	if err := ucpoll.Resume(context.Background(), f.st, "acme", ucpoll.Items); err != nil {
		t.Fatal(err)
	}
	if res := f.run(t, ucpoll.Items, time.Hour); res.Outcome != poll.CaughtUp || res.Cursor.Status != "" {
		t.Fatalf("after resuming: %s, status %q", res.Outcome, res.Cursor.Status)
	}
	if len(f.rec.perOrder) != 1000 || f.rec.events != 1000 {
		t.Fatalf("%d distinct items in %d events after resuming, want 1000 once each", len(f.rec.perOrder), f.rec.events)
	}
}
