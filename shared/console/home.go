package console

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/audit"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/thrivecart/tcpoll"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
)

// The home page: what needs attention first (failures waiting for a replay, dead letters,
// quarantined events), then the health of every connection, the backfill, the queues, the
// reports dashboard and the latest actions taken on the account.

// streamView is one poller stream's progress.
type streamView struct {
	Name        string
	Started     bool
	Done        int64
	Estimated   int64
	CaughtUp    bool
	Status      string
	LastError   string
	LastErrorAt time.Time
}

// ucConnection is the UltraCart connection's state: "connected", "not connected", "unknown", or
// its problem status ("broken", "disabled") with Problem saying why since ProblemAt.
type ucConnection struct {
	State     string
	Problem   string
	ProblemAt time.Time
	// Unbound is true for an account no UltraCart store is bound to (one the operator made):
	// /connect would make a new account, so the page does not offer it.
	Unbound bool
}

func (p *pageCtx) ultracart() ucConnection {
	v := ucConnection{State: "unknown"}
	if p.c.d.Connections != nil {
		// The status only: the console never opens a store's tokens.
		conn, err := p.c.d.Connections.Peek(p.ctx, p.sess.Account, connections.UltraCart)
		switch {
		case err == nil && conn.Status != "":
			v.State, v.Problem, v.ProblemAt = conn.Status, conn.Problem, conn.ProblemAt
		case err == nil:
			v.State = "connected"
		case errors.Is(err, connections.ErrNotFound):
			v.State = "not connected"
		default:
			p.log.Warn("console: connection unreadable", slog.Any("error", err))
		}
	}
	if _, err := p.c.d.Accounts.Binding(p.ctx, p.sess.Account); errors.Is(err, accounts.ErrNotBound) {
		v.Unbound = true
	} else if err != nil {
		p.log.Warn("console: binding unreadable", slog.Any("error", err))
	}
	return v
}

func (p *pageCtx) streams() (uc []streamView, tc streamView) {
	for _, stream := range ucpoll.Streams() {
		sv := streamView{Name: stream}
		cur, found, err := ucpoll.LoadCursor(p.ctx, p.c.d.Store, p.sess.Account, stream)
		if err != nil {
			p.log.Warn("console: cursor unreadable", slog.String("stream", stream), slog.Any("error", err))
			sv.LastError = "progress could not be read"
		} else if found {
			sv.Started, sv.Done, sv.Estimated, sv.CaughtUp = true, cur.Done, cur.Estimated, cur.CaughtUp
			sv.Status, sv.LastError, sv.LastErrorAt = cur.Status, cur.LastError, cur.LastErrorAt
		}
		uc = append(uc, sv)
	}
	tc = streamView{Name: tcpoll.Stream}
	if cur, found, err := tcpoll.LoadCursor(p.ctx, p.c.d.Store, p.sess.Account); err != nil {
		p.log.Warn("console: thrivecart cursor unreadable", slog.Any("error", err))
		tc.LastError = "progress could not be read"
	} else if found {
		tc = streamView{Name: tcpoll.Stream, Started: cur.Status != tcpoll.StatusNoKey || cur.Done > 0, Done: cur.Done,
			Estimated: cur.Estimated, CaughtUp: cur.CaughtUp, Status: cur.Status, LastError: cur.LastError, LastErrorAt: cur.LastErrorAt}
		if msg := tcpoll.StatusMessage(cur.Status); msg != "" {
			tc.LastError = msg
		}
	}
	return uc, tc
}

