package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/oauth"
	"github.com/cartrelay/cartrelay/shared/poll"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/sources"
	"github.com/cartrelay/cartrelay/shared/thrivecart/tcpoll"
	"github.com/cartrelay/cartrelay/shared/timers"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucsource"
)

// Polling is what the schedule and poll handlers need to walk source APIs.
type Polling struct {
	Connections *connections.Repo
	Options     ucpoll.Options
	// HTTP is the client for source APIs; nil uses the API client's default.
	HTTP *http.Client
	// Sleep replaces real waits (tests on a fake clock); nil sleeps.
	Sleep func(ctx context.Context, d time.Duration) error
	// Budget bounds one run when ctx carries no deadline (14 min: under the poll queue's
	// 15-minute visibility, so a job is never handed out twice while it runs).
	Budget time.Duration
	// ThriveCart tunes the ThriveCart transactions walk; zero values take its defaults
	// (60 requests a minute).
	ThriveCart tcpoll.Options
}

// Schedule runs on the EventBridge schedule (every minute). It fires the timers that came due
// (shared/timers): each hands its message to a queue, such as a destination's follow-up fact on
// that destination's FIFO queue, so what a timer starts is delivered, logged and retried like
// any fact. A timer that could not be handed on fires again on a later run. It then enqueues a
// poll job for every connection stream whose cursor is due, carries on the email changes whose
// records are still moving and the erasures not finished yet, and keeps the reports (pending
// rollup adds, rebuilds after a time zone change).
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
		err = fmt.Errorf("fire timers: %w", err)
	}
	if perr := a.enqueueDuePolls(ctx); perr != nil {
		err = errors.Join(err, fmt.Errorf("enqueue poll jobs: %w", perr))
	}
	if merr := a.continueMoves(ctx); merr != nil {
		err = errors.Join(err, fmt.Errorf("continue email moves: %w", merr))
	}
	if eerr := a.eraser.ContinueAll(ctx, func(ctx context.Context, id string) (accounts.Account, error) {
		return a.d.Accounts.Get(ctx, id) // an erasure opens no secret: the forwarders send its requests
	}); eerr != nil {
		err = errors.Join(err, fmt.Errorf("continue erasures: %w", eerr))
	}
	// Last: a build of a large account can take the rest of the run.
	if rerr := a.keepReports(ctx); rerr != nil {
		err = errors.Join(err, fmt.Errorf("keep the reports: %w", rerr))
	}
	return err
}

// enqueueDuePolls puts one job on the poll queue per due (account, source, stream), for every
// registered source that has a poller.
func (a *App) enqueueDuePolls(ctx context.Context) error {
	if a.d.Polling == nil || a.d.Polling.Connections == nil {
		return nil
	}
	now := a.d.Clock.Now()
	var jobs []pollJob
	var errs []error
	for _, reg := range sources.All() {
		p := reg.Poller
		if p == nil {
			continue
		}
		ids, err := a.polledAccounts(ctx, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", reg.Name, err))
			continue
		}
		for _, id := range ids {
			for _, stream := range p.Streams {
				due, err := p.Due(ctx, a.d.Store, id, stream, now)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if due {
					jobs = append(jobs, pollJob{Account: id, Source: string(reg.Name), Stream: stream})
				}
			}
		}
	}
	msgs := make([]queue.Message, 0, len(jobs))
	for i, j := range jobs {
		m := pollMessage(j)
		m.ID = fmt.Sprintf("p%d", i)
		msgs = append(msgs, m)
	}
	if len(msgs) > 0 {
		if err := a.d.Queue.Send(ctx, queue.Poll, msgs); err != nil {
			errs = append(errs, err)
		} else {
			a.d.Log.Info("poll jobs enqueued", slog.Int("jobs", len(msgs)))
		}
	}
	return errors.Join(errs...)
}

// polledAccounts lists the accounts a poller walks: those with its connection, or, for a
// poller whose credentials are account settings, every account. The schedule cannot read
// secrets, so an account without them gets a job too, and that run only notes what is missing.
func (a *App) polledAccounts(ctx context.Context, p *source.Poller) ([]string, error) {
	if p.Connection == "" {
		if a.d.Accounts == nil {
			return nil, nil
		}
		return a.d.Accounts.IDs(ctx)
	}
	refs, err := a.d.Polling.Connections.List(ctx, p.Connection)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(refs))
	for i, r := range refs {
		ids[i] = r.Account
	}
	return ids, nil
}

// Poll consumes poll jobs (one per connection and stream) and walks each with the connection's
// credentials. A job whose time budget ran out is put back on the poll queue to continue; one
// that caught up, or must wait for the rate budget, is started again by the schedule.
func (a *App) Poll(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	for _, rec := range ev.Records {
		if a.d.Polling == nil || a.d.Polling.Connections == nil {
			a.d.Log.Warn("poll job ignored: no source connection is configured", slog.String("message_id", rec.MessageId))
			continue
		}
		err := a.pollOne(ctx, rec)
		if err != nil && ctx.Err() != nil {
			// The runtime is stopping. The walk saved its cursor after its last page and gave
			// its lease back; the schedule starts it again from there. Keeping the job would
			// only bring it back later, and count a receive towards the dead-letter queue.
			a.d.Log.Info("poll job interrupted; the schedule resumes it from its cursor", slog.String("message_id", rec.MessageId),
				slog.Any("error", err))
			continue
		}
		if err != nil {
			a.d.Log.Error("poll job failed; will retry", slog.String("message_id", rec.MessageId), slog.Any("error", err))
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		}
	}
	return resp, nil
}

