package reports

import (
	"context"
	"slices"

	"github.com/cartrelay/cartrelay/shared/rollup"
)

// Products is the products report: per product, the orders that had it, units, gross (the
// lines' totals: quantity × unit price − line discount), refunds in both views, and net. The
// "(order level)" row holds what orders charged beyond their lines (shipping, handling, tax,
// order discounts) and refunds that name no product, so the rows add up to the revenue report.
type Products struct {
	Meta       Meta              `json:"meta"`
	Currencies []ProductCurrency `json:"currencies"`
}

// ProductCurrency is the report for one currency.
type ProductCurrency struct {
	Currency string       `json:"currency"`
	Rows     []ProductRow `json:"rows"`
	Total    ProductRow   `json:"total"`
}

// ProductRow is one product (by SKU), the order-level row, or the total.
type ProductRow struct {
	SKU           string `json:"sku"`
	Orders        *Num   `json:"orders"`
	Units         *Num   `json:"units"`
	UnitsRefunded *Num   `json:"units_refunded"`
	Gross         Amount `json:"gross"`
	RefundsOrder  Amount `json:"refunds_order"`
	RefundsCash   Amount `json:"refunds_cash"`
	NetOrder      Amount `json:"net_order"`
}

// OrderLevel names the row of what orders charged and refunded beyond their product lines.
const OrderLevel = "(order level)"

type prodSums struct {
	orders, units, unitsRefunded, gross, refOrder, refCash int64
}

