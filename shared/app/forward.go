package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/store"
)

// DeliveryLogTTL is how long the delivery log keeps an attempt.
const DeliveryLogTTL = 90 * 24 * time.Hour

// Retry delays of a failed delivery: exponential from retryBase, capped at retryMax, with full
// jitter (deliver.Backoff); a destination's own hint wins when it is longer. The first retries
// come within seconds, since most failures (a 5xx, a timeout) are over by then; the delays
// before GiveUpAfter failures add up to about 8 minutes at most.
const (
	retryBase = time.Second
	retryMax  = 15 * time.Minute
)

// GiveUpAfter is how many failed deliveries of one fact (not counting those a rate limit
// deferred) the forwarder makes before it parks the fact, so that one fact the destination
// keeps failing does not hold its contact's later facts for ever. A parked fact is listed by
// `deliveries list --failed` and sent again by `deliveries replay`. The queue's own limit
// (queue.DestinationSpec's MaxReceiveCount) is far higher, because it also counts the receives of
// messages held behind a failed fact of their contact.
const GiveUpAfter = 10

// ParkedLogMessage is the log message of every parked delivery; the template counts these lines
// and raises an alarm on them.
const ParkedLogMessage = "delivery parked; replay it once the cause is fixed"

// Forward returns the handler of one destination's FIFO queue. Each fact id is an idempotency
// key: a fact already delivered is skipped. Messages of one contact stay in order: once one
// fails, the rest of that contact's messages in the batch fail too, and wait only as long as
// the failed one (see holdGroup). A batch made only of profile refreshes of different
// contacts (a backlog, such as after a backfill) goes to a destination that can take them
// together in one bulk call.
func (a *App) Forward(dest deliver.Destination) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		var resp events.SQSEventResponse
		fail := func(rec events.SQSMessage) {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		}
		if b, ok := dest.(deliver.ProfileBatcher); ok {
			if failed, handled := a.forwardProfiles(ctx, dest, b, ev.Records); handled {
				for _, f := range failed {
					a.retryLater(ctx, dest, f.rec, f.err)
					if !f.gathered {
						fail(f.rec)
					}
				}
				return resp, nil
			}
		}
		// held maps the group of each failed message to when its retry is due.
		held := map[string]time.Duration{}
		// The account is read once per batch, not once per fact: a batch's facts are mostly
		// of one account, and reading and opening it for each was a sixth of serve's reads
		// of the table under load. A batch is handled in moments, so a setting changed
		// meanwhile applies from the next one, as if the batch had come a moment earlier.
		accts := map[string]accounts.Account{}
		checks := a.readChecks(ctx, dest, ev.Records)
		for _, rec := range ev.Records {
			group := rec.Attributes["MessageGroupId"]
			if wait, ok := held[group]; ok {
				a.holdGroup(ctx, dest, rec, wait)
				fail(rec)
				continue
			}
			if err := a.forwardOne(ctx, dest, rec, accts, checks); err != nil {
				wait := a.retryLater(ctx, dest, rec, err)
				if group != "" {
					held[group] = wait
				}
				fail(rec)
			}
		}
		return resp, nil
	}
}

