package reports

import (
	"context"
	"slices"
	"strconv"

	"github.com/cartrelay/cartrelay/shared/rollup"
)

// Acquisition is the new customers report: customers whose first paid order falls in the range,
// by their first touch, with what their first orders brought, what they have brought to date,
// and how long they took from first being seen to buying.
type Acquisition struct {
	Meta       Meta                  `json:"meta"`
	Currencies []AcquisitionCurrency `json:"currencies"`
}

// AcquisitionCurrency is the report for customers whose first order was in one currency.
type AcquisitionCurrency struct {
	Currency string           `json:"currency"`
	Rows     []AcquisitionRow `json:"rows"`
	Total    AcquisitionRow   `json:"total"`
	// Periods is the number of new customers over time, by the report's grain.
	Periods []AcquisitionPeriod `json:"periods"`
}

// AcquisitionRow is one first touch (or the total).
type AcquisitionRow struct {
	Touch        TouchRow `json:"touch"`
	NewCustomers Num      `json:"new_customers"`
	// FirstOrders is the gross of their first orders, FirstOrdersNet after those orders'
	// refunds and chargebacks.
	FirstOrders    Amount `json:"first_order_revenue"`
	FirstOrdersNet Amount `json:"first_order_net"`
	// ToDate is their net revenue to date, every order of theirs, now; PerCustomer its average.
	ToDate      Amount `json:"revenue_to_date"`
	PerCustomer Amount `json:"revenue_to_date_per_customer"`
	// AvgDaysToPurchase is the mean of the local days from first seen to first order, one
	// decimal; the buckets count customers by it.
	AvgDaysToPurchase string `json:"avg_days_to_purchase"`
	SameDay           Num    `json:"bought_same_day"`
	Within7           Num    `json:"bought_in_1_to_7_days"`
	Within30          Num    `json:"bought_in_8_to_30_days"`
	Within90          Num    `json:"bought_in_31_to_90_days"`
	Later             Num    `json:"bought_after_90_days"`
}

// AcquisitionPeriod is the new customers of one period.
type AcquisitionPeriod struct {
	Period       Period `json:"period"`
	NewCustomers Num    `json:"new_customers"`
	FirstOrders  Amount `json:"first_order_revenue"`
}

type acqSums struct {
	n, g, r, lt, days int64
	buckets           [5]int64
}

func (s *acqSums) add(ms map[string]int64) {
	s.n += ms[rollup.MAcqNew]
	s.g += ms[rollup.MAcqGross]
	s.r += ms[rollup.MAcqRefunds]
	s.lt += ms[rollup.MAcqToDate]
	s.days += ms[rollup.MAcqDaysSum]
	for i, m := range []string{rollup.MAcqDaysZero, rollup.MAcqDaysWeek, rollup.MAcqDaysMon, rollup.MAcqDaysQtr, rollup.MAcqDaysMore} {
		s.buckets[i] += ms[m]
	}
}

