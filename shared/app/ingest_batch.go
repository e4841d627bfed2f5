package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// ingestGroupWorkers bounds how many groups of one batch are applied at once: one per message of
// a full SQS batch.
const ingestGroupWorkers = queue.MaxBatch

// Ingest consumes the ingest queue: it is the one place where source data becomes domain data.
// Each event is normalized, merged into the stored history, and what changed becomes facts on
// the queue of every destination enabled for the account. An event that cannot be used is
// quarantined with its reason; only failures that a retry can fix are reported back to SQS.
//
// The messages of a batch are applied at once, except those that could touch the same contact
// or order (ingestGroups): each such group is applied one message after another, in the batch's
// order, and once one fails, the rest of its group wait with it (a later event of an order or a
// contact is never applied ahead of an earlier one). Each commit leaves its facts in the
// contacts' outboxes; the batch sends them all and clears them at the end (outboxBatch), so a
// message waits for its own commit, and the batch for one send per destination queue and one
// clear, instead of every message for all three in turn.
func (a *App) Ingest(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	msgs := make([]*ingestMsg, len(ev.Records))
	for i, rec := range ev.Records {
		msgs[i] = a.prepareIngest(ctx, rec)
	}
	out := &outboxBatch{}
	groups := ingestGroups(msgs)
	sem := make(chan struct{}, ingestGroupWorkers)
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var failed *ingestMsg
			for _, m := range g {
				if failed != nil {
					m.err = &heldError{cause: failed.err, behind: failed.rec.MessageId}
					continue
				}
				if m.err = a.applyIngest(ctx, m, out); m.err != nil {
					failed = m
				}
			}
		})
	}
	wg.Wait()
	unsent := a.sendOutboxes(ctx, out)
	var resp events.SQSEventResponse
	for _, m := range msgs {
		if err := unsent[m.rec.MessageId]; err != nil && m.err == nil {
			m.err = err
		}
		if m.err == nil {
			continue
		}
		rec := m.rec
		var held *heldError
		switch {
		case errors.Is(m.err, ErrErasing):
			wait := erasureWait(rec)
			a.d.Log.Info("event waits: its contact is being erased", slog.String("message_id", rec.MessageId),
				slog.String("account", attr(rec, "account")), slog.Duration("retry_in", wait))
			if rec.ReceiptHandle != "" {
				if verr := a.d.Queue.ChangeVisibility(ctx, queue.Ingest, rec.ReceiptHandle, wait); verr != nil {
					a.d.Log.Warn("could not delay the waiting event; it comes back after the queue's visibility timeout",
						slog.String("message_id", rec.MessageId), slog.Any("error", verr))
				}
			}
		case errors.As(m.err, &held):
			a.d.Log.Info("event not applied yet: an earlier event of the same contact or order in its batch failed; both come back after the queue's visibility timeout",
				slog.String("message_id", rec.MessageId), slog.String("account", attr(rec, "account")),
				slog.String("behind", held.behind))
		default:
			a.d.Log.Error("ingest failed; will retry", slog.String("message_id", rec.MessageId),
				slog.String("account", attr(rec, "account")), slog.Any("error", m.err))
		}
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
	}
	return resp, nil
}

// heldError is a message not applied because an earlier message of its group failed: it is
// reported failed too, so the queue hands both out again rather than this one alone now.
type heldError struct {
	cause  error
	behind string
}

func (e *heldError) Error() string {
	return fmt.Sprintf("not applied: message %s, an earlier event of the same contact or order, failed: %v", e.behind, e.cause)
}

// Unwrap lets a wait for an erasure apply to the messages held behind it too.
func (e *heldError) Unwrap() error { return e.cause }

// ingestMsg is one message of an ingest batch: what preparing it found, and how applying it went.
type ingestMsg struct {
	rec  events.SQSMessage
	repo *history.Repo
	// settled is set when preparing the message already decided it (quarantined, or failed
	// before anything was applied); err is the outcome then.
	settled bool
	err     error
	se      SourceEvent
	acct    accounts.Account
	evs     []domain.Event
	log     *slog.Logger
	// keys name what applying the message may touch (ingestKeys).
	keys []string
}

