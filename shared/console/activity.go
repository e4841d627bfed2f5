package console

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/cartrelay/cartrelay/shared/audit"
	"github.com/cartrelay/cartrelay/shared/store"
)

// The audit log as the console writes and shows it. A console session names no person (UltraCart
// says which store signed in, a sign-in link says nothing more), so an entry names the session:
// how it was signed in, a short id derived from its cookie, and the client's address.

func (p *pageCtx) actor() string {
	how := "console"
	switch p.sess.Via {
	case ViaLink:
		how = "console, signed in with a link"
	case ViaUltraCart:
		how = "console, signed in through UltraCart"
	}
	s := how + "; session " + p.sess.ShortID()
	if p.req.SourceIP != "" {
		s += " from " + p.req.SourceIP
	}
	return s
}

// entry is an audit entry of this request's session, now.
func (p *pageCtx) entry(action, target, summary string) audit.Entry {
	return audit.Entry{Account: p.sess.Account, At: p.req.Now, Actor: p.actor(), Action: action, Target: target, Summary: summary}
}

// record writes an entry after the fact (for actions that are not table writes: a queue send);
// a failure to record is logged, the action having happened.
func (p *pageCtx) record(e audit.Entry) {
	if err := audit.Record(p.ctx, p.c.d.Store, e); err != nil {
		p.log.Error("console: action not recorded in the audit log", slog.String("action", e.Action), slog.Any("error", err))
	}
}

// recordWith writes an entry in the same transaction as the writes of the action it records.
func (p *pageCtx) recordWith(e audit.Entry, ws ...store.Write) error {
	w, err := audit.Put(e)
	if err != nil {
		return err
	}
	return p.c.d.Store.Transact(p.ctx, append(ws, w))
}

func (p *pageCtx) auditPage() Response {
	pg, err := audit.List(p.ctx, p.c.d.Store, p.sess.Account, p.req.Query.Get("cursor"), 50)
	if errors.Is(err, audit.ErrBadCursor) {
		return p.page(http.StatusBadRequest, "audit", "Activity", `<p>This page link is not valid any more. `+p.link("audit", nil, "Start from the newest")+`.</p>`)
	}
	if err != nil {
		return p.failed("read the activity log", err)
	}
	var b strings.Builder
	b.WriteString(`<p>Every replay, discard and settings change made in this console or by the operator's command line, newest first. A discarded event or message is kept here in full.</p>`)
	p.renderAudit(&b, pg.Entries)
	b.WriteString(p.pager("audit", pg.Next, "cursor"))
	return p.page(http.StatusOK, "audit", "Activity", b.String())
}

func (p *pageCtx) renderAudit(b *strings.Builder, entries []audit.Entry) {
	if len(entries) == 0 {
		b.WriteString(`<p class="muted">Nothing has been done to this account from the console or the command line yet.</p>`)
		return
	}
	tableStart(b, "Activity", "When", "What", "Who", "Outcome")
	for _, e := range entries {
		tone := "good"
		if e.Outcome != audit.Done {
			tone = "bad"
		}
		b.WriteString(`<tr><td>` + p.when(e.At) + `</td><td>` + esc(e.Summary))
		if e.Target != "" {
			b.WriteString(`<br><small class="muted mono">` + esc(e.Target) + `</small>`)
		}
		if len(e.Kept) > 0 {
			b.WriteString(`<details><summary>What was discarded</summary><pre>` + esc(string(e.Kept)) + `</pre></details>`)
		}
		b.WriteString(`</td><td class="small">` + esc(e.Actor) + `</td><td>` + badge(e.Outcome, tone) + `</td></tr>`)
	}
	tableEnd(b)
}
