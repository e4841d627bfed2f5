package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/console"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/synth"
	"github.com/cartrelay/cartrelay/shared/testenv"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// BenchmarkConsolePages times every console page, as the connect function answers it (session
// check, reads, page, secret scrubbing), on the embedded store for a ten-year synthetic account:
// 100,000 orders by default, CARTRELAY_BENCH_ORDERS for more (1000000 for the figure in the
// README). Each sub-benchmark is one page; ms/page is its server time.
//
// The account is made once per size and generator version and kept under .cache/bench (see
// consoleBenchData); every run reads a copy of it.
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
	dir, meta := consoleBenchData(b, n)
	w, clk, err := openConsoleBench(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	b.Logf("%d orders of %d contacts", meta.Orders, meta.Contacts)
	email, orderKey := meta.Email, meta.OrderKey

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
			cpu := processCPU(b)
			for b.Loop() {
				resp, err := w.App.Connect(ctx, req)
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %d %v\n%s", p.name, resp.StatusCode, err, resp.Body)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
			// CPU time (every goroutine's, the garbage collector's included) is what a page costs
			// on a machine that others load too, where the clock time above also counts waiting.
			b.ReportMetric(float64((processCPU(b)-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/page")
		})
	}
}

// consoleBenchNow is the benchmark's clock: the synthetic history ends the day before.
var consoleBenchNow = time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)

// consoleBenchLayout is bumped when what consoleBenchData writes changes other than through the
// generator (the store's tables, the rollups, the saved report), so a cached account is made again
// (from the one an earlier layout cached, when there is one: see upgradeConsoleBenchData).
// Layout 2: rollup.Layout 2 (month items).
const consoleBenchLayout = 2

// consoleBenchMeta is what the benchmark needs to know of its account.
type consoleBenchMeta struct {
	Orders, Contacts int
	Email            string // the contact with the most orders
	OrderKey         string // one of its orders
}

// consoleBenchData returns a fresh copy of a data directory holding the account "big" (in
// America/New_York) with the ten-year synthetic history of n orders written as ingest would
// have left it, its rollups built and one saved report. Making it takes minutes at a million
// orders, so the first run keeps it under .cache/bench/, named by the generator's version, the
// layout and n, and later runs only copy it.
func consoleBenchData(b *testing.B, n int) (string, consoleBenchMeta) {
	b.Helper()
	name := func(layout int) string {
		return filepath.Join(testenv.RepoRoot(b), ".cache", "bench",
			fmt.Sprintf("console-pages-synth%d-layout%d-%d", synth.Version, layout, n))
	}
	cache := name(consoleBenchLayout)
	meta, err := readBenchMeta(cache)
	for layout := consoleBenchLayout - 1; err != nil && layout > 0; layout-- {
		if _, rerr := readBenchMeta(name(layout)); rerr != nil {
			continue
		}
		start := time.Now()
		if meta, err = upgradeConsoleBenchData(name(layout), cache); err != nil {
			b.Fatal(err)
		}
		b.Logf("made %s from %s in %s", cache, name(layout), time.Since(start).Round(time.Second))
	}
	if err != nil {
		start := time.Now()
		if meta, err = makeConsoleBenchData(cache, n); err != nil {
			b.Fatal(err)
		}
		b.Logf("made %s in %s", cache, time.Since(start).Round(time.Second))
	}
	dir := b.TempDir()
	if err := copyFiles(cache, dir); err != nil {
		b.Fatal(err)
	}
	return dir, meta
}

func readBenchMeta(dir string) (consoleBenchMeta, error) {
	var m consoleBenchMeta
	raw, err := os.ReadFile(filepath.Join(dir, "bench.json"))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(raw, &m)
}

