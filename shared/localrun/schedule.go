package localrun

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/clock"
)

// scheduler plays an EventBridge rate() rule for one schedule.
type scheduler struct {
	s     Schedule
	clock clock.Clock
	log   *slog.Logger
	hard  context.Context
}

// run invokes the handler every s.Every until stop is cancelled. Invocations run one at a
// time in this goroutine, so a schedule never overlaps itself; ticks that came due while a
// run was still going are skipped rather than replayed back to back. The ticker paces in
// real time; the event's time comes from the injected clock.
func (sc *scheduler) run(stop context.Context) {
	t := time.NewTicker(sc.s.Every)
	defer t.Stop()
	var lastEnd time.Time
	for {
		select {
		case <-stop.Done():
			return
		case tick := <-t.C:
			if stop.Err() != nil {
				return
			}
			if tick.Before(lastEnd) {
				sc.log.Debug("schedule tick skipped: the previous run was still going")
				continue
			}
			sc.invoke()
			lastEnd = time.Now()
		}
	}
}

func (sc *scheduler) invoke() {
	start := time.Now()
	ev := events.EventBridgeEvent{
		Version:    "0",
		ID:         newUUID(),
		DetailType: "Scheduled Event",
		Source:     "aws.events",
		AccountID:  localAccount,
		Time:       sc.clock.Now().UTC().Truncate(time.Second),
		Region:     localRegion,
		Resources:  []string{"arn:aws:events:" + localRegion + ":" + localAccount + ":rule/" + sc.s.Name},
		Detail:     json.RawMessage("{}"),
	}
	_, err := call(func() (struct{}, error) { return struct{}{}, sc.s.Handler(sc.hard, ev) })
	if err != nil {
		// EventBridge would retry an asynchronous invocation; the next tick plays that part
		// here, and the schedule and poll handlers resume from stored cursors anyway.
		sc.log.Error("schedule handler failed", "event_id", ev.ID, "duration_ms", since(start), "error", err)
		return
	}
	sc.log.Info("schedule ran", "event_id", ev.ID, "duration_ms", since(start))
}
