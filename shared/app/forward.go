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
// fails, the rest of that contact's messages in the batch fail too.
func (a *App) Forward(dest deliver.Destination) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		var resp events.SQSEventResponse
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

func (a *App) forwardOne(ctx context.Context, dest deliver.Destination, rec events.SQSMessage) error {
	var f domain.Fact
	if err := json.Unmarshal([]byte(rec.Body), &f); err != nil || f.ID == "" || f.Account == "" {
		// Nothing can ever make this message readable; keep it in the log rather than retry it.
		a.d.Log.Error("unreadable fact message parked", slog.String("destination", dest.Name()),
			slog.String("message_id", rec.MessageId), slog.Any("error", err))
		return nil
	}
	log := a.d.Log.With(slog.String("account", f.Account), slog.String("fact_id", f.ID), slog.String("destination", dest.Name()))
	repo := history.New(a.d.Store)
	done, err := repo.FactDone(ctx, f.Account, dest.Name(), f.ID)
	if err != nil {
		log.Error("read fact-done marker", slog.Any("error", err))
		return err
	}
	if done != nil {
		log.Info("fact already delivered; skipped")
		return nil
	}
	acct, err := a.d.Accounts.Get(ctx, f.Account)
	if err != nil {
		log.Error("read account", slog.Any("error", err))
		return err
	}
	attempt, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
	start := a.d.Clock.Now()
	out, derr := dest.Deliver(ctx, acct, f)
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
		if err := a.d.Queue.ChangeVisibility(ctx, dest.Name(), rec.ReceiptHandle, wait); err != nil {
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
