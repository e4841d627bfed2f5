package reports_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/rollup"
	"github.com/cartrelay/cartrelay/shared/store"
)

var (
	metaRe  = regexp.MustCompile(`"meta":\{[^{}]*(\{[^{}]*\}[^{}]*)*\}`)
	drillRe = regexp.MustCompile(`,?"drill":"[^"]*"`)
)

// numbers is a report as JSON without its meta (which describes the reading) and its drill-down
// handles (which name the generation they were read from).
func numbers(t *testing.T, r any, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return drillRe.ReplaceAllString(metaRe.ReplaceAllString(string(b), `"meta":{}`), "")
}

// A time zone change builds a new generation while reports keep answering from the old one, and
// ingest waits for the build (its events stay on the queue) instead of changing what is read.
func TestTimezoneChangeRebuildsInTheBackground(t *testing.T) {
	e := fuller(t)
	ctx := context.Background()
	q := reports.Query{Account: "acme", From: date("2025-03-01"), To: date("2025-04-30"), Grain: reports.Month}
	before, err := e.e.Revenue(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	nyNumbers := numbers(t, before, nil)

	// A rebuild in the same zone gives the same numbers as ingest kept.
	if _, err := reports.RequestBuild(ctx, e.w.Store, "acme", "America/New_York", reports.ReasonOperator, e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	b := &reports.Builder{Store: e.w.Store, Clock: e.clk, SkipSettle: true}
	s, err := b.Run(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if s.Active.N != 2 || s.Building != nil || len(s.Retired) != 1 {
		t.Fatalf("after a rebuild: %+v", s)
	}
	again, err := e.e.Revenue(ctx, q)
	if got := numbers(t, again, err); got != nyNumbers {
		t.Fatalf("a rebuild changed the numbers:\n%s\nvs ingest's\n%s", got, nyNumbers)
	}
	if again.Meta.Generation != 2 {
		t.Fatalf("generation %d", again.Meta.Generation)
	}

	// The merchant moves the account to UTC.
	if _, err := e.w.Accounts.Put(ctx, "acme", []byte(`{"timezone":"UTC"}`)); err != nil {
		t.Fatal(err)
	}
	r, err := e.e.Revenue(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if r.Meta.Zone != "America/New_York" || r.Meta.Rebuilding == nil || r.Meta.Rebuilding.Phase != "requested" || r.Meta.Rebuilding.Zone != "UTC" {
		t.Fatalf("before the build starts: %+v", r.Meta)
	}
	if _, err := reports.RequestBuild(ctx, e.w.Store, "acme", "UTC", reports.ReasonTimezone, e.clk.Now()); err != nil {
		t.Fatal(err)
	}

	// While the build settles, a new order waits on the queue and reports answer in New York.
	late := order{id: "E", email: "carol@example.com", paid: "2025-04-30T23:30:00Z", total: "12.00"}.payload()
	held := false
	var progress []string
	b = &reports.Builder{Store: e.w.Store, Clock: e.clk,
		Progress: func(p reports.Progress) {
			if len(progress) == 0 || progress[len(progress)-1] != p.Phase {
				progress = append(progress, p.Phase)
			}
		},
		Sleep: func(ctx context.Context, d time.Duration) error {
			if d != reports.Settle {
				t.Errorf("settle of %s", d)
			}
			resp := e.ingestRaw("order_create", late)
			held = len(resp.BatchItemFailures) == 1
			r, err := e.e.Revenue(ctx, q)
			if got := numbers(t, r, err); got != nyNumbers || r.Meta.Rebuilding == nil || r.Meta.Rebuilding.Phase != "building" {
				t.Errorf("during the build: %+v\n%s", r.Meta, got)
			}
			e.clk.Advance(d)
			return nil
		}}
	s, err = b.Run(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if !held {
		t.Fatal("ingest did not wait for the build")
	}
	if s.Active.Zone != "UTC" || s.Active.N != 3 || s.Building != nil {
		t.Fatalf("after the build: %+v", s)
	}
	if want := "[settle count read write]"; fmtSlice(progress) != want {
		t.Errorf("progress phases %v, want %s", progress, want)
	}
	utc, err := e.e.Revenue(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	mar, apr := utc.Currencies[0].Periods[0], utc.Currencies[0].Periods[1]
	// Jane's second order (2025-04-01 02:00 UTC) was March 31 in New York; in UTC it is April's.
	if utc.Meta.Zone != "UTC" || utc.Meta.Rebuilding != nil || mar.Orders.N != 2 || apr.Orders.N != 2 || apr.Gross.Decimal() != "80.00" {
		t.Fatalf("in UTC: %+v march %d orders, april %d orders %s", utc.Meta, mar.Orders.N, apr.Orders.N, apr.Gross.Decimal())
	}

	// The held order arrives again and counts in the new generation.
	if resp := e.ingestRaw("order_create", late); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("after the build, ingest still fails: %+v", resp)
	}
	utc, err = e.e.Revenue(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if apr := utc.Currencies[0].Periods[1]; apr.Orders.N != 3 || apr.Gross.Decimal() != "92.00" {
		t.Fatalf("april after the held order: %d orders, %s", apr.Orders.N, apr.Gross.Decimal())
	}
	check, err := e.e.Verify(ctx, "acme", 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(check.Differences) != 0 || check.Generation != 3 || check.Zone != "UTC" {
		t.Fatalf("verify: %+v", check)
	}

	// The replaced generations' items are deleted, and the reports answer the same.
	before = utc
	oldItems := func() int {
		n := 0
		for _, gen := range []int{1, 2} {
			// Jane's first order: March 9 in New York, March 10 in UTC.
			for _, d := range []string{"2025-03-09", "2025-03-10"} {
				items, err := store.QueryAll(ctx, e.w.Store, store.Query{PK: rollup.PartitionKey("acme", gen, rollup.PartDay, d)})
				if err != nil {
					t.Fatal(err)
				}
				n += len(items)
			}
		}
		return n
	}
	if oldItems() == 0 {
		t.Fatal("the replaced generations have no items to delete")
	}
	if _, err := reports.ClearRetired(ctx, e.w.Store, "acme", e.clk.Now, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	if n := oldItems(); n != 0 {
		t.Fatalf("%d items of the replaced generations are left", n)
	}
	if s, err := reports.LoadState(ctx, e.w.Store, "acme", ""); err != nil || len(s.Retired) != 0 {
		t.Fatalf("after the clear: %+v %v", s, err)
	}
	after, err := e.e.Revenue(ctx, q)
	if got, want := numbers(t, after, err), numbers(t, before, nil); got != want {
		t.Fatalf("the clear changed the numbers:\n%s\nvs\n%s", got, want)
	}
	if check, err := e.e.Verify(ctx, "acme", 0, 0, nil); err != nil || len(check.Differences) != 0 {
		t.Fatalf("verify after the clear: %v %+v", err, check)
	}
}

// A build that fails gives its lock back at once and says why; a second request from the
// operator starts it again.
func TestFailedBuildReleasesIngest(t *testing.T) {
	e := scenario(t)
	ctx := context.Background()
	if _, err := reports.RequestBuild(ctx, e.w.Store, "acme", "UTC", reports.ReasonTimezone, e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("the machine is shutting down")
	b := &reports.Builder{Store: e.w.Store, Clock: e.clk, Sleep: func(context.Context, time.Duration) error { return boom }}
	if _, err := b.Run(ctx, "acme"); !errors.Is(err, boom) {
		t.Fatalf("run: %v", err)
	}
	s, err := reports.LoadState(ctx, e.w.Store, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Building == nil || s.Building.Locked(e.clk.Now()) || s.Building.Error == "" || s.Active.N != 1 || s.LastGen != 2 {
		t.Fatalf("after a failed build: %+v %+v", s, s.Building)
	}
	// Ingest goes on into the active generation.
	if resp := e.ingestRaw("order_create", order{id: "F", email: "dan@example.com", paid: "2025-03-03T12:00:00Z", total: "5.00"}.payload()); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("ingest after a failed build: %+v", resp)
	}
	b = &reports.Builder{Store: e.w.Store, Clock: e.clk, SkipSettle: true}
	s, err = b.Run(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	// The failed attempt's number is never used again.
	if s.Active.N != 3 || s.Active.Zone != "UTC" {
		t.Fatalf("after the second attempt: %+v", s)
	}
	check, err := e.e.Verify(ctx, "acme", 0, 0, nil)
	if err != nil || len(check.Differences) != 0 || check.Orders != 5 {
		t.Fatalf("verify: %v %+v", err, check)
	}
}

func fmtSlice(xs []string) string { return fmt.Sprint(xs) }
func (e *env) ingestRaw(name string, payload json.RawMessage) events.SQSEventResponse {
	e.t.Helper()
	ctx := context.Background()
	now := e.clk.Now()
	msg, err := app.EncodeSourceEvent(ctx, e.w.Store, now, app.SourceEvent{Account: "acme", Source: domain.UltraCart, Name: name,
		Payload: payload, ReceivedAt: now, Delivery: "d", Index: 0})
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := e.w.App.Ingest(ctx, events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m", Body: msg}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}
