package console

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/rollup"
	srcs "github.com/cartrelay/cartrelay/shared/sources"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Orders: the account's orders newest first, by the local dates they were paid (or created), with
// filters, and the revenue of the range at the top from the reports; an order's page with what
// each destination did with it.

func orderTime(o domain.Order) time.Time {
	if !o.PaidAt.IsZero() {
		return o.PaidAt
	}
	return o.CreatedAt
}

// dateRange reads the from and to query values (local dates, inclusive) with a default of the
// last 30 days; bad says which one could not be read.
func (p *pageCtx) dateRange(days int) (from, to rollup.Date, bad string) {
	now := p.req.Now.In(p.loc())
	to = rollup.DateOf(now.Date())
	from = to - rollup.Date(days-1)
	if s := p.req.Query.Get("to"); s != "" {
		d, err := rollup.ParseDate(s)
		if err != nil {
			return from, to, "to"
		}
		to = d
	}
	if s := p.req.Query.Get("from"); s != "" {
		d, err := rollup.ParseDate(s)
		if err != nil {
			return from, to, "from"
		}
		from = d
	}
	if from > to {
		from, to = to, from
	}
	return from, to, ""
}

// instant is the start of a local date in the account's zone.
func (p *pageCtx) instant(d rollup.Date) time.Time {
	y, m, dd := d.YMD()
	return time.Date(y, m, dd, 0, 0, 0, 0, p.loc())
}

type orderFilter struct {
	Source, Status, Refunded, Test string
}

func (f orderFilter) match(o domain.Order) bool {
	switch {
	case f.Source != "" && string(o.Source) != f.Source,
		f.Status != "" && string(o.Status) != f.Status,
		f.Refunded == "yes" && o.Refunded.Minor == 0,
		f.Refunded == "no" && o.Refunded.Minor != 0,
		f.Test == "only" && !o.Test,
		f.Test == "no" && o.Test:
		return false
	}
	return true
}

// ordersScan bounds the orders one page of the list reads: with a filter few orders pass, the
// page ends there (with a link looking further back), so it still answers in well under 100 ms.
const ordersScan = 400

func (p *pageCtx) orders() Response {
	from, to, bad := p.dateRange(30)
	q := p.req.Query
	f := orderFilter{Source: q.Get("source"), Status: q.Get("status"), Refunded: q.Get("refunded"), Test: q.Get("test")}
	var b strings.Builder
	b.WriteString(`<form class="filters" method="get" action="` + esc(p.c.URL("orders")) + `">`)
	dateInput(&b, "from", "From", from.String())
	dateInput(&b, "to", "To", to.String())
	selectInput(&b, "source", "Source", f.Source, sourceOptions())
	selectInput(&b, "status", "Status", f.Status, [][2]string{{"", "any"}, {"paid", "paid"}, {"shipped", "shipped"}, {"pending", "pending"}, {"rejected", "rejected"}, {"deleted", "deleted"}})
	selectInput(&b, "refunded", "Refunded", f.Refunded, [][2]string{{"", "any"}, {"yes", "refunded (in part or in full)"}, {"no", "not refunded"}})
	selectInput(&b, "test", "Test orders", f.Test, [][2]string{{"", "included"}, {"no", "left out"}, {"only", "only test orders"}})
	b.WriteString(`<button type="submit">Show</button></form>`)
	if bad != "" {
		b.WriteString(`<p class="alert" role="alert">The “` + esc(bad) + `” date is not a date; use the date picker or YYYY-MM-DD.</p>`)
		return p.page(http.StatusBadRequest, "orders", "Orders", b.String())
	}
	if f.Source != "" {
		// A source no one registered would match no order: say so rather than show none.
		if _, err := srcs.LookupConnecting(f.Source); err != nil {
			b.WriteString(`<p class="alert" role="alert">There are no orders from “` + esc(f.Source) + `”: ` + esc(err.Error()) + `. Pick a source above.</p>`)
			return p.page(http.StatusBadRequest, "orders", "Orders", b.String())
		}
	}
	p.revenueSummary(&b, from, to, f.Source)

	since, until := p.instant(from), p.instant(to+1).Add(-time.Nanosecond)
	cursor, err := decodePosition(q.Get("cursor"))
	if err != nil {
		return p.page(http.StatusBadRequest, "orders", "Orders", b.String()+`<p class="alert">This page link is not valid any more; show the list again.</p>`)
	}
	var rows []domain.Order
	scanned, next := 0, ""
	err = p.c.history.OrdersNewestFirst(p.ctx, p.sess.Account, since, until, cursor, func(r history.OrderRef) (bool, error) {
		if len(rows) == pageSize || scanned == ordersScan {
			next = encodePosition(cursor)
			return false, nil
		}
		scanned++
		cursor = r.Position
		if f.match(r.Order) {
			r.Order.Email = r.Email
			rows = append(rows, r.Order)
		}
		return true, nil
	})
	if err != nil {
		return p.failed("list the orders", err)
	}
	switch {
	case len(rows) == 0 && next == "":
		b.WriteString(`<p class="muted">No orders match in this range.</p>`)
	case len(rows) == 0:
		b.WriteString(`<p class="muted">None of the ` + strconv.Itoa(scanned) + ` orders looked at on this page match; the next page looks further back.</p>`)
	default:
		p.orderTable(&b, "Orders", rows, true)
	}
	b.WriteString(p.pager("orders", next, "cursor"))
	return p.page(http.StatusOK, "orders", "Orders", b.String())
}

