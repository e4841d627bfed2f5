package reports

import (
	"context"
	"slices"

	"github.com/cartrelay/cartrelay/shared/rollup"
)

// Subscriptions is the subscriptions report: per period, subscriptions started, started again,
// cancelled (per subscription, not per customer) and replaced by an upgrade; those active at the
// period's end (paused ones count as active, and are also shown on their own); monthly recurring
// revenue at the period's end, each subscription's amount normalized to 30 days; churn over the
// 30 days to the period's end; and renewals with their revenue.
type Subscriptions struct {
	Meta       Meta                   `json:"meta"`
	Currencies []SubscriptionCurrency `json:"currencies"`
}

// SubscriptionCurrency is the report for subscriptions billed in one currency.
type SubscriptionCurrency struct {
	Currency string            `json:"currency"`
	Periods  []SubscriptionRow `json:"periods"`
}

// SubscriptionRow is one period.
type SubscriptionRow struct {
	Period    Period `json:"period"`
	Started   Num    `json:"started"`
	Restarted Num    `json:"restarted"`
	Cancelled Num    `json:"cancelled"`
	Upgraded  Num    `json:"upgraded"`
	// Active, Paused and MRR are taken at the period's end; NoFrequency counts active
	// subscriptions whose billing frequency cartrelay could not read (left out of MRR).
	Active      Num    `json:"active_at_end"`
	Paused      Num    `json:"paused_at_end"`
	MRR         Amount `json:"mrr_at_end"`
	NoFrequency Num    `json:"active_without_known_frequency"`
	// Churn is cancellations in the 30 days to the period's end ÷ (active 30 days before +
	// started in those 30 days), as a percentage ("" when there is nothing to divide by).
	Churn          string `json:"churn_30d_percent"`
	Renewals       Num    `json:"renewals"`
	RenewalRevenue Amount `json:"renewal_revenue"`
}

type subFlows struct {
	started, restarted, cancelled, merged, active, paused, mrr, noFreq int64
}

func (s *subFlows) add(ms map[string]int64) {
	s.started += ms[rollup.MSubStarted]
	s.restarted += ms[rollup.MSubRestarted]
	s.cancelled += ms[rollup.MSubCancelled]
	s.merged += ms[rollup.MSubMerged]
	s.active += ms[rollup.MSubActive]
	s.paused += ms[rollup.MSubPaused]
	s.mrr += ms[rollup.MSubMRR]
	s.noFreq += ms[rollup.MSubNoFrequency]
}

func (s *subFlows) plus(o subFlows) {
	s.started += o.started
	s.restarted += o.restarted
	s.cancelled += o.cancelled
	s.merged += o.merged
	s.active += o.active
	s.paused += o.paused
	s.mrr += o.mrr
	s.noFreq += o.noFreq
}

// firstSubscriptionYear bounds how far back the stock of subscriptions is summed from.
const firstSubscriptionYear = 2000

