package reports

import (
	"context"
	"fmt"
	"strings"

	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/rollup"
)

// Check is what Verify found.
type Check struct {
	Account    string `json:"account"`
	Zone       string `json:"timezone"`
	Generation int    `json:"generation"`
	From       string `json:"from,omitempty"`
	To         string `json:"to,omitempty"`
	Contacts   int    `json:"contacts"`
	Orders     int    `json:"orders"`
	// Pending counts pending rollup adds not applied yet (they explain differences until the
	// next drain).
	Pending     int         `json:"pending"`
	Differences []CheckDiff `json:"differences"`
	Rebuilding  *Status     `json:"rebuilding,omitempty"`
}

// CheckDiff is one counter where the rollups and the recomputation from stored orders differ.
type CheckDiff struct {
	Period  string `json:"period"`
	Part    string `json:"part"`
	Cell    string `json:"cell"`
	Measure string `json:"measure"`
	Rollups int64  `json:"rollups"`
	Orders  int64  `json:"recomputed"`
}

func (d CheckDiff) String() string {
	return fmt.Sprintf("%s %s %s [%s]: rollups %d, recomputed from orders %d", d.Part, d.Period, d.Cell, d.Measure, d.Rollups, d.Orders)
}

// Verify recomputes the active generation's rollups from the stored orders, subscriptions and
// page views of every contact and lists every counter where the stored rollups differ, within
// [from, to] (local dates; zero dates mean everything). progress, when set, is called as
// contacts are read.
func (e *Engine) Verify(ctx context.Context, account string, from, to rollup.Date, progress func(contacts int)) (*Check, error) {
	v, err := e.open(ctx, account)
	if err != nil {
		return nil, err
	}
	repo := history.New(e.Store)
	want := rollup.NewDelta()
	out := &Check{Account: account, Zone: v.gen.Zone, Generation: v.gen.N, Differences: []CheckDiff{}}
	err = repo.EachContact(ctx, account, func(email string) error {
		root, rc, err := LoadGroup(ctx, repo, account, email)
		if err != nil {
			return err
		}
		if root.Email != email {
			return nil // moved to another email, which the index lists too
		}
		rollup.Contribute(v.cal, rc, inLayout(v.gen, want))
		out.Contacts++
		out.Orders += len(rc.Orders)
		if progress != nil {
			progress(out.Contacts)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	want = want.WithoutShards()
	all := from == 0 && to == 0
	if !all {
		out.From, out.To = from.String(), to.String()
	}
	got := rollup.NewDelta()
	for _, part := range []rollup.Part{rollup.PartDay, rollup.PartMonth, rollup.PartCohort, rollup.PartSubDay, rollup.PartSubMonth, rollup.PartSubYear} {
		lo, hi, ok := periodSpan(want, part)
		if !all {
			lo, hi, ok = partRange(part, from, to)
		}
		if !ok {
			continue
		}
		d, err := e.load(ctx, v, part, lo, hi)
		if err != nil {
			return nil, err
		}
		got.Merge(d)
	}
	for _, x := range rollup.Compare(want, got) {
		if !all {
			lo, hi, _ := partRange(x.Item.Part, from, to)
			if x.Item.Period < lo || x.Item.Period > hi {
				continue
			}
		}
		out.Differences = append(out.Differences, CheckDiff{Period: x.Item.PeriodString(), Part: partName(x.Item.Part),
			Cell: describeCell(x.Cell), Measure: x.Measure, Rollups: x.Got, Orders: x.Want})
	}
	if out.Pending, err = PendingCount(ctx, e.Store, account); err != nil {
		return nil, err
	}
	out.Rebuilding = buildStatus(v.state, v.zone, e.now())
	return out, nil
}

// periodSpan is the range of periods of part that d holds.
func periodSpan(d *rollup.Delta, part rollup.Part) (lo, hi int32, ok bool) {
	for _, k := range d.Keys() {
		if k.Part != part {
			continue
		}
		if !ok || k.Period < lo {
			lo = k.Period
		}
		if !ok || k.Period > hi {
			hi = k.Period
		}
		ok = true
	}
	return lo, hi, ok
}

// partRange is the range of periods of part that local dates [from, to] cover.
func partRange(part rollup.Part, from, to rollup.Date) (lo, hi int32, ok bool) {
	switch part {
	case rollup.PartDay, rollup.PartSubDay:
		return int32(from), int32(to), true
	case rollup.PartMonth, rollup.PartCohort, rollup.PartSubMonth:
		return int32(from.Month()), int32(to.Month()), true
	case rollup.PartSubYear:
		return int32(from.Month().Year()), int32(to.Month().Year()), true
	}
	return 0, 0, false
}

// describeCell names a cell's kind and dimensions for people.
func describeCell(c rollup.Cell) string {
	names := map[rollup.Kind]string{rollup.KindOrder: "orders", rollup.KindProduct: "product", rollup.KindRefund: "refunds",
		rollup.KindProductRefund: "product refunds", rollup.KindExcluded: "excluded", rollup.KindConversion: "conversions",
		rollup.KindSub: "subscriptions", rollup.KindSubProduct: "subscribed product", rollup.KindCohort: "cohort",
		rollup.KindLead: "lead cohort", rollup.KindAcquisition: "acquisition", rollup.KindPageView: "page views"}
	return names[c.Kind()] + " " + strings.Join(c.Dims(), " | ")
}
