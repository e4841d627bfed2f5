package reports_test

import (
	"context"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/rollup"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/synth"
)

// oneAccount is the account getter of a store that holds one account.
type oneAccount struct{ zone string }

func (a oneAccount) Get(_ context.Context, id string, _ ...accounts.Field) (accounts.Account, error) {
	return accounts.Account{ID: id, Timezone: a.zone}, nil
}

// A rebuilt generation's month items, on both stores: verify finds no difference, and revenue by
// month read from them is revenue by month read from the days, for a year with both ends cut.
func TestRebuiltMonthItems(t *testing.T) {
	onBothStores(t, "reports-months", testRebuiltMonthItems)
}

func testRebuiltMonthItems(t *testing.T, st store.Store, clk *clock.Fake) {
	ctx := context.Background()
	const zone = "America/New_York"
	hist := synth.Generate(synth.Options{Orders: 150, Seed: 9, Edges: true,
		Start: time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err := hist.Write(ctx, st, "acme", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := reports.RequestBuild(ctx, st, "acme", zone, reports.ReasonOperator, clk.Now()); err != nil {
		t.Fatal(err)
	}
	s, err := (&reports.Builder{Store: st, Clock: clk, SkipSettle: true}).Run(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if s.Active.Layout != rollup.Layout {
		t.Fatalf("the rebuilt generation is in layout %d, want %d", s.Active.Layout, rollup.Layout)
	}
	e := &reports.Engine{Store: st, Accounts: oneAccount{zone}, Clock: clk}
	c, err := e.Verify(ctx, "acme", 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Differences) > 0 || c.Orders < 100 {
		t.Fatalf("verify of %d orders: %d differences, first %v", c.Orders, len(c.Differences), c.Differences)
	}

	q := reports.Query{Account: "acme", From: date("2025-01-20"), To: date("2025-12-10"), Grain: reports.Month}
	fromMonths, err := e.Revenue(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	old := s
	old.Active.Layout = 0 // read as a generation without month items is: every day
	if _, err := reports.SaveState(ctx, st, "acme", old); err != nil {
		t.Fatal(err)
	}
	fromDays, err := e.Revenue(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := numbers(t, fromMonths, nil), numbers(t, fromDays, nil); got != want {
		t.Fatalf("by month from month items:\n%s\nfrom days:\n%s", got, want)
	}
	// Ten whole months and the days of the two cut ones, against 325 days.
	if fromMonths.Meta.ItemsRead >= fromDays.Meta.ItemsRead/4 {
		t.Fatalf("from month items %d items read, from days %d", fromMonths.Meta.ItemsRead, fromDays.Meta.ItemsRead)
	}
	if len(fromMonths.Currencies) == 0 || fromMonths.Currencies[0].Total.Orders.N < 50 {
		t.Fatalf("the year counts too little: %+v", fromMonths.Currencies)
	}
}
