package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/rollup"
	"github.com/cartrelay/cartrelay/shared/synth"
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
	var out []any
	for _, g := range []reports.Grain{reports.Day, reports.Week, reports.Month} {
		r, err := h.engine().Revenue(ctx, reports.Query{Account: account, From: from, To: to, Grain: g})
		if err != nil {
			h.t.Fatal(err)
		}
		r.Meta = reports.Meta{}
		out = append(out, r)
	}
	b, err := json.Marshal(out)
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

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
	evs := hist.Events()
	from, to := rollup.DateOf(2024, 11, 1), rollup.DateOf(2026, 2, 28)

	rng := rand.New(rand.NewPCG(1, 2))
	orders := map[string][]synth.Event{
		"in order":                 evs,
		"reversed":                 reversed(evs),
		"shuffled":                 shuffled(rng, evs, 0),
		"shuffled with duplicates": shuffled(rng, evs, 0.3),
	}
	var want, wantName string
	for _, name := range []string{"in order", "reversed", "shuffled", "shuffled with duplicates"} {
		h := newHarness(t)
		h.account("acme", `,"timezone":"America/New_York"`)
		h.ingestEvents("acme", orders[name])
		check := h.verifyClean("acme")
		if check.Orders < 100 {
			t.Fatalf("%s: only %d orders stored", name, check.Orders)
		}
		got := h.reportsJSON("acme", from, to)
		if want == "" {
			want, wantName = got, name
			continue
		}
		if got != want {
			t.Fatalf("reports after %q differ from those after %q:\n%s\n%s", name, wantName, firstDifference(got, want), "")
		}
	}
}

func reversed(evs []synth.Event) []synth.Event {
	out := make([]synth.Event, len(evs))
	for i, e := range evs {
		out[len(evs)-1-i] = e
	}
	return out
}

func shuffled(rng *rand.Rand, evs []synth.Event, dup float64) []synth.Event {
	out := append([]synth.Event(nil), evs...)
	for _, e := range evs {
		if rng.Float64() < dup {
			out = append(out, e)
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