// prepareIngest decodes a message, reads its account and normalizes its event: everything that
// depends on no other message of the batch.
func (a *App) prepareIngest(ctx context.Context, rec events.SQSMessage) *ingestMsg {
	m := &ingestMsg{rec: rec, repo: history.New(a.d.Store)}
	settle := func(err error) *ingestMsg {
		m.settled, m.err = true, err
		return m
	}
	se, err := DecodeSourceEvent(ctx, a.d.Store, rec.Body)
	if errors.Is(err, ErrBadMessage) {
		_, qerr := m.repo.Quarantine(ctx, history.Quarantined{Account: attr(rec, "account"), At: a.d.Clock.Now(),
			Kind: history.QuarantineUnreadable, Reason: err.Error(), Message: rec.Body})
		return settle(qerr)
	}
	if err != nil {
		return settle(err)
	}
	m.se = se
	m.log = a.d.Log.With(slog.String("account", se.Account), slog.String("source", string(se.Source)),
		slog.String("event", se.Name), slog.String("delivery", se.Delivery), slog.Int("index", se.Index))
	if se.Problem != "" {
		return settle(a.quarantine(ctx, m, history.QuarantineMalformed, se.Problem))
	}
	acct, err := a.d.Accounts.Get(ctx, se.Account)
	if errors.Is(err, accounts.ErrNotFound) {
		return settle(a.quarantine(ctx, m, history.QuarantineInvalid, fmt.Sprintf("account %q does not exist (deleted after the event was accepted?)", se.Account)))
	}
	if err != nil {
		return settle(err)
	}
	m.acct = acct
	evs, err := normalize(se, acct, a.d.Phone)
	switch {
	case errors.Is(err, domain.ErrUnknownEvent):
		return settle(a.quarantine(ctx, m, history.QuarantineUnknownEvent, err.Error()))
	case err != nil:
		return settle(a.quarantine(ctx, m, history.QuarantineInvalid, err.Error()))
	}
	m.evs = evs
	if m.keys, err = ingestKeys(ctx, m.repo, acct.ID, se.ContentHash(), evs); err != nil {
		return settle(err)
	}
	return m
}

// quarantine keeps a message's event raw with the reason it cannot be applied.
func (a *App) quarantine(ctx context.Context, m *ingestMsg, kind, reason string) error {
	se := m.se
	q, err := m.repo.Quarantine(ctx, history.Quarantined{Account: se.Account, At: a.d.Clock.Now(), Kind: kind, Reason: reason,
		Source: string(se.Source), Event: se.Name, Message: m.rec.Body, Key: se.ContentHash()})
	if err != nil {
		return err
	}
	m.log.Warn("event quarantined", slog.String("kind", kind), slog.String("reason", reason), slog.String("quarantine_id", q.ID))
	return nil
}

// applyIngest applies a prepared message's events; their facts join out.
func (a *App) applyIngest(ctx context.Context, m *ingestMsg, out *outboxBatch) error {
	if m.settled {
		return m.err
	}
	hash := m.se.ContentHash()
	dup, err := m.repo.Ingested(ctx, m.acct.ID, hash)
	if err != nil {
		return err
	}
	if dup {
		m.log.Info("duplicate event: already ingested", slog.String("hash", hash))
	}
	in := ingestion{a: a, repo: m.repo, acct: m.acct, se: m.se, log: m.log, hash: hash, out: out, msgID: m.rec.MessageId}
	for i, de := range m.evs {
		// The dedupe marker goes into the transaction of the last part of the event, so the
		// event counts as ingested only when all of it is.
		in.markDone = !dup && i == len(m.evs)-1
		if err := in.apply(ctx, de); err != nil {
			var u *unprocessableError
			if errors.As(err, &u) {
				return a.quarantine(ctx, m, history.QuarantineInvalid, err.Error())
			}
			return err
		}
	}
	return nil
}

