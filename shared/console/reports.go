package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/cartrelay/cartrelay/shared/audit"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Reports: each report as a chart and its tables, with the report's filters in a plain GET form
// (so a report is a link that can be bookmarked), a CSV download of the same tables, the orders
// or contacts behind every number, and reports saved by name on a dashboard. The tables carry
// every number; the charts, drawn by Apache ECharts from data in the page, only repeat them.

// paramFields are the query names of a report's options, as reports.Params names them.
var paramFields = []string{"kind", "from", "to", "by", "model", "touch", "months", "cohort", "source", "product", "currency",
	"first_source", "first_medium", "first_campaign", "last_source", "last_medium", "last_campaign"}

// paramsOf reads a report's options from a query or a posted form.
func paramsOf(v url.Values) reports.Params {
	g := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	return reports.Params{Kind: g("kind"), From: g("from"), To: g("to"), By: g("by"), Model: g("model"), Touch: g("touch"),
		Months: g("months"), Cohort: g("cohort"), Filter: reports.Filter{Source: g("source"), Product: g("product"), Currency: g("currency"),
			FirstSource: g("first_source"), FirstMedium: g("first_medium"), FirstCampaign: g("first_campaign"),
			LastSource: g("last_source"), LastMedium: g("last_medium"), LastCampaign: g("last_campaign")}}
}

// values is a report's options as a query, without the empty ones.
func values(p reports.Params) url.Values {
	f := p.Filter
	all := []string{p.Kind, p.From, p.To, p.By, p.Model, p.Touch, p.Months, p.Cohort, f.Source, f.Product, f.Currency,
		f.FirstSource, f.FirstMedium, f.FirstCampaign, f.LastSource, f.LastMedium, f.LastCampaign}
	v := url.Values{}
	for i, k := range paramFields {
		if all[i] != "" {
			v.Set(k, all[i])
		}
	}
	return v
}

func (p *pageCtx) reportsOff() Response {
	return p.notFound("Reports are not available on this cartrelay.")
}

// reportsHome is the reports dashboard: every report, and the saved ones drawn in full.
func (p *pageCtx) reportsHome() Response {
	e := p.c.d.Reports
	if e == nil {
		return p.reportsOff()
	}
	var b strings.Builder
	b.WriteString(`<section><h2>Reports</h2><ul class="cards">`)
	for _, k := range reports.Kinds {
		b.WriteString(`<li>` + p.link("report", url.Values{"kind": {k}}, reports.KindTitle(k)) + `</li>`)
	}
	b.WriteString(`</ul></section>`)
	saved, err := e.SavedReports(p.ctx, p.sess.Account)
	if err != nil {
		return p.failed("read the saved reports", err)
	}
	b.WriteString(`<section><h2>Saved reports</h2>`)
	if len(saved) == 0 {
		b.WriteString(`<p class="muted">None yet. Open a report, set its filters and save it under a name: it shows here.</p>`)
	}
	p.drawSaved(&b, saved, true)
	b.WriteString(`</section>`)
	return p.page(http.StatusOK, "reports", "Reports", b.String())
}

// savedAtOnce bounds how many saved reports one page answers at once; each already reads its
// rollups several partitions at a time.
const savedAtOnce = 4

// drawSaved draws saved reports, each its first table with its chart, and their Delete buttons
// when withDelete. The reports are answered concurrently (at most savedAtOnce at a time), so
// the page takes about as long as its slowest report rather than all of them in turn; a page
// whose request ends stops answering the rest.
func (p *pageCtx) drawSaved(b *strings.Builder, saved []reports.Saved, withDelete bool) {
	e := p.c.d.Reports
	type answer struct {
		t   reports.Tabler
		err error
	}
	answers := make([]answer, len(saved))
	slots := make(chan struct{}, savedAtOnce)
	var wg sync.WaitGroup
	for i, s := range saved {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			case <-p.ctx.Done():
				answers[i].err = p.ctx.Err()
				return
			}
			t, _, err := e.Run(p.ctx, p.sess.Account, s.Params)
			answers[i] = answer{t, err}
		}()
	}
	wg.Wait()
	for i, s := range saved {
		b.WriteString(`<article class="saved"><h3>` + p.link("report", values(s.Params), s.Name) + ` <small class="muted">` +
			esc(reports.KindTitle(s.Params.Kind)) + `</small></h3>`)
		t, err := answers[i].t, answers[i].err
		var bad *reports.ParamError
		switch {
		case errors.As(err, &bad):
			b.WriteString(`<p class="alert">This saved report cannot be shown: ` + esc(bad.Msg) + `. Open it, fix the filter and save it again.</p>`)
		case err != nil:
			p.log.Error("console: saved report", "name", s.Name, "error", err)
			b.WriteString(`<p class="alert">This report could not be read just now; reload the page in a moment.</p>`)
		default:
			if tables := t.Tables(); len(tables) > 0 {
				p.reportTable(b, "saved"+strconv.Itoa(i), tables[0], true)
			}
		}
		if withDelete {
			b.WriteString(p.postButton("reports/delete", url.Values{"name": {s.Name}}, "Delete", "secondary", ""))
		}
		b.WriteString(`</article>`)
	}
}

