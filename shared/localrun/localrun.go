// Package localrun runs cartrelay's Lambda handlers in one process, with no AWS account: an
// HTTP server plays API Gateway (HTTP API, payload format 2.0), queue pollers play Lambda's SQS
// event source mapping, and tickers play EventBridge schedules. The handlers are the very
// functions deployed to Lambda, so what works under `cartrelay serve` works in AWS.
//
// Nothing accepted is lost on shutdown: a handler runs to completion or is cut off only when
// the shutdown grace period runs out, and a message is deleted only after its handler reported
// success, so an interrupted batch is redelivered by the durable queue.
package localrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// HTTPHandler is the signature of a Lambda behind an API Gateway HTTP API (payload 2.0).
type HTTPHandler func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// SQSHandler is the signature of a Lambda fed by an SQS event source with
// ReportBatchItemFailures.
type SQSHandler func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

// ScheduleHandler is the signature of a Lambda invoked by an EventBridge schedule.
type ScheduleHandler func(context.Context, events.EventBridgeEvent) error

// Defaults applied by Run to zero Config fields.
const (
	DefaultAddr = "127.0.0.1:8080"
	// DefaultMaxBodyBytes is Lambda's limit on a synchronous invocation's payload, the
	// effective cap on a request body behind API Gateway.
	DefaultMaxBodyBytes = 6 * 1024 * 1024
	// DefaultPollWait is short next to SQS's 20 s so that a local newcomer sees messages
	// flow promptly even with an adapter that polls rather than waits.
	DefaultPollWait = time.Second
	// DefaultShutdownTimeout bounds the drain on shutdown; it sits under the 30 s that
	// container runtimes and service managers commonly allow before killing a process.
	DefaultShutdownTimeout = 20 * time.Second
	// maxPollWait is SQS's limit on WaitTimeSeconds; a larger value would work here and
	// fail in AWS.
	maxPollWait = 20 * time.Second
)

// abortGrace is how long Run still waits, after cancelling the handlers' context at the end
// of the shutdown grace period, for them to notice and return.
const abortGrace = 5 * time.Second

// Route sends HTTP requests to a handler, as an API Gateway route does.
type Route struct {
	// Method is an HTTP method, or "" for any (API Gateway's ANY).
	Method string
	// Path is either exact ("/connect") or a prefix ending in "/" ("/webhooks/"), which plays
	// a greedy "{proxy+}" route: it needs at least one character after the prefix, and that
	// rest is the "proxy" path parameter. "/" alone is therefore a catch-all "/{proxy+}".
	Path string
	// RouteKey is the key reported in the event, e.g. "ANY /webhooks/{proxy+}". When empty
	// it is derived from Method and Path.
	RouteKey string
	Handler  HTTPHandler
	// Throttle limits the route as API Gateway's route settings do; the zero value leaves it
	// unlimited.
	Throttle Throttle
}

// Throttle is an API Gateway route throttle: a token bucket that holds Burst requests and
// refills at Rate requests a second. A request that finds the bucket empty is answered 429
// before its body is read or its handler runs.
type Throttle struct {
	Rate  float64
	Burst int
}

// IsZero reports whether the throttle is off.
func (t Throttle) IsZero() bool { return t.Rate == 0 && t.Burst == 0 }

// Consumer polls one queue into one handler, as a Lambda SQS event source mapping does.
type Consumer struct {
	// Queue is the logical queue name (queue.Ingest, ...).
	Queue   string
	Handler SQSHandler
	// BatchSize is the most messages per invocation, 1..10; 0 means 10.
	BatchSize int
	// Concurrency is how many batches may be in flight at once; 0 means 1. FIFO ordering
	// across concurrent workers is the queue's job (message group locking).
	Concurrency int
	// Visibility overrides the queue's visibility timeout when positive.
	Visibility time.Duration
	// Interruptible handlers are cancelled as soon as the stop begins instead of at the end of
	// the grace period: for long work that saves its progress as it goes and resumes from it
	// (a poll walking a source API for minutes), where letting it run on would only hold the
	// stop up.
	Interruptible bool
}

// Schedule invokes a handler at a fixed rate, as an EventBridge rate() rule does.
type Schedule struct {
	Name    string
	Every   time.Duration
	Handler ScheduleHandler
}

