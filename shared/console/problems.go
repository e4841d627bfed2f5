package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/audit"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Quarantined events (source events kept raw with the reason they were not ingested) and dead
// letters (queue messages a function failed on too often), each with its reason and raw body,
// and Replay and Discard. A discard keeps what it removed in the audit log.

func (p *pageCtx) quarantine() Response {
	pg, err := p.c.history.QuarantineBrowse(p.ctx, p.sess.Account, p.req.Query.Get("cursor"), pageSize)
	if errors.Is(err, history.ErrBadCursor) {
		return p.page(http.StatusBadRequest, "quarantine", "Quarantine", `<p class="alert">This page link is not valid any more. `+p.link("quarantine", nil, "Start again")+`.</p>`)
	}
	if err != nil {
		return p.failed("list the quarantined events", err)
	}
	var b strings.Builder
	b.WriteString(`<p>Events the carts sent that cartrelay kept raw instead of ingesting, with the reason. Fix the cause (a setting, or a cartrelay update for an event it did not know), then replay; discard what should never count.</p>`)
	if len(pg.Events) == 0 {
		b.WriteString(`<p class="notice">Nothing is quarantined: every event was ingested.</p>`)
		return p.page(http.StatusOK, "quarantine", "Quarantine", b.String())
	}
	tableStart(&b, "Quarantined events", "Received", "Event", "Why", "Reason", "Replayed")
	for _, q := range pg.Events {
		b.WriteString(`<tr><td>` + p.when(q.At) + `</td><td>` + p.link("quarantine/event", url.Values{"id": {q.ID}}, strings.TrimSpace(q.Source+" "+q.Event+" "+q.ID)) +
			`</td><td>` + badge(q.Kind, "warn") + `</td><td class="small">` + esc(shorten(q.Reason, 200)) + `</td><td>`)
		if !q.ReplayedAt.IsZero() {
			b.WriteString(p.when(q.ReplayedAt))
		}
		b.WriteString(`</td></tr>`)
	}
	tableEnd(&b)
	b.WriteString(p.pager("quarantine", pg.Next, "cursor"))
	return p.page(http.StatusOK, "quarantine", "Quarantine", b.String())
}

// quarantinedEvent reads the event a request names, in the session's account only.
func (p *pageCtx) quarantinedEvent(v url.Values) (history.Quarantined, Response, bool) {
	id := v.Get("id")
	if !history.IsQuarantineID(id) {
		return history.Quarantined{}, p.notFound("No quarantined event was named. Find one on the Quarantine page."), false
	}
	q, err := p.c.history.QuarantineGet(p.ctx, p.sess.Account, id)
	if errors.Is(err, store.ErrNotFound) {
		return q, p.notFound("This account has no quarantined event " + id + " (it may have been discarded)."), false
	}
	if err != nil {
		return q, p.failed("read the quarantined event", err), false
	}
	return q, Response{}, true
}

func (p *pageCtx) quarantined() Response {
	q, resp, ok := p.quarantinedEvent(p.req.Query)
	if !ok {
		return resp
	}
	var b strings.Builder
	b.WriteString(`<div class="card"><dl class="kv">`)
	kv(&b, "Received", p.when(q.At))
	kv(&b, "Source", esc(q.Source))
	kv(&b, "Event", esc(q.Event))
	kv(&b, "Why", badge(q.Kind, "warn")+" "+esc(quarantineKind(q.Kind)))
	kv(&b, "Reason", esc(q.Reason))
	if !q.ReplayedAt.IsZero() {
		kv(&b, "Replayed", p.when(q.ReplayedAt)+` <small class="muted">it is quarantined again with its new reason if it still cannot be ingested</small>`)
	}
	b.WriteString(`</dl></div>`)
	if p.c.d.Actions != nil {
		b.WriteString(`<div class="actions">` +
			p.postButton("quarantine/replay", url.Values{"id": {q.ID}}, "Replay", "", "") +
			p.postButton("quarantine/discard", url.Values{"id": {q.ID}}, "Discard", "danger", "Each asks you to confirm first.") + `</div>`)
	}
	b.WriteString(`<h2>The event as received</h2>`)
	if p.c.d.Actions != nil {
		if ev, err := p.c.d.Actions.ShowEvent(p.ctx, q.Message); err == nil {
			b.WriteString(`<pre>` + esc(pretty(string(ev))) + `</pre>`)
		} else {
			b.WriteString(`<p class="small muted">It could not be read back as an event (` + esc(err.Error()) + `); the message as queued:</p><pre>` + esc(q.Message) + `</pre>`)
		}
	} else {
		b.WriteString(`<pre>` + esc(q.Message) + `</pre>`)
	}
	return p.page(http.StatusOK, "quarantine", "Quarantined event "+q.ID, b.String())
}

