package reports

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/cartrelay/cartrelay/shared/rollup"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Revenue is the orders and revenue report: per currency and period, orders, gross, refunds in
// both views, net, average order value, new and returning customers and renewals; and a line
// that counts the orders left out of it.
type Revenue struct {
	Meta       Meta              `json:"meta"`
	Currencies []RevenueCurrency `json:"currencies"`
	Excluded   []ExcludedLine    `json:"excluded"`
}

// RevenueCurrency is the report for one currency: amounts in two currencies are never added.
type RevenueCurrency struct {
	Currency string       `json:"currency"`
	Periods  []RevenueRow `json:"periods"`
	Total    RevenueRow   `json:"total"`
}

// RevenueRow is one period (or the total). Refunds are given in both views: cash (a refund
// counts on the day it happened) and order (against the day its order was paid, so a period's
// order-view net can still change later). Values that cannot be given are nil: counts of
// distinct customers for a period the range cuts (and for the total of more than one period),
// and customer and renewal splits under a product filter.
type RevenueRow struct {
	Period       Period `json:"period"`
	Orders       Num    `json:"orders"`
	Gross        Amount `json:"gross"`
	RefundsCash  Amount `json:"refunds_cash"`
	RefundsOrder Amount `json:"refunds_order"`
	// ChargebacksCash and ChargebacksOrder are the part of the refunds that are standing
	// chargebacks.
	ChargebacksCash    Amount  `json:"chargebacks_cash"`
	ChargebacksOrder   Amount  `json:"chargebacks_order"`
	NetCash            Amount  `json:"net_cash"`
	NetOrder           Amount  `json:"net_order"`
	AOV                Amount  `json:"aov"`
	NewCustomers       *Num    `json:"new_customers"`
	NewRevenue         *Amount `json:"new_customer_revenue"`
	ReturningOrders    *Num    `json:"returning_orders"`
	ReturningRevenue   *Amount `json:"returning_revenue"`
	Customers          *Num    `json:"customers"`
	ReturningCustomers *Num    `json:"returning_customers"`
	Renewals           *Num    `json:"renewals"`
	RenewalRevenue     *Amount `json:"renewal_revenue"`
}

// ExcludedLine counts orders in the range that are not revenue, by reason: test, rejected,
// deleted, unpaid, or incomplete (paid, but the source never sent its amounts).
type ExcludedLine struct {
	Reason   string `json:"reason"`
	Currency string `json:"currency"`
	Orders   Num    `json:"orders"`
	Total    Amount `json:"total"`
}

type revSums struct {
	orders, gross, refOrder, refCash, cbOrder, cbCash, new, newGross, rebills, rebillGross int64
	cust                                                                                   [3]int64 // by day, week, month
}

// Revenue answers the orders and revenue report.
func (e *Engine) Revenue(ctx context.Context, q Query) (*Revenue, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	if q.Grain == "" {
		q.Grain = Day
	}
	q.Filter = q.Filter.normalized()
	v, err := e.open(ctx, q.Account)
	if err != nil {
		return nil, err
	}
	periods := Periods(q.From, q.To, q.Grain)
	f := q.Filter
	byProduct := f.Product != ""
	sums := map[string][]revSums{} // currency → per period
	excluded := map[exKey][2]int64{}
	// A year of days holds some 150,000 counters over a few hundred distinct cells, so each
	// cell's label is read once (by its id, the same in every item) and each counter is then
	// added where it belongs without building a Delta.
	cells := map[string]*revCell{}
	add := func(part rollup.Part) func(period int32, it store.Item) error {
		return func(period int32, it store.Item) error {
			day := rollup.Date(period)
			if part == rollup.PartMonth {
				day = rollup.Month(period).First()
			}
			return addRevenue(it, cells, sums, excluded, periods, day, f, byProduct)
		}
	}
	for _, r := range revenueReads(v.gen, q, byProduct) {
		if err := e.scan(ctx, v, r.part, r.from, r.to, add(r.part)); err != nil {
			return nil, err
		}
	}

	out := &Revenue{Currencies: []RevenueCurrency{}, Excluded: []ExcludedLine{}}
	for _, cur := range slices.Sorted(maps.Keys(sums)) {
		rc := RevenueCurrency{Currency: cur}
		var total revSums
		for i, p := range periods {
			s := sums[cur][i]
			rc.Periods = append(rc.Periods, e.revenueRow(v, q, cur, p, s, byProduct, q.Grain))
			total.add(s)
		}
		tp := Period{Start: q.From, End: q.To, Label: "total", Whole: len(periods) == 1 && periods[0].Whole}
		rc.Total = e.revenueRow(v, q, cur, tp, total, byProduct, q.Grain)
		out.Currencies = append(out.Currencies, rc)
	}
	for _, k := range sortedExcluded(excluded) {
		x := excluded[k]
		spec := DrillSpec{Report: "revenue", List: ListOrders, Part: rollup.PartDay, Kinds: string(rollup.KindExcluded),
			Measure: rollup.MOrders, From: int32(q.From), To: int32(q.To), Gen: v.gen.N, Filter: withCurrency(f, k.cur),
			Dims: map[string]string{"reason": k.reason}}
		spec.Filter.Product = ""
		out.Excluded = append(out.Excluded, ExcludedLine{Reason: k.reason, Currency: k.cur,
			Orders: Num{N: x[0], Drill: spec.Encode()}, Total: Amount{Minor: x[1], Currency: k.cur}})
	}
	out.Meta = e.meta(v, "revenue", q)
	return out, nil
}

