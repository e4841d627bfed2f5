package reports

import (
	"context"
	"slices"

	"github.com/cartrelay/cartrelay/shared/rollup"
)

// Attribution is revenue and orders by marketing touch under one model. First touch credits the
// contact's first touch, last touch the order's own last touch (a renewal's: that of the order
// that started its subscription), and linear splits each order between the two: half each, in
// whole minor units, the odd one to the first touch, so that every column adds up to the total
// exactly. Orders with no touch are the "(none)" row; coverage is the share of gross credited to
// a touch.
type Attribution struct {
	Meta       Meta                  `json:"meta"`
	Currencies []AttributionCurrency `json:"currencies"`
}

// AttributionCurrency is the report for one currency.
type AttributionCurrency struct {
	Currency string           `json:"currency"`
	Rows     []AttributionRow `json:"rows"`
	Total    AttributionRow   `json:"total"`
	// Coverage is the percentage of gross credited to a touch (not to "(none)").
	Coverage string `json:"coverage_percent"`
}

// AttributionRow is one touch, or the total. Orders are credited orders: under the linear model
// an order counts half to each of its touches, so the number may end in .5.
type AttributionRow struct {
	Touch   TouchRow `json:"touch"`
	Orders  string   `json:"orders"`
	Gross   Amount   `json:"gross"`
	Refunds Amount   `json:"refunds"`
	Net     Amount   `json:"net"`
	Share   string   `json:"share_of_gross_percent"`
	// drill lists the orders the row credits.
	Drill string `json:"drill,omitempty"`
}

type attrSums struct {
	halfOrders, gross, refunds int64 // orders in halves
}

// Attribution answers the attribution report. Refunds (chargebacks included) are in the order
// view: taken off the touches of the order they refund.
func (e *Engine) Attribution(ctx context.Context, q Query) (*Attribution, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	q.Filter = q.Filter.normalized()
	if q.Model == "" {
		q.Model = Linear
	}
	by, err := parseTouchBy(q.TouchBy)
	if err != nil {
		return nil, err
	}
	v, err := e.open(ctx, q.Account)
	if err != nil {
		return nil, err
	}
	d, err := e.load(ctx, v, rollup.PartDay, int32(q.From), int32(q.To))
	if err != nil {
		return nil, err
	}
	f := q.Filter
	byProduct := f.Product != ""
	type key struct {
		cur   string
		touch rollup.Touch
	}
	rows := map[key]*attrSums{}
	credit := func(cur string, t rollup.Touch, halfOrders, gross, refunds int64) {
		k := key{cur, by.key(t)}
		s := rows[k]
		if s == nil {
			s = &attrSums{}
			rows[k] = s
		}
		s.halfOrders += halfOrders
		s.gross += gross
		s.refunds += refunds
	}
	for day := q.From; day <= q.To; day++ {
		for c, ms := range d.Cells(rollup.ItemKey{Part: rollup.PartDay, Period: int32(day)}) {
			dims := c.Dims()
			switch {
			case c.Kind() == rollup.KindOrder && !byProduct:
			case c.Kind() == rollup.KindProduct && byProduct && dims[8] == f.Product:
			default:
				continue
			}
			seg := rollup.SegmentOf(dims)
			if !f.segment(seg) {
				continue
			}
			o, g, r := ms[rollup.MOrders], ms[rollup.MGross], ms[rollup.MRefunds]
			switch q.Model {
			case FirstTouch:
				credit(seg.Currency, seg.First, 2*o, g, r)
			case LastTouch:
				credit(seg.Currency, seg.Last, 2*o, g, r)
			default:
				gh, rh := ms[rollup.MGrossFirstHalf], ms[rollup.MRefundsFirstHalf]
				if c.Kind() == rollup.KindProduct {
					// Product lines are split per cell: the first touch gets the odd unit.
					gh, rh = g-g/2, r-r/2
				}
				credit(seg.Currency, seg.First, o, gh, rh)
				credit(seg.Currency, seg.Last, o, g-gh, r-rh)
			}
		}
	}
	out := &Attribution{Currencies: []AttributionCurrency{}}
	curs := map[string]bool{}
	for k := range rows {
		curs[k.cur] = true
	}
	kinds := string(rollup.KindOrder)
	if byProduct {
		kinds = string(rollup.KindProduct)
	}
	for _, cur := range sortedSet(curs) {
		ac := AttributionCurrency{Currency: cur}
		var touches []rollup.Touch
		var total, attributed attrSums
		for k, s := range rows {
			if k.cur != cur {
				continue
			}
			touches = append(touches, k.touch)
			total.halfOrders += s.halfOrders
			total.gross += s.gross
			total.refunds += s.refunds
			if touchLabel(k.touch) != rollup.None {
				attributed.gross += s.gross
			}
		}
		slices.SortFunc(touches, cmpTouch)
		spec := DrillSpec{Report: "attribution", List: ListOrders, Part: rollup.PartDay, Kinds: kinds, Measure: rollup.MOrders,
			From: int32(q.From), To: int32(q.To), Gen: v.gen.N, Filter: withCurrency(f, cur)}
		row := func(t TouchRow, s attrSums, dims map[string]string) AttributionRow {
			x := spec
			x.Dims = dims
			return AttributionRow{Touch: t, Orders: formatFixed(s.halfOrders*5, 1),
				Gross: Amount{Minor: s.gross, Currency: cur}, Refunds: Amount{Minor: s.refunds, Currency: cur},
				Net: Amount{Minor: s.gross - s.refunds, Currency: cur}, Share: percent(s.gross, total.gross), Drill: x.Encode()}
		}
		for _, t := range touches {
			ac.Rows = append(ac.Rows, row(touchRow(t), *rows[key{cur, t}], touchDims(t, q.Model)))
		}
		if !slices.ContainsFunc(touches, func(t rollup.Touch) bool { return touchLabel(t) == rollup.None }) {
			// The "(none)" row is always shown, even at zero.
			none := by.key(rollup.NoTouch)
			ac.Rows = append(ac.Rows, row(touchRow(none), attrSums{}, touchDims(none, q.Model)))
		}
		ac.Total = row(TouchRow{Label: "total"}, total, nil)
		ac.Coverage = percent(attributed.gross, total.gross)
		out.Currencies = append(out.Currencies, ac)
	}
	out.Meta = e.meta(v, "attribution", q)
	out.Meta.Model = q.Model
	return out, nil
}

// Tables is the report as one table per currency.
func (r *Attribution) Tables() []Table {
	var out []Table
	for _, c := range r.Currencies {
		t := Table{Title: "Attribution, " + string(r.Meta.Model) + " touch model, coverage " + c.Coverage + "%", Currency: c.Currency,
			Chart: []string{"gross"},
			Columns: []Column{{"touch", "Touch", TextColumn}, {"orders", "Orders", NumberColumn}, {"gross", "Gross", MoneyColumn},
				{"refunds", "Refunds", MoneyColumn}, {"net", "Net", MoneyColumn}, {"share", "Share of gross %", PercentColumn}}}
		for _, x := range append(slices.Clone(c.Rows), c.Total) {
			t.Rows = append(t.Rows, []Cell{{Text: x.Touch.Label, Drill: x.Drill}, {Text: x.Orders, Drill: x.Drill}, amountCell(x.Gross),
				amountCell(x.Refunds), amountCell(x.Net), text(x.Share)})
		}
		out = append(out, t)
	}
	return out
}
