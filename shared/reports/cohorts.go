package reports

import (
	"context"
	"fmt"

	"github.com/cartrelay/cartrelay/shared/rollup"
)

// Cohort views.
const (
	// ByFirstOrder groups customers by the month of their first paid order.
	ByFirstOrder = "first-order"
	// ByFirstSeen groups contacts (leads, buyers or not) by the month they were first seen.
	ByFirstSeen = "first-seen"
)

// Cohorts is the cohort and lifetime value report: per cohort month, how many customers (or
// leads) it has and their net revenue (order view: refunds and chargebacks taken off the month
// of the order they refund) in each month since, cumulated into a value per customer (or per
// lead). A cohort younger than the horizon has months that have not happened yet; they are null,
// and the cohort is marked young, since it cannot yet be compared with older ones.
type Cohorts struct {
	Meta       Meta             `json:"meta"`
	View       string           `json:"view"`
	Horizon    int              `json:"months"`
	Currencies []CohortCurrency `json:"currencies"`
}

// CohortCurrency is the report for revenue in one currency.
type CohortCurrency struct {
	Currency string      `json:"currency"`
	Cohorts  []CohortRow `json:"cohorts"`
}

// CohortRow is one cohort month.
type CohortRow struct {
	Month string `json:"month"`
	// Size is the customers (first-order view) or leads (first-seen view) of the cohort;
	// Customers, in the first-seen view, the leads who bought.
	Size      Num  `json:"size"`
	Customers *Num `json:"customers,omitempty"`
	// Age is how many months have begun since the cohort's (the current one is still running).
	Age   int  `json:"age_months"`
	Young bool `json:"young"`
	// Net[k] is the net revenue in month k since the cohort's; Value[k] the cumulated net per
	// member through month k. Both are null for months that have not passed yet.
	Net   []*Amount `json:"net_by_month"`
	Value []*Amount `json:"value_per_member"`
}

