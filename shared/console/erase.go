package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/erasure"
)

// Erasing a contact at its request: the contact's page links to a confirmation that shows what
// the erasure touches; its button posts, and the answer names the pseudonym the orders are kept
// under and how far the erasure got, never the address. The erasure records itself in the audit
// log with the session as the one who asked.

// Erasure is what the console asks of shared/erasure (*erasure.Eraser implements it).
type Erasure interface {
	Plan(ctx context.Context, acct accounts.Account, email string) (erasure.Plan, error)
	Erase(ctx context.Context, acct accounts.Account, email, by string) (erasure.Result, error)
	Status(ctx context.Context, account, pseudonym string) (*erasure.Result, error)
}

// erasePlan reads what erasing the contact a request names would touch, in the session's
// account only: an address the account has no contact under is not found, whoever else has it.
func (p *pageCtx) erasePlan(v url.Values) (accounts.Account, erasure.Plan, Response, bool) {
	email := strings.ToLower(strings.TrimSpace(v.Get("email")))
	if email == "" || p.c.d.Erasure == nil {
		return accounts.Account{}, erasure.Plan{}, p.notFound("No contact was named. Find one on the Contacts page."), false
	}
	acct, err := p.account()
	if err != nil {
		return acct, erasure.Plan{}, p.failed("read the account", err), false
	}
	plan, err := p.c.d.Erasure.Plan(p.ctx, acct, email)
	if errors.Is(err, erasure.ErrPseudonym) {
		return acct, plan, p.page(http.StatusConflict, "contacts", "Erased already", `<p>`+esc(email)+
			` is the pseudonym of a contact erased already: it names nobody, so there is nothing left to erase.</p>`), false
	}
	if err != nil {
		return acct, plan, p.failed("read what the erasure would touch", err), false
	}
	if !plan.Contact && plan.Orders == 0 && plan.Subscriptions == 0 {
		return acct, plan, p.notFound("This account has no contact " + email + " (it may have been erased already)."), false
	}
	return acct, plan, Response{}, true
}

func (p *pageCtx) eraseConfirm() Response {
	_, plan, resp, ok := p.erasePlan(p.req.Query)
	if !ok {
		return resp
	}
	var b strings.Builder
	b.WriteString(`<div class="alert" role="alert"><p>Erasing cannot be undone. Do it when the customer asked to be forgotten.</p></div>`)
	b.WriteString(`<div class="card"><h2>What is erased</h2><dl class="kv">`)
	var addrs []string
	for _, a := range plan.Addresses {
		addrs = append(addrs, `<code>`+esc(a)+`</code>`)
	}
	kv(&b, "Addresses", strings.Join(addrs, ", "))
	kv(&b, "Orders kept", strconv.Itoa(plan.Orders)+` <small class="muted">under a pseudonym, without name, address or phone, so revenue and reports still add up</small>`)
	kv(&b, "Subscriptions kept", strconv.Itoa(plan.Subscriptions)+` <small class="muted">under the same pseudonym</small>`)
	var dests []string
	for _, d := range plan.Destinations {
		dests = append(dests, esc(destLabel(d)))
	}
	kv(&b, "Told to forget", strings.Join(dests, ", "))
	b.WriteString(`</dl></div><ul>`)
	b.WriteString(`<li>The profile, its previous addresses, carts, timeline, delivery log, page views, timers and the quarantined events that mention it are deleted.</li>`)
	b.WriteString(`<li>Its orders and subscriptions stay under a pseudonym for revenue; nothing in them names the customer any more.</li>`)
	for _, d := range plan.Destinations {
		switch d {
		case "iterable":
			b.WriteString(`<li>Iterable is asked to forget every address (its <code>users/forget</code>).</li>`)
		case "ontraport":
			if plan.Ontraport == "delete" {
				b.WriteString(`<li>The ONTRAPORT contact is deleted (this account's setting).</li>`)
			} else {
				b.WriteString(`<li>The ONTRAPORT contact is anonymized: its name and details are cleared and its email becomes the pseudonym, so its transactions stay (this account's setting; it can delete instead).</li>`)
			}
		}
	}
	b.WriteString(`<li>The activity log records that the contact was erased, by this session and when, under the pseudonym; never the address.</li></ul>`)
	b.WriteString(`<div class="actions">` + p.postButton("contact/erase", url.Values{"email": {plan.Email}, "confirm": {"yes"}}, "Erase this contact", "danger", "") +
		`<a class="button secondary" href="` + esc(p.url("contact", url.Values{"email": {plan.Email}})) + `">Cancel</a></div>`)
	return p.page(http.StatusOK, "contacts", "Erase this contact?", b.String())
}