// report shows one report with its filters.
func (p *pageCtx) report() Response {
	e := p.c.d.Reports
	if e == nil {
		return p.reportsOff()
	}
	params := paramsOf(p.req.Query)
	if params.Kind == "" {
		params.Kind = "revenue"
	}
	title := reports.KindTitle(params.Kind)
	var b strings.Builder
	p.reportForm(&b, params)
	t, q, err := e.Run(p.ctx, p.sess.Account, params)
	var bad *reports.ParamError
	if errors.As(err, &bad) {
		b.WriteString(`<div class="alert" role="alert"><p>` + esc(bad.Msg) + `. Change the filters above and show the report again.</p></div>`)
		return p.page(http.StatusBadRequest, "reports", title, b.String())
	}
	if err != nil {
		return p.failed("answer the report", err)
	}
	b.WriteString(`<p class="small muted">` + esc(q.From.String()+" to "+q.To.String()) + ` in ` + esc(p.loc().String()) +
		`. Every number links to the orders or contacts behind it. <a href="` + esc(p.url("report.csv", values(params))) + `" download>Download CSV</a></p>`)
	tables := t.Tables()
	if len(tables) == 0 {
		b.WriteString(`<p class="muted">Nothing in this range: no orders or subscriptions of the account fall in it.</p>`)
	}
	for i, tb := range tables {
		p.reportTable(&b, "chart"+strconv.Itoa(i), tb, true)
	}
	b.WriteString(`<section><h2>Save this report</h2><form method="post" action="` + esc(p.c.URL("reports/save")) + `" class="filters">` +
		`<input type="hidden" name="csrf" value="` + esc(p.csrf()) + `">`)
	for k, vs := range values(params) {
		b.WriteString(`<input type="hidden" name="` + esc(k) + `" value="` + esc(vs[0]) + `">`)
	}
	b.WriteString(`<label for="f-name">Name<input type="text" id="f-name" name="name" maxlength="80" required></label><button type="submit">Save</button></form>` +
		`<p class="small muted">A saved report keeps these filters and shows on the reports dashboard; saving under an existing name replaces it.</p></section>`)
	return p.page(http.StatusOK, "reports", title, b.String())
}

// reportForm is the filter form: a GET, so it works without scripts and its result is a link.
func (p *pageCtx) reportForm(b *strings.Builder, params reports.Params) {
	b.WriteString(`<form class="filters" method="get" action="` + esc(p.c.URL("report")) + `">`)
	kinds := make([][2]string, 0, len(reports.Kinds))
	for _, k := range reports.Kinds {
		kinds = append(kinds, [2]string{k, reports.KindTitle(k)})
	}
	selectInput(b, "kind", "Report", params.Kind, kinds)
	dateInput(b, "from", "From", params.From)
	dateInput(b, "to", "To", params.To)
	selectInput(b, "by", "By", params.By, [][2]string{{"", "day"}, {"week", "week"}, {"month", "month"}})
	switch params.Kind {
	case "attribution":
		selectInput(b, "model", "Model", params.Model, [][2]string{{"", "linear"}, {"first", "first touch"}, {"last", "last touch"}})
		selectInput(b, "touch", "Rows by", params.Touch, [][2]string{{"", "source/medium/campaign"}, {"source", "source"}, {"source/medium", "source/medium"}})
	case "cohorts":
		selectInput(b, "cohort", "Cohort by", params.Cohort, [][2]string{{"", "first order"}, {reports.ByFirstSeen, "first seen"}})
		textInput(b, "months", "Months shown", params.Months)
	}
	f := params.Filter
	selectInput(b, "source", "Cart", f.Source, sourceOptions())
	textInput(b, "product", "Product", f.Product)
	textInput(b, "currency", "Currency", f.Currency)
	textInput(b, "first_source", "First-touch source", f.FirstSource)
	textInput(b, "first_medium", "First-touch medium", f.FirstMedium)
	textInput(b, "first_campaign", "First-touch campaign", f.FirstCampaign)
	textInput(b, "last_source", "Last-touch source", f.LastSource)
	textInput(b, "last_medium", "Last-touch medium", f.LastMedium)
	textInput(b, "last_campaign", "Last-touch campaign", f.LastCampaign)
	b.WriteString(`<button type="submit">Show</button></form>`)
}

