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
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
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
	if err == nil && reg.Poller == nil {
		err = fmt.Errorf("%s has no poller", reg.Label)
	}
	if err != nil {
		// Retrying cannot make it runnable.
		a.d.Log.Error("poll job for a source that cannot be polled; dropped", slog.String("account", pj.Account),
			slog.String("source", pj.Source), slog.Any("error", err))
		return nil
	}
	switch reg.Name {
	case domain.UltraCart:
	case domain.ThriveCart:
		res, err := a.ThriveCartPollRun(ctx, pj.Account, deadline)
		if err != nil || res.Outcome != poll.Continue {
			return err
		}
		return a.d.Queue.Send(ctx, queue.Poll, []queue.Message{pollMessage(pj)})
	default:
		// A registered poller this runtime cannot run with credentials yet: never another
		// source's run.
		a.d.Log.Error("poll job for a source this runtime cannot run; dropped", slog.String("account", pj.Account),
			slog.String("source", pj.Source))
		return nil
	}
	job := ucpoll.Job{Account: pj.Account, Stream: pj.Stream}
	log := a.d.Log.With(slog.String("account", job.Account), slog.String("stream", job.Stream))
	res, err := a.PollRun(ctx, job, deadline, time.Time{})
	switch {
	case errors.Is(err, connections.ErrNotFound):
		log.Warn("poll job dropped: the account has no UltraCart connection")
		return nil
	case errors.Is(err, ucpoll.ErrLeaseLost):
		log.Warn("poll run lost its lease; the new holder carries on", slog.Any("error", err))
		return nil
	case err != nil:
		return err
	}
	switch res.Outcome {
	case poll.Continue:
		return a.d.Queue.Send(ctx, queue.Poll, []queue.Message{pollMessage(pj)})
	case poll.Stopped:
		log.Warn("polling stopped until the connection is fixed", slog.String("status", res.Cursor.Status),
			slog.String("last_error", res.Cursor.LastError))
	}
	return nil
}

// PollRun walks one job with the account's UltraCart connection until deadline, and returns
// where it got. since, when set, is where a stream that has no cursor yet starts (the backfill's
// start date). The poll consumer and `cartrelay backfill` both run jobs through it.
//
// UltraCart refusing the connection stops polling and tells the merchant, on the connection
// and on every stream, until they connect again: a 410 (the app was disabled), a refresh token
// it no longer accepts, or a 401 that one renewal of the access token did not cure.
func (a *App) PollRun(ctx context.Context, job ucpoll.Job, deadline, since time.Time) (ucpoll.Result, error) {
	p := a.d.Polling
	if p == nil || p.Connections == nil {
		return ucpoll.Result{}, errors.New("polling is not configured in this runtime")
	}
	log := a.d.Log.With(slog.String("account", job.Account), slog.String("stream", job.Stream))
	// An OAuth connection's access token is renewed shortly before it expires, under the
	// connection's version check, so concurrent pollers never both rotate it.
	rot := &oauth.Rotator{Connections: p.Connections, Store: a.d.Store, Clock: a.d.Clock,
		Refresh: oauth.UltraCartRefresh(a.ultracartOAuth())}
	conn, err := rot.Token(ctx, job.Account, connections.UltraCart)
	if errors.Is(err, oauth.ErrNoRefreshToken) || errors.Is(err, ultracartapi.ErrInvalidGrant) {
		return a.connectionBroken(ctx, log, job, connections.StatusBroken,
			"UltraCart no longer accepts cartrelay's access to this store ("+err.Error()+")")
	}
	if err != nil {
		return ucpoll.Result{}, err
	}
	if conn.Status != "" {
		// Another stream found the connection refused; this one stops without asking UltraCart.
		return a.stopStreams(ctx, job, conn.Status, conn.Problem)
	}
	res, err := a.runStream(ctx, log, conn, job, deadline, since)
	if err != nil || res.Outcome != poll.Stopped {
		return res, err
	}
	switch res.Cursor.Status {
	case ucpoll.StatusDisabled:
		return a.connectionBroken(ctx, log, job, connections.StatusDisabled,
			"UltraCart has disabled the cartrelay application for this store (HTTP 410)")
	case ucpoll.StatusUnauthorized:
		if conn.Kind != connections.KindOAuth || conn.RefreshToken == "" {
			return a.refused(ctx, log, job, "UltraCart refused the connection's credentials (HTTP 401)")
		}
		// One renewal per 401: UltraCart may have revoked the access token early.
		renewed, rerr := rot.Renew(ctx, job.Account, connections.UltraCart, conn.AccessToken)
		if rerr != nil {
			log.Warn("token renewal after a 401 failed", slog.Any("error", rerr))
			if !errors.Is(rerr, oauth.ErrNoRefreshToken) && !errors.Is(rerr, ultracartapi.ErrInvalidGrant) {
				// UltraCart or the table failed, not the grant: the stream stays stopped as
				// unauthorized and the merchant sees why; a reconnect resumes it.
				return res, rerr
			}
			return a.connectionBroken(ctx, log, job, connections.StatusBroken,
				"UltraCart refused the access token (HTTP 401) and would not renew it ("+rerr.Error()+")")
		}
		if err := ucpoll.Resume(ctx, a.d.Store, job.Account, job.Stream); err != nil {
			return res, err
		}
		log.Info("access token renewed after a 401; polling again")
		res, err = a.runStream(ctx, log, renewed, job, deadline, since)
		if err == nil && res.Outcome == poll.Stopped && res.Cursor.Status == ucpoll.StatusUnauthorized {
			return a.refused(ctx, log, job, "UltraCart refused a freshly renewed access token (HTTP 401)")
		}
		return res, err
	}
	return res, nil
}