// retryError is a delivery that failed and is retried after wait.
type retryError struct {
	wait time.Duration
	err  error
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// retryLater hides a failed message until its retry is due and returns that delay. A failed
// delivery brings its own delay (settle); any other failure (reading the table, the account)
// backs off by the message's receive count. Without this the queue's default visibility
// timeout (minutes) would apply.
func (a *App) retryLater(ctx context.Context, dest deliver.Destination, rec events.SQSMessage, err error) time.Duration {
	var wait time.Duration
	var re *retryError
	if errors.As(err, &re) {
		wait = re.wait
	} else {
		received, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
		wait = a.backoff(received, 0)
	}
	if verr := a.d.Queue.ChangeVisibility(ctx, dest.Name(), rec.ReceiptHandle, wait); verr != nil {
		a.d.Log.Warn("could not set the retry delay; the queue's default visibility timeout applies",
			slog.String("destination", dest.Name()), slog.String("message_id", rec.MessageId), slog.Any("error", verr))
	}
	return wait
}

// holdGroup keeps a message behind its contact's failed one, unattempted, and puts it back on
// the queue at once. Lambda would otherwise leave a reported failure in flight for the queue's
// whole visibility timeout (minutes), and a FIFO queue hands out none of a group's messages
// while any of them is in flight (SQS: "inflight messages block delivery of available messages
// within the same message group"), so the contact would wait minutes instead of the failed
// fact's retry delay. Back on the queue, the message stays behind the failed one, which is in
// flight until its retry is due: the group's lock keeps their order.
//
// Zero rather than the failed message's own delay: a group whose messages all become visible
// at the same moment was seen to come back out of order from moto's SQS.
func (a *App) holdGroup(ctx context.Context, dest deliver.Destination, rec events.SQSMessage, wait time.Duration) {
	if err := a.d.Queue.ChangeVisibility(ctx, dest.Name(), rec.ReceiptHandle, 0); err != nil {
		a.d.Log.Warn("could not put back a message held behind its contact's failed one; the queue's default visibility timeout applies",
			slog.String("destination", dest.Name()), slog.String("message_id", rec.MessageId), slog.Any("error", err))
		return
	}
	a.d.Log.Debug("held behind the contact's failed fact", slog.String("destination", dest.Name()),
		slog.String("message_id", rec.MessageId), slog.Duration("retry_in", wait))
}

// pending is a fact read from its message, not yet delivered to the destination.
type pending struct {
	rec  events.SQSMessage
	fact domain.Fact
	log  *slog.Logger
}

// checks holds the items that readFact checks for the facts of a batch, read together
// (readChecks): a fact's done marker and its contact's erasure marker, two reads a fact when
// read one by one. Each done marker serves once: a fact that came twice in one batch is
// checked again on its own the second time, after the first delivered it.
type checks struct {
	items map[store.Key]store.Item
	fresh map[store.Key]bool
}

// readChecks reads what readFact checks for each readable fact of recs. The batch is handled
// in moments, as if its checks had been read one by one a moment earlier. When the read
// fails, each fact is checked on its own.
func (a *App) readChecks(ctx context.Context, dest deliver.Destination, recs []events.SQSMessage) *checks {
	var keys []store.Key
	for _, rec := range recs {
		var f struct {
			ID, Account, Email string
			Kind               domain.FactKind
		}
		if json.Unmarshal([]byte(rec.Body), &f) != nil || f.ID == "" || f.Account == "" {
			continue
		}
		keys = append(keys, history.FactDoneKey(f.Account, dest.Name(), f.ID))
		if f.Kind != domain.FactContactErased {
			keys = append(keys, history.ErasingKey(f.Account, f.Email))
		}
	}
	if len(keys) < 2 || len(keys) > store.MaxGetMany {
		return nil
	}
	items, err := a.d.Store.GetMany(ctx, keys)
	if err != nil {
		a.d.Log.Warn("could not read the batch's done and erasure markers together; reading them one by one",
			slog.String("destination", dest.Name()), slog.Any("error", err))
		return nil
	}
	c := &checks{items: items, fresh: make(map[store.Key]bool, len(keys))}
	for _, k := range keys {
		c.fresh[k] = true
	}
	return c
}

// factDone is history's FactDone, from the batch's reads when they hold it.
func (c *checks) factDone(ctx context.Context, st store.Store, account, dest, factID string) (json.RawMessage, error) {
	k := history.FactDoneKey(account, dest, factID)
	if c == nil || !c.fresh[k] {
		return history.New(st).FactDone(ctx, account, dest, factID)
	}
	delete(c.fresh, k)
	if it, ok := c.items[k]; ok {
		return it.Data, nil
	}
	return nil, nil
}

// erasing is history's Erasing, from the batch's reads when they hold it.
func (c *checks) erasing(ctx context.Context, st store.Store, account, email string) (string, error) {
	k := history.ErasingKey(account, email)
	if c == nil || !c.fresh[k] {
		return history.New(st).Erasing(ctx, account, email)
	}
	if it, ok := c.items[k]; ok {
		return history.ErasingPseudonym(it), nil
	}
	return "", nil
}

// readFact reads a message's fact and checks whether the destination already has it. A nil
// pending with a nil error means there is nothing to do (unreadable, or already delivered).
// c holds the batch's checks read together, or is nil.
func (a *App) readFact(ctx context.Context, dest deliver.Destination, rec events.SQSMessage, c *checks) (*pending, error) {
	var f domain.Fact
	if err := json.Unmarshal([]byte(rec.Body), &f); err != nil || f.ID == "" || f.Account == "" {
		// Nothing can ever make this message readable; keep it in the log rather than retry it.
		a.d.Log.Error("unreadable fact message parked", slog.String("destination", dest.Name()),
			slog.String("message_id", rec.MessageId), slog.Any("error", err))
		return nil, nil
	}
	log := a.d.Log.With(slog.String("account", f.Account), slog.String("fact_id", f.ID), slog.String("destination", dest.Name()))
	done, err := c.factDone(ctx, a.d.Store, f.Account, dest.Name(), f.ID)
	if err != nil {
		log.Error("read fact-done marker", slog.Any("error", err))
		return nil, err
	}
	if done != nil {
		log.Info("fact already delivered; skipped")
		return nil, nil
	}
	if f.Kind != domain.FactContactErased {
		pseudonym, err := c.erasing(ctx, a.d.Store, f.Account, f.Email)
		if err != nil {
			log.Error("read whether the contact is being erased", slog.Any("error", err))
			return nil, err
		}
		if pseudonym != "" {
			return nil, a.superseded(ctx, dest, f, pseudonym, log)
		}
	}
	return &pending{rec: rec, fact: f, log: log}, nil
}

// superseded records a fact of a contact being erased as skipped, without sending it: the
// destination is about to forget the contact, and the person asked not to be contacted. The
// record lives with the pseudonym and names no address.
func (a *App) superseded(ctx context.Context, dest deliver.Destination, f domain.Fact, pseudonym string, log *slog.Logger) error {
	id := f.ID
	if history.FactIDNames(id, []string{f.Email, f.OldEmail}) {
		sum := sha256.Sum256([]byte(id))
		id = f.Account + ":" + string(f.Kind) + ":erased~" + hex.EncodeToString(sum[:12])
	}
	d := history.Delivery{Account: f.Account, Email: pseudonym, Dest: dest.Name(), FactID: id, FactKind: string(f.Kind),
		At: a.d.Clock.Now(), Attempt: 1, Status: history.DeliverySkipped,
		Note: "not sent: the contact is being erased, and " + dest.Name() + " is asked to forget it"}
	if err := history.New(a.d.Store).RecordDelivery(ctx, d, DeliveryLogTTL); err != nil {
		log.Error("record delivery", slog.Any("error", err))
		return err
	}
	log.Info("fact of a contact being erased; not sent", slog.String("kind", string(f.Kind)))
	return nil
}

// account reads the account for a delivery to dest, opening the secrets its registration names
// and no other.
func (a *App) account(ctx context.Context, dest deliver.Destination, id string) (accounts.Account, error) {
	r, err := destinations.Lookup(dest.Name())
	if err != nil {
		return accounts.Account{}, err
	}
	return a.d.Accounts.Get(ctx, id, r.Secrets...)
}

// forwardOne delivers one fact. accts holds the accounts the batch has read so far, c its
// checks read together (or nil).
func (a *App) forwardOne(ctx context.Context, dest deliver.Destination, rec events.SQSMessage, accts map[string]accounts.Account, c *checks) error {
	p, err := a.readFact(ctx, dest, rec, c)
	if p == nil || err != nil {
		return err
	}
	acct, ok := accts[p.fact.Account]
	if !ok {
		if acct, err = a.account(ctx, dest, p.fact.Account); err != nil {
			p.log.Error("read account", slog.Any("error", err))
			return err
		}
		accts[p.fact.Account] = acct
	}
	start := a.d.Clock.Now()
	out, derr := dest.Deliver(ctx, acct, p.fact)
	return a.settle(ctx, dest, p, out, derr, start)
}

// failure is a message that stays on the queue, and why.
type failure struct {
	rec events.SQSMessage
	err error
	// gathered is set on a message the forwarder received itself (see gatherProfiles): it is
	// not in the invocation's batch, so it is not reported as a batch item failure.
	gathered bool
}

// MaxProfileBatch is how many profile refreshes the forwarder gathers for one bulk call: as
// many as Iterable's users/bulkUpdate takes (1,000 users).
const MaxProfileBatch = 1000

// forwardProfiles delivers a batch of profile refreshes in one bulk call. It declines (handled
// false) unless the batch has several messages, all readable ContactChanged facts of one account
// for different contacts; then per-contact order cannot be broken by delivering them together.
func (a *App) forwardProfiles(ctx context.Context, dest deliver.Destination, b deliver.ProfileBatcher, recs []events.SQSMessage) (failed []failure, handled bool) {
	if len(recs) < 2 {
		return nil, false
	}
	groups := map[string]bool{}
	account := ""
	for _, rec := range recs {
		var head struct {
			ID, Account string
			Kind        domain.FactKind
		}
		if json.Unmarshal([]byte(rec.Body), &head) != nil || head.Kind != domain.FactContactChanged ||
			(account != "" && head.Account != account) || groups[rec.Attributes["MessageGroupId"]] {
			return nil, false
		}
		account = head.Account
		groups[rec.Attributes["MessageGroupId"]] = true
	}
	var extra []events.SQSMessage
	if len(recs) == queue.MaxBatch {
		// A full batch of them is a backlog (a backfill refreshing many profiles): take more
		// from the queue, so that one call carries as many as the destination accepts.
		extra = a.gatherProfiles(ctx, dest, account, groups, MaxProfileBatch-len(recs))
	}
	isExtra := map[string]bool{}
	for _, rec := range extra {
		isExtra[rec.MessageId] = true
	}
	var todo []*pending
	checks := a.readChecks(ctx, dest, recs)
	for _, rec := range append(slices.Clone(recs), extra...) {
		p, err := a.readFact(ctx, dest, rec, checks)
		if err != nil {
			failed = append(failed, failure{rec: rec, err: err, gathered: isExtra[rec.MessageId]})
			continue
		}
		if p != nil {
			todo = append(todo, p)
		} else if isExtra[rec.MessageId] {
			a.deleteGathered(ctx, dest, rec)
		}
	}
	if len(todo) == 0 {
		return failed, true
	}
	acct, err := a.account(ctx, dest, account)
	if err != nil {
		a.d.Log.Error("read account", slog.String("account", account), slog.Any("error", err))
		for _, p := range todo {
			failed = append(failed, failure{rec: p.rec, err: err, gathered: isExtra[p.rec.MessageId]})
		}
		return failed, true
	}
	facts := make([]domain.Fact, len(todo))
	for i, p := range todo {
		facts[i] = p.fact
	}
	start := a.d.Clock.Now()
	res, berr := b.DeliverProfiles(ctx, acct, facts)
	for i, p := range todo {
		out := deliver.Outcome{Status: res.Status, Note: fmt.Sprintf("bulk profile update with %d other contact(s)", len(todo)-1)}
		if i == 0 {
			// The bulk exchanges are logged once, with the first fact of the batch.
			out.Exchanges = res.Exchanges
		}
		derr := berr
		if derr == nil {
			derr = res.Errors[p.fact.ID]
		}
		if err := a.settle(ctx, dest, p, out, derr, start); err != nil {
			failed = append(failed, failure{rec: p.rec, err: err, gathered: isExtra[p.rec.MessageId]})
		} else if isExtra[p.rec.MessageId] {
			a.deleteGathered(ctx, dest, p.rec)
		}
	}
	return failed, true
}

// gatherProfiles receives up to limit more profile refreshes of account for contacts not in
// groups from the destination's queue, for one bulk call. It stops at the first receive that
// brings none. A message that cannot join (another kind of fact, another account, a contact
// already in the call) is held until the gathering ends and then put back, so that it is
// received once, not on every look, and no later message of its contact (the queue hands out
// none while it is held) can overtake it. The messages returned are in flight until the caller
// deletes them or sets their retry.
func (a *App) gatherProfiles(ctx context.Context, dest deliver.Destination, account string, groups map[string]bool, limit int) []events.SQSMessage {
	var out []events.SQSMessage
	var held []queue.Received
	blocked := map[string]bool{}
	defer func() {
		for _, m := range held {
			if err := a.d.Queue.ChangeVisibility(ctx, dest.Name(), m.ReceiptHandle, 0); err != nil {
				a.d.Log.Warn("could not put back a message that does not join the bulk call; it returns after its visibility timeout",
					slog.String("destination", dest.Name()), slog.String("message_id", m.MessageID), slog.Any("error", err))
			}
		}
	}()
	for len(out) < limit {
		got, err := a.d.Queue.Receive(ctx, dest.Name(), queue.ReceiveOptions{Max: min(queue.MaxBatch, limit-len(out))})
		if err != nil {
			a.d.Log.Warn("could not gather more profile refreshes; sending those at hand", slog.String("destination", dest.Name()), slog.Any("error", err))
			return out
		}
		took := 0
		for _, m := range got {
			rec := sqsRecord(m)
			var head struct {
				Account string
				Kind    domain.FactKind
			}
			if !blocked[m.GroupID] && !groups[m.GroupID] && json.Unmarshal([]byte(m.Body), &head) == nil &&
				head.Kind == domain.FactContactChanged && head.Account == account {
				groups[m.GroupID] = true
				out = append(out, rec)
				took++
				continue
			}
			blocked[m.GroupID] = true
			held = append(held, m)
		}
		if took == 0 {
			return out
		}
	}
	return out
}

// deleteGathered deletes a message gatherProfiles received, once its fact is settled.
func (a *App) deleteGathered(ctx context.Context, dest deliver.Destination, rec events.SQSMessage) {
	if err := a.d.Queue.Delete(context.WithoutCancel(ctx), dest.Name(), rec.ReceiptHandle); err != nil {
		// Delivered and marked done: a redelivery is skipped by the fact-done marker.
		a.d.Log.Warn("could not delete a delivered profile refresh; it will come back and be skipped",
			slog.String("destination", dest.Name()), slog.String("message_id", rec.MessageId), slog.Any("error", err))
	}
}

// sqsRecord is the record Lambda would hand over for a message the forwarder received itself.
func sqsRecord(m queue.Received) events.SQSMessage {
	attrs := map[string]string{"ApproximateReceiveCount": strconv.Itoa(m.ReceiveCount)}
	if m.GroupID != "" {
		attrs["MessageGroupId"] = m.GroupID
	}
	if m.DedupID != "" {
		attrs["MessageDeduplicationId"] = m.DedupID
	}
	mattrs := make(map[string]events.SQSMessageAttribute, len(m.Attributes))
	for k, v := range m.Attributes {
		mattrs[k] = events.SQSMessageAttribute{StringValue: &v, DataType: "String"}
	}
	return events.SQSMessage{MessageId: m.MessageID, ReceiptHandle: m.ReceiptHandle, Body: m.Body,
		Attributes: attrs, MessageAttributes: mattrs}
}

// settle records the outcome of one delivery: the fact-done marker on success, a parked entry
// for a permanent failure, a retry with backoff otherwise. A failure also keeps the fact and its
// count of failures (history.FailedFact), so that a replay can send it again and the backoff
// grows with the fact's own failures; after GiveUpAfter of them the fact is parked. It returns
// an error only when the message must stay on the queue; for a failed delivery, a *retryError
// with its delay.
func (a *App) settle(ctx context.Context, dest deliver.Destination, p *pending, out deliver.Outcome, derr error, start time.Time) error {
	f, log, repo := p.fact, p.log, history.New(a.d.Store)
	kept, err := a.earlierFailures(ctx, dest, p, derr != nil)
	if err != nil {
		log.Error("read the fact's earlier failures", slog.Any("error", err))
		return err
	}
	d := history.Delivery{Account: f.Account, Email: f.Email, Dest: dest.Name(), FactID: f.ID, FactKind: string(f.Kind),
		At: start, Attempt: kept.Attempts + 1, Status: out.Status, LatencyMS: a.d.Clock.Now().Sub(start).Milliseconds(),
		Requests: out.Exchanges, Note: out.Note}
	if f.Erasure != nil {
		// The request had to name the addresses to forget; what is kept of it names the
		// pseudonym instead.
		d = history.ScrubDelivery(d, f.Erasure.Emails, f.Erasure.Pseudonym)
		if derr != nil {
			derr = scrubbedError{derr, history.ScrubText(derr.Error(), f.Erasure.Emails, f.Erasure.Pseudonym)}
		}
	}
	var ra *deliver.RetryAfterError
	deferred := errors.As(derr, &ra)
	switch {
	case derr == nil:
		if err := repo.MarkFactDone(ctx, f.Account, dest.Name(), f.ID, doneRecord(out, start)); err != nil {
			log.Error("mark fact delivered", slog.Any("error", err))
			return err
		}
	case deliver.IsPermanent(derr):
		d.Status, d.Error = history.DeliveryParked, derr.Error()
	case !deferred && kept.Failures+1 >= GiveUpAfter:
		d.Status = history.DeliveryParked
		d.Error = fmt.Sprintf("gave up after %d failed deliveries since %s; the last: %v", kept.Failures+1,
			kept.FirstFailedAt.UTC().Format(time.RFC3339), derr)
	default:
		d.Status, d.Error = history.DeliveryRetry, derr.Error()
	}
	if derr != nil {
		kept.Attempts++
		if !deferred {
			kept.Failures++
		}
		if kept.FirstFailedAt.IsZero() {
			kept.FirstFailedAt = start
		}
		kept.Fact = json.RawMessage(p.rec.Body)
		// Kept before the log line, so that every failed delivery listed can be replayed.
		if err := repo.KeepFailedFact(ctx, f.Account, f.Email, dest.Name(), f.ID, kept, start.Add(DeliveryLogTTL)); err != nil {
			log.Error("keep the failed fact", slog.Any("error", err))
			return err
		}
	}
	if err := repo.RecordDelivery(ctx, d, DeliveryLogTTL); err != nil {
		log.Error("record delivery", slog.Any("error", err))
		if derr == nil {
			// Delivered and marked done: a lost log line must not cause a second delivery.
			return nil
		}
		return err
	}
	if f.Kind == domain.FactContactErased && f.Erasure != nil && d.Status != history.DeliveryRetry {
		outcome := history.ErasureDelivered
		if d.Status == history.DeliveryParked {
			outcome = history.ErasureParked
		} else if err := repo.DropFailedFact(ctx, f.Account, f.Email, dest.Name(), f.ID); err != nil {
			// The copy names the addresses; a failure here leaves it to the log's expiry.
			log.Warn("could not drop the kept copy of a delivered erasure", slog.Any("error", err))
		}
		acct, err := a.d.Accounts.Get(ctx, f.Account)
		if err == nil {
			err = a.eraser.Settle(ctx, acct, f.Erasure.Pseudonym, dest.Name(), f.ID, outcome)
		}
		if err != nil {
			// The schedule reads the job again; the fact stays settled here.
			log.Warn("could not record the destination's answer to the erasure", slog.Any("error", err))
		}
	}
	switch d.Status {
	case history.DeliveryParked:
		log.Warn(ParkedLogMessage, slog.String("error", d.Error))
		return nil
	case history.DeliveryRetry:
		hint := out.RetryAfter
		if deferred && ra.After > hint {
			hint = ra.After
		}
		wait := a.backoff(kept.Attempts, hint)
		log.Warn("delivery failed; will retry", slog.Int("attempt", d.Attempt), slog.Duration("retry_in", wait), slog.String("error", d.Error))
		return &retryError{wait: wait, err: fmt.Errorf("deliver %s: %w", f.ID, derr)}
	case history.DeliveryDryRun:
		log.Info("dry run: fact recorded, nothing sent", slog.String("kind", string(f.Kind)))
		return nil
	}
	log.Info("fact delivered", slog.String("status", d.Status), slog.String("kind", string(f.Kind)))
	return nil
}

// earlierFailures reads what is kept about the fact's failed deliveries to dest. The message's
// receive count is no measure of them: it also counts every time the message was held behind
// a failed fact of its contact, and a backoff on it would make a contact's later facts wait
// minutes after their first failure. The record is read only when there can be one: after a
// failure, or when the message was received before or replayed.
func (a *App) earlierFailures(ctx context.Context, dest deliver.Destination, p *pending, failed bool) (history.FailedFact, error) {
	received, _ := strconv.Atoi(p.rec.Attributes["ApproximateReceiveCount"])
	_, replayed := p.rec.MessageAttributes[ReplayAttribute]
	if !failed && received <= 1 && !replayed {
		return history.FailedFact{}, nil
	}
	kept, err := history.New(a.d.Store).FailedFactOf(ctx, p.fact.Account, p.fact.Email, dest.Name(), p.fact.ID)
	if err != nil || kept == nil {
		return history.FailedFact{}, err
	}
	return *kept, nil
}

// backoff is the delay before retrying after the attempt-th failed delivery of a fact.
func (a *App) backoff(attempt int, hint time.Duration) time.Duration {
	if a.jitter == nil {
		return deliver.Backoff(attempt, retryBase, retryMax, hint, nil)
	}
	a.jitterMu.Lock()
	defer a.jitterMu.Unlock()
	return deliver.Backoff(attempt, retryBase, retryMax, hint, a.jitter)
}

func doneRecord(out deliver.Outcome, at time.Time) map[string]any {
	return map[string]any{"at": at, "status": out.Status, "result": out.Done}
}

// scrubbedError is a delivery error whose text names no erased address.
type scrubbedError struct {
	err  error
	text string
}

func (e scrubbedError) Error() string { return e.text }
func (e scrubbedError) Unwrap() error { return e.err }