// addRevenue adds the counters of one rollup item, of the period day falls in, to sums (by
// currency, then period) and excluded. cells keeps what the report makes of each cell, by id.
func addRevenue(it store.Item, cells map[string]*revCell, sums map[string][]revSums, excluded map[exKey][2]int64,
	periods []Period, day rollup.Date, f Filter, byProduct bool) error {
	for name, val := range it.Counters {
		if val == 0 {
			continue
		}
		id, m, ok := rollup.SplitCounter(name)
		c := cells[id]
		if c == nil {
			label, found := it.Labels[id]
			if !ok || !found {
				return fmt.Errorf("rollup item %s / %s: counter %q names no cell", it.PK, it.SK, name)
			}
			c = newRevCell(rollup.Cell(label), f, byProduct)
			cells[id] = c
		}
		if !c.counts {
			continue
		}
		if c.kind == rollup.KindExcluded {
			x := excluded[c.excluded]
			switch m {
			case rollup.MOrders:
				x[0] += val
			case rollup.MGross:
				x[1] += val
			}
			excluded[c.excluded] = x
			continue
		}
		if c.sums == nil {
			if c.sums = sums[c.currency]; c.sums == nil {
				c.sums = make([]revSums, len(periods))
				sums[c.currency] = c.sums
			}
		}
		c.add(&c.sums[periodOf(periods, day)], m, val)
	}
	return nil
}

// partRead is one range of periods of a part that a report reads.
type partRead struct {
	part     rollup.Part
	from, to int32
}

// revenueReads is what the revenue report reads: the days of the range, except that by month
// (without a product filter, whose cells months do not hold) a whole month is its month item,
// one item per shard instead of a month of days: a year is twelve partitions.
func revenueReads(g Generation, q Query, byProduct bool) []partRead {
	days := func(from, to rollup.Date) partRead { return partRead{rollup.PartDay, int32(from), int32(to)} }
	if q.Grain != Month || byProduct || !g.hasMonths() {
		return []partRead{days(q.From, q.To)}
	}
	var out []partRead
	for _, p := range Periods(q.From, q.To, Month) {
		m := p.Start.Month()
		switch {
		case !p.Whole:
			out = append(out, days(p.Start, p.End))
		case len(out) > 0 && out[len(out)-1].part == rollup.PartMonth && out[len(out)-1].to == int32(m)-1:
			out[len(out)-1].to = int32(m)
		default:
			out = append(out, partRead{rollup.PartMonth, int32(m), int32(m)})
		}
	}
	return out
}

// revCell is what the revenue report makes of one rollup cell: whether it counts under the
// report's filter, and where its counters go.
type revCell struct {
	kind     rollup.Kind
	counts   bool
	currency string
	excluded exKey     // for an excluded cell: its reason and currency
	sums     []revSums // its currency's sums per period, once it has counted
}

