package app

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"
)

// Schedule runs on the EventBridge schedule (every minute). It is where due timers fire and
// where poll jobs are enqueued for connections that are due; both arrive with the source
// connections and the timer-driven destinations. Today it only reports that it ran, so the
// wiring of the schedule is visible in both runtimes.
func (a *App) Schedule(ctx context.Context, ev events.EventBridgeEvent) error {
	a.d.Log.Debug("schedule tick", slog.String("rule", firstOr(ev.Resources, "")), slog.Time("at", ev.Time))
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