func (p *pageCtx) home() Response {
	acct, err := p.account()
	if err != nil {
		return p.failed("read your account", err)
	}
	var b strings.Builder

	// What needs attention.
	failures, moreFailures, err := p.openFailures()
	if err != nil {
		return p.failed("read the failed deliveries", err)
	}
	parked, retrying := 0, 0
	for _, f := range failures {
		if f.Status == "parked" {
			parked++
		} else {
			retrying++
		}
	}
	quar, err := p.c.history.QuarantineBrowse(p.ctx, p.sess.Account, "", 100)
	if err != nil {
		return p.failed("read the quarantined events", err)
	}
	waiting := 0
	for _, q := range quar.Events {
		if q.ReplayedAt.IsZero() {
			waiting++
		}
	}
	b.WriteString(`<section aria-labelledby="attention"><h2 id="attention">Needs attention</h2><div class="grid">`)
	plus := func(more bool) string {
		if more {
			return "+"
		}
		return ""
	}
	stat(&b, parked, plus(moreFailures), "failed deliveries waiting for a replay", p.url("deliveries", url.Values{"status": {"parked"}}))
	stat(&b, retrying, plus(moreFailures), "deliveries being retried", p.url("deliveries", url.Values{"status": {"retry"}}))
	if p.c.d.Queue != nil {
		dl, total, err := p.deadLetterCount()
		if err != nil {
			p.log.Warn("console: dead letters unreadable", slog.Any("error", err))
		}
		note := ""
		if total > dl {
			note = strconv.Itoa(total) + " in all accounts"
		}
		statNote(&b, dl, "", "dead letters", note, p.c.URL("dead-letters"))
	}
	stat(&b, waiting, plus(quar.Next != ""), "quarantined events not replayed", p.c.URL("quarantine"))
	b.WriteString(`</div></section>`)

	// Connections.
	dh, err := p.destHealth(acct)
	if err != nil {
		return p.failed("read the delivery log", err)
	}
	uc := p.ultracart()
	ucStreams, tcStream := p.streams()
	b.WriteString(`<section aria-labelledby="connections"><h2 id="connections">Connections</h2>`)
	p.renderUltraCart(&b, uc, ucStreams)
	p.renderThriveCart(&b, acct, tcStream)
	for _, h := range dh {
		p.renderDestination(&b, h)
	}
	b.WriteString(`</section>`)

	if p.c.d.Queue != nil {
		p.renderQueues(&b, p.queueRows())
	}

	p.homeReports(&b)

	// The latest actions.
	log, err := audit.List(p.ctx, p.c.d.Store, p.sess.Account, "", 8)
	if err != nil {
		return p.failed("read the activity log", err)
	}
	b.WriteString(`<section aria-labelledby="activity"><h2 id="activity">Recent activity</h2>`)
	p.renderAudit(&b, log.Entries)
	b.WriteString(`<p>` + p.link("audit", nil, "All activity") + `</p></section>`)

	base := strings.TrimRight(p.c.d.PublicBaseURL, "/")
	b.WriteString(`<section aria-labelledby="hooks"><h2 id="hooks">Webhooks</h2><div class="card"><p>Account <code>` + esc(p.sess.Account) + `</code></p><ul>` +
		`<li>UltraCart: <code>` + esc(base+"/webhooks/ultracart/"+p.sess.Account) + `</code></li>` +
		`<li>ThriveCart: <code>` + esc(base+"/webhooks/thrivecart/"+p.sess.Account) + `</code></li></ul></div></section>`)
	return p.page(http.StatusOK, homePath, "Your cartrelay account", b.String())
}

func stat(b *strings.Builder, n int, suffix, label, href string) {
	statNote(b, n, suffix, label, "", href)
}

func statNote(b *strings.Builder, n int, suffix, label, note, href string) {
	tone := " ok"
	if n > 0 {
		tone = " bad"
	}
	b.WriteString(`<a class="stat` + tone + `" href="` + esc(href) + `"><span class="n">` + strconv.Itoa(n) + esc(suffix) + `</span>` + esc(label))
	if note != "" {
		b.WriteString(` <span class="small muted">(` + esc(note) + `)</span>`)
	}
	b.WriteString(`</a>`)
}

func (p *pageCtx) renderUltraCart(b *strings.Builder, v ucConnection, streams []streamView) {
	connect := strings.TrimRight(p.c.d.PublicBaseURL, "/") + "/connect"
	tone := ""
	switch v.State {
	case "connected":
		tone = "good"
	case "broken", "disabled":
		tone = "bad"
	}
	b.WriteString(`<div class="card"><h3>UltraCart ` + badge(v.State, tone) + `</h3><p>Status: <strong>` + esc(v.State) + `</strong>`)
	switch {
	case v.State == "not connected" && v.Unbound:
		b.WriteString(`</p><p>No UltraCart store is bound to this account. To connect yours to it, ask whoever runs this cartrelay for an invite link for this account (<code>cartrelay invites create --account ` +
			esc(p.sess.Account) + `</code>).`)
	case v.State == "not connected":
		b.WriteString(` · <a href="` + esc(connect) + `">Connect UltraCart</a>`)
	}
	b.WriteString(`</p>`)
	if v.Problem != "" {
		b.WriteString(`<div class="alert" role="alert"><p><strong>Polling has stopped`)
		if !v.ProblemAt.IsZero() {
			b.WriteString(" since " + p.when(v.ProblemAt))
		}
		again := `<a href="` + esc(connect) + `">Connect UltraCart again</a>`
		if v.Unbound {
			again = `Whoever runs this cartrelay renews this account's UltraCart credentials.`
		}
		b.WriteString(`.</strong> ` + esc(v.Problem) + `</p><p>` + again + `</p></div>`)
	}
	p.streamTable(b, "UltraCart backfill and polling", streams)
	b.WriteString(`</div>`)
}

func (p *pageCtx) renderThriveCart(b *strings.Builder, acct accounts.Account, s streamView) {
	state, tone := "webhooks only", ""
	switch {
	case !acct.ThriveCart.Secret.IsSet() && !acct.ThriveCart.APIKey.IsSet():
		state = "not set up"
	case s.Status != "" && s.LastError != "":
		state, tone = s.Status, "bad"
	case acct.ThriveCart.APIKey.IsSet():
		state, tone = "connected", "good"
	}
	b.WriteString(`<div class="card"><h3>ThriveCart ` + badge(state, tone) + `</h3>`)
	if !acct.ThriveCart.Secret.IsSet() {
		b.WriteString(`<p class="small">ThriveCart's webhooks are refused until its secret word is set in ` + p.link("settings", nil, "Settings") + `.</p>`)
	}
	p.streamTable(b, "ThriveCart polling", []streamView{s})
	b.WriteString(`</div>`)
}