// Subscriptions answers the subscriptions report. Stocks (active, paused, MRR) are the sum of
// every start and end before the date: whole years, then whole months of the last year, then
// days, so a month's report reads a few hundred items whatever the history's length.
func (e *Engine) Subscriptions(ctx context.Context, q Query) (*Subscriptions, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	q.Filter = q.Filter.normalized()
	if q.Grain == "" {
		q.Grain = Day
	}
	v, err := e.open(ctx, q.Account)
	if err != nil {
		return nil, err
	}
	// Days from the first of the month 30 days before the range (for churn), months of that
	// year before it, and the years before.
	base := q.From - 30
	dayFrom := base.Month().First()
	monthFrom := rollup.MonthOf(dayFrom.Month().Year(), 1)
	days, err := e.load(ctx, v, rollup.PartSubDay, int32(dayFrom), int32(q.To))
	if err != nil {
		return nil, err
	}
	months, err := e.load(ctx, v, rollup.PartSubMonth, int32(monthFrom), int32(dayFrom.Month())-1)
	if err != nil {
		return nil, err
	}
	years, err := e.load(ctx, v, rollup.PartSubYear, firstSubscriptionYear, int32(monthFrom.Year())-1)
	if err != nil {
		return nil, err
	}
	orderDays, err := e.load(ctx, v, rollup.PartDay, int32(q.From), int32(q.To))
	if err != nil {
		return nil, err
	}
	f := q.Filter
	kind := rollup.KindSub
	if f.Product != "" {
		kind = rollup.KindSubProduct
	}
	match := func(c rollup.Cell) (string, bool) {
		if c.Kind() != kind {
			return "", false
		}
		dims := c.Dims()
		seg := rollup.SegmentOf(dims)
		if !f.segment(seg) || (kind == rollup.KindSubProduct && dims[8] != f.Product) {
			return "", false
		}
		return seg.Currency, true
	}
	opening := map[string]*subFlows{} // stock before dayFrom, by currency
	addTo := func(m map[string]*subFlows, d *rollup.Delta, k rollup.ItemKey) {
		for c, ms := range d.Cells(k) {
			if cur, ok := match(c); ok {
				if m[cur] == nil {
					m[cur] = &subFlows{}
				}
				m[cur].add(ms)
			}
		}
	}
	for y := int32(firstSubscriptionYear); y < int32(monthFrom.Year()); y++ {
		addTo(opening, years, rollup.ItemKey{Part: rollup.PartSubYear, Period: y})
	}
	for m := monthFrom; m < dayFrom.Month(); m++ {
		addTo(opening, months, rollup.ItemKey{Part: rollup.PartSubMonth, Period: int32(m)})
	}
	daily := map[rollup.Date]map[string]*subFlows{}
	curs := map[string]bool{}
	for cur := range opening {
		curs[cur] = true
	}
	for d := dayFrom; d <= q.To; d++ {
		m := map[string]*subFlows{}
		addTo(m, days, rollup.ItemKey{Part: rollup.PartSubDay, Period: int32(d)})
		daily[d] = m
		for cur := range m {
			curs[cur] = true
		}
	}
	type renewal struct{ n, g int64 }
	renewals := map[string]map[rollup.Date]renewal{}
	for d := q.From; d <= q.To; d++ {
		for c, ms := range orderDays.Cells(rollup.ItemKey{Part: rollup.PartDay, Period: int32(d)}) {
			if c.Kind() != rollup.KindOrder || f.Product != "" {
				continue
			}
			seg := rollup.SegmentOf(c.Dims())
			if !f.segment(seg) || ms[rollup.MRebills] == 0 {
				continue
			}
			if renewals[seg.Currency] == nil {
				renewals[seg.Currency] = map[rollup.Date]renewal{}
			}
			r := renewals[seg.Currency][d]
			renewals[seg.Currency][d] = renewal{r.n + ms[rollup.MRebills], r.g + ms[rollup.MRebillGross]}
			curs[seg.Currency] = true
		}
	}

	periods := Periods(q.From, q.To, q.Grain)
	out := &Subscriptions{Currencies: []SubscriptionCurrency{}}
	for _, cur := range sortedSet(curs) {
		// The stock at the end of each day, from the opening balance.
		stock := map[rollup.Date]subFlows{}
		var run subFlows
		if o := opening[cur]; o != nil {
			run = *o
		}
		flows := func(d rollup.Date) subFlows {
			if x := daily[d][cur]; x != nil {
				return *x
			}
			return subFlows{}
		}
		for d := dayFrom; d <= q.To; d++ {
			run.plus(flows(d))
			stock[d] = run
		}
		sc := SubscriptionCurrency{Currency: cur}
		spec := DrillSpec{Report: "subscriptions", List: ListSubscriptions, Part: rollup.PartSubDay, Kinds: string(kind),
			Gen: v.gen.N, Filter: withCurrency(f, cur)}
		for _, p := range periods {
			var in subFlows
			var ren renewal
			for d := p.Start; d <= p.End; d++ {
				in.plus(flows(d))
				r := renewals[cur][d]
				ren.n, ren.g = ren.n+r.n, ren.g+r.g
			}
			end := stock[p.End]
			// Churn over (end-30, end]: cancellations ÷ (active at end-30 + starts since).
			var window subFlows
			for d := p.End - 29; d <= p.End; d++ {
				window.plus(flows(d))
			}
			before := stock[p.End-30]
			flow := func(m string) Num {
				x := spec
				x.From, x.To, x.Measure = int32(p.Start), int32(p.End), m
				return Num{Drill: x.Encode()}
			}
			stockOf := func(m string, n int64) Num {
				x := spec
				x.AsOf, x.Measure = int32(p.End), m
				return Num{N: n, Drill: x.Encode()}
			}
			row := SubscriptionRow{Period: p,
				Started: flow(rollup.MSubStarted), Restarted: flow(rollup.MSubRestarted),
				Cancelled: flow(rollup.MSubCancelled), Upgraded: flow(rollup.MSubMerged),
				Active: stockOf(rollup.MSubActive, end.active), Paused: stockOf(rollup.MSubPaused, end.paused),
				MRR: Amount{Minor: end.mrr, Currency: cur}, NoFrequency: stockOf(rollup.MSubNoFrequency, end.noFreq),
				Churn: percent(window.cancelled, before.active+window.started+window.restarted)}
			row.Started.N, row.Restarted.N, row.Cancelled.N, row.Upgraded.N = in.started, in.restarted, in.cancelled, in.merged
			rs := DrillSpec{Report: "subscriptions", List: ListOrders, Part: rollup.PartDay, Kinds: string(rollup.KindOrder),
				Measure: rollup.MRebills, From: int32(p.Start), To: int32(p.End), Gen: v.gen.N, Filter: withCurrency(f, cur)}
			row.Renewals = Num{N: ren.n, Drill: rs.Encode()}
			rs.Measure = rollup.MRebillGross
			row.RenewalRevenue = Amount{Minor: ren.g, Currency: cur, Drill: rs.Encode()}
			sc.Periods = append(sc.Periods, row)
		}
		out.Currencies = append(out.Currencies, sc)
	}
	out.Meta = e.meta(v, "subscriptions", q)
	return out, nil
}