// makeConsoleBenchData generates the account and keeps it as cache (see keepConsoleBench).
func makeConsoleBenchData(cache string, n int) (consoleBenchMeta, error) {
	return keepConsoleBench(cache, "", func(ctx context.Context, w *wiring.Env, clk *clock.Fake) (consoleBenchMeta, error) {
		var meta consoleBenchMeta
		if _, err := w.Accounts.Put(ctx, "big", []byte(`{"timezone":"America/New_York"}`)); err != nil {
			return meta, err
		}
		hist := synth.Generate(synth.Options{Orders: n, Seed: 1, Start: time.Date(2016, 11, 1, 0, 0, 0, 0, time.UTC),
			End: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
		if err := hist.Write(ctx, w.Store, "big", nil); err != nil {
			return meta, err
		}
		if err := rebuildConsoleBench(ctx, w, clk); err != nil {
			return meta, err
		}
		eng := &reports.Engine{Store: w.Store, Accounts: w.Accounts, Clock: clk}
		if _, err := eng.Save(ctx, "big", "Last year by month", reports.Params{Kind: "revenue", From: "2025-11-01", To: "2026-10-31", By: "month"}, clk.Now()); err != nil {
			return meta, err
		}
		busiest := hist.Customers[0]
		for _, c := range hist.Customers {
			if len(c.Orders) > len(busiest.Orders) {
				busiest = c
			}
		}
		meta = consoleBenchMeta{Orders: hist.Orders(), Contacts: len(hist.Customers), Email: busiest.EmailAt(clk.Now())}
		v, err := history.New(w.Store).LoadContact(ctx, "big", meta.Email)
		if err != nil || len(v.Orders) == 0 {
			return meta, fmt.Errorf("contact %s: %d orders, %v", meta.Email, len(v.Orders), err)
		}
		for k := range v.Orders {
			meta.OrderKey = k
			break
		}
		return meta, nil
	})
}

// upgradeConsoleBenchData makes the account of this layout from a copy of one an earlier layout
// cached, by what an upgrade does: opening the data directory (the store brings its tables up to
// date) and rebuilding the account's rollups from its stored records, then deleting the old
// generation's. At a million orders that takes minutes where generating the account again takes
// tens of them.
func upgradeConsoleBenchData(from, cache string) (consoleBenchMeta, error) {
	meta, err := readBenchMeta(from)
	if err != nil {
		return meta, err
	}
	return keepConsoleBench(cache, from, func(ctx context.Context, w *wiring.Env, clk *clock.Fake) (consoleBenchMeta, error) {
		if err := rebuildConsoleBench(ctx, w, clk); err != nil {
			return meta, err
		}
		_, err := reports.ClearRetired(ctx, w.Store, "big", clk.Now, time.Time{}, nil)
		return meta, err
	})
}

// rebuildConsoleBench builds the account's rollups from its stored records.
func rebuildConsoleBench(ctx context.Context, w *wiring.Env, clk *clock.Fake) error {
	if _, err := reports.RequestBuild(ctx, w.Store, "big", "America/New_York", reports.ReasonOperator, clk.Now()); err != nil {
		return err
	}
	_, err := (&reports.Builder{Store: w.Store, Clock: clk, SkipSettle: true}).Run(ctx, "big")
	return err
}

// keepConsoleBench opens a new data directory beside cache (a copy of seed's files, when seed
// is set), lets fill write the account, and once the store is closed records fill's meta and
// renames the directory to cache, so an interrupted run leaves nothing a later one would trust.
func keepConsoleBench(cache, seed string, fill func(ctx context.Context, w *wiring.Env, clk *clock.Fake) (consoleBenchMeta, error)) (consoleBenchMeta, error) {
	ctx := context.Background()
	var meta consoleBenchMeta
	if err := os.MkdirAll(filepath.Dir(cache), 0o755); err != nil {
		return meta, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(cache), filepath.Base(cache)+".part-")
	if err != nil {
		return meta, err
	}
	defer os.RemoveAll(tmp)
	if seed != "" {
		if err := copyFiles(seed, tmp); err != nil {
			return meta, err
		}
	}
	w, clk, err := openConsoleBench(ctx, tmp)
	if err != nil {
		return meta, err
	}
	meta, err = fill(ctx, w, clk)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return meta, err
	}
	raw, err := json.Marshal(meta)
	if err != nil {
		return meta, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "bench.json"), raw, 0o644); err != nil {
		return meta, err
	}
	if err := os.Rename(tmp, cache); err != nil {
		return meta, fmt.Errorf("keep the benchmark's account in %s: %w", cache, err)
	}
	return meta, nil
}

// openConsoleBench opens the benchmark's data directory dir with the benchmark's clock.
func openConsoleBench(ctx context.Context, dir string) (*wiring.Env, *clock.Fake, error) {
	clk := clock.NewFake(consoleBenchNow)
	w, err := operator.Embedded(ctx, dir, wiring.Options{Clock: clk,
		Config: app.Config{PublicBaseURL: hubURL, ConsoleSessionKey: consoleKey}})
	return w, clk, err
}

// copyFiles copies the regular files of dir into to, but SQLite's shared-memory index, which
// the first connection makes again.
func copyFiles(dir, to string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), "-shm") {
			continue
		}
		if err := copyFile(filepath.Join(dir, e.Name()), filepath.Join(to, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// processCPU is the CPU time the process has used so far, in user and system mode.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