// Config is everything Run needs. Zero values get the defaults documented on each field.
type Config struct {
	// Addr is the HTTP listen address; "" means DefaultAddr. Use port 0 for any free port
	// and learn the address from Ready.
	Addr      string
	Routes    []Route
	Consumers []Consumer
	Schedules []Schedule
	// Queue is required when there are consumers; /healthz reports its counts.
	Queue queue.Queue
	// Queues is the topology Queue was built with; every consumer's queue must be in it.
	Queues queue.Topology
	// Clock stamps events; nil means the system clock.
	Clock clock.Clock
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// MaxBodyBytes caps request bodies (413 above it); 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// PollWait is each receive's long-poll time, at most 20 s; 0 means DefaultPollWait.
	PollWait time.Duration
	// ShutdownTimeout bounds the graceful drain after ctx is cancelled; 0 means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Ready, when set, is called once with the listening address after every part started.
	Ready func(addr string)
}

// ErrShutdownTimeout is wrapped by Run's error when handlers were still running at the end
// of the shutdown grace period and had to be cancelled. Nothing is lost by that: their
// messages were not deleted and will be redelivered.
var ErrShutdownTimeout = errors.New("localrun: shutdown grace period ran out")

// Run serves cfg until ctx is cancelled, then drains: the HTTP server stops accepting
// connections and waits for requests in flight, the pollers stop receiving and let the
// batches in flight finish, and schedules stop ticking and let a running invocation finish.
// It returns nil after a clean drain, an error wrapping ErrShutdownTimeout when the drain
// ran over cfg.ShutdownTimeout, or an error if the configuration is invalid or the server
// cannot listen.
func Run(ctx context.Context, cfg Config) error {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return err
	}
	log := cfg.Logger

	// Handlers run under hard rather than ctx: cancelling ctx starts the drain, and only the
	// end of the grace period cancels work in flight, so an accepted webhook can still
	// finish its enqueue and a batch its deletes.
	hard, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()
	// stop ends the intake (receives, ticks); it follows ctx, or a server that died.
	stop, stopIntake := context.WithCancel(ctx)
	defer stopIntake()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("localrun: listen on %s: %w", cfg.Addr, err)
	}
	api := newHTTPAPI(cfg, hard)
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return hard },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	var workers sync.WaitGroup
	for _, c := range cfg.Consumers {
		handlers := hard
		if c.Interruptible {
			var cancel context.CancelFunc
			handlers, cancel = context.WithCancel(hard)
			defer cancel()
			context.AfterFunc(stop, cancel)
		}
		p := &poller{c: c, q: cfg.Queue, clock: cfg.Clock, log: log.With("queue", c.Queue), wait: cfg.PollWait, hard: handlers}
		for i := range c.Concurrency {
			workers.Go(func() { p.run(stop, i) })
		}
	}
	for _, s := range cfg.Schedules {
		sc := &scheduler{s: s, clock: cfg.Clock, log: log.With("schedule", s.Name), hard: hard}
		workers.Go(func() { sc.run(stop) })
	}

	addr := ln.Addr().String()
	log.Info("localrun started", "addr", addr, "routes", len(cfg.Routes), "consumers", len(cfg.Consumers), "schedules", len(cfg.Schedules))
	if cfg.Ready != nil {
		cfg.Ready(addr)
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("localrun draining", "grace", cfg.ShutdownTimeout.String())
	case err := <-serveErr:
		runErr = fmt.Errorf("localrun: http server stopped: %w", err)
		log.Error("localrun http server stopped; draining", "error", err)
	}
	stopIntake()

	drainCtx, cancelDrain := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancelDrain()

	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Shutdown(drainCtx) }()
	workersDone := make(chan struct{})
	go func() {
		workers.Wait()
		close(workersDone)
	}()

	var timedOut []string
	if err := <-httpDone; err != nil {
		// Requests still running: cut their handlers off and close their connections.
		// Their clients see an error and retry, as they would after a 5xx in AWS.
		timedOut = append(timedOut, "http requests")
		abort()
		_ = srv.Close()
	}
	select {
	case <-workersDone:
	case <-drainCtx.Done():
		select {
		case <-workersDone:
			// They finished just as the time ran out.
		default:
			timedOut = append(timedOut, "queue batches or schedule runs")
			abort()
			select {
			case <-workersDone:
			case <-time.After(abortGrace):
				log.Error("localrun handlers ignored cancellation; returning without them", "waited", abortGrace.String())
			}
		}
	}
	if len(timedOut) > 0 {
		err := fmt.Errorf("%w after %s; cancelled %s (unfinished messages stay queued for redelivery)", ErrShutdownTimeout, cfg.ShutdownTimeout, strings.Join(timedOut, " and "))
		log.Warn("localrun stopped", "error", err)
		return errors.Join(runErr, err)
	}
	log.Info("localrun stopped")
	return runErr
}

