package ucpoll_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/poll"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
)

// TestAffiliatesStream walks UltraCart's affiliate query, which has no modification filter:
// the whole list, a page at a time, under UltraCart's rate limit, again an hour later, where
// the new and changed affiliates are read with the others.
func TestAffiliatesStream(t *testing.T) {
	f := newFixture(t, ultracartfake.Options{SimpleKey: "k", Rate: 2, Window: time.Minute}, ultracartapi.Credentials{SimpleKey: "k"},
		ucpoll.Options{PageSize: 2})
	for _, s := range []string{"Approved", "Pending", "Approved", "Rejected", "Pending"} {
		f.fake.AddAffiliate(s)
	}
	res := f.run(t, ucpoll.Affiliates, time.Hour)
	if res.Outcome != poll.CaughtUp || len(f.rec.perOrder) != 5 || f.rec.events != 5 {
		t.Fatalf("first walk: %s, %d affiliates in %d records (%q)", res.Outcome, len(f.rec.perOrder), f.rec.events, res.Cursor.LastError)
	}
	if f.fake.OverRate() == 0 {
		t.Fatal("the walk never met UltraCart's rate limit; the test does not cover it")
	}
	for _, c := range f.fake.Calls() {
		if c.Path != "/rest/v2/affiliate/affiliates/query" || c.Method != "POST" || c.Limit != 2 {
			t.Fatalf("request %+v", c)
		}
	}
	if !res.NextRunAt.Equal(f.clk.Now().Add(ucpoll.AffiliateInterval)) {
		t.Errorf("next walk at %v, want an hour after the walk ended (%v)", res.NextRunAt, f.clk.Now())
	}
	if due, err := ucpoll.Due(context.Background(), f.st, "acme", ucpoll.Affiliates, f.clk.Now().Add(59*time.Minute)); err != nil || due {
		t.Fatalf("due within the hour: %v %v", due, err)
	}

	// An hour on: one signs up, one is approved, the first is deleted (the rest move up).
	f.clk.Advance(time.Hour)
	f.rec.nextRun()
	added := f.fake.AddAffiliate("Pending")
	f.fake.SetAffiliate(1, map[string]any{"status": "Approved"})
	f.fake.DeleteAffiliate(0)
	res = f.run(t, ucpoll.Affiliates, time.Hour)
	if res.Outcome != poll.CaughtUp || len(f.rec.runPages) != 3 {
		t.Fatalf("second walk: %s, pages %v", res.Outcome, f.rec.runPages)
	}
	if f.rec.perOrder[strconv.Itoa(ultracartfake.AffiliateOID(added))] != 1 || !strings.Contains(string(f.rec.latest[strconv.Itoa(ultracartfake.AffiliateOID(1))]), `"Approved"`) {
		t.Fatalf("the second walk missed the signup or the approval: %v", f.rec.perOrder)
	}
	for _, p := range f.rec.runPages {
		if !strings.HasPrefix(p, "poll:ultracart:affiliates:") {
			t.Fatalf("page %q", p)
		}
	}
}

// TestAffiliatesEmptyList: a store without affiliates costs one request a walk.
func TestAffiliatesEmptyList(t *testing.T) {
	f := newFixture(t, ultracartfake.Options{SimpleKey: "k"}, ultracartapi.Credentials{SimpleKey: "k"}, ucpoll.Options{})
	if res := f.run(t, ucpoll.Affiliates, time.Hour); res.Outcome != poll.CaughtUp || len(f.fake.Calls()) != 1 || f.rec.events != 0 {
		t.Fatalf("%s, %d calls, %d records", res.Outcome, len(f.fake.Calls()), f.rec.events)
	}
}

// TestAffiliatesQueryRefused: if UltraCart refuses the query for every affiliate (its docs say
// a query without parameters fails), the stream says so with UltraCart's words, tries again an
// hour later, and the other streams go on.
func TestAffiliatesQueryRefused(t *testing.T) {
	f := newFixture(t, ultracartfake.Options{SimpleKey: "k", Customers: 3, AffiliateQueryNeedsFilter: true}, ultracartapi.Credentials{SimpleKey: "k"}, ucpoll.Options{})
	f.fake.AddAffiliate("Approved")
	res := f.run(t, ucpoll.Affiliates, time.Hour)
	if res.Outcome != poll.Later || res.Cursor.Status != "" || !strings.Contains(res.Cursor.LastError, "specify some query parameters") ||
		f.rec.events != 0 || !res.NextRunAt.Equal(f.clk.Now().Add(time.Hour)) {
		t.Fatalf("%s, status %q, last error %q, next %v, %d records", res.Outcome, res.Cursor.Status, res.Cursor.LastError, res.NextRunAt, f.rec.events)
	}
	if res := f.run(t, ucpoll.Customers, time.Hour); res.Outcome != poll.CaughtUp || f.rec.events != 3 {
		t.Fatalf("customers after the refusal: %s, %d records", res.Outcome, f.rec.events)
	}
}