// refused handles credentials UltraCart refused for job's stream. Refused for orders, the
// connection is broken. Refused for another stream only, the credentials may simply lack read
// access to it (a simple key made for orders, say): that stream stops with the reason, and the
// others carry on.
func (a *App) refused(ctx context.Context, log *slog.Logger, job ucpoll.Job, problem string) (ucpoll.Result, error) {
	if job.Stream == ucpoll.Orders {
		return a.connectionBroken(ctx, log, job, connections.StatusBroken, problem)
	}
	problem += " for " + job.Stream + ", while orders may still be read: the connection probably lacks read access to " +
		job.Stream + ". Grant it in UltraCart and connect again to poll " + job.Stream + "; the other streams carry on."
	log.Warn("stream stopped: UltraCart refuses it", slog.String("problem", problem))
	if err := ucpoll.Stop(ctx, a.d.Store, job.Account, ucpoll.StatusUnauthorized, problem, job.Stream); err != nil {
		return ucpoll.Result{}, fmt.Errorf("stop the stream: %w", err)
	}
	cur, _, err := ucpoll.LoadCursor(ctx, a.d.Store, job.Account, job.Stream)
	if err != nil {
		return ucpoll.Result{}, err
	}
	return ucpoll.Result{Outcome: poll.Stopped, Cursor: cur}, nil
}

// runStream runs the engine once with conn's credentials.
func (a *App) runStream(ctx context.Context, log *slog.Logger, conn connections.Connection, job ucpoll.Job, deadline, since time.Time) (ucpoll.Result, error) {
	opts := a.d.Polling.Options
	if !since.IsZero() {
		opts.Start = since
	}
	eng, err := a.ultracartEngine(conn, opts)
	if err != nil {
		return ucpoll.Result{}, err
	}
	res, err := eng.Run(ctx, job, deadline)
	if err != nil {
		return res, err
	}
	log.Info("poll run", slog.String("outcome", res.Outcome.String()), slog.Int("requests", res.Requests),
		slog.Int("orders", res.Orders), slog.Int64("done", res.Cursor.Done), slog.Int64("estimated", res.Cursor.Estimated),
		slog.Time("next_run_at", res.NextRunAt))
	return res, nil
}

// connectionBroken records on the connection, and on every stream so that the schedule stops
// enqueueing them, that UltraCart refused it; the console shows the problem with a link to
// connect again, which clears it (see saveConnection).
func (a *App) connectionBroken(ctx context.Context, log *slog.Logger, job ucpoll.Job, status, problem string) (ucpoll.Result, error) {
	problem += ". Polling has stopped; webhooks already registered keep arriving. Connect the store again at " +
		a.publicURL("/connect") + " to resume."
	log.Warn("polling stopped: the UltraCart connection needs the merchant", slog.String("status", status),
		slog.String("problem", problem))
	if err := a.d.Polling.Connections.MarkProblem(ctx, job.Account, connections.UltraCart, status, problem); err != nil {
		return ucpoll.Result{}, fmt.Errorf("record the connection's problem: %w", err)
	}
	return a.stopStreams(ctx, job, status, problem)
}

// stopStreams stops every stream of job's account with the connection's problem.
func (a *App) stopStreams(ctx context.Context, job ucpoll.Job, status, problem string) (ucpoll.Result, error) {
	if err := ucpoll.Stop(ctx, a.d.Store, job.Account, status, problem, ucpoll.Streams()...); err != nil {
		return ucpoll.Result{}, fmt.Errorf("stop the streams: %w", err)
	}
	cur, _, err := ucpoll.LoadCursor(ctx, a.d.Store, job.Account, job.Stream)
	if err != nil {
		return ucpoll.Result{}, err
	}
	return ucpoll.Result{Outcome: poll.Stopped, Cursor: cur}, nil
}

// pollSink puts a page of polled records on the ingest queue as source events, the same way a
// webhook delivery goes there: each under the name of the webhook event that carries the same
// full record (b.Event), so ingest reads it with the webhook's code and its content dedupe
// recognises a record both sent.
func (a *App) pollSink(ctx context.Context, b ucpoll.Batch) error {
	if b.Event == "" {
		return fmt.Errorf("poll page %s of stream %s names no event", b.Delivery, b.Stream)
	}
	return a.enqueuePolled(ctx, b.Account, domain.UltraCart, b.Event, b.Delivery, b.Records)
}

func firstOr(xs []string, def string) string {
	if len(xs) > 0 {
		return xs[0]
	}
	return def
}
