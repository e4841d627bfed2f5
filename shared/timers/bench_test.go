package timers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/timers"
)

// BenchmarkFireDue measures a schedule run that fires 100 due timers (claim, hand-off, delete)
// on the embedded store.
func BenchmarkFireDue(b *testing.B) {
	clk := clock.NewFake(t0)
	dir := b.TempDir()
	st, db := openStore(b, dir, clk)
	defer db.Close()
	ctx := context.Background()
	r := timers.New(st, clk, timers.Options{})
	fired := 0
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for i := range 100 {
			if _, err := r.Put(ctx, timer(fmt.Sprintf("k%d", i), clk.Now())); err != nil {
				b.Fatal(err)
			}
		}
		clk.Advance(time.Minute)
		b.StartTimer()
		res, err := r.FireDue(ctx, func(context.Context, timers.Timer) error { fired++; return nil })
		if err != nil || res.Fired != 100 {
			b.Fatalf("%+v %v", res, err)
		}
	}
}
