package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
)

// Contacts: search by email (an exact address opens the contact; the start of one lists the
// matches) or by name (the start of the full name or of the last name), and a contact's page with
// everything cartrelay keeps about it.

const pageSize = 50

func (p *pageCtx) contacts() Response {
	q := strings.TrimSpace(p.req.Query.Get("q"))
	by := p.req.Query.Get("by")
	if by != "name" {
		by = "email"
	}
	var b strings.Builder
	checkedIf := func(v string) string {
		if by == v {
			return " checked"
		}
		return ""
	}
	b.WriteString(`<form class="filters" method="get" action="` + esc(p.c.URL("contacts")) + `" role="search">` +
		`<label for="q">Email or name<input type="search" id="q" name="q" value="` + esc(q) + `" autocomplete="off" spellcheck="false"></label>` +
		`<fieldset class="checks" style="border:0;padding:0;margin:0;background:none"><legend class="small muted">Search by</legend>` +
		`<label><input type="radio" name="by" value="email"` + checkedIf("email") + `> email</label>` +
		`<label><input type="radio" name="by" value="name"` + checkedIf("name") + `> name</label></fieldset>` +
		`<button type="submit">Search</button></form>`)
	if q == "" {
		b.WriteString(`<p class="hint">Type an email address (or its beginning, such as <code>jane@</code>) or the beginning of a name (first name, or last name) and press Search.</p>`)
		return p.page(http.StatusOK, "contacts", "Contacts", b.String())
	}
	var pg history.SearchPage
	var err error
	if by == "email" {
		if strings.Contains(q, "@") && p.req.Query.Get("cursor") == "" {
			if email, ok := p.findContact(q); ok {
				return Response{Status: http.StatusFound, Location: p.url("contact", url.Values{"email": {email}})}
			}
		}
		pg, err = p.c.history.SearchEmail(p.ctx, p.sess.Account, q, p.req.Query.Get("cursor"), pageSize)
	} else {
		pg, err = p.c.history.SearchName(p.ctx, p.sess.Account, q, p.req.Query.Get("cursor"), pageSize)
	}
	if errors.Is(err, history.ErrBadCursor) {
		return p.page(http.StatusBadRequest, "contacts", "Contacts", b.String()+`<p class="alert">This page link is not valid any more; search again.</p>`)
	}
	if err != nil {
		return p.failed("search the contacts", err)
	}
	if len(pg.Hits) == 0 {
		other, otherLabel := "name", "by name"
		if by == "name" {
			other, otherLabel = "email", "by email"
		}
		b.WriteString(`<p>No contact's ` + esc(by) + ` starts with <strong>` + esc(q) + `</strong>. ` +
			p.link("contacts", url.Values{"q": {q}, "by": {other}}, "Search "+otherLabel+" instead") + `.</p>`)
		return p.page(http.StatusOK, "contacts", "Contacts", b.String())
	}
	tableStart(&b, "Contacts found", "Email", "Name", "#Orders", "#Lifetime value", "Last purchase")
	for _, h := range pg.Hits {
		b.WriteString(`<tr><td>` + p.contactLink(h.Email) + `</td>`)
		if c := h.Profile; c != nil {
			b.WriteString(`<td>` + esc(strings.TrimSpace(c.FirstName+" "+c.LastName)) + `</td><td class="num">` + strconv.Itoa(c.PurchaseCount) +
				`</td><td class="num">` + money(c.LTV) + `</td><td>` + p.when(c.LastPurchaseAt) + `</td>`)
		} else {
			b.WriteString(`<td colspan="4" class="muted">profile not readable</td>`)
		}
		b.WriteString(`</tr>`)
	}
	tableEnd(&b)
	b.WriteString(p.pager("contacts", pg.Next, "cursor"))
	return p.page(http.StatusOK, "contacts", "Contacts", b.String())
}

// findContact looks an exact address up: the contact's own, or the one it changed to.
func (p *pageCtx) findContact(q string) (string, bool) {
	email := strings.ToLower(strings.TrimSpace(q))
	current, err := p.c.history.ResolveEmail(p.ctx, p.sess.Account, email)
	if err != nil {
		return "", false
	}
	if _, err := p.c.history.Profile(p.ctx, p.sess.Account, current); err != nil {
		return "", false
	}
	return current, true
}