func (p *pageCtx) renderDestination(b *strings.Builder, h destHealth) {
	state, tone := "off", ""
	switch {
	case !h.Enabled:
	case h.Failing():
		state, tone = "failing", "bad"
	case !h.KeySet:
		state, tone = "dry run (no API key)", "warn"
	default:
		state, tone = "sending", "good"
	}
	b.WriteString(`<div class="card"><h3>` + esc(h.Label) + ` ` + badge(state, tone) + `</h3><dl class="kv">`)
	b.WriteString(`<dt>Last success</dt><dd>`)
	if h.LastOK != nil {
		b.WriteString(p.when(h.LastOK.At) + ` · ` + esc(h.LastOK.FactKind) + ` for ` + p.contactLink(h.LastOK.Email))
	} else {
		b.WriteString(`<span class="muted">none in the latest ` + strconv.Itoa(healthScan) + ` deliveries</span>`)
	}
	b.WriteString(`</dd><dt>Last error</dt><dd>`)
	if f := h.LastFail; f != nil {
		b.WriteString(p.when(f.At) + ` · ` + badge(f.Status, "bad") + ` ` + esc(f.Error))
		if h.Failing() {
			b.WriteString(`<br><strong>What to do:</strong> ` + esc(advice(*f)) + ` ` +
				p.link("delivery", url.Values{"email": {f.Email}, "dest": {f.Dest}, "fact": {f.FactID}}, "See the delivery"))
		}
	} else {
		b.WriteString(`<span class="muted">none</span>`)
	}
	b.WriteString(`</dd></dl></div>`)
}

func (p *pageCtx) contactLink(email string) string {
	return p.link("contact", url.Values{"email": {email}}, email)
}

// streamTable shows the progress of polled streams.
func (p *pageCtx) streamTable(b *strings.Builder, caption string, streams []streamView) {
	tableStart(b, caption, "Stream", "#Loaded", "#Estimated", "State")
	for _, s := range streams {
		b.WriteString(`<tr><td>` + esc(s.Name) + `</td>`)
		if !s.Started {
			b.WriteString(`<td colspan="3">not started`)
			if s.LastError != "" {
				b.WriteString(": " + esc(s.LastError))
			}
			b.WriteString("</td></tr>")
			continue
		}
		state := "loading history"
		switch {
		case s.Status != "":
			state = s.Status
		case s.CaughtUp:
			state = "up to date"
		}
		b.WriteString(`<td class="num">` + strconv.FormatInt(s.Done, 10) + `</td><td class="num">` + strconv.FormatInt(s.Estimated, 10) + `</td><td>` + esc(state))
		if s.LastError != "" {
			b.WriteString(`<br><small>last error`)
			if !s.LastErrorAt.IsZero() {
				b.WriteString(" at " + p.when(s.LastErrorAt))
			}
			b.WriteString(": " + esc(s.LastError) + `</small>`)
		}
		b.WriteString("</td></tr>")
	}
	tableEnd(b)
}

func (p *pageCtx) renderQueues(b *strings.Builder, rows []queueRow) {
	b.WriteString(`<section aria-labelledby="queues"><h2 id="queues">Queues</h2><p class="small muted">Shared by every account of this cartrelay. A message waits in a queue until its function takes it; one that fails too often moves to the queue's dead-letter queue.</p>`)
	tableStart(b, "Queues", "Queue", "#Waiting", "#In flight", "#Delayed", "Oldest waiting")
	now := p.req.Now
	for _, r := range rows {
		b.WriteString(`<tr><td>` + esc(r.Queue) + `</td>`)
		if r.Err {
			b.WriteString(`<td colspan="4" class="muted">could not be read</td></tr>`)
			continue
		}
		b.WriteString(`<td class="num">` + strconv.Itoa(r.Visible) + `</td><td class="num">` + strconv.Itoa(r.InFlight) + `</td><td class="num">` + strconv.Itoa(r.Delayed) + `</td><td>`)
		_, canTell := p.c.d.Queue.(queue.Ager)
		switch {
		case r.Visible+r.Delayed == 0:
			b.WriteString(`<span class="muted">none waiting</span>`)
		case !r.Oldest.IsZero():
			b.WriteString(esc(ago(now.Sub(r.Oldest))))
		case !canTell:
			b.WriteString(`<span class="muted small">SQS reports it as the CloudWatch metric ApproximateAgeOfOldestMessage</span>`)
		default:
			b.WriteString(`<span class="muted">unknown</span>`)
		}
		b.WriteString(`</td></tr>`)
	}
	tableEnd(b)
	b.WriteString(`</section>`)
}

// ago writes a duration as a person says it.
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h " + strconv.Itoa(int(d%time.Hour/time.Minute)) + " min"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " days"
}