// Acquisition answers the new customers report. Its cells are filed under the month of each
// customer's first order, by day, so a month's report reads one month of cohort items.
func (e *Engine) Acquisition(ctx context.Context, q Query) (*Acquisition, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	q.Filter = q.Filter.normalized()
	if err := unsupported("acquisition", q.Filter, "a customer's revenue to date spans many orders; filter by the first touch, the source or the currency of the first order",
		"product", "last_source", "last_medium", "last_campaign"); err != nil {
		return nil, err
	}
	by, err := parseTouchBy(q.TouchBy)
	if err != nil {
		return nil, err
	}
	if q.Grain == "" {
		q.Grain = Day
	}
	v, err := e.open(ctx, q.Account)
	if err != nil {
		return nil, err
	}
	d, err := e.load(ctx, v, rollup.PartCohort, int32(q.From.Month()), int32(q.To.Month()))
	if err != nil {
		return nil, err
	}
	periods := Periods(q.From, q.To, q.Grain)
	type rowKey struct {
		cur   string
		touch rollup.Touch
	}
	rows := map[rowKey]*acqSums{}
	per := map[string][]acqSums{}
	for m := q.From.Month(); m <= q.To.Month(); m++ {
		for c, ms := range d.Cells(rollup.ItemKey{Part: rollup.PartCohort, Period: int32(m)}) {
			if c.Kind() != rollup.KindAcquisition {
				continue
			}
			dims := c.Dims()
			k := rollup.CohortKeyOf(dims)
			dom, _ := strconv.Atoi(dims[5])
			day := m.First() + rollup.Date(dom-1)
			if day < q.From || day > q.To || !q.Filter.cohort(k, true) {
				continue
			}
			rk := rowKey{k.Currency, by.key(k.First)}
			if rows[rk] == nil {
				rows[rk] = &acqSums{}
			}
			rows[rk].add(ms)
			if per[k.Currency] == nil {
				per[k.Currency] = make([]acqSums, len(periods))
			}
			per[k.Currency][periodOf(periods, day)].add(ms)
		}
	}
	out := &Acquisition{Currencies: []AcquisitionCurrency{}}
	curs := map[string]bool{}
	for k := range rows {
		curs[k.cur] = true
	}
	for _, cur := range sortedSet(curs) {
		ac := AcquisitionCurrency{Currency: cur}
		var total acqSums
		var keys []rollup.Touch
		for k := range rows {
			if k.cur == cur {
				keys = append(keys, k.touch)
			}
		}
		slices.SortFunc(keys, cmpTouch)
		spec := DrillSpec{Report: "acquisition", List: ListContacts, Part: rollup.PartCohort, Kinds: string(rollup.KindAcquisition),
			From: int32(q.From.Month()), To: int32(q.To.Month()), Gen: v.gen.N, Filter: withCurrency(q.Filter, cur)}
		for _, t := range keys {
			s := rows[rowKey{cur, t}]
			total.addSums(*s)
			rs := spec
			rs.Dims = touchDims(t, FirstTouch)
			ac.Rows = append(ac.Rows, acqRow(rs, q, touchRow(t), cur, *s))
		}
		ac.Total = acqRow(spec, q, TouchRow{Label: "total"}, cur, total)
		for i, p := range periods {
			s := per[cur][i]
			ps := spec
			ps.From, ps.To = int32(p.Start.Month()), int32(p.End.Month())
			ps.Dims = map[string]string{"from": p.Start.String(), "to": p.End.String()}
			ps.Measure = rollup.MAcqNew
			ac.Periods = append(ac.Periods, AcquisitionPeriod{Period: p, NewCustomers: Num{N: s.n, Drill: ps.Encode()},
				FirstOrders: Amount{Minor: s.g, Currency: cur}})
		}
		out.Currencies = append(out.Currencies, ac)
	}
	out.Meta = e.meta(v, "acquisition", q)
	return out, nil
}

func (s *acqSums) addSums(o acqSums) {
	s.n += o.n
	s.g += o.g
	s.r += o.r
	s.lt += o.lt
	s.days += o.days
	for i := range s.buckets {
		s.buckets[i] += o.buckets[i]
	}
}