func (p *pageCtx) contact() Response {
	email := strings.ToLower(strings.TrimSpace(p.req.Query.Get("email")))
	if email == "" {
		return p.notFound("No contact was named. Find one on the Contacts page.")
	}
	v, err := p.c.history.View(p.ctx, p.sess.Account, email)
	if err != nil {
		return p.failed("read the contact", err)
	}
	if v.Profile == nil {
		if domain.IsPseudonym(v.AliasOf) {
			// The address leads to its pseudonym only while its erasure runs.
			return p.page(http.StatusOK, "contacts", "Being erased", `<p class="hint">This contact is being erased. `+
				p.link("contact/erasure", url.Values{"pseudonym": {v.AliasOf}}, "See how far it got")+`.</p>`)
		}
		if v.AliasOf != "" {
			return p.page(http.StatusOK, "contacts", email, `<p class="hint">This contact's email changed to `+p.contactLink(v.AliasOf)+
				`; its history is there now.</p>`)
		}
		return p.notFound("This account has no contact " + email + ".")
	}
	c := v.Profile
	var b strings.Builder
	name := strings.TrimSpace(c.FirstName + " " + c.LastName)
	if v.AliasOf != "" {
		b.WriteString(`<p class="hint">This email changed to ` + p.contactLink(v.AliasOf) + `; newer history is there.</p>`)
	}
	b.WriteString(`<div class="grid"><div class="card"><h2>Profile</h2><dl class="kv">`)
	kv(&b, "Name", esc(name))
	kv(&b, "Email", `<code>`+esc(c.Email)+`</code>`)
	kv(&b, "Phone", esc(c.Phone))
	kv(&b, "Address", esc(address(c.Address)))
	kv(&b, "Email opt-in", optIn(c.EmailOptIn))
	kv(&b, "SMS opt-in", optIn(c.SMSOptIn))
	kv(&b, "First touch", esc(touch(c.FirstTouch)))
	kv(&b, "Last touch", esc(touch(c.LastTouch)))
	if len(c.PreviousEmails) > 0 {
		var links []string
		for _, e := range c.PreviousEmails {
			links = append(links, `<code>`+esc(e)+`</code>`)
		}
		kv(&b, "Previous emails", strings.Join(links, ", "))
	}
	if len(c.CustomerIDs) > 0 {
		kv(&b, "Customer ids", esc(strings.Join(c.CustomerIDs, ", ")))
	}
	for _, d := range destinations.All() {
		if id := c.DestinationIDs[d.Name]; id != "" {
			kv(&b, d.Label+" id", esc(id))
		}
	}
	b.WriteString(`</dl></div><div class="card"><h2>Totals</h2><dl class="kv">`)
	kv(&b, "Lifetime value", money(c.LTV)+` <small class="muted">net of refunds and chargebacks</small>`)
	kv(&b, "Gross revenue", money(c.GrossRevenue))
	kv(&b, "Refunded", money(c.Refunded))
	if c.ChargedBack.Minor != 0 {
		kv(&b, "Charged back", money(c.ChargedBack))
	}
	kv(&b, "Purchases", strconv.Itoa(c.PurchaseCount))
	kv(&b, "Average order", money(c.AOV))
	kv(&b, "First purchase", p.when(c.FirstPurchaseAt))
	kv(&b, "Last purchase", p.when(c.LastPurchaseAt))
	b.WriteString(`</dl></div></div>`)

	// Orders, newest first.
	sort.SliceStable(v.Orders, func(i, j int) bool { return orderTime(v.Orders[i]).After(orderTime(v.Orders[j])) })
	b.WriteString(`<h2>Orders</h2>`)
	if len(v.Orders) == 0 {
		b.WriteString(`<p class="muted">No orders.</p>`)
	} else {
		p.orderTable(&b, "Orders of "+c.Email, v.Orders, false)
	}

	b.WriteString(`<h2>Subscriptions</h2>`)
	if len(v.Subscriptions) == 0 {
		b.WriteString(`<p class="muted">No subscriptions.</p>`)
	}
	for _, s := range v.Subscriptions {
		b.WriteString(`<div class="card"><h3>` + esc(s.Key) + ` ` + badge(string(s.Status), subTone(s.Status)) + `</h3><dl class="kv">`)
		kv(&b, "Amount", money(s.Amount)+" "+esc(s.Frequency))
		kv(&b, "Products", esc(strings.Join(s.Products, ", ")))
		kv(&b, "Status since", p.when(s.StatusAt))
		if !s.NextAttempt.IsZero() {
			kv(&b, "Next charge", p.when(s.NextAttempt))
		}
		if s.OriginalOrderID != "" {
			kv(&b, "First order", esc(s.OriginalOrderID))
		}
		b.WriteString(`</dl>`)
		if len(s.History) > 0 {
			tableStart(&b, "Status history of "+s.Key, "When", "Status", "Reason", "Event")
			for i := len(s.History) - 1; i >= 0; i-- {
				h := s.History[i]
				b.WriteString(`<tr><td>` + p.when(h.At) + `</td><td>` + badge(string(h.Status), subTone(h.Status)) + `</td><td>` + esc(h.Reason) + `</td><td>` + esc(h.Event) + `</td></tr>`)
			}
			tableEnd(&b)
		}
		b.WriteString(`</div>`)
	}

	// Facts, newest first.
	b.WriteString(`<h2>Timeline</h2>`)
	if len(v.Facts) == 0 {
		b.WriteString(`<p class="muted">No facts yet.</p>`)
	} else {
		b.WriteString(`<ol class="timeline" reversed>`)
		for i := len(v.Facts) - 1; i >= 0; i-- {
			f := v.Facts[i]
			b.WriteString(`<li>` + p.when(f.OccurredAt) + ` <strong>` + esc(string(f.Kind)) + `</strong> ` + p.factSummary(f))
			if f.Historical {
				b.WriteString(` <span class="badge">history</span>`)
			}
			b.WriteString(`<br><small class="muted mono">` + esc(f.ID) + `</small></li>`)
		}
		b.WriteString(`</ol>`)
	}

	b.WriteString(`<h2>Deliveries</h2>`)
	ds := decodeDeliveries(v.Deliveries)
	if len(ds) == 0 {
		b.WriteString(`<p class="muted">Nothing was sent for this contact yet.</p>`)
	} else {
		p.deliveryList(&b, ds, true)
	}
	if p.c.d.Erasure != nil {
		b.WriteString(`<h2>Erasure</h2><p>When the customer asks to be forgotten, erase the contact: its personal data goes from cartrelay and its destinations, its orders stay under a pseudonym.</p>` +
			`<p><a class="button danger" href="` + esc(p.url("contact/erase", url.Values{"email": {c.Email}})) + `">Erase this contact</a></p>`)
	}
	title := c.Email
	if name != "" {
		title = name + " · " + c.Email
	}
	return p.page(http.StatusOK, "contacts", title, b.String())
}