// encodePosition and decodePosition make an index position an opaque cursor for a URL.
func encodePosition(pos string) string { return base64.RawURLEncoding.EncodeToString([]byte(pos)) }

func decodePosition(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) > 1024 || !utf8.Valid(b) {
		return "", errors.New("not a cursor of this list")
	}
	return string(b), nil
}

// revenueSummary shows the reports' totals for the range and source: paid orders, gross,
// refunds and net per currency.
// totalsDays is the longest range the orders page totals.
const totalsDays = 92

func (p *pageCtx) revenueSummary(b *strings.Builder, from, to rollup.Date, source string) {
	if p.c.d.Reports == nil {
		return
	}
	if to-from >= totalsDays {
		// The reports read a day's cells per day of the range: over a quarter, the totals
		// would cost the list more than it costs itself. The revenue report has them.
		b.WriteString(`<p class="muted small">Totals are shown for ranges up to ` + strconv.Itoa(totalsDays) + ` days; ` +
			p.link("report", url.Values{"kind": {"revenue"}, "from": {from.String()}, "to": {to.String()}, "by": {"month"}, "source": {source}}, "the revenue report") +
			` has this range's.</p>`)
		return
	}
	rep, err := p.c.d.Reports.Revenue(p.ctx, reports.Query{Account: p.sess.Account, From: from, To: to, Grain: reports.Month,
		Filter: reports.Filter{Source: source}})
	if err != nil {
		// The reports' errors are written for the person asking (a range too long, reports
		// being rebuilt); the list below does not depend on them.
		p.log.Warn("console: revenue totals unreadable", slog.Any("error", err))
		b.WriteString(`<p class="muted small">The totals of this range are not shown: ` + esc(err.Error()) + `.</p>`)
		return
	}
	if len(rep.Currencies) == 0 {
		b.WriteString(`<p class="muted small">No paid orders in this range.</p>`)
		return
	}
	b.WriteString(`<div class="grid">`)
	for _, c := range rep.Currencies {
		t := c.Total
		b.WriteString(`<div class="stat"><span class="n">` + esc(t.NetOrder.Decimal()) + ` ` + esc(c.Currency) + `</span>net of ` +
			strconv.FormatInt(t.Orders.N, 10) + ` paid orders: ` + esc(t.Gross.Decimal()) + ` gross, ` + esc(t.RefundsOrder.Decimal()) + ` refunded</div>`)
	}
	b.WriteString(`</div><p class="small muted">Totals from the reports: paid orders that are not tests, by the local date they were paid, refunds against their orders. The list below shows every order the filters match.</p>`)
}

func dateInput(b *strings.Builder, name, label, value string) {
	b.WriteString(`<label for="f-` + name + `">` + esc(label) + `<input type="date" id="f-` + name + `" name="` + name + `" value="` + esc(value) + `"></label>`)
}

// sourceOptions are the registered sources (sources.Connecting, which links none of their
// decoders) as a filter's options, after "any".
func sourceOptions() [][2]string {
	opts := [][2]string{{"", "any"}}
	for _, r := range srcs.Connecting() {
		opts = append(opts, [2]string{string(r.Name), r.Label})
	}
	return opts
}

func selectInput(b *strings.Builder, name, label, value string, options [][2]string) {
	b.WriteString(`<label for="f-` + name + `">` + esc(label) + `<select id="f-` + name + `" name="` + name + `">`)
	for _, o := range options {
		sel := ""
		if o[0] == value {
			sel = " selected"
		}
		b.WriteString(`<option value="` + esc(o[0]) + `"` + sel + `>` + esc(o[1]) + `</option>`)
	}
	b.WriteString(`</select></label>`)
}