func quarantineKind(kind string) string {
	switch kind {
	case history.QuarantineMalformed:
		return "the cart sent something that is not a valid event"
	case history.QuarantineUnknownEvent:
		return "a valid event cartrelay does not act on"
	case history.QuarantineInvalid:
		return "the event lacks, or garbles, what cartrelay needs (an email, an order id, a currency)"
	case history.QuarantineUnreadable:
		return "a queue message that could not be read back"
	}
	return ""
}

func (p *pageCtx) replayQuarantined() Response {
	if p.c.d.Actions == nil {
		return p.notFound("Replays are not available here.")
	}
	q, resp, ok := p.quarantinedEvent(p.req.Form)
	if !ok {
		return resp
	}
	back := p.url("quarantine/event", url.Values{"id": {q.ID}})
	if !p.confirmed() {
		return p.confirmPage("quarantine", "Replay this event?", "This sends the "+esc(strings.TrimSpace(q.Source+" "+q.Event))+
			" event to ingest again, exactly as received. If the cause is fixed it is ingested (and counts once, however often it is replayed); if not, it is quarantined again with the new reason.",
			"quarantine/replay", url.Values{"id": {q.ID}}, "Replay now", back)
	}
	e := p.entry(audit.ReplayQuarantined, q.ID, "Replayed the quarantined "+strings.TrimSpace(q.Source+" "+q.Event)+" event "+q.ID)
	if err := p.c.d.Actions.ReplayQuarantined(p.ctx, p.sess.Account, q.ID); err != nil {
		e.Outcome = "not replayed: " + err.Error()
		p.record(e)
		return p.page(http.StatusBadGateway, "quarantine", "Not replayed", `<div class="alert" role="alert"><p>The event could not be sent to ingest again: `+esc(err.Error())+
			`</p></div><p><a href="`+esc(back)+`">Back to the event</a></p>`)
	}
	p.record(e)
	return p.page(http.StatusOK, "quarantine", "Replay queued", `<div class="notice" role="status"><p>The event is on its way to ingest again.</p></div><p>`+
		p.link("quarantine", nil, "Back to the quarantine")+`</p>`)
}

func (p *pageCtx) discardQuarantined() Response {
	q, resp, ok := p.quarantinedEvent(p.req.Form)
	if !ok {
		return resp
	}
	back := p.url("quarantine/event", url.Values{"id": {q.ID}})
	if !p.confirmed() {
		return p.confirmPage("quarantine", "Discard this event?", "This removes the "+esc(strings.TrimSpace(q.Source+" "+q.Event))+
			" event from the quarantine for good: it will never be ingested. The activity log keeps a copy of it, with who discarded it and when.",
			"quarantine/discard", url.Values{"id": {q.ID}}, "Discard", back)
	}
	kept, _ := json.Marshal(q)
	e := p.entry(audit.DiscardQuarantine, q.ID, "Discarded the quarantined "+strings.TrimSpace(q.Source+" "+q.Event)+" event "+q.ID)
	e.Kept = kept
	err := p.recordWith(e, history.QuarantineDiscard(p.sess.Account, q.ID))
	if errors.Is(err, store.ErrConditionFailed) {
		return p.notFound("This event is no longer in the quarantine (it was discarded already).")
	}
	if err != nil {
		return p.failed("discard the event", err)
	}
	return p.page(http.StatusOK, "quarantine", "Event discarded", `<div class="notice" role="status"><p>The event is discarded; a copy is in the `+
		p.link("audit", nil, "activity log")+`.</p></div><p>`+p.link("quarantine", nil, "Back to the quarantine")+`</p>`)
}