func acqRow(spec DrillSpec, q Query, t TouchRow, cur string, s acqSums) AcquisitionRow {
	if spec.Dims == nil {
		spec.Dims = map[string]string{}
	}
	spec.Dims["from"], spec.Dims["to"] = q.From.String(), q.To.String()
	drill := func(m string) string { x := spec; x.Measure = m; return x.Encode() }
	amount := func(minor int64, d string) Amount { return Amount{Minor: minor, Currency: cur, Drill: d} }
	r := AcquisitionRow{
		Touch:          t,
		NewCustomers:   Num{N: s.n, Drill: drill(rollup.MAcqNew)},
		FirstOrders:    amount(s.g, drill(rollup.MAcqGross)),
		FirstOrdersNet: amount(s.g-s.r, drill(rollup.MAcqNew)),
		ToDate:         amount(s.lt, drill(rollup.MAcqToDate)),
		PerCustomer:    amount(div(s.lt, s.n), ""),
		SameDay:        Num{N: s.buckets[0], Drill: drill(rollup.MAcqDaysZero)},
		Within7:        Num{N: s.buckets[1], Drill: drill(rollup.MAcqDaysWeek)},
		Within30:       Num{N: s.buckets[2], Drill: drill(rollup.MAcqDaysMon)},
		Within90:       Num{N: s.buckets[3], Drill: drill(rollup.MAcqDaysQtr)},
		Later:          Num{N: s.buckets[4], Drill: drill(rollup.MAcqDaysMore)},
	}
	if known := s.buckets[0] + s.buckets[1] + s.buckets[2] + s.buckets[3] + s.buckets[4]; known > 0 {
		r.AvgDaysToPurchase = formatFixed(div(s.days*10, known), 1)
	}
	return r
}

func cmpTouch(a, b rollup.Touch) int {
	// "(none)" last, the rest by name.
	an, bn := a.Source == rollup.None, b.Source == rollup.None
	if an != bn {
		if an {
			return 1
		}
		return -1
	}
	switch {
	case a.Source != b.Source:
		return cmpStr(a.Source, b.Source)
	case a.Medium != b.Medium:
		return cmpStr(a.Medium, b.Medium)
	}
	return cmpStr(a.Campaign, b.Campaign)
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Tables is the report as tables: per currency, the rows by first touch, then new customers over
// time.
func (r *Acquisition) Tables() []Table {
	cols := []Column{{"touch", "First touch", TextColumn}, {"new_customers", "New customers", CountColumn},
		{"first_order_revenue", "First orders", MoneyColumn}, {"first_order_net", "First orders (net)", MoneyColumn},
		{"revenue_to_date", "Revenue to date", MoneyColumn}, {"revenue_to_date_per_customer", "Per customer", MoneyColumn},
		{"avg_days_to_purchase", "Days to purchase (avg)", NumberColumn}, {"bought_same_day", "Same day", CountColumn},
		{"bought_in_1_to_7_days", "1-7 days", CountColumn}, {"bought_in_8_to_30_days", "8-30 days", CountColumn},
		{"bought_in_31_to_90_days", "31-90 days", CountColumn}, {"bought_after_90_days", "90+ days", CountColumn}}
	row := func(x AcquisitionRow) []Cell {
		return []Cell{text(x.Touch.Label), numCell(x.NewCustomers), amountCell(x.FirstOrders), amountCell(x.FirstOrdersNet),
			amountCell(x.ToDate), amountCell(x.PerCustomer), text(x.AvgDaysToPurchase), numCell(x.SameDay), numCell(x.Within7),
			numCell(x.Within30), numCell(x.Within90), numCell(x.Later)}
	}
	var out []Table
	for _, c := range r.Currencies {
		t := Table{Title: "New customers by first touch", Currency: c.Currency, Columns: cols, Chart: []string{"new_customers", "revenue_to_date"}}
		for _, x := range c.Rows {
			t.Rows = append(t.Rows, row(x))
		}
		t.Rows = append(t.Rows, row(c.Total))
		out = append(out, t)
		pt := Table{Title: "New customers over time", Currency: c.Currency, Chart: []string{"new_customers"},
			Columns: []Column{{"period", "Period", TextColumn}, {"new_customers", "New customers", CountColumn}, {"first_order_revenue", "First orders", MoneyColumn}}}
		for _, p := range c.Periods {
			pt.Rows = append(pt.Rows, []Cell{text(p.Period.Label), numCell(p.NewCustomers), amountCell(p.FirstOrders)})
		}
		out = append(out, pt)
	}
	return out
}
