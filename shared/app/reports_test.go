package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/rollup"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/synth"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// ingestEvents runs each event through the ingest handler as its own queue message, received
// at the event's own time (a redelivered message is the same message).
func (h *harness) ingestEvents(account string, evs []synth.Event) {
	h.t.Helper()
	ctx := context.Background()
	for i, e := range evs {
		msg, err := app.EncodeSourceEvent(ctx, h.env.Store, e.At, app.SourceEvent{Account: account, Source: domain.UltraCart,
			Name: e.Name, Payload: e.Payload, ReceivedAt: e.At, Delivery: fmt.Sprintf("d-%s-%d", e.Name, e.At.UnixNano()), Index: 0})
		if err != nil {
			h.t.Fatal(err)
		}
		attrs := map[string]events.SQSMessageAttribute{"account": {DataType: "String", StringValue: &account}}
		resp, err := h.env.App.Ingest(ctx, events.SQSEvent{Records: []events.SQSMessage{{MessageId: fmt.Sprint(i), Body: msg, MessageAttributes: attrs}}})
		if err != nil || len(resp.BatchItemFailures) > 0 {
			h.t.Fatalf("ingest of %s failed: %v %+v", e, err, resp)
		}
	}
	if q := h.quarantined(account); len(q) > 0 {
		h.t.Fatalf("%d events quarantined, first: %s", len(q), q[0].Reason)
	}
}

func (h *harness) engine() *reports.Engine {
	return &reports.Engine{Store: h.env.Store, Accounts: h.env.Accounts, Clock: h.clk}
}

// reportsJSON is every report an account answers over a range, as JSON without the parts that
// describe the reading rather than the numbers.
func (h *harness) reportsJSON(account string, from, to rollup.Date) string {
	h.t.Helper()
	ctx := context.Background()
	e := h.engine()
	var out []any
	keep := func(r any, err error) {
		h.t.Helper()
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, r)
	}
	q := func(g reports.Grain) reports.Query {
		return reports.Query{Account: account, From: from, To: to, Grain: g}
	}
	for _, g := range []reports.Grain{reports.Day, reports.Week, reports.Month} {
		keep(e.Revenue(ctx, q(g)))
		keep(e.Subscriptions(ctx, q(g)))
		keep(e.Engagement(ctx, q(g)))
	}
	keep(e.Acquisition(ctx, q(reports.Month)))
	keep(e.Products(ctx, q(reports.Month)))
	for _, m := range []reports.Model{reports.FirstTouch, reports.LastTouch, reports.Linear} {
		x := q(reports.Month)
		x.Model = m
		keep(e.Attribution(ctx, x))
	}
	for _, v := range []string{reports.ByFirstOrder, reports.ByFirstSeen} {
		keep(e.Cohorts(ctx, reports.Query{Account: account, From: from, To: to, Horizon: 14}, v))
	}
	// The meta describes the reading (items read, when), not the numbers.
	b, err := json.Marshal(out)
	if err != nil {
		h.t.Fatal(err)
	}
	return string(metaPattern.ReplaceAll(b, []byte(`"meta":{}`)))
}

// metaPattern matches a report's meta object (one level of nested objects inside it).
var metaPattern = regexp.MustCompile(`"meta":\{[^{}]*(\{[^{}]*\}[^{}]*)*\}`)