// ingestKeys names what applying a message's events may touch, so that messages sharing a key
// are applied in turn: the event itself (a duplicate in the same batch), each order and
// subscription, each email whose contact it may change, each source customer profile (whose
// email change joins two contacts), affiliate and catalogue item. A customer report's profile
// is read for the email it had, so a change joins what names the old email to what names the
// new one even where an event carries no profile id.
func ingestKeys(ctx context.Context, repo *history.Repo, account, hash string, evs []domain.Event) ([]string, error) {
	keys := []string{"h:" + hash}
	add := func(kind, v string) {
		if v != "" {
			keys = append(keys, kind+":"+v)
		}
	}
	profile := func(src domain.Source, id string) string {
		if id == "" {
			return ""
		}
		return string(src) + "#" + id
	}
	for _, de := range evs {
		switch {
		case de.Order != nil:
			add("o", de.Order.Key)
			add("e", de.Order.Email)
			add("c", profile(de.Order.Source, de.Order.CustomerID))
		case de.Sub != nil:
			add("s", de.Sub.Key)
			add("e", de.Sub.Email)
		case de.Customer != nil:
			cu := de.Customer
			add("e", cu.Email)
			if p := profile(cu.Source, cu.CustomerID); p != "" {
				add("c", p)
				rec, err := repo.Customer(ctx, account, string(cu.Source), cu.CustomerID)
				if err != nil {
					return nil, err
				}
				add("e", rec.Email)
			}
		case de.Cart != nil:
			add("e", de.Cart.Email)
		case de.AffiliateSignup != nil:
			add("a", profile(de.AffiliateSignup.Source, de.AffiliateSignup.AffiliateID))
			add("e", de.AffiliateSignup.Email)
		case de.Item != nil:
			// Catalogue facts wait in the account's one outbox.
			keys = append(keys, "i:")
		}
	}
	for i := range keys {
		keys[i] = account + "\x00" + keys[i]
	}
	return keys, nil
}

// ingestGroups partitions the messages to apply into groups that share no key (union-find over
// the keys), each in the batch's order. Messages settled while preparing are in no group.
func ingestGroups(msgs []*ingestMsg) [][]*ingestMsg {
	parent := make([]int, len(msgs))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		if parent[i] != i {
			parent[i] = find(parent[i])
		}
		return parent[i]
	}
	owner := map[string]int{}
	for i, m := range msgs {
		if m.settled {
			continue
		}
		for _, k := range m.keys {
			j, ok := owner[k]
			if !ok {
				owner[k] = i
				continue
			}
			if ri, rj := find(i), find(j); ri != rj {
				// The earlier message's root stays the root, so groups keep the batch's order.
				parent[max(ri, rj)] = min(ri, rj)
			}
		}
	}
	at := map[int]int{}
	var groups [][]*ingestMsg
	for i, m := range msgs {
		if m.settled {
			continue
		}
		r := find(i)
		g, ok := at[r]
		if !ok {
			g = len(groups)
			at[r] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], m)
	}
	return groups
}

// outboxBatch collects what a batch's commits left in contacts' outboxes, each contact's facts
// in the order they were committed, and which messages committed them.
type outboxBatch struct {
	mu    sync.Mutex
	byKey map[string]*pendingOutbox
	order []*pendingOutbox
}

type pendingOutbox struct {
	acct  accounts.Account
	email string
	facts []domain.Fact
	has   map[string]bool
	msgs  []string
	// ids are the facts routed (set by sendOutboxes).
	ids []string
}

// add records a contact's outbox as a commit of message msgID left it (facts older than the
// commit included: they are the contact's unsent ones, and go first).
func (o *outboxBatch) add(acct accounts.Account, email string, facts []domain.Fact, msgID string) {
	if len(facts) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	k := acct.ID + "|" + email
	p := o.byKey[k]
	if p == nil {
		if o.byKey == nil {
			o.byKey = map[string]*pendingOutbox{}
		}
		p = &pendingOutbox{acct: acct, email: email, has: map[string]bool{}}
		o.byKey[k] = p
		o.order = append(o.order, p)
	}
	for _, f := range facts {
		if !p.has[f.ID] {
			p.has[f.ID] = true
			p.facts = append(p.facts, f)
		}
	}
	for _, m := range p.msgs {
		if m == msgID {
			return
		}
	}
	p.msgs = append(p.msgs, msgID)
}

// forget drops facts that were sent and cleared already (by an email change, which cannot wait).
func (o *outboxBatch) forget(account, email string, facts []domain.Fact) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.byKey[account+"|"+email]
	if p == nil {
		return
	}
	gone := map[string]bool{}
	for _, f := range facts {
		gone[f.ID] = true
	}
	kept := p.facts[:0]
	for _, f := range p.facts {
		if !gone[f.ID] {
			kept = append(kept, f)
		}
	}
	p.facts = kept
}

