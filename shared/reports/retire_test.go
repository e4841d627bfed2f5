package reports_test

import (
	"context"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/rollup"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

// Retired generations are deleted on both stores: every item of theirs, in every part, over
// the span a build found (and the margin another zone needs), resumably, and nothing of the
// active generation, of the page views, or of another account.
func TestClearRetiredGenerations(t *testing.T) {
	onBothStores(t, "reports-retire", testClearRetired)
}

// onBothStores runs fn on the embedded store and on a DynamoDB Local table (prefix names it),
// each with a fake clock at 2026-01-05 12:00 UTC.
func onBothStores(t *testing.T, prefix string, fn func(t *testing.T, st store.Store, clk *clock.Fake)) {
	t.Run("embedded", func(t *testing.T) {
		clk := clock.NewFake(time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC))
		fn(t, testenv.EmbeddedStore(t, clk), clk)
	})
	t.Run("dynamodb", func(t *testing.T) {
		clk := clock.NewFake(time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC))
		fn(t, testenv.DynamoDBTables(t, prefix)(t, clk), clk)
	})
}

func testClearRetired(t *testing.T, st store.Store, clk *clock.Fake) {
	ctx := context.Background()
	day := rollup.DateOf(2025, 3, 10)
	month, year := int32(day.Month()), int32(2025)
	// Items of generations 2 and 3 (retired) and 4 (active), in every part, at the edges of the
	// span a build of generation 4 would find and one period beyond for the other zone, in
	// several shards; page views; and the same generation number of another account.
	type at struct {
		part   rollup.Part
		period int32
	}
	periods := []at{
		{rollup.PartDay, int32(day) - 2}, {rollup.PartDay, int32(day)}, {rollup.PartDay, int32(day) + 400},
		{rollup.PartSubDay, int32(day) + 42}, {rollup.PartSubMonth, month - 1}, {rollup.PartSubYear, year},
		{rollup.PartCohort, month + 1}, {rollup.PartMonth, month - 1},
	}
	put := func(account string, gen int, p at, shard uint16) store.Key {
		t.Helper()
		k := rollup.ItemKey{Part: p.part, Period: p.period, Shard: shard}
		key := store.Key{PK: rollup.PartitionKey(account, gen, p.part, k.PeriodString()), SK: k.SortKey()}
		if err := st.Write(ctx, store.AddTo(key, map[string]int64{"x:orders": 1}, map[string]string{"x": "o"})); err != nil {
			t.Fatal(err)
		}
		return key
	}
	var retired, kept []store.Key
	for _, gen := range []int{2, 3, 4} {
		for _, p := range periods {
			for _, shard := range []uint16{0, 7, rollup.BaseShard} {
				k := put("acme", gen, p, shard)
				if gen == 4 {
					kept = append(kept, k)
				} else {
					retired = append(retired, k)
				}
			}
		}
	}
	kept = append(kept, put("acme", 0, at{rollup.PartView, int32(day)}, 0), put("other", 2, periods[0], 0))

	// The state a build of generation 4 leaves: the span of its own items, widened.
	s := reports.State{Active: reports.Generation{N: 4, Zone: "UTC"}, LastGen: 4,
		Retired: []reports.Generation{{N: 2, Zone: "America/New_York"}, {N: 3, Zone: "UTC"}},
		Span: []reports.PartSpan{
			{Part: "C", From: month, To: month + 1}, {Part: "D", From: int32(day) - 2, To: int32(day) + 400},
			{Part: "M", From: month - 1, To: month + 1}, {Part: "S", From: int32(day) + 40, To: int32(day) + 42}, {Part: "T", From: month - 1, To: month + 1},
			{Part: "U", From: year - 1, To: year + 1},
		}}
	if _, err := reports.SaveState(ctx, st, "acme", s); err != nil {
		t.Fatal(err)
	}

	// A run with a deadline stops after its first save (every few hundred partitions; the day
	// part spans more) and the next carries on where it stopped.
	now := func() time.Time { clk.Advance(time.Second); return clk.Now() }
	first, err := reports.ClearRetired(ctx, st, "acme", now, clk.Now().Add(time.Millisecond), nil)
	if err != nil {
		t.Fatal(err)
	}
	mid, err := reports.LoadState(ctx, st, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(mid.Retired) != 2 || mid.Retired[0].Cleared == nil {
		t.Fatalf("after a run cut short: %+v", mid.Retired)
	}
	var last reports.ClearProgress
	rest, err := reports.ClearRetired(ctx, st, "acme", now, time.Time{}, func(p reports.ClearProgress) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	if first+rest != len(retired) {
		t.Fatalf("deleted %d then %d items, want %d in all", first, rest, len(retired))
	}
	if last.Generation != 3 || last.Partitions != last.Total {
		t.Fatalf("last progress %+v", last)
	}
	for _, k := range retired {
		if _, err := st.Get(ctx, k.PK, k.SK); err == nil {
			t.Errorf("%s is still there", k)
		}
	}
	for _, k := range kept {
		if _, err := st.Get(ctx, k.PK, k.SK); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	end, err := reports.LoadState(ctx, st, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(end.Retired) != 0 || end.Active.N != 4 {
		t.Fatalf("after the clear: %+v", end)
	}
	if n, err := reports.ClearRetired(ctx, st, "acme", now, time.Time{}, nil); err != nil || n != 0 {
		t.Fatalf("a clear with nothing retired: %d %v", n, err)
	}
}