// Tables is the report as one table per currency.
func (r *Subscriptions) Tables() []Table {
	var out []Table
	for _, c := range r.Currencies {
		t := Table{Title: "Subscriptions", Currency: c.Currency, Chart: []string{"active_at_end", "mrr_at_end"},
			Columns: []Column{{"period", "Period", TextColumn}, {"started", "Started", CountColumn}, {"restarted", "Restarted", CountColumn},
				{"cancelled", "Cancelled", CountColumn}, {"upgraded", "Upgraded", CountColumn}, {"active_at_end", "Active at end", CountColumn},
				{"paused_at_end", "Of which paused", CountColumn}, {"mrr_at_end", "MRR at end", MoneyColumn},
				{"churn_30d_percent", "Churn 30 days %", PercentColumn}, {"renewals", "Renewals", CountColumn},
				{"renewal_revenue", "Renewal revenue", MoneyColumn}, {"active_without_known_frequency", "Active, frequency unknown", CountColumn}}}
		for _, x := range slices.Clone(c.Periods) {
			t.Rows = append(t.Rows, []Cell{text(x.Period.Label), numCell(x.Started), numCell(x.Restarted), numCell(x.Cancelled),
				numCell(x.Upgraded), numCell(x.Active), numCell(x.Paused), amountCell(x.MRR), text(x.Churn), numCell(x.Renewals),
				amountCell(x.RenewalRevenue), numCell(x.NoFrequency)})
		}
		out = append(out, t)
	}
	return out
}