// Dead letters.

// deadLetterScan bounds the messages looked at in each dead-letter queue.
const deadLetterScan = 100

// dlqs are the dead-letter queues, in the order the page shows them.
func dlqs() []string {
	var out []string
	for _, s := range destinations.Queues() {
		out = append(out, s.DLQ())
	}
	return out
}

// messageAccount is the account a queue message belongs to: its "account" attribute, or the
// "account" of a JSON body (a poll job).
func messageAccount(r queue.Received) string {
	if a := r.Attributes["account"]; a != "" {
		return a
	}
	var body struct {
		Account string `json:"account"`
	}
	if json.Unmarshal([]byte(r.Body), &body) == nil {
		return body.Account
	}
	return ""
}

type deadLetter struct {
	Queue string
	queue.Received
}

// deadLetters looks into every dead-letter queue that holds anything and returns the account's
// messages, and how many messages all accounts have there.
func (p *pageCtx) accountDeadLetters() (mine []deadLetter, total int, err error) {
	for _, name := range dlqs() {
		st, err := p.c.d.Queue.Stats(p.ctx, name)
		if err != nil {
			return nil, 0, err
		}
		n := st.Visible + st.InFlight + st.Delayed
		total += n
		if st.Visible == 0 {
			continue
		}
		got, err := queue.Peek(p.ctx, p.c.d.Queue, destinations.Queues(), name, deadLetterScan)
		if err != nil {
			return nil, 0, err
		}
		for _, r := range got {
			if messageAccount(r) == p.sess.Account {
				mine = append(mine, deadLetter{Queue: name, Received: r})
			}
		}
	}
	return mine, total, nil
}

func (p *pageCtx) deadLetterCount() (mine, total int, err error) {
	list, total, err := p.accountDeadLetters()
	return len(list), total, err
}

func (p *pageCtx) deadLetters() Response {
	if p.c.d.Queue == nil {
		return p.failed("read the dead-letter queues", errNoQueue)
	}
	list, total, err := p.accountDeadLetters()
	if err != nil {
		return p.failed("read the dead-letter queues", err)
	}
	var b strings.Builder
	b.WriteString(`<p>A message moves to its queue's dead-letter queue when the function that takes it failed on it again and again (it could not reach the table, or crashed on it). Nothing in it is lost: replay it once the cause is fixed, or discard it.</p>`)
	if len(list) == 0 {
		b.WriteString(`<p class="notice">No dead letters of this account.</p>`)
		if total > 0 {
			b.WriteString(`<p class="small muted">The dead-letter queues hold ` + strconv.Itoa(total) + ` messages of other accounts, or that could not be looked at right now.</p>`)
		}
		return p.page(http.StatusOK, "dead-letters", "Dead letters", b.String())
	}
	tableStart(&b, "Dead letters", "Queue", "Sent", "Message", "#Receives")
	for _, d := range list {
		b.WriteString(`<tr><td>` + esc(d.Queue) + `</td><td>` + p.when(d.SentAt) + `</td><td>` +
			p.link("dead-letter", url.Values{"queue": {d.Queue}, "id": {d.MessageID}}, describeMessage(d.Queue, d.Received)) +
			`<br><small class="muted mono">` + esc(d.MessageID) + `</small></td><td class="num">` + strconv.Itoa(d.ReceiveCount) + `</td></tr>`)
	}
	tableEnd(&b)
	b.WriteString(`<p class="small muted">Up to ` + strconv.Itoa(deadLetterScan) + ` messages of each queue are looked at.</p>`)
	return p.page(http.StatusOK, "dead-letters", "Dead letters", b.String())
}