func newRevCell(c rollup.Cell, f Filter, byProduct bool) *revCell {
	dims := c.Dims()
	seg := rollup.SegmentOf(dims)
	rc := &revCell{kind: c.Kind(), currency: seg.Currency}
	if !f.segment(seg) {
		return rc
	}
	switch rc.kind {
	case rollup.KindOrder, rollup.KindRefund:
		rc.counts = !byProduct
	case rollup.KindProduct, rollup.KindProductRefund:
		rc.counts = byProduct && dims[8] == f.Product
	case rollup.KindExcluded:
		rc.counts = true
		rc.excluded = exKey{dims[8], seg.Currency}
	}
	return rc
}

// add adds the cell's counter of measure m into s. A product cell counts like an order cell,
// and a product refund cell like a refund cell, in the measures both have.
func (c *revCell) add(s *revSums, m string, v int64) {
	switch c.kind {
	case rollup.KindProduct:
		if m != rollup.MOrders && m != rollup.MGross && m != rollup.MRefunds {
			return
		}
		fallthrough
	case rollup.KindOrder:
		switch m {
		case rollup.MOrders:
			s.orders += v
		case rollup.MGross:
			s.gross += v
		case rollup.MRefunds:
			s.refOrder += v
		case rollup.MChargebacks:
			s.cbOrder += v
		case rollup.MNew:
			s.new += v
		case rollup.MNewGross:
			s.newGross += v
		case rollup.MRebills:
			s.rebills += v
		case rollup.MRebillGross:
			s.rebillGross += v
		case rollup.MCustomersDay:
			s.cust[0] += v
		case rollup.MCustomersWeek:
			s.cust[1] += v
		case rollup.MCustomersMonth:
			s.cust[2] += v
		}
	case rollup.KindProductRefund:
		if m != rollup.MRefunds {
			return
		}
		fallthrough
	case rollup.KindRefund:
		switch m {
		case rollup.MRefunds:
			s.refCash += v
		case rollup.MChargebacks:
			s.cbCash += v
		}
	}
}

func (s *revSums) add(o revSums) {
	s.orders += o.orders
	s.gross += o.gross
	s.refOrder += o.refOrder
	s.refCash += o.refCash
	s.cbOrder += o.cbOrder
	s.cbCash += o.cbCash
	s.new += o.new
	s.newGross += o.newGross
	s.rebills += o.rebills
	s.rebillGross += o.rebillGross
	for i := range s.cust {
		s.cust[i] += o.cust[i]
	}
}

func withCurrency(f Filter, cur string) Filter {
	f.Currency = cur
	return f
}

func (e *Engine) revenueRow(v *view, q Query, cur string, p Period, s revSums, byProduct bool, g Grain) RevenueRow {
	spec := DrillSpec{Report: "revenue", List: ListOrders, Part: rollup.PartDay, Kinds: string(rollup.KindOrder),
		From: int32(p.Start), To: int32(p.End), Gen: v.gen.N, Filter: withCurrency(q.Filter, cur)}
	refundKind := string(rollup.KindRefund)
	if byProduct {
		spec.Kinds, refundKind = string(rollup.KindProduct), string(rollup.KindProductRefund)
	}
	drill := func(m string) string { x := spec; x.Measure = m; return x.Encode() }
	amount := func(minor int64, d string) Amount { return Amount{Minor: minor, Currency: cur, Drill: d} }
	cash := spec
	cash.Kinds, cash.Measure = refundKind, rollup.MRefunds
	cashCB := cash
	cashCB.Measure = rollup.MChargebacks
	r := RevenueRow{
		ChargebacksCash:  amount(s.cbCash, cashCB.Encode()),
		Period:           p,
		Orders:           Num{N: s.orders, Drill: drill(rollup.MOrders)},
		Gross:            amount(s.gross, drill(rollup.MGross)),
		RefundsCash:      amount(s.refCash, cash.Encode()),
		RefundsOrder:     amount(s.refOrder, drill(rollup.MRefunds)),
		ChargebacksOrder: amount(s.cbOrder, drill(rollup.MChargebacks)),
		NetCash:          amount(s.gross-s.refCash, ""),
		NetOrder:         amount(s.gross-s.refOrder, drill(rollup.MOrders)),
		AOV:              amount(div(s.gross, s.orders), ""),
	}
	if byProduct {
		return r
	}
	contacts := spec
	contacts.List = ListContacts
	newC := contacts
	newC.Measure = rollup.MNew
	r.NewCustomers = &Num{N: s.new, Drill: newC.Encode()}
	nr := amount(s.newGross, drill(rollup.MNewGross))
	r.NewRevenue = &nr
	ret := spec
	ret.Measure, ret.Without = rollup.MOrders, rollup.MNew
	r.ReturningOrders = &Num{N: s.orders - s.new, Drill: ret.Encode()}
	rr := amount(s.gross-s.newGross, ret.Encode())
	r.ReturningRevenue = &rr
	r.Renewals = &Num{N: s.rebills, Drill: drill(rollup.MRebills)}
	rb := amount(s.rebillGross, drill(rollup.MRebillGross))
	r.RenewalRevenue = &rb
	if p.Whole {
		i, m := 0, rollup.MCustomersDay
		switch g {
		case Week:
			i, m = 1, rollup.MCustomersWeek
		case Month:
			i, m = 2, rollup.MCustomersMonth
		}
		cc := contacts
		cc.Measure = m
		r.Customers = &Num{N: s.cust[i], Drill: cc.Encode()}
		rc := cc
		rc.Without = rollup.MNew
		r.ReturningCustomers = &Num{N: s.cust[i] - s.new, Drill: rc.Encode()}
	}
	return r
}

