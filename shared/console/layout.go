package console

import (
	"context"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/domain"
)

// The console's pages are written with html.EscapeString rather than html/template: a
// template's field and method lookups go through reflection, which makes the Go linker keep
// every exported method of every type in the connect function (the AWS SDK's included). That
// alone grew its bootstrap by several megabytes. Every value that reaches a page goes through
// esc (or a helper that calls it); the URLs come from the deployment's configuration and from
// url.Values encoding, never raw from a request.

func esc(s string) string { return html.EscapeString(s) }

// pageCtx is one signed-in request: its session decides the account, and every read below
// goes through it, so no parameter of a request can name another account.
type pageCtx struct {
	ctx  context.Context
	c    *Console
	sess Session
	req  Request
	log  *slog.Logger

	acct    *accounts.Account
	acctErr error
	// charts is set by a page that draws charts, which then loads the chart scripts.
	charts bool
}

// account is the session's account, read once per request.
func (p *pageCtx) account() (accounts.Account, error) {
	if p.acct == nil && p.acctErr == nil {
		a, err := p.c.d.Accounts.Get(p.ctx, p.sess.Account)
		p.acct, p.acctErr = &a, err
	}
	return *p.acct, p.acctErr
}

// loc is the account's time zone, in which pages show times and read dates.
func (p *pageCtx) loc() *time.Location {
	a, err := p.account()
	if err != nil {
		return time.UTC
	}
	return a.Location()
}

func (p *pageCtx) csrf() string { return p.c.sessions.CSRFToken(p.sess) }