func (p *pageCtx) orderTable(b *strings.Builder, caption string, orders []domain.Order, withEmail bool) {
	heads := []string{"Order", "Paid", "Source", "Status", "#Total", "#Refunded"}
	if withEmail {
		heads = append(heads[:1], append([]string{"Contact"}, heads[1:]...)...)
	}
	tableStart(b, caption, heads...)
	for _, o := range orders {
		b.WriteString(`<tr><td>` + p.link("order", url.Values{"key": {o.Key}}, o.OrderID))
		if o.Test {
			b.WriteString(` ` + badge("test", "warn"))
		}
		b.WriteString(`</td>`)
		if withEmail {
			b.WriteString(`<td>` + p.contactLink(o.Email) + `</td>`)
		}
		b.WriteString(`<td>` + p.when(orderTime(o)) + `</td><td>` + esc(string(o.Source)) + `</td><td>` + badge(string(o.Status), orderTone(o.Status)) +
			`</td><td class="num">` + money(o.Total) + `</td><td class="num">`)
		if o.Refunded.Minor != 0 {
			b.WriteString(money(o.Refunded))
		}
		b.WriteString(`</td></tr>`)
	}
	tableEnd(b)
}

func orderTone(s domain.OrderStatus) string {
	switch s {
	case domain.OrderPaid, domain.OrderShipped:
		return "good"
	case domain.OrderRejected, domain.OrderDeleted:
		return "bad"
	case domain.OrderPending:
		return "warn"
	}
	return ""
}

