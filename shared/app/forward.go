package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
)

// DeliveryLogTTL is how long the delivery log keeps an attempt.
const DeliveryLogTTL = 90 * 24 * time.Hour

// Forward returns the handler of one destination's FIFO queue. Each fact id is an idempotency
// key: a fact already delivered is skipped. Messages of one contact stay in order: once one
// fails, the rest of that contact's messages in the batch fail too. A batch made only of profile
// refreshes of different contacts (a backlog, such as after a backfill) goes to a destination
// that can take them together in one bulk call.
func (a *App) Forward(dest deliver.Destination) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		var resp events.SQSEventResponse
		if b, ok := dest.(deliver.ProfileBatcher); ok {
			if failed, handled := a.forwardProfiles(ctx, dest, b, ev.Records); handled {
				for _, id := range failed {
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: id})
				}
				return resp, nil
			}
		}
		failedGroups := map[string]bool{}
		for _, rec := range ev.Records {
			group := rec.Attributes["MessageGroupId"]
			if failedGroups[group] {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
				continue
			}
			if err := a.forwardOne(ctx, dest, rec); err != nil {
				failedGroups[group] = true
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
			}
		}
		return resp, nil
	}
}

// pending is a fact read from its message, not yet delivered to the destination.
type pending struct {
	rec  events.SQSMessage
	fact domain.Fact
	log  *slog.Logger
}

// readFact reads a message's fact and checks whether the destination already has it. A nil
// pending with a nil error means there is nothing to do (unreadable, or already delivered).
func (a *App) readFact(ctx context.Context, dest deliver.Destination, rec events.SQSMessage) (*pending, error) {
	var f domain.Fact
	if err := json.Unmarshal([]byte(rec.Body), &f); err != nil || f.ID == "" || f.Account == "" {
		// Nothing can ever make this message readable; keep it in the log rather than retry it.
		a.d.Log.Error("unreadable fact message parked", slog.String("destination", dest.Name()),
			slog.String("message_id", rec.MessageId), slog.Any("error", err))
		return nil, nil
	}
	log := a.d.Log.With(slog.String("account", f.Account), slog.String("fact_id", f.ID), slog.String("destination", dest.Name()))
	done, err := history.New(a.d.Store).FactDone(ctx, f.Account, dest.Name(), f.ID)
	if err != nil {
		log.Error("read fact-done marker", slog.Any("error", err))
		return nil, err
	}
	if done != nil {
		log.Info("fact already delivered; skipped")
		return nil, nil
	}
	return &pending{rec: rec, fact: f, log: log}, nil
}

func (a *App) forwardOne(ctx context.Context, dest deliver.Destination, rec events.SQSMessage) error {
	p, err := a.readFact(ctx, dest, rec)
	if p == nil || err != nil {
		return err
	}
	acct, err := a.d.Accounts.Get(ctx, p.fact.Account)
	if err != nil {
		p.log.Error("read account", slog.Any("error", err))
		return err
	}
	start := a.d.Clock.Now()
	out, derr := dest.Deliver(ctx, acct, p.fact)
	return a.settle(ctx, dest, p, out, derr, start)
}

// forwardProfiles delivers a batch of profile refreshes in one bulk call. It declines (handled
// false) unless the batch has several messages, all readable ContactChanged facts of one account
// for different contacts; then per-contact order cannot be broken by delivering them together.
func (a *App) forwardProfiles(ctx context.Context, dest deliver.Destination, b deliver.ProfileBatcher, recs []events.SQSMessage) (failed []string, handled bool) {
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
	var todo []*pending
	for _, rec := range recs {
		p, err := a.readFact(ctx, dest, rec)
		if err != nil {
			failed = append(failed, rec.MessageId)
			continue
		}
		if p != nil {
			todo = append(todo, p)
		}
	}
	if len(todo) == 0 {
		return failed, true
	}
	acct, err := a.d.Accounts.Get(ctx, account)
	if err != nil {
		a.d.Log.Error("read account", slog.String("account", account), slog.Any("error", err))
		for _, p := range todo {
			failed = append(failed, p.rec.MessageId)
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
			failed = append(failed, p.rec.MessageId)
		}
	}
	return failed, true
}

// settle records the outcome of one delivery: the fact-done marker on success, a parked entry
// for a permanent failure, a retry with backoff otherwise. It returns an error only when the
// message must stay on the queue.
func (a *App) settle(ctx context.Context, dest deliver.Destination, p *pending, out deliver.Outcome, derr error, start time.Time) error {
	f, log, repo := p.fact, p.log, history.New(a.d.Store)
	attempt, _ := strconv.Atoi(p.rec.Attributes["ApproximateReceiveCount"])
	d := history.Delivery{Account: f.Account, Email: f.Email, Dest: dest.Name(), FactID: f.ID, FactKind: string(f.Kind),
		At: start, Attempt: attempt, Status: out.Status, LatencyMS: a.d.Clock.Now().Sub(start).Milliseconds(),
		Requests: out.Exchanges, Note: out.Note}
	switch {
	case derr == nil:
		if err := repo.MarkFactDone(ctx, f.Account, dest.Name(), f.ID, doneRecord(out, start)); err != nil {
			log.Error("mark fact delivered", slog.Any("error", err))
			return err
		}
	case deliver.IsPermanent(derr):
		d.Status, d.Error = history.DeliveryParked, derr.Error()
	default:
		d.Status, d.Error = history.DeliveryRetry, derr.Error()
	}
	if err := repo.RecordDelivery(ctx, d, DeliveryLogTTL); err != nil {
		log.Error("record delivery", slog.Any("error", err))
		if derr == nil {
			// Delivered and marked done: a lost log line must not cause a second delivery.
			return nil
		}
		return err
	}
	switch d.Status {
	case history.DeliveryParked:
		log.Warn("delivery parked; replay it once the cause is fixed", slog.String("error", d.Error))
		return nil
	case history.DeliveryRetry:
		var ra *deliver.RetryAfterError
		hint := out.RetryAfter
		if errors.As(derr, &ra) && ra.After > hint {
			hint = ra.After
		}
		wait := deliver.Backoff(attempt, 5*time.Second, 15*time.Minute, hint, nil)
		if err := a.d.Queue.ChangeVisibility(ctx, dest.Name(), p.rec.ReceiptHandle, wait); err != nil {
			log.Warn("could not set the retry delay; the queue default applies", slog.Any("error", err))
		}
		log.Warn("delivery failed; will retry", slog.Int("attempt", attempt), slog.Duration("retry_in", wait), slog.String("error", d.Error))
		return fmt.Errorf("deliver %s: %w", f.ID, derr)
	}
	log.Info("fact delivered", slog.String("status", d.Status), slog.String("kind", string(f.Kind)))
	return nil
}

func doneRecord(out deliver.Outcome, at time.Time) map[string]any {
	return map[string]any{"at": at, "status": out.Status, "result": out.Done}
}