func textInput(b *strings.Builder, name, label, value string) {
	b.WriteString(`<label for="f-` + name + `">` + esc(label) + `<input type="text" id="f-` + name + `" name="` + name + `" value="` + esc(value) + `"></label>`)
}

// reportTable writes a table of a report, with its chart above it when it has columns to plot.
func (p *pageCtx) reportTable(b *strings.Builder, id string, t reports.Table, chart bool) {
	title := t.Title
	if t.Currency != "" {
		title += " (" + t.Currency + ")"
	}
	b.WriteString(`<section><h2>` + esc(title) + `</h2>`)
	if chart {
		if opt := chartOption(t); opt != nil {
			p.charts = true
			b.WriteString(`<div class="chart" data-chart="` + id + `" role="img" aria-label="` + esc("Chart of "+title+"; the table below has the same numbers") + `"></div>`)
			b.WriteString(`<script type="application/json" id="` + id + `">` + string(opt) + `</script>`)
		}
	}
	if len(t.Rows) == 0 {
		b.WriteString(`<p class="muted">Nothing in this range.</p></section>`)
		return
	}
	heads := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		heads[i] = c.Label
		if c.Type != reports.TextColumn {
			heads[i] = "#" + c.Label
		}
	}
	tableStart(b, title, heads...)
	for _, r := range t.Rows {
		b.WriteString(`<tr>`)
		for i, c := range r {
			class := ""
			if i < len(t.Columns) && t.Columns[i].Type != reports.TextColumn {
				class = ` class="num"`
			}
			cell := esc(c.Text)
			if c.Text == "" {
				cell = `<span class="muted">–</span>`
			} else if c.Drill != "" && !isZero(c.Text) {
				cell = p.link("report/drill", url.Values{"handle": {c.Drill}}, c.Text)
			}
			b.WriteString(`<td` + class + `>` + cell + `</td>`)
		}
		b.WriteString(`</tr>`)
	}
	tableEnd(b)
	b.WriteString(`</section>`)
}

// isZero is a cell that counts nothing (nothing to list behind it).
func isZero(s string) bool {
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && f == 0
}

// chartOption is the ECharts option for a table's chart columns over its first column (nil when
// it has none): money on the left axis, counts and other numbers on the right. A closing
// "Total" row is left out of the chart.
func chartOption(t reports.Table) []byte {
	if len(t.Chart) == 0 || len(t.Rows) == 0 {
		return nil
	}
	rows := t.Rows
	if len(rows) > 1 && len(rows[len(rows)-1]) > 0 && strings.EqualFold(rows[len(rows)-1][0].Text, "total") {
		rows = rows[:len(rows)-1]
	}
	idx := map[string]int{}
	for i, c := range t.Columns {
		idx[c.Key] = i
	}
	x := make([]string, len(rows))
	for i, r := range rows {
		if len(r) > 0 {
			x[i] = r[0].Text
		}
	}
	type series struct {
		Name       string     `json:"name"`
		Type       string     `json:"type"`
		YAxisIndex int        `json:"yAxisIndex"`
		Data       []*float64 `json:"data"`
	}
	kind := "bar"
	if len(t.Columns) > 0 && t.Columns[0].Key == "period" && len(rows) > 1 {
		kind = "line"
	}
	var ss []series
	for _, key := range t.Chart {
		i, ok := idx[key]
		if !ok {
			continue
		}
		s := series{Name: t.Columns[i].Label, Type: kind}
		if t.Columns[i].Type != reports.MoneyColumn {
			s.YAxisIndex = 1
		}
		for _, r := range rows {
			var v *float64
			if i < len(r) {
				if f, err := strconv.ParseFloat(r[i].Text, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
					v = &f
				}
			}
			s.Data = append(s.Data, v)
		}
		ss = append(ss, s)
	}
	if len(ss) == 0 {
		return nil
	}
	opt := map[string]any{
		"animation": false,
		"tooltip":   map[string]any{"trigger": "axis"},
		"legend":    map[string]any{"top": 0},
		"grid":      map[string]any{"left": 50, "right": 50, "top": 40, "bottom": 30},
		"xAxis":     map[string]any{"type": "category", "data": x},
		"yAxis":     []map[string]any{{"type": "value", "name": t.Currency}, {"type": "value", "splitLine": map[string]any{"show": false}}},
		"series":    ss,
	}
	out, err := json.Marshal(opt) // escapes <, > and &, so the JSON cannot close its script element
	if err != nil {
		return nil
	}
	return out
}