// describeMessage says in a few words what a message is.
func describeMessage(q string, r queue.Received) string {
	var f struct {
		Kind   string `json:"kind"`
		Email  string `json:"email"`
		Stream string `json:"stream"`
		Source string `json:"source"`
	}
	_ = json.Unmarshal([]byte(r.Body), &f)
	switch {
	case f.Kind != "":
		return f.Kind + " of " + f.Email
	case f.Stream != "":
		return "poll job " + strings.TrimSpace(f.Source+" "+f.Stream)
	case r.Attributes["source"] != "":
		return r.Attributes["source"] + " event"
	}
	return "message of " + strings.TrimSuffix(q, queue.DLQSuffix)
}

// deadLetterNamed finds the message a request names among the account's dead letters; found
// false answers 404, whoever's message it might be.
func (p *pageCtx) deadLetterNamed(v url.Values) (string, string, bool) {
	name, id := v.Get("queue"), v.Get("id")
	if _, ok := destinations.Queues().SourceOf(name); !ok || id == "" || len(id) > 200 {
		return "", "", false
	}
	return name, id, true
}

func (p *pageCtx) deadLetter() Response {
	name, id, ok := p.deadLetterNamed(p.req.Query)
	if !ok || p.c.d.Queue == nil {
		return p.notFound("No dead letter was named. Find one on the Dead letters page.")
	}
	got, err := queue.Peek(p.ctx, p.c.d.Queue, destinations.Queues(), name, deadLetterScan)
	if err != nil {
		return p.failed("read the dead-letter queue", err)
	}
	var d *queue.Received
	for i := range got {
		if got[i].MessageID == id && messageAccount(got[i]) == p.sess.Account {
			d = &got[i]
		}
	}
	if d == nil {
		return p.notFound("This account has no dead letter " + id + " in " + name + " (it may have been replayed or discarded).")
	}
	var b strings.Builder
	b.WriteString(`<div class="card"><dl class="kv">`)
	kv(&b, "Queue", esc(name)+` <small class="muted">dead letters of `+esc(strings.TrimSuffix(name, queue.DLQSuffix))+`</small>`)
	kv(&b, "Message", esc(describeMessage(name, *d)))
	kv(&b, "First sent", p.when(d.SentAt))
	kv(&b, "Received", strconv.Itoa(d.ReceiveCount)+" times")
	kv(&b, "Why it is here", esc(deadLetterReason(name)))
	b.WriteString(`</dl></div>`)
	hidden := url.Values{"queue": {name}, "id": {id}}
	b.WriteString(`<div class="actions">` + p.postButton("dead-letter/replay", hidden, "Replay", "", "") +
		p.postButton("dead-letter/discard", hidden, "Discard", "danger", "Each asks you to confirm first.") + `</div>`)
	b.WriteString(`<h2>The message</h2>`)
	body := pretty(d.Body)
	if name == queue.Ingest+queue.DLQSuffix && p.c.d.Actions != nil {
		if ev, err := p.c.d.Actions.ShowEvent(p.ctx, d.Body); err == nil {
			body = pretty(string(ev))
		}
	}
	b.WriteString(`<pre>` + esc(body) + `</pre>`)
	if len(d.Attributes) > 0 {
		var as []string
		for k, v := range d.Attributes {
			as = append(as, k+": "+v)
		}
		b.WriteString(`<p class="small muted">Attributes</p><pre>` + esc(strings.Join(sortedLines(as), "\n")) + `</pre>`)
	}
	return p.page(http.StatusOK, "dead-letters", "Dead letter", b.String())
}

func deadLetterReason(dlq string) string {
	src := strings.TrimSuffix(dlq, queue.DLQSuffix)
	spec, _ := destinations.Queues().SpecFor(src)
	return "The " + src + " function was handed it " + strconv.Itoa(spec.MaxReceiveCount) +
		" times without finishing it; its log around the first sent time says why."
}

// takeDeadLetter receives the named message for an action, if it is the account's.
func (p *pageCtx) takeDeadLetter() (string, queue.Received, Response, bool) {
	name, id, ok := p.deadLetterNamed(p.req.Form)
	if !ok || p.c.d.Queue == nil {
		return "", queue.Received{}, p.notFound("No dead letter was named."), false
	}
	r, found, err := queue.Take(p.ctx, p.c.d.Queue, destinations.Queues(), name, id, deadLetterScan)
	if err != nil {
		return "", r, p.failed("read the dead-letter queue", err), false
	}
	if found && messageAccount(r) != p.sess.Account {
		_ = p.c.d.Queue.ChangeVisibility(p.ctx, name, r.ReceiptHandle, 0)
		found = false
	}
	if !found {
		return "", r, p.notFound("This account has no dead letter " + id + " in " + name + " (it may have been replayed or discarded)."), false
	}
	return name, r, Response{}, true
}