// Products answers the products report.
func (e *Engine) Products(ctx context.Context, q Query) (*Products, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	q.Filter = q.Filter.normalized()
	v, err := e.open(ctx, q.Account)
	if err != nil {
		return nil, err
	}
	d, err := e.load(ctx, v, rollup.PartDay, int32(q.From), int32(q.To))
	if err != nil {
		return nil, err
	}
	f := q.Filter
	type key struct{ cur, sku string }
	rows := map[key]*prodSums{}
	orders := map[string]*prodSums{} // the whole orders, for the order-level row
	at := func(m map[key]*prodSums, k key) *prodSums {
		if m[k] == nil {
			m[k] = &prodSums{}
		}
		return m[k]
	}
	for day := q.From; day <= q.To; day++ {
		for c, ms := range d.Cells(rollup.ItemKey{Part: rollup.PartDay, Period: int32(day)}) {
			dims := c.Dims()
			seg := rollup.SegmentOf(dims)
			if !f.segment(seg) {
				continue
			}
			switch c.Kind() {
			case rollup.KindProduct, rollup.KindProductRefund:
				if f.Product != "" && dims[8] != f.Product {
					continue
				}
				s := at(rows, key{seg.Currency, dims[8]})
				if c.Kind() == rollup.KindProduct {
					s.orders += ms[rollup.MOrders]
					s.units += ms[rollup.MUnits]
					s.unitsRefunded += ms[rollup.MUnitsRefunded]
					s.gross += ms[rollup.MGross]
					s.refOrder += ms[rollup.MRefunds]
				} else {
					s.refCash += ms[rollup.MRefunds]
				}
			case rollup.KindOrder, rollup.KindRefund:
				if f.Product != "" {
					continue
				}
				if orders[seg.Currency] == nil {
					orders[seg.Currency] = &prodSums{}
				}
				if c.Kind() == rollup.KindOrder {
					orders[seg.Currency].gross += ms[rollup.MGross]
					orders[seg.Currency].refOrder += ms[rollup.MRefunds]
				} else {
					orders[seg.Currency].refCash += ms[rollup.MRefunds]
				}
			}
		}
	}
	out := &Products{Currencies: []ProductCurrency{}}
	curs := map[string]bool{}
	for k := range rows {
		curs[k.cur] = true
	}
	for cur := range orders {
		curs[cur] = true
	}
	for _, cur := range sortedSet(curs) {
		pc := ProductCurrency{Currency: cur}
		var skus []string
		var lines prodSums
		for k, s := range rows {
			if k.cur == cur {
				skus = append(skus, k.sku)
				lines.gross += s.gross
				lines.refOrder += s.refOrder
				lines.refCash += s.refCash
				lines.orders += s.orders
				lines.units += s.units
				lines.unitsRefunded += s.unitsRefunded
			}
		}
		slices.Sort(skus)
		spec := DrillSpec{Report: "products", List: ListOrders, Part: rollup.PartDay, Kinds: string(rollup.KindProduct),
			From: int32(q.From), To: int32(q.To), Gen: v.gen.N, Filter: withCurrency(f, cur)}
		for _, sku := range skus {
			s := rows[key{cur, sku}]
			x := spec
			x.Filter.Product = sku
			drill := func(m string) string { y := x; y.Measure = m; return y.Encode() }
			cash := x
			cash.Kinds, cash.Measure = string(rollup.KindProductRefund), rollup.MRefunds
			pc.Rows = append(pc.Rows, ProductRow{SKU: sku,
				Orders: &Num{N: s.orders, Drill: drill(rollup.MOrders)}, Units: &Num{N: s.units, Drill: drill(rollup.MUnits)},
				UnitsRefunded: &Num{N: s.unitsRefunded, Drill: drill(rollup.MUnitsRefunded)},
				Gross:         Amount{Minor: s.gross, Currency: cur, Drill: drill(rollup.MGross)},
				RefundsOrder:  Amount{Minor: s.refOrder, Currency: cur, Drill: drill(rollup.MRefunds)},
				RefundsCash:   Amount{Minor: s.refCash, Currency: cur, Drill: cash.Encode()},
				NetOrder:      Amount{Minor: s.gross - s.refOrder, Currency: cur}})
		}
		total := lines
		if o := orders[cur]; o != nil {
			// What the lines do not account for.
			rest := ProductRow{SKU: OrderLevel,
				Gross:        Amount{Minor: o.gross - lines.gross, Currency: cur},
				RefundsOrder: Amount{Minor: o.refOrder - lines.refOrder, Currency: cur},
				RefundsCash:  Amount{Minor: o.refCash - lines.refCash, Currency: cur},
				NetOrder:     Amount{Minor: (o.gross - lines.gross) - (o.refOrder - lines.refOrder), Currency: cur}}
			pc.Rows = append(pc.Rows, rest)
			total.gross, total.refOrder, total.refCash = o.gross, o.refOrder, o.refCash
		}
		pc.Total = ProductRow{SKU: "total", Units: &Num{N: total.units}, UnitsRefunded: &Num{N: total.unitsRefunded},
			Gross: Amount{Minor: total.gross, Currency: cur}, RefundsOrder: Amount{Minor: total.refOrder, Currency: cur},
			RefundsCash: Amount{Minor: total.refCash, Currency: cur}, NetOrder: Amount{Minor: total.gross - total.refOrder, Currency: cur}}
		out.Currencies = append(out.Currencies, pc)
	}
	out.Meta = e.meta(v, "products", q)
	return out, nil
}

// Tables is the report as one table per currency.
func (r *Products) Tables() []Table {
	var out []Table
	for _, c := range r.Currencies {
		t := Table{Title: "Products", Currency: c.Currency, Chart: []string{"gross"},
			Columns: []Column{{"sku", "Product", TextColumn}, {"orders", "Orders", CountColumn}, {"units", "Units", CountColumn},
				{"gross", "Gross", MoneyColumn}, {"refunds_order", "Refunds (order)", MoneyColumn}, {"net_order", "Net (order)", MoneyColumn},
				{"refunds_cash", "Refunds (cash)", MoneyColumn}, {"units_refunded", "Units refunded", CountColumn}}}
		for _, x := range append(slices.Clone(c.Rows), c.Total) {
			t.Rows = append(t.Rows, []Cell{text(x.SKU), numPtr(x.Orders), numPtr(x.Units), amountCell(x.Gross), amountCell(x.RefundsOrder),
				amountCell(x.NetOrder), amountCell(x.RefundsCash), numPtr(x.UnitsRefunded)})
		}
		out = append(out, t)
	}
	return out
}