func (h *harness) verifyClean(account string) *reports.Check {
	h.t.Helper()
	c, err := h.engine().Verify(context.Background(), account, 0, 0, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if len(c.Differences) > 0 || c.Pending > 0 {
		max := min(10, len(c.Differences))
		h.t.Fatalf("verify: %d differences (%d pending), first %v", len(c.Differences), c.Pending, c.Differences[:max])
	}
	return c
}

// TestReportsDoNotDependOnArrival is the exactness property: the same events, in any order and
// with any of them delivered twice, give the same reports, and those equal the recomputation from
// the stored orders. The history has late refunds, renewals, pauses and cancellations, backfilled
// old orders (the reversed order), and purchases and refunds on New York's 23- and 25-hour days
// of 2025 and in the last and first minutes of local months.
func TestReportsDoNotDependOnArrival(t *testing.T) {
	hist := synth.Generate(synth.Options{Orders: 120, Seed: 144, Edges: true,
		Start: time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	// The seed is chosen for a history that has every hard case; insist on it.
	f := hist.Features()
	if f.EmailChangeBetweenOrders == 0 || f.Disputes < 2 || f.DisputesDecided == 0 || f.Pauses == 0 || f.Cancelled == 0 ||
		f.EdgeOrders < 10 || f.Refunded < 5 || f.Renewals < 10 || f.Rejected == 0 {
		t.Fatalf("the history lacks a hard case: %+v", f)
	}
	var steps []step
	for _, e := range hist.Events() {
		steps = append(steps, step{event: &e})
	}
	views := hist.Views(144)
	if len(views) < 50 {
		t.Fatalf("only %d page views", len(views))
	}
	for _, v := range views {
		steps = append(steps, step{view: &v})
	}
	slices.SortStableFunc(steps, func(a, b step) int { return a.at().Compare(b.at()) })
	from, to := rollup.DateOf(2024, 11, 1), rollup.DateOf(2026, 2, 28)

	rng := rand.New(rand.NewPCG(1, 2))
	orders := map[string][]step{
		"in order":                 steps,
		"reversed":                 reversed(steps),
		"shuffled":                 shuffled(rng, steps, 0),
		"shuffled with duplicates": shuffled(rng, steps, 0.3),
	}
	var want, wantName string
	for _, name := range []string{"in order", "reversed", "shuffled", "shuffled with duplicates"} {
		h := newHarness(t)
		h.account("acme", `,"timezone":"America/New_York"`)
		h.run("acme", orders[name])
		check := h.verifyClean("acme")
		if check.Orders < 100 {
			t.Fatalf("%s: only %d orders stored", name, check.Orders)
		}
		got := h.reportsJSON("acme", from, to)
		if want == "" {
			want, wantName = got, name
			if !strings.Contains(got, `"converted"`) && !strings.Contains(got, `"customers":{"n":`) {
				t.Fatal("no report counts anything")
			}
			continue
		}
		if got != want {
			t.Fatalf("reports after %q differ from those after %q:\n%s", name, wantName, firstDifference(got, want))
		}
	}
}

// step is one thing that arrives: a source event or a page view.
type step struct {
	event *synth.Event
	view  *synth.View
}

func (s step) at() time.Time {
	if s.event != nil {
		return s.event.At
	}
	return s.view.At
}

// run plays the steps: events through ingest, page views through the tracking endpoint's keeper.
func (h *harness) run(account string, steps []step) {
	h.t.Helper()
	acct, err := h.env.Accounts.Get(context.Background(), account)
	if err != nil {
		h.t.Fatal(err)
	}
	var batch []synth.Event
	for _, s := range steps {
		if s.event != nil {
			batch = append(batch, *s.event)
			continue
		}
		h.ingestEvents(account, batch)
		batch = nil
		v := s.view
		if err := reports.RecordPageView(context.Background(), h.env.Store, acct, reports.PageView{Visitor: v.Visitor, URL: v.URL,
			Referrer: v.Referrer, Email: v.Email, At: v.At}, v.At); err != nil {
			h.t.Fatal(err)
		}
	}
	h.ingestEvents(account, batch)
}

func reversed[T any](xs []T) []T {
	out := make([]T, len(xs))
	for i, x := range xs {
		out[len(xs)-1-i] = x
	}
	return out
}

func shuffled[T any](rng *rand.Rand, xs []T, dup float64) []T {
	out := append([]T(nil), xs...)
	for _, x := range xs {
		if rng.Float64() < dup {
			out = append(out, x)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func firstDifference(a, b string) string {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			lo := max(0, i-300)
			return fmt.Sprintf("at byte %d:\n%s\nvs\n%s", i, a[lo:min(len(a), i+200)], b[lo:min(len(b), i+200)])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}

// TestTimezoneChangeOnTheSchedule: the schedule turns a changed time zone into a rebuild, and
// rollups rebuilt from stored records equal those ingest kept event by event: after a round
// trip through UTC, every report in New York is what it was.
func TestTimezoneChangeOnTheSchedule(t *testing.T) {
	h, from, to := ingestedForSchedule(t, 80)
	ny := drillHandles.ReplaceAllString(h.reportsJSON("acme", from, to), "")
	ctx := context.Background()
	schedule := func(zone string) {
		t.Helper()
		if _, err := h.env.Accounts.Put(ctx, "acme", []byte(`{"timezone":"`+zone+`"}`)); err != nil {
			t.Fatal(err)
		}
		if err := h.env.App.Schedule(ctx, events.EventBridgeEvent{Time: h.clk.Now()}); err != nil {
			t.Fatal(err)
		}
		c := h.verifyClean("acme")
		if c.Zone != zone || c.Rebuilding != nil {
			t.Fatalf("after the schedule: %+v", c)
		}
	}
	schedule("UTC")
	if utc := drillHandles.ReplaceAllString(h.reportsJSON("acme", from, to), ""); utc == ny {
		t.Fatal("the reports in UTC are those in New York")
	}
	schedule("America/New_York")
	if got := drillHandles.ReplaceAllString(h.reportsJSON("acme", from, to), ""); got != ny {
		t.Fatalf("rebuilt reports differ from those ingest kept:\n%s", firstDifference(got, ny))
	}
}

// ingestedForSchedule is a harness whose sleeps advance its clock (so a build's wait for ingests
// in flight passes at once), with a synthetic history of about orders orders of 2025 ingested
// event by event into acme (America/New_York), and the range its reports are compared over.
func ingestedForSchedule(t *testing.T, orders int) (h *harness, from, to rollup.Date) {
	t.Helper()
	h = newHarnessWith(t, wiring.Options{Sleep: func(_ context.Context, d time.Duration) error { h.clk.Advance(d); return nil }})
	h.account("acme", `,"timezone":"America/New_York"`)
	hist := synth.Generate(synth.Options{Orders: orders, Seed: 7, Edges: true,
		Start: time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	h.ingestEvents("acme", hist.Events())
	return h, rollup.DateOf(2024, 11, 1), rollup.DateOf(2026, 2, 28)
}

// drillHandles matches drill-down handles, which name the generation they were read from.
var drillHandles = regexp.MustCompile(`,?"drill":"[^"]*"`)

// TestLayoutUpgradeOnTheSchedule: rollups an earlier version wrote in an earlier layout (here,
// without month items) are read as that layout has them, exactly, until the schedule has rebuilt
// them in this one; reports answer from the old generation meanwhile, and the same afterwards.
func TestLayoutUpgradeOnTheSchedule(t *testing.T) {
	h, from, to := ingestedForSchedule(t, 60)
	want := drillHandles.ReplaceAllString(h.reportsJSON("acme", from, to), "")
	ctx := context.Background()

	// The generation as layout 1 left it: no month items, and no layout in the state.
	s, err := reports.LoadState(ctx, h.env.Store, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	old := s.Active.N
	cleared := 0
	for m := from.Month(); m <= to.Month(); m++ {
		n, err := store.ClearPartition(ctx, h.env.Store, rollup.PartitionKey("acme", old, rollup.PartMonth, m.String()))
		if err != nil {
			t.Fatal(err)
		}
		cleared += n
	}
	if cleared < 13 {
		t.Fatalf("ingest wrote only %d month items", cleared)
	}
	s.Active.Layout = 0
	if _, err := reports.SaveState(ctx, h.env.Store, "acme", s); err != nil {
		t.Fatal(err)
	}
	h.verifyClean("acme")
	if got := drillHandles.ReplaceAllString(h.reportsJSON("acme", from, to), ""); got != want {
		t.Fatalf("reports of the layout 1 generation:\n%s", firstDifference(got, want))
	}

	// Ingest into it keeps it as its layout has it: days, and no month items.
	more := synth.Generate(synth.Options{Orders: 8, Seed: 21,
		Start: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)})
	h.ingestEvents("acme", more.Events())
	for m := from.Month(); m <= to.Month(); m++ {
		items, err := store.QueryAll(ctx, h.env.Store, store.Query{PK: rollup.PartitionKey("acme", old, rollup.PartMonth, m.String())})
		if err != nil || len(items) > 0 {
			t.Fatalf("ingest into the layout 1 generation wrote %d month items for %s (%v)", len(items), m, err)
		}
	}
	h.verifyClean("acme")
	after := drillHandles.ReplaceAllString(h.reportsJSON("acme", from, to), "")
	if after == want {
		t.Fatal("the orders ingested into the layout 1 generation count nothing")
	}
	want = after

	// Requested, not built yet: the old generation answers, and says a build is coming.
	if _, err := reports.RequestBuild(ctx, h.env.Store, "acme", "America/New_York", reports.ReasonLayout, h.clk.Now()); err != nil {
		t.Fatal(err)
	}
	r, err := h.engine().Revenue(ctx, reports.Query{Account: "acme", From: from, To: to, Grain: reports.Month})
	if err != nil {
		t.Fatal(err)
	}
	if r.Meta.Generation != old || r.Meta.Rebuilding == nil || r.Meta.Rebuilding.Phase != "requested" {
		t.Fatalf("while the upgrade is pending: generation %d, rebuilding %+v", r.Meta.Generation, r.Meta.Rebuilding)
	}

	if err := h.env.App.Schedule(ctx, events.EventBridgeEvent{Time: h.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	s, err = reports.LoadState(ctx, h.env.Store, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Active.N == old || s.Active.Layout != rollup.Layout || s.Building != nil {
		t.Fatalf("after the schedule: active %+v, building %+v", s.Active, s.Building)
	}
	months, err := store.QueryAll(ctx, h.env.Store, store.Query{PK: rollup.PartitionKey("acme", s.Active.N, rollup.PartMonth, "2025-03")})
	if err != nil || len(months) == 0 {
		t.Fatalf("the rebuilt generation has no month item for 2025-03: %v", err)
	}
	h.verifyClean("acme")
	if got := drillHandles.ReplaceAllString(h.reportsJSON("acme", from, to), ""); got != want {
		t.Fatalf("reports after the upgrade:\n%s", firstDifference(got, want))
	}
	// Nothing more to do on the next run.
	if err := h.env.App.Schedule(ctx, events.EventBridgeEvent{Time: h.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if again, err := reports.LoadState(ctx, h.env.Store, "acme", ""); err != nil || again.Active.N != s.Active.N || again.Building != nil {
		t.Fatalf("a second run: %+v %v", again, err)
	}
}
