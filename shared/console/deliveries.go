package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cartrelay/cartrelay/shared/audit"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/history"
)

// Deliveries: every attempt to hand a fact to a destination, newest first, filtered by
// destination, status and time; one fact's attempts with their exact requests and answers, and
// replay, of one fact or of every failure of a destination once its cause is fixed.

var deliveryStatuses = [][2]string{{"", "any"}, {history.DeliverySent, "sent"}, {history.DeliveryDryRun, "dry run"},
	{history.DeliveryRetry, "being retried"}, {history.DeliveryParked, "failed, waiting for a replay"}, {history.DeliverySkipped, "nothing to send"}}

func statusLabel(s string) string {
	for _, x := range deliveryStatuses {
		if x[0] == s && s != "" {
			return x[1]
		}
	}
	return s
}

func statusTone(s string) string {
	switch s {
	case history.DeliverySent:
		return "good"
	case history.DeliveryParked:
		return "bad"
	case history.DeliveryRetry, history.DeliveryDryRun:
		return "warn"
	}
	return ""
}

func (p *pageCtx) deliveries() Response {
	q := p.req.Query
	dest, status := q.Get("dest"), q.Get("status")
	if dest != "" && destLabel(dest) == dest {
		dest = "" // not a destination cartrelay has
	}
	from, to, bad := p.dateRange(90)
	var b strings.Builder
	b.WriteString(`<form class="filters" method="get" action="` + esc(p.c.URL("deliveries")) + `">`)
	opts := [][2]string{{"", "any"}}
	for _, d := range destinations.All() {
		opts = append(opts, [2]string{d.Name, d.Label})
	}
	selectInput(&b, "dest", "Destination", dest, opts)
	selectInput(&b, "status", "Status", status, deliveryStatuses)
	dateInput(&b, "from", "From", from.String())
	dateInput(&b, "to", "To", to.String())
	b.WriteString(`<button type="submit">Show</button></form>`)
	if bad != "" {
		b.WriteString(`<p class="alert" role="alert">The “` + esc(bad) + `” date is not a date; use the date picker or YYYY-MM-DD.</p>`)
		return p.page(http.StatusBadRequest, "deliveries", "Deliveries", b.String())
	}

	// Bulk replay, per destination, of what still fails.
	open, more, err := p.openFailures()
	if err != nil {
		return p.failed("read the failed deliveries", err)
	}
	if p.c.d.Actions != nil {
		for _, d := range destinations.All() {
			n := 0
			for _, f := range open {
				if f.Dest == d.Name && f.Status == history.DeliveryParked {
					n++
				}
			}
			if n == 0 || (dest != "" && dest != d.Name) {
				continue
			}
			count := strconv.Itoa(n)
			if more {
				count += " or more"
			}
			b.WriteString(`<div class="hint"><p><strong>` + count + ` failed deliveries to ` + esc(d.Label) + ` wait for a replay.</strong> Once their cause is fixed (a key, a setting, the data ` +
				esc(d.Label) + ` refused), send them all again.</p>` +
				p.postButton("deliveries/replay", url.Values{"dest": {d.Name}}, "Replay every failed delivery to "+d.Label, "", "You will be asked to confirm.") + `</div>`)
		}
	}

	dq := history.DeliveryQuery{Failed: status == history.DeliveryRetry || status == history.DeliveryParked, Dest: dest, Status: status,
		From: p.instant(from), To: p.instant(to + 1), Cursor: q.Get("cursor"), Limit: pageSize}
	pg, err := p.c.history.DeliveryLog(p.ctx, p.sess.Account, dq)
	if errors.Is(err, history.ErrBadCursor) {
		return p.page(http.StatusBadRequest, "deliveries", "Deliveries", b.String()+`<p class="alert">This page link is not valid any more; show the list again.</p>`)
	}
	if err != nil {
		return p.failed("read the delivery log", err)
	}
	switch {
	case len(pg.Deliveries) == 0 && pg.Next == "":
		b.WriteString(`<p class="muted">No deliveries match.</p>`)
	case len(pg.Deliveries) == 0:
		b.WriteString(`<p class="muted">None of the deliveries looked at on this page match; the next page looks further back.</p>`)
	default:
		p.deliveryList(&b, pg.Deliveries, true)
	}
	b.WriteString(p.pager("deliveries", pg.Next, "cursor"))
	return p.page(http.StatusOK, "deliveries", "Deliveries", b.String())
}