// url is the address of a console page with query values.
func (p *pageCtx) url(path string, q url.Values) string {
	u := p.c.URL(path)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// Sections of the navigation.
var navSections = []struct{ path, label string }{
	{homePath, "Home"},
	{"contacts", "Contacts"},
	{"orders", "Orders"},
	{"deliveries", "Deliveries"},
	{"quarantine", "Quarantine"},
	{"dead-letters", "Dead letters"},
	{"reports", "Reports"},
	{"settings", "Settings"},
	{"audit", "Activity"},
}

// page is a page in the console's layout; section names the navigation entry it belongs to.
func (p *pageCtx) page(status int, section, title, body string) Response {
	var b strings.Builder
	b.WriteString(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>`)
	b.WriteString(esc(title) + ` · cartrelay</title><link rel="stylesheet" href="` + esc(p.c.assetURL("console.css")) + `"></head><body>`)
	b.WriteString(`<a class="skip" href="#main">Skip to content</a><header class="top"><a class="brand" href="` + esc(p.c.URL(homePath)) + `">cartrelay</a>`)
	b.WriteString(`<span class="acct">account <code>` + esc(p.sess.Account) + `</code></span><nav aria-label="Console">`)
	for _, s := range navSections {
		cur := ""
		if s.path == section {
			cur = ` aria-current="page"`
		}
		b.WriteString(`<a href="` + esc(p.c.URL(s.path)) + `"` + cur + `>` + esc(s.label) + `</a>`)
	}
	b.WriteString(`</nav>` + p.postButton("logout", nil, "Sign out", "secondary", "") + `</header><main id="main"><h1>` + esc(title) + `</h1>`)
	b.WriteString(body)
	b.WriteString(`</main>`)
	if p.charts {
		b.WriteString(`<script src="` + esc(p.c.assetURL("echarts.min.js")) + `" defer></script><script src="` + esc(p.c.assetURL("charts.js")) + `" defer></script>`)
	}
	b.WriteString(`</body></html>`)
	return Response{Status: status, Title: title, Document: b.String()}
}

// postButton is a one-button form posting to a console path with the CSRF token and hidden
// values; confirm, when set, is a sentence shown beside the button saying what it will do.
func (p *pageCtx) postButton(path string, hidden url.Values, label, class, confirm string) string {
	var b strings.Builder
	b.WriteString(`<form method="post" action="` + esc(p.c.URL(path)) + `"><input type="hidden" name="csrf" value="` + esc(p.csrf()) + `">`)
	for k, vs := range hidden {
		for _, v := range vs {
			b.WriteString(`<input type="hidden" name="` + esc(k) + `" value="` + esc(v) + `">`)
		}
	}
	if class != "" {
		class = ` class="` + class + `"`
	}
	b.WriteString(`<button type="submit"` + class + `>` + esc(label) + `</button>`)
	if confirm != "" {
		b.WriteString(` <span class="small muted">` + esc(confirm) + `</span>`)
	}
	b.WriteString(`</form>`)
	return b.String()
}

// notFound is the answer for anything the session's account does not have, whoever else might:
// another account's contact, order or delivery is not found, not forbidden.
func (p *pageCtx) notFound(what string) Response {
	return p.page(http.StatusNotFound, "", "Not found", `<p>`+esc(what)+`</p><p><a href="`+esc(p.c.URL(homePath))+`">Back to the console home</a>.</p>`)
}

// failed logs err and answers a page a merchant can act on: what could not be done, and to try
// again (nothing of the error itself, which may name internals).
func (p *pageCtx) failed(what string, err error) Response {
	p.log.Error("console: "+what, slog.Any("error", err))
	return p.page(http.StatusInternalServerError, "", "Please try again",
		`<p>cartrelay could not `+esc(what)+` just now. Nothing was changed; reload the page in a moment.</p><p class="small muted">If it keeps happening, whoever runs this cartrelay finds the details in its log under request `+
			esc(p.req.RequestID)+`.</p>`)
}

// when shows a time in the account's zone, with the exact instant for assistive technology.
func (p *pageCtx) when(t time.Time) string {
	if t.IsZero() {
		return `<span class="muted">–</span>`
	}
	return `<time datetime="` + t.UTC().Format(time.RFC3339) + `">` + esc(t.In(p.loc()).Format("2006-01-02 15:04 MST")) + `</time>`
}

// money shows an amount with its currency.
func money(m domain.Money) string {
	if m.Currency == "" {
		return esc(m.Decimal())
	}
	return esc(m.Decimal() + " " + m.Currency)
}

// badge is a short status label; tone is "", "good", "warn" or "bad".
func badge(text, tone string) string {
	class := "badge"
	if tone != "" {
		class += " " + tone
	}
	return `<span class="` + class + `">` + esc(text) + `</span>`
}

// link is an anchor to a console page.
func (p *pageCtx) link(path string, q url.Values, text string) string {
	return `<a href="` + esc(p.url(path, q)) + `">` + esc(text) + `</a>`
}

// pager links to the next page of a list, keeping the list's other parameters.
func (p *pageCtx) pager(path string, next string, cursorName string) string {
	if next == "" {
		return ""
	}
	q := url.Values{}
	for k, v := range p.req.Query {
		q[k] = v
	}
	q.Set(cursorName, next)
	return `<div class="pager"><a class="button secondary" href="` + esc(p.url(path, q)) + `">Next page</a></div>`
}

// tableStart opens a scrollable table (a wide table scrolls by itself on a phone, the page
// does not) with a caption for screen readers and the given header cells; a header starting
// with "#" is a right-aligned number column.
func tableStart(b *strings.Builder, caption string, heads ...string) {
	b.WriteString(`<div class="scroll"><table>`)
	if caption != "" {
		b.WriteString(`<caption class="sr">` + esc(caption) + `</caption>`)
	}
	b.WriteString(`<thead><tr>`)
	for _, h := range heads {
		if n, ok := strings.CutPrefix(h, "#"); ok {
			b.WriteString(`<th scope="col" class="num">` + esc(n) + `</th>`)
		} else {
			b.WriteString(`<th scope="col">` + esc(h) + `</th>`)
		}
	}
	b.WriteString(`</tr></thead><tbody>`)
}

func tableEnd(b *strings.Builder) { b.WriteString(`</tbody></table></div>`) }
