package wiring

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/localrun"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// How many batches serve's consumers handle at once.
const (
	IngestWorkers  = 16
	ForwardWorkers = 8
)

// ServeOptions tune the local runtime.
type ServeOptions struct {
	Addr string
	// ScheduleEvery is how often the EventBridge schedule plays (template.yaml: every minute).
	ScheduleEvery time.Duration
	// PollWait is the queue pollers' long-poll time.
	PollWait time.Duration
	// NoThrottle leaves every route unlimited, for load tests of serve itself; API Gateway
	// keeps the template's throttles whatever serve does.
	NoThrottle bool
	Ready      func(addr string)
}

// ServeConfig lays out, for the local runtime, the same routes, queue consumers and schedule
// that template.yaml gives the Lambda functions.
func ServeConfig(env *Env, o ServeOptions) (localrun.Config, error) {
	if o.ScheduleEvery <= 0 {
		o.ScheduleEvery = time.Minute
	}
	a := env.App
	// A batch waits for the disk at each of its records' commits (a contact's records in turn,
	// the others at once) and once more to send and clear their facts; many batches at once let
	// the embedded database commit their writes together (group commit), as Lambda scales out a
	// busy queue's consumers.
	consumers := []localrun.Consumer{{Queue: queue.Ingest, Handler: a.Ingest, BatchSize: 10, Concurrency: IngestWorkers}}
	for _, r := range destinations.All() {
		d, err := env.Destination(r.Name)
		if err != nil {
			return localrun.Config{}, err
		}
		consumers = append(consumers, localrun.Consumer{Queue: r.Queue.Name, Handler: a.Forward(d), BatchSize: 10, Concurrency: ForwardWorkers})
	}
	// A poll saves its cursor after every page and gives its lease back when cancelled, so a
	// stop need not wait for a walk that may take minutes.
	consumers = append(consumers, localrun.Consumer{Queue: queue.Poll, Handler: a.Poll, BatchSize: 1, Concurrency: 1, Interruptible: true})
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
	handlers := map[string]localrun.HTTPHandler{FunctionWebhook: a.Webhook, FunctionConnect: a.Connect}
	var routes []localrun.Route
	for _, r := range HTTPRoutes() {
		if o.NoThrottle {
			r.Throttle = localrun.Throttle{}
		}
		routes = append(routes, localrun.Route{Method: r.Method, Path: r.Path, RouteKey: r.RouteKey,
			Handler: handlers[r.Function], Throttle: r.Throttle})
	}
	return localrun.Config{
		Addr:      o.Addr,
		Routes:    routes,
		Consumers: consumers,
		Schedules: []localrun.Schedule{{Name: "cartrelay-schedule", Every: o.ScheduleEvery, Handler: schedule}},
		Queue:     env.Queue,
		Queues:    destinations.Queues(),
		Clock:     env.Clock,
		Logger:    env.Log,
		PollWait:  o.PollWait,
		Ready:     o.Ready,
	}, nil
}

// The functions behind the HTTP API, by their logical ids in template.yaml.
const (
	FunctionWebhook = "WebhookFunction"
	FunctionConnect = "ConnectFunction"
)

// HTTPRoute is one route of the HTTP API: its API Gateway route key, the path localrun
// matches, the function that serves it, and its throttle (the stage's route settings).
type HTTPRoute struct {
	RouteKey string
	// Method is "" for ANY; Path ends in "/" for a greedy {proxy+} route.
	Method, Path string
	Function     string
	Throttle     localrun.Throttle
}

// DefaultThrottle is the stage's default route throttle in template.yaml: a ceiling against
// floods, far above what merchants' browsers send.
func DefaultThrottle() localrun.Throttle { return localrun.Throttle{Rate: 100, Burst: 200} }

// HTTPRoutes is the HTTP API that template.yaml declares and `cartrelay serve` plays (a deploy
// test holds the template to it). Each source's webhooks, the page views and the review links
// have a route and a throttle of their own, so junk sent to one cannot use up what another
// needs: a flood of page views never delays an order. The rates are requests a second across
// the deployment: far above what one merchant's carts send, and low enough that a flood
// costs little.
func HTTPRoutes() []HTTPRoute {
	return []HTTPRoute{
		{RouteKey: "ANY /webhooks/ultracart/{proxy+}", Path: "/webhooks/ultracart/", Function: FunctionWebhook,
			Throttle: localrun.Throttle{Rate: 50, Burst: 100}},
		{RouteKey: "ANY /webhooks/thrivecart/{proxy+}", Path: "/webhooks/thrivecart/", Function: FunctionWebhook,
			Throttle: localrun.Throttle{Rate: 50, Burst: 100}},
		// Page views arrive at the pace of the storefronts' visitors.
		{RouteKey: "ANY /track/{proxy+}", Path: "/track/", Function: FunctionWebhook,
			Throttle: localrun.Throttle{Rate: 50, Burst: 100}},
		// Review links are clicked by people, one at a time.
		{RouteKey: "GET /review/{proxy+}", Method: "GET", Path: "/review/", Function: FunctionConnect,
			Throttle: localrun.Throttle{Rate: 10, Burst: 20}},
		{RouteKey: "GET /connect", Method: "GET", Path: "/connect", Function: FunctionConnect, Throttle: DefaultThrottle()},
		{RouteKey: "ANY /oauth/{proxy+}", Path: "/oauth/", Function: FunctionConnect, Throttle: DefaultThrottle()},
		{RouteKey: "ANY /console/{proxy+}", Path: "/console/", Function: FunctionConnect, Throttle: DefaultThrottle()},
		{RouteKey: "GET /console", Method: "GET", Path: "/console", Function: FunctionConnect, Throttle: DefaultThrottle()},
	}
}
