package app_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/console"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/synth"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// BenchmarkConsolePages times every console page, as the connect function answers it (session
// check, reads, page, secret scrubbing), on the embedded store for a ten-year synthetic account:
// 100,000 orders by default, CARTRELAY_BENCH_ORDERS for more (1000000 for the figure in the
// README). Each sub-benchmark is one page; ms/op is its server time.
func BenchmarkConsolePages(b *testing.B) {
	ctx := context.Background()
	n := 100_000
	if s := os.Getenv("CARTRELAY_BENCH_ORDERS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 100 {
			b.Fatalf("CARTRELAY_BENCH_ORDERS must be a whole number of at least 100, got %q", s)
		}
		n = v
	}
	clk := clock.NewFake(time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC))
	w, err := operator.Embedded(ctx, b.TempDir(), wiring.Options{Clock: clk,
		Config: app.Config{PublicBaseURL: hubURL, ConsoleSessionKey: consoleKey}})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Accounts.Put(ctx, "big", []byte(`{"timezone":"America/New_York"}`)); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	hist := synth.Generate(synth.Options{Orders: n, Seed: 1, Start: time.Date(2016, 11, 1, 0, 0, 0, 0, time.UTC),
		End: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
	if err := hist.Write(ctx, w.Store, "big", nil); err != nil {
		b.Fatal(err)
	}
	if _, err := reports.RequestBuild(ctx, w.Store, "big", "America/New_York", reports.ReasonOperator, clk.Now()); err != nil {
		b.Fatal(err)
	}
	if _, err := (&reports.Builder{Store: w.Store, Clock: clk, SkipSettle: true}).Run(ctx, "big"); err != nil {
		b.Fatal(err)
	}
	eng := &reports.Engine{Store: w.Store, Accounts: w.Accounts, Clock: clk}
	if _, err := eng.Save(ctx, "big", "Last year by month", reports.Params{Kind: "revenue", From: "2025-11-01", To: "2026-10-31", By: "month"}, clk.Now()); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d orders of %d contacts written and rolled up in %s", hist.Orders(), len(hist.Customers), time.Since(start).Round(time.Second))

	// The busiest contact, and its newest order.
	busiest := hist.Customers[0]
	for _, c := range hist.Customers {
		if len(c.Orders) > len(busiest.Orders) {
			busiest = c
		}
	}
	email := busiest.EmailAt(clk.Now())
	v, err := history.New(w.Store).LoadContact(ctx, "big", email)
	if err != nil || len(v.Orders) == 0 {
		b.Fatalf("contact %s: %v", email, err)
	}
	var orderKey string
	for k := range v.Orders {
		orderKey = k
		break
	}

	sessions, err := console.NewSessions(consoleKey, hubURL)
	if err != nil {
		b.Fatal(err)
	}
	sess, err := sessions.IssueVia("big", console.ViaLink, clk.Now())
	if err != nil {
		b.Fatal(err)
	}
	cookie := cookieValue(b, []string{sessions.SetCookie(sess, clk.Now())})
	pages := []struct {
		name, path string
		q          url.Values
	}{
		{"home", "/console/home", nil},
		{"contacts/email-prefix", "/console/contacts", url.Values{"q": {"shopper1"}}},
		{"contacts/name", "/console/contacts", url.Values{"q": {"a"}, "by": {"name"}}},
		{"contact", "/console/contact", url.Values{"email": {email}}},
		{"orders/30-days", "/console/orders", nil},
		{"orders/refunded-year", "/console/orders", url.Values{"from": {"2025-11-01"}, "refunded": {"yes"}}},
		{"order", "/console/order", url.Values{"key": {orderKey}}},
		{"deliveries", "/console/deliveries", nil},
		{"quarantine", "/console/quarantine", nil},
		{"dead-letters", "/console/dead-letters", nil},
		{"reports", "/console/reports", nil},
		{"report/revenue-month", "/console/report", url.Values{"kind": {"revenue"}, "from": {"2026-03-01"}, "to": {"2026-03-31"}}},
		{"report/attribution-month", "/console/report", url.Values{"kind": {"attribution"}, "from": {"2026-03-01"}, "to": {"2026-03-31"}}},
		{"report/cohorts-year", "/console/report", url.Values{"kind": {"cohorts"}}},
		{"report.csv", "/console/report.csv", url.Values{"kind": {"revenue"}, "from": {"2026-03-01"}, "to": {"2026-03-31"}}},
		{"settings", "/console/settings", nil},
		{"audit", "/console/audit", nil},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			req := httpReq(http.MethodGet, p.path, "", nil, nil)
			req.RawQueryString = p.q.Encode()
			req.Cookies = []string{cookie}
			for b.Loop() {
				resp, err := w.App.Connect(ctx, req)
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %d %v\n%s", p.name, resp.StatusCode, err, resp.Body)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
		})
	}
}