// deliveryList is a table of attempts with a link to each fact's page.
func (p *pageCtx) deliveryList(b *strings.Builder, ds []history.Delivery, withContact bool) {
	heads := []string{"When", "Destination", "Fact", "Status", "#Attempt", "Error"}
	if withContact {
		heads = append(heads[:3], append([]string{"Contact"}, heads[3:]...)...)
	}
	tableStart(b, "Deliveries", heads...)
	for _, d := range ds {
		b.WriteString(`<tr><td>` + p.when(d.At) + `</td><td>` + esc(destLabel(d.Dest)) + `</td><td>` +
			p.link("delivery", url.Values{"email": {d.Email}, "dest": {d.Dest}, "fact": {d.FactID}}, d.FactKind) + `</td>`)
		if withContact {
			b.WriteString(`<td>` + p.contactLink(d.Email) + `</td>`)
		}
		b.WriteString(`<td>` + badge(statusLabel(d.Status), statusTone(d.Status)) + `</td><td class="num">` + strconv.Itoa(d.Attempt) + `</td><td class="small">` + esc(shorten(d.Error, 160)) + `</td></tr>`)
	}
	tableEnd(b)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// deliveryTarget is the fact a delivery page or a replay names: a contact, a destination and a
// fact id, looked up in the session's account only.
type deliveryTarget struct {
	Email, Dest, Fact string
}

func (p *pageCtx) target(v url.Values) (deliveryTarget, bool) {
	t := deliveryTarget{Email: strings.ToLower(strings.TrimSpace(v.Get("email"))), Dest: v.Get("dest"), Fact: v.Get("fact")}
	return t, t.Email != "" && t.Fact != "" && destLabel(t.Dest) != t.Dest
}

func (p *pageCtx) delivery() Response {
	t, ok := p.target(p.req.Query)
	if !ok {
		return p.notFound("No delivery was named. Find one on the Deliveries page.")
	}
	attempts, err := p.c.history.ContactDeliveries(p.ctx, p.sess.Account, t.Email, t.Dest, t.Fact)
	if err != nil {
		return p.failed("read the delivery", err)
	}
	if len(attempts) == 0 {
		return p.notFound("This account has no delivery of that fact to " + destLabel(t.Dest) + ".")
	}
	done, err := p.c.history.FactDone(p.ctx, p.sess.Account, t.Dest, t.Fact)
	if err != nil {
		return p.failed("read the delivery", err)
	}
	latest := attempts[0]
	var b strings.Builder
	b.WriteString(`<div class="card"><dl class="kv">`)
	kv(&b, "Destination", esc(destLabel(t.Dest)))
	kv(&b, "Fact", `<strong>`+esc(latest.FactKind)+`</strong> <small class="muted mono">`+esc(t.Fact)+`</small>`)
	kv(&b, "Contact", p.contactLink(t.Email))
	if f, err := p.c.history.Fact(p.ctx, p.sess.Account, t.Email, t.Fact); err == nil {
		kv(&b, "What it says", p.factSummary(f))
		kv(&b, "Happened", p.when(f.OccurredAt))
	}
	state := badge(statusLabel(latest.Status), statusTone(latest.Status))
	if done != nil {
		state = badge("delivered", "good")
	}
	kv(&b, "Now", state)
	b.WriteString(`</dl></div>`)
	failing := done == nil && (latest.Status == history.DeliveryParked || latest.Status == history.DeliveryRetry)
	if failing {
		b.WriteString(`<div class="alert"><p><strong>What to do:</strong> ` + esc(advice(latest)) + `</p>`)
		if p.c.d.Actions != nil {
			b.WriteString(`<div class="actions">` + p.postButton("delivery/replay", url.Values{"email": {t.Email}, "dest": {t.Dest}, "fact": {t.Fact}},
				"Replay", "", "Sends this fact to "+destLabel(t.Dest)+" again; you will be asked to confirm.") + `</div>`)
		}
		b.WriteString(`</div>`)
	}
	b.WriteString(`<h2>Attempts</h2>`)
	for _, d := range attempts {
		b.WriteString(`<div class="card"><h3>Attempt ` + strconv.Itoa(d.Attempt) + ` · ` + p.when(d.At) + ` ` + badge(statusLabel(d.Status), statusTone(d.Status)) + `</h3>`)
		if d.Error != "" {
			b.WriteString(`<p><strong>Error:</strong> ` + esc(d.Error) + `</p>`)
		}
		if d.Note != "" {
			b.WriteString(`<p class="small">` + esc(d.Note) + `</p>`)
		}
		if d.LatencyMS > 0 {
			b.WriteString(`<p class="small muted">took ` + strconv.FormatInt(d.LatencyMS, 10) + ` ms</p>`)
		}
		for i, x := range d.Requests {
			open := ""
			if i == len(d.Requests)-1 && d.Status != history.DeliverySent {
				open = " open"
			}
			b.WriteString(`<details` + open + `><summary><code>` + esc(x.Method+" "+x.URL) + `</code> → ` + exchangeStatus(x.Status) + `</summary>`)
			if len(x.RequestHeaders) > 0 {
				var hs []string
				for k, v := range x.RequestHeaders {
					hs = append(hs, k+": "+v)
				}
				b.WriteString(`<p class="small muted">Request headers</p><pre>` + esc(strings.Join(sortedLines(hs), "\n")) + `</pre>`)
			}
			if x.RequestBody != "" {
				b.WriteString(`<p class="small muted">Request</p><pre>` + esc(pretty(x.RequestBody)) + `</pre>`)
			}
			if x.ResponseBody != "" {
				b.WriteString(`<p class="small muted">Answer</p><pre>` + esc(pretty(x.ResponseBody)) + `</pre>`)
			}
			b.WriteString(`</details>`)
		}
		if len(d.Requests) == 0 {
			b.WriteString(`<p class="small muted">No request was made.</p>`)
		}
		b.WriteString(`</div>`)
	}
	return p.page(http.StatusOK, "deliveries", latest.FactKind+" to "+destLabel(t.Dest), b.String())
}

func exchangeStatus(s int) string {
	switch {
	case s == 0:
		return badge("no answer", "bad")
	case s >= 200 && s < 300:
		return badge(strconv.Itoa(s), "good")
	}
	return badge(strconv.Itoa(s), "bad")
}

func sortedLines(ls []string) []string {
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && ls[j] < ls[j-1]; j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
	return ls
}

// pretty indents a JSON body; anything else is shown as it is.
func pretty(s string) string {
	var v any
	if json.Unmarshal([]byte(s), &v) != nil {
		return s
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return s
	}
	return string(b)
}

// confirmed reports whether a post carries the confirmation of its own confirmation page.
func (p *pageCtx) confirmed() bool { return p.req.Form.Get("confirm") == "yes" }

// confirmPage asks before an action: what will happen, a button that posts the same form with
// confirm=yes, and a way back.
func (p *pageCtx) confirmPage(section, title, what, path string, hidden url.Values, button, back string) Response {
	h := url.Values{}
	for k, v := range hidden {
		h[k] = v
	}
	h.Set("confirm", "yes")
	return p.page(http.StatusOK, section, title, `<div class="hint"><p>`+what+`</p></div><div class="actions">`+
		p.postButton(path, h, button, "", "")+`<a class="button secondary" href="`+esc(back)+`">Cancel</a></div>`)
}

func (p *pageCtx) replayDelivery() Response {
	t, ok := p.target(p.req.Form)
	if !ok || p.c.d.Actions == nil {
		return p.notFound("No delivery was named.")
	}
	attempts, err := p.c.history.ContactDeliveries(p.ctx, p.sess.Account, t.Email, t.Dest, t.Fact)
	if err != nil {
		return p.failed("read the delivery", err)
	}
	if len(attempts) == 0 {
		return p.notFound("This account has no delivery of that fact to " + destLabel(t.Dest) + ".")
	}
	back := p.url("delivery", url.Values{"email": {t.Email}, "dest": {t.Dest}, "fact": {t.Fact}})
	if !p.confirmed() {
		return p.confirmPage("deliveries", "Replay this delivery?", "This sends the "+esc(attempts[0].FactKind)+" fact of "+esc(t.Email)+" to "+esc(destLabel(t.Dest))+
			" again, exactly as it was queued. If it has reached "+esc(destLabel(t.Dest))+" since, nothing is sent twice.", "delivery/replay",
			url.Values{"email": {t.Email}, "dest": {t.Dest}, "fact": {t.Fact}}, "Replay now", back)
	}
	e := p.entry(audit.ReplayDelivery, t.Dest+" "+t.Fact, "Replayed the "+attempts[0].FactKind+" of "+t.Email+" to "+destLabel(t.Dest))
	if err := p.c.d.Actions.ReplayDelivery(p.ctx, p.sess.Account, t.Email, t.Dest, t.Fact); err != nil {
		e.Outcome = "not replayed: " + err.Error()
		p.record(e)
		p.log.Warn("console: replay failed")
		return p.page(http.StatusBadGateway, "deliveries", "Not replayed", `<div class="alert" role="alert"><p>The delivery could not be queued again: `+
			esc(err.Error())+`</p></div><p><a href="`+esc(back)+`">Back to the delivery</a></p>`)
	}
	p.record(e)
	return p.page(http.StatusOK, "deliveries", "Replay queued", `<div class="notice" role="status"><p>The fact is queued for `+esc(destLabel(t.Dest))+
		` again. Its new attempt shows on the delivery's page within moments.</p></div><p><a href="`+esc(back)+`">Back to the delivery</a></p>`)
}

func (p *pageCtx) replayDestination() Response {
	dest := p.req.Form.Get("dest")
	if destLabel(dest) == dest || p.c.d.Actions == nil {
		return p.notFound("No destination was named.")
	}
	back := p.url("deliveries", url.Values{"dest": {dest}, "status": {history.DeliveryParked}})
	if !p.confirmed() {
		return p.confirmPage("deliveries", "Replay every failed delivery to "+destLabel(dest)+"?",
			"This sends every fact whose latest delivery to "+esc(destLabel(dest))+" failed, and that has not reached it since, again. Do it once the cause of the failures is fixed; facts that fail again are kept for another replay.",
			"deliveries/replay", url.Values{"dest": {dest}}, "Replay them all now", back)
	}
	queued, failed, err := p.c.d.Actions.ReplayDestination(p.ctx, p.sess.Account, dest)
	e := p.entry(audit.ReplayDeliveries, dest, "Replayed "+strconv.Itoa(queued)+" failed deliveries to "+destLabel(dest))
	if err != nil || failed > 0 {
		e.Outcome = strconv.Itoa(failed) + " could not be queued"
		if err != nil {
			e.Outcome += ": " + err.Error()
		}
	}
	p.record(e)
	if err != nil && queued == 0 && failed == 0 {
		return p.failed("replay the failed deliveries", err)
	}
	msg := strconv.Itoa(queued) + " deliveries are queued for " + esc(destLabel(dest)) + " again."
	if failed > 0 {
		msg += " " + strconv.Itoa(failed) + " could not be queued; each one's page says why."
	}
	return p.page(http.StatusOK, "deliveries", "Replay queued", `<div class="notice" role="status"><p>`+msg+`</p></div><p><a href="`+esc(back)+`">Back to the deliveries</a></p>`)
}