// withDefaults validates cfg and fills its zero fields, so that a mistake in wiring fails at
// start rather than on the first request or message.
func withDefaults(cfg Config) (Config, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("localrun: "+format, args...)) }

	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.MaxBodyBytes == 0:
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	case cfg.MaxBodyBytes < 0:
		bad("MaxBodyBytes %d is negative", cfg.MaxBodyBytes)
	}
	switch {
	case cfg.PollWait == 0:
		cfg.PollWait = DefaultPollWait
	case cfg.PollWait < 0 || cfg.PollWait > maxPollWait:
		bad("PollWait %s is outside 0..%s (SQS's long-poll limit)", cfg.PollWait, maxPollWait)
	}
	switch {
	case cfg.ShutdownTimeout == 0:
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	case cfg.ShutdownTimeout < 0:
		bad("ShutdownTimeout %s is negative", cfg.ShutdownTimeout)
	}

	routes := make([]Route, len(cfg.Routes))
	seen := map[string]bool{}
	for i, r := range cfg.Routes {
		r.Method = strings.ToUpper(r.Method)
		switch {
		case r.Handler == nil:
			bad("route %d (%s %s) has no handler", i, r.Method, r.Path)
		case !strings.HasPrefix(r.Path, "/"):
			bad("route %d path %q must start with /", i, r.Path)
		case r.Path == healthPath:
			bad("route %d path %s is reserved for the health check", i, healthPath)
		}
		if r.RouteKey == "" {
			r.RouteKey = defaultRouteKey(r)
		}
		if !r.Throttle.IsZero() && (r.Throttle.Rate <= 0 || r.Throttle.Burst <= 0) {
			bad("route %s: throttle rate %g and burst %d must both be positive (or both zero for none)", r.RouteKey, r.Throttle.Rate, r.Throttle.Burst)
		}
		key := r.Method + " " + r.Path
		if seen[key] {
			bad("route %q is declared twice", key)
		}
		seen[key] = true
		routes[i] = r
	}
	cfg.Routes = routes

	consumers := make([]Consumer, len(cfg.Consumers))
	for i, c := range cfg.Consumers {
		if _, ok := cfg.Queues.SpecFor(c.Queue); !ok {
			bad("consumer %d: %w %q", i, queue.ErrUnknownQueue, c.Queue)
		}
		if c.Handler == nil {
			bad("consumer of %s has no handler", c.Queue)
		}
		switch {
		case c.BatchSize == 0:
			c.BatchSize = queue.MaxBatch
		case c.BatchSize < 0 || c.BatchSize > queue.MaxBatch:
			bad("consumer of %s: BatchSize %d is outside 1..%d", c.Queue, c.BatchSize, queue.MaxBatch)
		}
		switch {
		case c.Concurrency == 0:
			c.Concurrency = 1
		case c.Concurrency < 0:
			bad("consumer of %s: Concurrency %d is negative", c.Queue, c.Concurrency)
		}
		if c.Visibility < 0 {
			bad("consumer of %s: Visibility %s is negative", c.Queue, c.Visibility)
		}
		consumers[i] = c
	}
	cfg.Consumers = consumers
	if len(consumers) > 0 && cfg.Queue == nil {
		bad("consumers need a Queue")
	}
	if len(consumers) > 0 && len(cfg.Queues) == 0 {
		bad("consumers need Queues, the topology their Queue was built with")
	}

	names := map[string]bool{}
	for i, s := range cfg.Schedules {
		switch {
		case s.Name == "":
			bad("schedule %d has no name", i)
		case names[s.Name]:
			bad("schedule %q is declared twice", s.Name)
		}
		names[s.Name] = true
		if s.Every <= 0 {
			bad("schedule %q: Every %s must be positive", s.Name, s.Every)
		}
		if s.Handler == nil {
			bad("schedule %q has no handler", s.Name)
		}
	}
	return cfg, errors.Join(errs...)
}

func defaultRouteKey(r Route) string {
	m := r.Method
	if m == "" {
		m = "ANY"
	}
	if isPrefix(r.Path) {
		return m + " " + r.Path + "{proxy+}"
	}
	return m + " " + r.Path
}