// reportCSV downloads a report's tables as CSV, cells that a spreadsheet would run as formulas
// escaped.
func (p *pageCtx) reportCSV() Response {
	e := p.c.d.Reports
	if e == nil {
		return p.reportsOff()
	}
	params := paramsOf(p.req.Query)
	t, q, err := e.Run(p.ctx, p.sess.Account, params)
	var bad *reports.ParamError
	if errors.As(err, &bad) {
		return p.page(http.StatusBadRequest, "reports", "Report not downloaded", `<div class="alert" role="alert"><p>`+esc(bad.Msg)+
			`.</p></div><p>`+p.link("report", values(params), "Back to the report")+`</p>`)
	}
	if err != nil {
		return p.failed("answer the report", err)
	}
	var buf bytes.Buffer
	if err := reports.WriteCSV(&buf, t.Tables()); err != nil {
		return p.failed("write the report", err)
	}
	name := "cartrelay-" + params.Kind + "-" + q.From.String() + "-" + q.To.String() + ".csv"
	return Response{Status: http.StatusOK, File: &File{ContentType: "text/csv; charset=utf-8", Body: buf.Bytes(), Download: name}}
}

// reportDrill lists the orders, contacts, subscriptions or page views behind a number.
func (p *pageCtx) reportDrill() Response {
	e := p.c.d.Reports
	if e == nil {
		return p.reportsOff()
	}
	handle := p.req.Query.Get("handle")
	pg, err := e.Drill(p.ctx, p.sess.Account, handle, p.req.Query.Get("cursor"), 50)
	if errors.Is(err, reports.ErrBadHandle) {
		return p.notFound("This link does not name a number of one of your reports. Open the report again and follow its links.")
	}
	if err != nil {
		var bad *reports.ParamError
		if errors.As(err, &bad) {
			return p.page(http.StatusBadRequest, "reports", "Behind the number", `<p class="alert">`+esc(bad.Msg)+`.</p>`)
		}
		return p.failed("list what the number counts", err)
	}
	var b strings.Builder
	b.WriteString(`<p class="muted">` + esc(reports.KindTitle(pg.Report)) + `, times in ` + esc(pg.Zone) + `.</p>`)
	switch {
	case len(pg.Orders) > 0:
		tableStart(&b, "Orders", "Order", "Contact", "Paid", "Status", "#Total", "#Refunded", "#Counts")
		for _, o := range pg.Orders {
			b.WriteString(`<tr><td>` + p.link("order", url.Values{"key": {o.Key}}, o.OrderID) + `</td><td>` + p.contactLink(o.Email) + `</td><td>` +
				p.when(o.At) + `</td><td>` + badge(string(o.Status), "") + `</td><td class="num">` + money(o.Total) + `</td><td class="num">` +
				money(o.Refunded) + `</td><td class="num">` + strconv.FormatInt(o.Adds, 10) + `</td></tr>`)
		}
		tableEnd(&b)
	case len(pg.Contacts) > 0:
		tableStart(&b, "Contacts", "Contact", "First purchase", "#Purchases", "#Lifetime value")
		for _, c := range pg.Contacts {
			b.WriteString(`<tr><td>` + p.contactLink(c.Email) + `</td><td>` + p.when(c.FirstPurchaseAt) + `</td><td class="num">` +
				strconv.Itoa(c.PurchaseCount) + `</td><td class="num">` + money(c.LTV) + `</td></tr>`)
		}
		tableEnd(&b)
	case len(pg.Subscriptions) > 0:
		tableStart(&b, "Subscriptions", "Subscription", "Contact", "Status", "Since", "#Amount")
		for _, s := range pg.Subscriptions {
			b.WriteString(`<tr><td>` + esc(s.Key) + `</td><td>` + p.contactLink(s.Email) + `</td><td>` + badge(string(s.Status), "") +
				`</td><td>` + p.when(s.StatusAt) + `</td><td class="num">` + money(s.Amount) + `</td></tr>`)
		}
		tableEnd(&b)
	case len(pg.PageViews) > 0:
		b.WriteString(`<p>` + strconv.Itoa(len(pg.PageViews)) + ` page views on this page.</p>`)
	default:
		b.WriteString(`<p class="muted">Nothing is behind this number.</p>`)
	}
	b.WriteString(p.pager("report/drill", pg.Next, "cursor"))
	return p.page(http.StatusOK, "reports", "Behind the number", b.String())
}