func decodeDeliveries(raw []json.RawMessage) []history.Delivery {
	out := make([]history.Delivery, 0, len(raw))
	for _, r := range raw {
		var d history.Delivery
		if json.Unmarshal(r, &d) == nil {
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	return out
}

// factSummary is a fact in a line: the order or subscription it is about, and what changed.
func (p *pageCtx) factSummary(f domain.Fact) string {
	var parts []string
	if f.Order != nil {
		parts = append(parts, "order "+p.link("order", url.Values{"key": {f.Order.Key}}, f.Order.OrderID))
		if f.Kind == domain.FactOrderPlaced {
			parts = append(parts, money(f.Order.Total))
		}
	}
	if f.Refund != nil {
		parts = append(parts, "refunded "+money(f.Refund.Delta))
	}
	if f.Chargeback != nil {
		parts = append(parts, "chargeback "+money(f.Chargeback.Delta))
	}
	if f.Reversal != nil {
		parts = append(parts, esc(f.Reversal.Why))
	}
	if f.Sub != nil {
		parts = append(parts, esc(f.Sub.Key)+": "+esc(string(f.FromStatus))+" → "+esc(string(f.Sub.Status)))
	}
	if f.OldEmail != "" {
		parts = append(parts, "from <code>"+esc(f.OldEmail)+"</code>")
	}
	return strings.Join(parts, " · ")
}

func kv(b *strings.Builder, k, v string) {
	if v == "" {
		v = `<span class="muted">–</span>`
	}
	b.WriteString(`<dt>` + esc(k) + `</dt><dd>` + v + `</dd>`)
}

func optIn(v *bool) string {
	switch {
	case v == nil:
		return `<span class="muted">not stated</span>`
	case *v:
		return badge("yes", "good")
	}
	return badge("no", "")
}

func touch(u *domain.UTM) string {
	if u == nil {
		return ""
	}
	var parts []string
	for _, s := range []string{u.Source, u.Medium, u.Campaign} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " / ")
}

func address(a domain.Address) string {
	var parts []string
	for _, s := range []string{a.Company, a.Address1, a.Address2, strings.TrimSpace(a.PostalCode + " " + a.City), a.Region, a.CountryCode} {
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}

func subTone(s domain.SubscriptionStatus) string {
	switch s {
	case domain.SubActive:
		return "good"
	case domain.SubPaused:
		return "warn"
	case domain.SubPaymentFailed:
		return "bad"
	}
	return ""
}