func (p *pageCtx) order() Response {
	key := strings.TrimSpace(p.req.Query.Get("key"))
	if key == "" {
		return p.notFound("No order was named. Find one on the Orders page.")
	}
	email, o, err := p.c.history.OrderAt(p.ctx, p.sess.Account, key)
	if errors.Is(err, store.ErrNotFound) {
		return p.notFound("This account has no order " + key + ".")
	}
	if err != nil {
		return p.failed("read the order", err)
	}
	var b strings.Builder
	b.WriteString(`<div class="grid"><div class="card"><h2>Order</h2><dl class="kv">`)
	kv(&b, "Order id", `<code>`+esc(o.OrderID)+`</code>`)
	if o.InvoiceID != "" {
		kv(&b, "Invoice", esc(o.InvoiceID))
	}
	kv(&b, "Source", esc(string(o.Source)))
	kv(&b, "Status", badge(string(o.Status), orderTone(o.Status))+" "+esc(o.Stage))
	if o.Test {
		kv(&b, "Test order", badge("yes", "warn")+` <small class="muted">never counted as revenue</small>`)
	}
	kv(&b, "Contact", p.contactLink(email))
	kv(&b, "Created", p.when(o.CreatedAt))
	kv(&b, "Paid", p.when(o.PaidAt))
	if o.SubscriptionID != "" {
		kv(&b, "Subscription", esc(o.SubscriptionID)+map[bool]string{true: " (renewal)", false: ""}[o.Rebill])
	}
	if !o.ShippedAt.IsZero() {
		kv(&b, "Shipped", p.when(o.ShippedAt))
	}
	if !o.OutForDeliveryAt.IsZero() {
		kv(&b, "Out for delivery", p.when(o.OutForDeliveryAt))
	}
	if !o.DeliveredAt.IsZero() {
		kv(&b, "Delivered", p.when(o.DeliveredAt))
	}
	for _, t := range o.Tracking {
		kv(&b, "Tracking", esc(strings.TrimSpace(t.Carrier+" "+t.Number)))
	}
	if len(o.Coupons) > 0 {
		kv(&b, "Coupons", esc(strings.Join(o.Coupons, ", ")))
	}
	if a := o.Affiliate; a != nil {
		kv(&b, "Affiliate", esc(strings.TrimSpace(a.Name+" "+a.ID+" "+a.Email)))
	}
	b.WriteString(`</dl></div><div class="card"><h2>Amounts</h2><dl class="kv">`)
	kv(&b, "Subtotal", money(o.Subtotal))
	kv(&b, "Discount", money(o.Discount))
	kv(&b, "Shipping", money(o.Shipping))
	kv(&b, "Handling", money(o.Handling))
	kv(&b, "Tax", money(o.Tax))
	kv(&b, "Total", `<strong>`+money(o.Total)+`</strong>`)
	kv(&b, "Refunded", money(o.Refunded))
	if o.ChargedBack.Minor != 0 {
		kv(&b, "Charged back", money(o.ChargedBack))
	}
	b.WriteString(`</dl></div></div>`)

	b.WriteString(`<h2>Items</h2>`)
	tableStart(&b, "Items", "SKU", "Name", "#Quantity", "#Unit price", "#Discount", "#Total", "#Refunded")
	for _, it := range o.Items {
		b.WriteString(`<tr><td><code>` + esc(it.SKU) + `</code></td><td>` + esc(it.Name) + `</td><td class="num">` + strconv.FormatInt(it.Quantity, 10) +
			`</td><td class="num">` + money(it.UnitPrice) + `</td><td class="num">` + money(it.Discount) + `</td><td class="num">` + money(it.Total) +
			`</td><td class="num">` + money(it.Refunded) + `</td></tr>`)
	}
	tableEnd(&b)

	if len(o.UTMs) > 0 {
		b.WriteString(`<h2>Touches</h2>`)
		tableStart(&b, "Touches", "When", "Source", "Medium", "Campaign", "Term", "Content")
		for _, u := range o.UTMs {
			b.WriteString(`<tr><td>` + p.when(u.At) + `</td><td>` + esc(u.Source) + `</td><td>` + esc(u.Medium) + `</td><td>` + esc(u.Campaign) +
				`</td><td>` + esc(u.Term) + `</td><td>` + esc(u.Content) + `</td></tr>`)
		}
		tableEnd(&b)
	}
	if len(o.Refunds) > 0 {
		b.WriteString(`<h2>Refunds</h2>`)
		tableStart(&b, "Refunds", "When", "#Amount", "SKU", "Reason")
		for _, r := range o.Refunds {
			b.WriteString(`<tr><td>` + p.when(r.At) + `</td><td class="num">` + money(r.Amount) + `</td><td>` + esc(r.SKU) + `</td><td>` + esc(r.Reason) + `</td></tr>`)
		}
		tableEnd(&b)
	}
	if len(o.Chargebacks) > 0 {
		b.WriteString(`<h2>Chargebacks</h2>`)
		tableStart(&b, "Chargebacks", "When", "#Amount", "Status", "Resolved", "Reason")
		for _, c := range o.Chargebacks {
			b.WriteString(`<tr><td>` + p.when(c.At) + `</td><td class="num">` + money(c.Amount) + `</td><td>` + esc(string(c.Status)) +
				`</td><td>` + p.when(c.ResolvedAt) + `</td><td>` + esc(c.Reason) + `</td></tr>`)
		}
		tableEnd(&b)
	}

	// What each destination did: the order's facts and their deliveries.
	v, err := p.c.history.View(p.ctx, p.sess.Account, email)
	if err != nil {
		return p.failed("read the order's deliveries", err)
	}
	facts := map[string]domain.Fact{}
	var ids []string
	for _, f := range v.Facts {
		if f.Order != nil && f.Order.Key == o.Key {
			facts[f.ID] = f
			ids = append(ids, f.ID)
		}
	}
	var ds []history.Delivery
	for _, d := range decodeDeliveries(v.Deliveries) {
		if _, ok := facts[d.FactID]; ok {
			ds = append(ds, d)
		}
	}
	b.WriteString(`<h2>What the destinations did</h2>`)
	if len(ids) == 0 {
		b.WriteString(`<p class="muted">No facts of this order were sent anywhere.</p>`)
	} else {
		sort.SliceStable(ids, func(i, j int) bool { return facts[ids[i]].OccurredAt.Before(facts[ids[j]].OccurredAt) })
		tableStart(&b, "Facts of the order", "Fact", "When", "ONTRAPORT", "Iterable")
		for _, id := range ids {
			f := facts[id]
			b.WriteString(`<tr><td><strong>` + esc(string(f.Kind)) + `</strong><br><small class="muted mono">` + esc(f.ID) + `</small></td><td>` + p.when(f.OccurredAt) + `</td>`)
			for _, d := range destinations.All() {
				b.WriteString(`<td>` + p.latestFor(ds, d.Name, id, email) + `</td>`)
			}
			b.WriteString(`</tr>`)
		}
		tableEnd(&b)
		if len(ds) > 0 {
			b.WriteString(`<h3>Every attempt</h3>`)
			p.deliveryList(&b, ds, false)
		}
	}
	return p.page(http.StatusOK, "orders", "Order "+o.OrderID, b.String())
}

// latestFor is a cell saying what the newest attempt of a fact at a destination did.
func (p *pageCtx) latestFor(ds []history.Delivery, dest, factID, email string) string {
	for _, d := range ds { // newest first
		if d.Dest == dest && d.FactID == factID {
			return badge(statusLabel(d.Status), statusTone(d.Status)) + ` ` +
				p.link("delivery", url.Values{"email": {email}, "dest": {dest}, "fact": {factID}}, "details")
		}
	}
	return `<span class="muted">–</span>`
}
