package reports_test

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/rollup"
	"github.com/cartrelay/cartrelay/shared/synth"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// benchOrders is the size of the account the scale benchmarks use: 100,000 orders by default
// (a minute of setup), CARTRELAY_BENCH_ORDERS=1000000 for the figures in the README.
func benchOrders(b *testing.B) int {
	n := 100_000
	if s := os.Getenv("CARTRELAY_BENCH_ORDERS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 100 {
			b.Fatalf("CARTRELAY_BENCH_ORDERS must be a whole number of at least 100, got %q", s)
		}
		n = v
	}
	return n
}

// BenchmarkReportsAtScale writes a ten-year synthetic account straight into the embedded store
// as ingest would have left it, rebuilds its rollups, and times the reports on it. Run it on one
// core for the rebuild figure: go test -run '^$' -bench ReportsAtScale -cpu 1 ./shared/reports/
func BenchmarkReportsAtScale(b *testing.B) {
	ctx := context.Background()
	n := benchOrders(b)
	clk := clock.NewFake(time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC))
	w, err := operator.Embedded(ctx, b.TempDir(), wiring.Options{Clock: clk})
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
	orders := hist.Orders()
	b.Logf("%d orders of %d customers written in %s", orders, len(hist.Customers), time.Since(start).Round(time.Second))

	rebuild := func(b *testing.B) reports.State {
		if _, err := reports.RequestBuild(ctx, w.Store, "big", "America/New_York", reports.ReasonOperator, clk.Now()); err != nil {
			b.Fatal(err)
		}
		s, err := (&reports.Builder{Store: w.Store, Clock: clk, SkipSettle: true}).Run(ctx, "big")
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	b.Run("rebuild", func(b *testing.B) {
		cpu0 := cpuTime()
		for b.Loop() {
			rebuild(b)
		}
		// On a machine others share, the CPU time the process used says more than the clock.
		b.ReportMetric(float64(orders)*float64(b.N)/b.Elapsed().Seconds(), "orders/s")
		b.ReportMetric(float64(orders)*float64(b.N)/(cpuTime()-cpu0).Seconds(), "orders/cpu-s")
	})
	s := rebuild(b)
	b.Logf("%s", s.LastBuild)

	e := &reports.Engine{Store: w.Store, Accounts: w.Accounts, Clock: clk}
	b.Run("verify", func(b *testing.B) {
		for b.Loop() {
			c, err := e.Verify(ctx, "big", 0, 0, nil)
			if err != nil {
				b.Fatal(err)
			}
			if len(c.Differences) > 0 {
				b.Fatalf("verify: %d orders, %d differences, first %v", c.Orders, len(c.Differences), c.Differences[0])
			}
			if c.Orders != orders {
				b.Fatalf("verify: %d orders, want %d", c.Orders, orders)
			}
		}
		b.ReportMetric(float64(orders)*float64(b.N)/b.Elapsed().Seconds(), "orders/s")
	})
	month := reports.Query{Account: "big", From: rollup.DateOf(2026, 3, 1), To: rollup.DateOf(2026, 3, 31), Grain: reports.Day}
	kinds := []struct {
		name string
		run  func() (reports.Meta, error)
	}{
		{"month/revenue", func() (reports.Meta, error) {
			r, err := e.Revenue(ctx, month)
			if err != nil {
				return reports.Meta{}, err
			}
			return r.Meta, nil
		}},
		{"month/acquisition", func() (reports.Meta, error) {
			r, err := e.Acquisition(ctx, month)
			if err != nil {
				return reports.Meta{}, err
			}
			return r.Meta, nil
		}},
		{"month/attribution-linear", func() (reports.Meta, error) {
			q := month
			q.Model = reports.Linear
			r, err := e.Attribution(ctx, q)
			if err != nil {
				return reports.Meta{}, err
			}
			return r.Meta, nil
		}},
		{"month/subscriptions", func() (reports.Meta, error) {
			r, err := e.Subscriptions(ctx, month)
			if err != nil {
				return reports.Meta{}, err
			}
			return r.Meta, nil
		}},
		{"month/products", func() (reports.Meta, error) {
			r, err := e.Products(ctx, month)
			if err != nil {
				return reports.Meta{}, err
			}
			return r.Meta, nil
		}},
		{"month/engagement", func() (reports.Meta, error) {
			r, err := e.Engagement(ctx, month)
			if err != nil {
				return reports.Meta{}, err
			}
			return r.Meta, nil
		}},
		{"cohorts-10y", func() (reports.Meta, error) {
			r, err := e.Cohorts(ctx, reports.Query{Account: "big", From: rollup.DateOf(2016, 11, 1), To: rollup.DateOf(2026, 10, 31), Horizon: 120}, reports.ByFirstOrder)
			if err != nil {
				return reports.Meta{}, err
			}
			return r.Meta, nil
		}},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			items := 0
			for b.Loop() {
				m, err := k.run()
				if err != nil {
					b.Fatal(err)
				}
				items = m.ItemsRead
			}
			b.ReportMetric(float64(items), "items/report")
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/report")
		})
	}
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