func (p *pageCtx) eraseContact() Response {
	if !p.confirmed() {
		// A post from anywhere but the confirmation page shows the confirmation.
		p.req.Query = p.req.Form
		return p.eraseConfirm()
	}
	acct, plan, resp, ok := p.erasePlan(p.req.Form)
	if !ok {
		return resp
	}
	res, err := p.c.d.Erasure.Erase(p.ctx, acct, plan.Email, p.actor())
	if err != nil {
		return p.failed("erase the contact", err)
	}
	return p.erasurePage(res)
}

func (p *pageCtx) erasureStatus() Response {
	ps := strings.ToLower(strings.TrimSpace(p.req.Query.Get("pseudonym")))
	if !domain.IsPseudonym(ps) || p.c.d.Erasure == nil {
		return p.notFound("No erasure was named.")
	}
	res, err := p.c.d.Erasure.Status(p.ctx, p.sess.Account, ps)
	if err != nil {
		return p.failed("read the erasure", err)
	}
	if res == nil {
		return p.page(http.StatusOK, "contacts", "Erasure", `<p>No erasure is under way as <code>`+esc(ps)+
			`</code>. A finished erasure leaves only its entry in the `+p.link("audit", nil, "activity log")+`.</p>`)
	}
	return p.erasurePage(*res)
}

// erasurePage says where an erasure stands, by its pseudonym.
func (p *pageCtx) erasurePage(res erasure.Result) Response {
	var b strings.Builder
	if res.Done {
		b.WriteString(`<div class="notice" role="status"><p>The contact is erased: no trace of its addresses is left.</p></div>`)
	} else {
		b.WriteString(`<div class="notice" role="status"><p>The erasure is under way. cartrelay finishes it by itself once every destination has answered, at least ` +
			esc(erasure.SettleAfter.String()) + ` after it began; nothing more is needed from you.</p></div>`)
	}
	if res.Already {
		b.WriteString(`<p class="hint">This contact's erasure had started already; this is how far it got.</p>`)
	}
	b.WriteString(`<div class="card"><dl class="kv">`)
	kv(&b, "Pseudonym", `<code>`+esc(res.Pseudonym)+`</code>`)
	if !res.At.IsZero() {
		kv(&b, "Started", p.when(res.At))
	}
	kv(&b, "Addresses", strconv.Itoa(res.Addresses))
	kv(&b, "Orders kept", strconv.Itoa(res.Orders))
	kv(&b, "Subscriptions kept", strconv.Itoa(res.Subscriptions))
	kv(&b, "Records deleted so far", strconv.Itoa(res.Deleted))
	var waiting []string
	for _, d := range res.Waiting {
		waiting = append(waiting, esc(destLabel(d)))
	}
	kv(&b, "Waiting for", strings.Join(waiting, ", "))
	b.WriteString(`</dl></div><p>` + p.link("contact/erasure", url.Values{"pseudonym": {res.Pseudonym}}, "See how far it got") + ` · ` +
		p.link("audit", nil, "Activity log") + ` · ` + p.link("contacts", nil, "Contacts") + `</p>`)
	title := "Erasure under way"
	if res.Done {
		title = "Contact erased"
	}
	return p.page(http.StatusOK, "contacts", title, b.String())
}