type exKey struct{ reason, cur string }

func sortedExcluded(m map[exKey][2]int64) []exKey {
	out := make([]exKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b exKey) int { return cmp.Or(cmp.Compare(a.cur, b.cur), cmp.Compare(a.reason, b.reason)) })
	return out
}

// Tables is the report as tables: one per currency, then the excluded orders.
func (r *Revenue) Tables() []Table {
	cols := []Column{{"period", "Period", TextColumn}, {"orders", "Orders", CountColumn}, {"gross", "Gross", MoneyColumn},
		{"refunds_cash", "Refunds (cash)", MoneyColumn}, {"net_cash", "Net (cash)", MoneyColumn},
		{"refunds_order", "Refunds (order)", MoneyColumn}, {"net_order", "Net (order)", MoneyColumn},
		{"chargebacks_cash", "Chargebacks (cash)", MoneyColumn}, {"chargebacks_order", "Chargebacks (order)", MoneyColumn}, {"aov", "AOV", MoneyColumn},
		{"new_customers", "New customers", CountColumn}, {"new_customer_revenue", "New revenue", MoneyColumn},
		{"returning_orders", "Returning orders", CountColumn}, {"returning_revenue", "Returning revenue", MoneyColumn},
		{"customers", "Customers", CountColumn}, {"returning_customers", "Returning customers", CountColumn},
		{"renewals", "Renewals", CountColumn}, {"renewal_revenue", "Renewal revenue", MoneyColumn}}
	row := func(x RevenueRow) []Cell {
		return []Cell{text(x.Period.Label), numCell(x.Orders), amountCell(x.Gross), amountCell(x.RefundsCash), amountCell(x.NetCash),
			amountCell(x.RefundsOrder), amountCell(x.NetOrder), amountCell(x.ChargebacksCash), amountCell(x.ChargebacksOrder), amountCell(x.AOV), numPtr(x.NewCustomers), amountPtr(x.NewRevenue),
			numPtr(x.ReturningOrders), amountPtr(x.ReturningRevenue), numPtr(x.Customers), numPtr(x.ReturningCustomers),
			numPtr(x.Renewals), amountPtr(x.RenewalRevenue)}
	}
	var out []Table
	for _, c := range r.Currencies {
		t := Table{Title: "Orders and revenue", Currency: c.Currency, Columns: cols, Chart: []string{"gross", "net_cash", "orders"}}
		for _, p := range c.Periods {
			t.Rows = append(t.Rows, row(p))
		}
		t.Rows = append(t.Rows, row(c.Total))
		out = append(out, t)
	}
	ex := Table{Title: "Orders left out (not revenue)", Columns: []Column{{"reason", "Reason", TextColumn},
		{"currency", "Currency", TextColumn}, {"orders", "Orders", CountColumn}, {"total", "Total", MoneyColumn}}}
	for _, x := range r.Excluded {
		ex.Rows = append(ex.Rows, []Cell{text(x.Reason), text(x.Currency), numCell(x.Orders), amountCell(x.Total)})
	}
	return append(out, ex)
}