// saveReport keeps the posted report under its name, with an audit record.
func (p *pageCtx) saveReport() Response {
	e := p.c.d.Reports
	if e == nil {
		return p.reportsOff()
	}
	params := paramsOf(p.req.Form)
	name := p.req.Form.Get("name")
	ae := p.entry(audit.SaveReport, strings.TrimSpace(name), "Saved the report "+strings.TrimSpace(name)+" ("+reports.KindTitle(params.Kind)+")")
	w, err := audit.Put(ae)
	if err != nil {
		return p.failed("save the report", err)
	}
	_, err = e.Save(p.ctx, p.sess.Account, name, params, p.req.Now, w)
	var bad *reports.ParamError
	if errors.As(err, &bad) {
		return p.page(http.StatusBadRequest, "reports", "Report not saved", `<div class="alert" role="alert"><p>`+esc(bad.Msg)+
			`.</p></div><p>`+p.link("report", values(params), "Back to the report")+`</p>`)
	}
	if err != nil {
		return p.failed("save the report", err)
	}
	return Response{Status: http.StatusSeeOther, Location: p.c.URL("reports")}
}

// deleteReport removes a saved report after confirmation, with an audit record.
func (p *pageCtx) deleteReport() Response {
	e := p.c.d.Reports
	if e == nil {
		return p.reportsOff()
	}
	name := p.req.Form.Get("name")
	if !p.confirmed() {
		return p.confirmPage("reports", "Delete this saved report?", "This removes the saved report “"+esc(name)+
			"” from the dashboard. The numbers themselves stay: the report can be opened and saved again at any time.",
			"reports/delete", url.Values{"name": {name}}, "Delete", p.c.URL("reports"))
	}
	w, err := audit.Put(p.entry(audit.DeleteReport, name, "Deleted the saved report "+name))
	if err != nil {
		return p.failed("delete the report", err)
	}
	err = e.DeleteSaved(p.ctx, p.sess.Account, name, w)
	if errors.Is(err, store.ErrNotFound) {
		return p.notFound("This account has no saved report of that name.")
	}
	if err != nil {
		return p.failed("delete the report", err)
	}
	return Response{Status: http.StatusSeeOther, Location: p.c.URL("reports")}
}

// homeReports is the home page's part of the reports dashboard: the saved reports by name (each
// a link to the report; the dashboard draws them), or where to start. Drawing them here would
// make the home page as slow as all of them together.
func (p *pageCtx) homeReports(b *strings.Builder) {
	if p.c.d.Reports == nil {
		return
	}
	b.WriteString(`<section aria-labelledby="reports"><h2 id="reports">Reports</h2>`)
	saved, err := p.c.d.Reports.SavedReports(p.ctx, p.sess.Account)
	switch {
	case err != nil:
		p.log.Error("console: saved reports", "error", err)
		b.WriteString(`<p class="alert">The saved reports could not be read just now; reload the page in a moment.</p>`)
	case len(saved) == 0:
		b.WriteString(`<p class="muted">Reports saved by name show here. ` + p.link("report", url.Values{"kind": {"revenue"}}, "Open the revenue report") + `.</p>`)
	default:
		b.WriteString(`<ul class="cards">`)
		for _, s := range saved {
			b.WriteString(`<li>` + p.link("report", values(s.Params), s.Name) + ` <small class="muted">` + esc(reports.KindTitle(s.Params.Kind)) + `</small></li>`)
		}
		b.WriteString(`</ul>`)
	}
	b.WriteString(`<p>` + p.link("reports", nil, "All reports, the saved ones drawn") + `</p></section>`)
}
