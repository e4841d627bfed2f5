package wiring

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/localrun"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// ServeOptions tune the local runtime.
type ServeOptions struct {
	Addr string
	// ScheduleEvery is how often the EventBridge schedule plays (template.yaml: every minute).
	ScheduleEvery time.Duration
	// PollWait is the queue pollers' long-poll time.
	PollWait time.Duration
	Ready    func(addr string)
}

// ServeConfig lays out, for the local runtime, the same routes, queue consumers and schedule
// that template.yaml gives the Lambda functions.
func ServeConfig(env *Env, o ServeOptions) (localrun.Config, error) {
	if o.ScheduleEvery <= 0 {
		o.ScheduleEvery = time.Minute
	}
	a := env.App
	ontraport, err := env.Destination(queue.Ontraport)
	if err != nil {
		return localrun.Config{}, err
	}
	iterable, err := env.Destination(queue.Iterable)
	if err != nil {
		return localrun.Config{}, err
	}
	schedule := a.Schedule
	if env.Sweep != nil {
		// DynamoDB deletes expired items itself; the embedded table is swept on the schedule.
		schedule = func(ctx context.Context, ev events.EventBridgeEvent) error {
			if n, err := env.Sweep(ctx); err != nil {
				env.Log.Warn("sweep expired items", slog.Any("error", err))
			} else if n > 0 {
				env.Log.Debug("swept expired items", slog.Int("items", n))
			}
			return a.Schedule(ctx, ev)
		}
	}
	return localrun.Config{
		Addr: o.Addr,
		Routes: []localrun.Route{
			{Path: "/webhooks/", RouteKey: "ANY /webhooks/{proxy+}", Handler: a.Webhook},
			{Path: "/track/", RouteKey: "ANY /track/{proxy+}", Handler: a.Webhook},
			{Method: "GET", Path: "/connect", RouteKey: "GET /connect", Handler: a.Connect},
			{Path: "/oauth/", RouteKey: "ANY /oauth/{proxy+}", Handler: a.Connect},
			{Path: "/console/", RouteKey: "ANY /console/{proxy+}", Handler: a.Connect},
			{Method: "GET", Path: "/console", RouteKey: "GET /console", Handler: a.Connect},
			{Method: "GET", Path: "/review/", RouteKey: "GET /review/{proxy+}", Handler: a.Connect},
		},
		Consumers: []localrun.Consumer{
			{Queue: queue.Ingest, Handler: a.Ingest, BatchSize: 10, Concurrency: 2},
			{Queue: queue.Ontraport, Handler: a.Forward(ontraport), BatchSize: 10, Concurrency: 2},
			{Queue: queue.Iterable, Handler: a.Forward(iterable), BatchSize: 10, Concurrency: 2},
			{Queue: queue.Poll, Handler: a.Poll, BatchSize: 1, Concurrency: 1},
		},
		Schedules: []localrun.Schedule{{Name: "cartrelay-schedule", Every: o.ScheduleEvery, Handler: schedule}},
		Queue:     env.Queue,
		Clock:     env.Clock,
		Logger:    env.Log,
		PollWait:  o.PollWait,
		Ready:     o.Ready,
	}, nil
}