func (a *App) pollOne(ctx context.Context, rec events.SQSMessage) error {
	var pj pollJob
	if err := json.Unmarshal([]byte(rec.Body), &pj); err != nil || pj.Account == "" || pj.Stream == "" {
		// Retrying cannot make it readable.
		a.d.Log.Error("poll job unreadable; dropped", slog.String("body", truncate(rec.Body, 200)))
		return nil
	}
	budget := a.d.Polling.Budget
	if budget <= 0 {
		budget = 14 * time.Minute
	}
	if dl, ok := ctx.Deadline(); ok {
		// The Lambda deadline is on the machine clock; the engine reads the injected one.
		budget = time.Until(dl)
	}
	deadline := a.d.Clock.Now().Add(budget)
	if pj.Source == "" {
		pj.Source = string(domain.UltraCart)
	}
	reg, err := sources.Lookup(pj.Source)
	if err == nil && (reg.Poller == nil || reg.Poller.Run == nil) {
		err = fmt.Errorf("%s has no poller", reg.Label)
	}
	if err != nil {
		// Retrying cannot make it runnable.
		a.d.Log.Error("poll job for a source that cannot be polled; dropped", slog.String("account", pj.Account),
			slog.String("source", pj.Source), slog.Any("error", err))
		return nil
	}
	log := a.d.Log.With(slog.String("account", pj.Account), slog.String("source", string(reg.Name)), slog.String("stream", pj.Stream))
	res, err := a.pollRun(ctx, reg, source.Job{Account: pj.Account, Stream: pj.Stream}, deadline)
	switch {
	case errors.Is(err, connections.ErrNotFound):
		log.Warn("poll job dropped: the account has no " + reg.Label + " connection")
		return nil
	case errors.Is(err, poll.ErrLeaseLost):
		log.Warn("poll run lost its lease; the new holder carries on", slog.Any("error", err))
		return nil
	case err != nil:
		return err
	}
	switch res.Outcome {
	case poll.Continue:
		return a.d.Queue.Send(ctx, queue.Poll, []queue.Message{pollMessage(pj)})
	case poll.Stopped:
		log.Warn("polling stopped until the connection is fixed", slog.String("status", res.Status),
			slog.String("last_error", res.LastError))
	}
	return nil
}

// pollRun runs job with reg's poller over the runtime's ports.
func (a *App) pollRun(ctx context.Context, reg source.Registration, job source.Job, deadline time.Time) (source.Result, error) {
	if reg.Poller == nil || reg.Poller.Run == nil {
		return source.Result{}, fmt.Errorf("%s has no poller", reg.Label)
	}
	if a.ports == nil {
		return source.Result{}, errors.New("polling is not configured in this runtime")
	}
	return reg.Poller.Run(ctx, *a.ports, job, deadline)
}

// RunPoll runs job with src's registered poller (shared/sources) until deadline, and returns
// where it got; an empty src is UltraCart, as in a poll job. `cartrelay backfill` runs its
// walks through it, as the poll consumer does.
func (a *App) RunPoll(ctx context.Context, src string, job source.Job, deadline time.Time) (source.Result, error) {
	if src == "" {
		src = string(domain.UltraCart)
	}
	reg, err := sources.Lookup(src)
	if err != nil {
		return source.Result{}, err
	}
	return a.pollRun(ctx, reg, job, deadline)
}

// PollRun is RunPoll for an UltraCart stream, with UltraCart's own result. since, when set, is
// where a stream that has no cursor yet starts.
func (a *App) PollRun(ctx context.Context, job ucpoll.Job, deadline, since time.Time) (ucpoll.Result, error) {
	res, err := a.RunPoll(ctx, string(domain.UltraCart), source.Job{Account: job.Account, Stream: job.Stream, Since: since}, deadline)
	r, _ := res.Detail.(ucpoll.Result)
	return r, err
}

// pollPorts are the ports every source's poll run gets, built once; nil when the runtime does
// not poll.
func (a *App) pollPorts() *source.Ports {
	p := a.d.Polling
	if p == nil {
		return nil
	}
	ports := &source.Ports{Store: a.d.Store, Clock: a.d.Clock, Log: a.d.Log, Sleep: p.Sleep, Accounts: a.d.Accounts,
		Connections: p.Connections, HTTP: p.HTTP,
		APIBase:      map[domain.Source]string{domain.UltraCart: a.d.Config.UltraCartBaseURL, domain.ThriveCart: a.d.Config.ThriveCartBaseURL},
		ConnectAgain: "Connect the store again at " + a.publicURL("/connect") + " to resume.",
		Tuning:       map[domain.Source]any{domain.UltraCart: p.Options, domain.ThriveCart: p.ThriveCart},
		Sink:         a.enqueuePolled}
	ports.Refresh = map[domain.Source]oauth.RefreshFunc{
		domain.UltraCart: oauth.UltraCartRefresh(ucsource.OAuthClient(*ports, a.oauthApps()[domain.UltraCart]))}
	return ports
}

func firstOr(xs []string, def string) string {
	if len(xs) > 0 {
		return xs[0]
	}
	return def
}