// sendOutboxes sends the batch's outboxes to the destination queues and then clears what went,
// and answers, for each message whose facts did not all go, why: the message is reported failed,
// and its redelivery (a duplicate, applied again) flushes its contact's outbox once more. Each
// destination's messages go out in sends of up to queue.MaxBatch, a contact's whole in one send
// where they fit (in order in its own sends where not), and all sends at once: they are FIFO per
// contact, and no contact's messages are split across sends that could overtake each other.
// Until a contact's facts are cleared they stay in its outbox, so a crash at any point loses
// none: a repeat send is absorbed by the queue's deduplication and the forwarder's done marker.
func (a *App) sendOutboxes(ctx context.Context, o *outboxBatch) map[string]error {
	failed := map[*pendingOutbox]error{}
	type part struct {
		p    *pendingOutbox
		msgs []queue.Message
	}
	byDest := map[string][]part{}
	for _, p := range o.order {
		if len(p.facts) == 0 {
			continue
		}
		ids, perDest, err := route(p.acct, p.email, p.facts)
		if err != nil {
			failed[p] = err
			continue
		}
		p.ids = ids
		for dest, msgs := range perDest {
			byDest[dest] = append(byDest[dest], part{p, msgs})
		}
	}
	type send struct {
		dest, queue string
		msgs        []queue.Message
		owners      []*pendingOutbox // per message
	}
	var sends []*send
	for _, r := range destinations.All() {
		var cur *send
		for _, pt := range byDest[r.Name] {
			if cur == nil || len(cur.msgs)+len(pt.msgs) > queue.MaxBatch {
				cur = &send{dest: r.Name, queue: r.Queue.Name}
				sends = append(sends, cur)
			}
			for _, m := range pt.msgs {
				m.ID = fmt.Sprintf("m%d", len(cur.msgs))
				cur.msgs = append(cur.msgs, m)
				cur.owners = append(cur.owners, pt.p)
			}
			if len(cur.msgs) >= queue.MaxBatch {
				cur = nil
			}
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range sends {
		wg.Go(func() {
			err := a.d.Queue.Send(ctx, s.queue, s.msgs)
			if err == nil {
				return
			}
			err = fmt.Errorf("send %d fact(s) to %s: %w", len(s.msgs), s.dest, err)
			var se *queue.SendError
			var only map[string]bool
			if errors.As(err, &se) {
				only = se.FailedIDs()
			}
			mu.Lock()
			defer mu.Unlock()
			for i, m := range s.msgs {
				if only == nil || only[m.ID] {
					failed[s.owners[i]] = err
				}
			}
		})
	}
	wg.Wait()
	var sent []history.SentFact
	var cleared []*pendingOutbox
	for _, p := range o.order {
		if len(p.ids) == 0 || failed[p] != nil {
			continue
		}
		cleared = append(cleared, p)
		for _, id := range p.ids {
			sent = append(sent, history.SentFact{Account: p.acct.ID, Email: p.email, FactID: id})
		}
	}
	if err := history.New(a.d.Store).ClearSent(ctx, sent); err != nil {
		// The facts are on the queues: left in the outboxes, they only go again with the
		// contacts' next flush, where deduplication absorbs them. Failing the messages for it
		// would apply them all again for nothing.
		a.d.Log.Warn("sent facts not cleared from the outbox; they go again with the contact's next event, and are absorbed",
			slog.Int("facts", len(sent)), slog.Any("error", err))
	} else if len(sent) > 0 {
		attrs := []any{slog.Int("contacts", len(cleared)), slog.Int("facts", len(sent))}
		for _, r := range destinations.All() {
			n := 0
			for _, pt := range byDest[r.Name] {
				if failed[pt.p] == nil {
					n += len(pt.msgs)
				}
			}
			attrs = append(attrs, slog.Int(r.Name, n))
		}
		a.d.Log.Info("facts routed", attrs...)
	}
	errs := map[string]error{}
	for _, p := range o.order {
		if err := failed[p]; err != nil {
			a.d.Log.Warn("facts not routed yet; they stay in the contact's outbox and go with the event's retry",
				slog.String("account", p.acct.ID), slog.Int("facts", len(p.facts)), slog.Any("error", err))
			for _, m := range p.msgs {
				errs[m] = errors.Join(errs[m], err)
			}
		}
	}
	return errs
}
