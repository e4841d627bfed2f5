package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/timers"
)

// Schedule runs on the EventBridge schedule (every minute). It fires the timers that came due
// (shared/timers): each hands its message to a queue, such as a destination's follow-up fact on
// that destination's FIFO queue, so what a timer starts is delivered, logged and retried like
// any fact. A timer that could not be handed on fires again on a later run. Poll jobs for due
// connections arrive with the source connections.
func (a *App) Schedule(ctx context.Context, ev events.EventBridgeEvent) error {
	a.d.Log.Debug("schedule tick", slog.String("rule", firstOr(ev.Resources, "")), slog.Time("at", ev.Time))
	res, err := timers.New(a.d.Store, a.d.Clock, timers.Options{}).FireDue(ctx, func(ctx context.Context, t timers.Timer) error {
		if err := a.d.Queue.Send(ctx, t.Queue, []queue.Message{t.Message}); err != nil {
			return fmt.Errorf("account %s: %w", t.Account, err)
		}
		return nil
	})
	if res.Fired > 0 || res.Failed > 0 {
		a.d.Log.Info("timers fired", slog.Int("fired", res.Fired), slog.Int("failed", res.Failed), slog.Int("minutes", res.Minutes))
	}
	for _, e := range res.Errors {
		a.d.Log.Warn("timer not fired; a later run fires it", slog.Any("error", e))
	}
	if err != nil {
		return fmt.Errorf("fire timers: %w", err)
	}
	return nil
}

// Poll consumes poll jobs (one per connection and stream). Source pollers arrive with source
// connections; until then a job has nothing to walk, so it is acknowledged and logged.
func (a *App) Poll(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	for _, rec := range ev.Records {
		a.d.Log.Warn("poll job ignored: no source connection is configured", slog.String("message_id", rec.MessageId))
	}
	return events.SQSEventResponse{}, nil
}

func firstOr(xs []string, def string) string {
	if len(xs) > 0 {
		return xs[0]
	}
	return def
}
