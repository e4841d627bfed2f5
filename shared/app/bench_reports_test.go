package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/phone"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/synth"
)

// rollupCounter counts the committed writes to an account's report items: rollups, their
// pending writes and state, and the refund drill-down index (every pk under A#<account>#R).
type rollupCounter struct {
	store.Store
	prefix string
	n      *atomic.Int64
}

func (c rollupCounter) count(ws []store.Write) {
	for _, w := range ws {
		if pk := w.Target().PK; pk == strings.TrimSuffix(c.prefix, "#") || strings.HasPrefix(pk, c.prefix) ||
			strings.HasPrefix(pk, strings.TrimSuffix(c.prefix, "#")+"X#") {
			c.n.Add(1)
		}
	}
}

func (c rollupCounter) Write(ctx context.Context, w store.Write) error {
	err := c.Store.Write(ctx, w)
	if err == nil {
		c.count([]store.Write{w})
	}
	return err
}

func (c rollupCounter) Transact(ctx context.Context, ws []store.Write) error {
	err := c.Store.Transact(ctx, ws)
	if err == nil {
		c.count(ws)
	}
	return err
}

// benchIngest ingests a synthetic history's events into a fresh account on the embedded store,
// with workers ingesting different customers at once, and reports events per second and the
// report item writes each event cost on average.
func benchIngest(b *testing.B, opt synth.Options, workers int) {
	ctx := context.Background()
	hist := synth.Generate(opt)
	evs := hist.Events()
	byCustomer := map[int][]synth.Event{}
	for _, e := range evs {
		byCustomer[e.Customer] = append(byCustomer[e.Customer], e)
	}
	var writes atomic.Int64
	var total, cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		h := newHarness(&testing.T{})
		h.account("acme", `,"timezone":"America/New_York"`)
		a, err := app.New(app.Deps{Store: rollupCounter{Store: h.env.Store, prefix: "A#acme#R#", n: &writes}, Queue: h.env.Queue,
			Accounts: h.env.Accounts, Clock: h.clk, Log: slog.New(slog.DiscardHandler), Phone: phone.E164})
		if err != nil {
			b.Fatal(err)
		}
		msgs := map[int][]string{}
		for c, es := range byCustomer {
			for _, e := range es {
				m, err := app.EncodeSourceEvent(ctx, h.env.Store, e.At, app.SourceEvent{Account: "acme", Source: domain.UltraCart,
					Name: e.Name, Payload: e.Payload, ReceivedAt: e.At, Delivery: fmt.Sprintf("d-%d", e.At.UnixNano())})
				if err != nil {
					b.Fatal(err)
				}
				msgs[c%workers] = append(msgs[c%workers], m)
			}
		}
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i, m := range msgs[w] {
					resp, err := a.Ingest(ctx, events.SQSEvent{Records: []events.SQSMessage{{MessageId: fmt.Sprint(i), Body: m}}})
					if err != nil || len(resp.BatchItemFailures) > 0 {
						b.Errorf("ingest: %v %+v", err, resp)
						return
					}
				}
			}()
		}
		wg.Wait()
		total, cpu = total+time.Since(start), cpu+cpuTime()-cpu0
		h.env.Close()
	}
	n := float64(len(evs) * b.N)
	b.ReportMetric(n/total.Seconds(), "events/s")
	// The CPU time per event says more than the clock on a machine others share.
	b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/event")
	b.ReportMetric(float64(writes.Load())/n, "report-writes/event")
}

// BenchmarkIngestWithRollups: a two-year history (400 orders, with refunds, renewals, email
// changes and chargebacks) ingested event by event, one at a time.
func BenchmarkIngestWithRollups(b *testing.B) {
	benchIngest(b, synth.Options{Orders: 400, Seed: 3, Start: time.Date(2024, 11, 1, 0, 0, 0, 0, time.UTC),
		End: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}, 1)
}

// BenchmarkIngestOneBusyDay: 400 orders of one day on one account, four customers' events at
// once: the rollup items of that day are shared by all of them (hot rows).
func BenchmarkIngestOneBusyDay(b *testing.B) {
	day := time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)
	benchIngest(b, synth.Options{Orders: 400, Seed: 4, Start: day, End: day.Add(24 * time.Hour)}, 4)
}

// BenchmarkIngestOneBusyDaySixteenAtOnce: the same day with sixteen customers' events at once,
// so more events share each commit; if the day's rollup items serialized ingest, this would be
// no faster per event than four.
func BenchmarkIngestOneBusyDaySixteenAtOnce(b *testing.B) {
	day := time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)
	benchIngest(b, synth.Options{Orders: 400, Seed: 4, Start: day, End: day.Add(24 * time.Hour)}, 16)
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