// Cohorts answers the cohort report for the cohort months that [q.From, q.To] covers.
func (e *Engine) Cohorts(ctx context.Context, q Query, view string) (*Cohorts, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	q.Filter = q.Filter.normalized()
	if view == "" {
		view = ByFirstOrder
	}
	if view != ByFirstOrder && view != ByFirstSeen {
		return nil, fmt.Errorf("cohort view %q: use %s or %s", view, ByFirstOrder, ByFirstSeen)
	}
	if err := unsupported("cohorts", q.Filter, "a cohort's members have many orders; filter by the first touch, or the source or currency of the first order",
		"product", "last_source", "last_medium", "last_campaign"); err != nil {
		return nil, err
	}
	h := q.Horizon
	if h <= 0 {
		h = 12
	}
	v, err := e.open(ctx, q.Account)
	if err != nil {
		return nil, err
	}
	first, last := q.From.Month(), q.To.Month()
	d, err := e.load(ctx, v, rollup.PartCohort, int32(first), int32(last))
	if err != nil {
		return nil, err
	}
	current := v.cal.Today(e.now()).Month()
	kind, size := rollup.KindCohort, rollup.MCustomers
	if view == ByFirstSeen {
		kind, size = rollup.KindLead, rollup.MLeads
	}
	type sums struct {
		size, customers int64
		net             []int64
	}
	per := map[string]map[rollup.Month]*sums{} // currency → cohort
	leads := map[rollup.Month]int64{}          // first-seen view: leads, whatever the currency
	for m := first; m <= last; m++ {
		for c, ms := range d.Cells(rollup.ItemKey{Part: rollup.PartCohort, Period: int32(m)}) {
			if c.Kind() != kind {
				continue
			}
			k := rollup.CohortKeyOf(c.Dims())
			if view == ByFirstSeen && ms[rollup.MLeads] != 0 {
				// A lead is counted once, without a currency; the source filter applies to
				// buyers' first orders only.
				if q.Filter.cohort(rollup.CohortKey{Source: k.Source, First: k.First}, false) {
					leads[m] += ms[rollup.MLeads]
				}
				continue
			}
			if !q.Filter.cohort(k, true) {
				continue
			}
			if per[k.Currency] == nil {
				per[k.Currency] = map[rollup.Month]*sums{}
			}
			s := per[k.Currency][m]
			if s == nil {
				s = &sums{net: make([]int64, h+1)}
				per[k.Currency][m] = s
			}
			if view == ByFirstOrder {
				s.size += ms[size]
			} else {
				s.customers += ms[rollup.MCustomers]
			}
			for name, val := range ms {
				if kk, ok := rollup.ParseNetAfter(name); ok && kk <= h {
					s.net[kk] += val
				}
			}
		}
	}
	out := &Cohorts{View: view, Horizon: h, Currencies: []CohortCurrency{}}
	curs := map[string]bool{}
	for cur := range per {
		curs[cur] = true
	}
	if len(curs) == 0 && len(leads) > 0 {
		curs[""] = true // leads, none of whom bought yet
	}
	for _, cur := range sortedSet(curs) {
		cc := CohortCurrency{Currency: cur}
		for m := first; m <= last; m++ {
			s := per[cur][m]
			if s == nil {
				s = &sums{net: make([]int64, h+1)}
			}
			n := s.size
			if view == ByFirstSeen {
				n = leads[m]
			}
			age := int(current - m)
			spec := DrillSpec{Report: "cohorts", List: ListContacts, Part: rollup.PartCohort, Kinds: string(kind), Measure: size,
				From: int32(m), To: int32(m), Gen: v.gen.N, Filter: withCurrency(q.Filter, cur)}
			if view == ByFirstSeen {
				spec.Filter.Currency = ""
			}
			row := CohortRow{Month: m.String(), Size: Num{N: n, Drill: spec.Encode()}, Age: max(age, 0), Young: age < h}
			if view == ByFirstSeen {
				cs := spec
				cs.Filter.Currency, cs.Measure = cur, rollup.MCustomers
				row.Customers = &Num{N: s.customers, Drill: cs.Encode()}
			}
			var cum int64
			for k := 0; k <= h; k++ {
				if k > age {
					row.Net, row.Value = append(row.Net, nil), append(row.Value, nil)
					continue
				}
				cum += s.net[k]
				ns := spec
				ns.Filter.Currency, ns.List, ns.Measure = cur, ListOrders, rollup.NetAfter(k)
				row.Net = append(row.Net, &Amount{Minor: s.net[k], Currency: cur, Drill: ns.Encode()})
				row.Value = append(row.Value, &Amount{Minor: div(cum, n), Currency: cur})
			}
			cc.Cohorts = append(cc.Cohorts, row)
		}
		out.Currencies = append(out.Currencies, cc)
	}
	out.Meta = e.meta(v, "cohorts", q)
	out.Meta.Grain = Month
	return out, nil
}

// Tables is the report as two tables per currency: value per member by month since, and net
// revenue by month since.
func (r *Cohorts) Tables() []Table {
	var out []Table
	member := "customer"
	if r.View == ByFirstSeen {
		member = "lead"
	}
	for _, c := range r.Currencies {
		cols := []Column{{"cohort", "Cohort", TextColumn}, {"size", "Size", CountColumn}}
		if r.View == ByFirstSeen {
			cols = append(cols, Column{"customers", "Customers", CountColumn})
		}
		cols = append(cols, Column{"young", "Young", TextColumn})
		value, net := Table{Title: "Value per " + member + " by months since the cohort's month", Currency: c.Currency},
			Table{Title: "Net revenue by months since the cohort's month", Currency: c.Currency}
		for k := 0; k <= r.Horizon; k++ {
			col := Column{fmt.Sprintf("m%d", k), fmt.Sprintf("M%d", k), MoneyColumn}
			value.Columns, net.Columns = append(value.Columns, col), append(net.Columns, col)
		}
		value.Columns, net.Columns = append(cols, value.Columns...), append(cols, net.Columns...)
		for _, x := range c.Cohorts {
			head := []Cell{text(x.Month), numCell(x.Size)}
			if r.View == ByFirstSeen {
				head = append(head, numPtr(x.Customers))
			}
			young := ""
			if x.Young {
				young = "young"
			}
			head = append(head, text(young))
			vr, nr := append([]Cell(nil), head...), append([]Cell(nil), head...)
			for k := range x.Net {
				vr, nr = append(vr, amountPtr(x.Value[k])), append(nr, amountPtr(x.Net[k]))
			}
			value.Rows, net.Rows = append(value.Rows, vr), append(net.Rows, nr)
		}
		out = append(out, value, net)
	}
	return out
}