func (p *pageCtx) replayDeadLetter() Response {
	if !p.confirmed() {
		name, id, ok := p.deadLetterNamed(p.req.Form)
		if !ok {
			return p.notFound("No dead letter was named.")
		}
		src := strings.TrimSuffix(name, queue.DLQSuffix)
		return p.confirmPage("dead-letters", "Replay this dead letter?", "This moves the message back to the "+esc(src)+
			" queue, where its function takes it again. Replay it once the cause of its failures is fixed; if it fails as often again, it comes back here.",
			"dead-letter/replay", url.Values{"queue": {name}, "id": {id}}, "Replay now", p.url("dead-letter", url.Values{"queue": {name}, "id": {id}}))
	}
	name, r, resp, ok := p.takeDeadLetter()
	if !ok {
		return resp
	}
	e := p.entry(audit.ReplayDeadLetter, name+" "+r.MessageID, "Replayed the dead letter "+describeMessage(name, r)+" to "+strings.TrimSuffix(name, queue.DLQSuffix))
	if err := queue.Requeue(p.ctx, p.c.d.Queue, destinations.Queues(), name, r); err != nil {
		e.Outcome = "not replayed: " + err.Error()
		p.record(e)
		return p.failed("replay the dead letter", err)
	}
	p.record(e)
	return p.page(http.StatusOK, "dead-letters", "Replay queued", `<div class="notice" role="status"><p>The message is back in the `+
		esc(strings.TrimSuffix(name, queue.DLQSuffix))+` queue.</p></div><p>`+p.link("dead-letters", nil, "Back to the dead letters")+`</p>`)
}

func (p *pageCtx) discardDeadLetter() Response {
	if !p.confirmed() {
		name, id, ok := p.deadLetterNamed(p.req.Form)
		if !ok {
			return p.notFound("No dead letter was named.")
		}
		return p.confirmPage("dead-letters", "Discard this dead letter?", "This deletes the message from "+esc(name)+
			" for good: its work is never done. The activity log keeps a copy of it, with who discarded it and when.",
			"dead-letter/discard", url.Values{"queue": {name}, "id": {id}}, "Discard", p.url("dead-letter", url.Values{"queue": {name}, "id": {id}}))
	}
	name, r, resp, ok := p.takeDeadLetter()
	if !ok {
		return resp
	}
	kept, _ := json.Marshal(map[string]any{"queue": name, "message_id": r.MessageID, "sent_at": r.SentAt.UTC().Format(time.RFC3339Nano),
		"attributes": r.Attributes, "group_id": r.GroupID, "body": r.Body})
	e := p.entry(audit.DiscardDeadLetter, name+" "+r.MessageID, "Discarded the dead letter "+describeMessage(name, r)+" from "+name)
	e.Kept = kept
	// The copy is kept first: a discard whose delete then fails is still on record.
	if err := audit.Record(p.ctx, p.c.d.Store, e); err != nil {
		_ = p.c.d.Queue.ChangeVisibility(p.ctx, name, r.ReceiptHandle, 0)
		return p.failed("record the discard", err)
	}
	if err := p.c.d.Queue.Delete(p.ctx, name, r.ReceiptHandle); err != nil {
		e.Outcome = "the message could not be deleted: " + err.Error()
		e.Kept = nil
		p.record(e)
		return p.failed("discard the dead letter", err)
	}
	return p.page(http.StatusOK, "dead-letters", "Dead letter discarded", `<div class="notice" role="status"><p>The message is discarded; a copy is in the `+
		p.link("audit", nil, "activity log")+`.</p></div><p>`+p.link("dead-letters", nil, "Back to the dead letters")+`</p>`)
}
