package ucsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/oauth"
	"github.com/cartrelay/cartrelay/shared/poll"
	"github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

// run is the registration's poll run; its Detail is the ucpoll.Result.
func run(ctx context.Context, p source.Ports, job source.Job, deadline time.Time) (source.Result, error) {
	res, err := Run(ctx, p, ucpoll.Job{Account: job.Account, Stream: job.Stream}, deadline, job.Since)
	return source.Result{Outcome: res.Outcome, Done: res.Cursor.Done, Estimated: res.Cursor.Estimated,
		Status: res.Cursor.Status, LastError: res.Cursor.LastError, NextRunAt: res.NextRunAt, Detail: res}, err
}

// Run walks one job with the account's UltraCart connection until deadline, and returns where
// it got. since, when set, is where a stream that has no cursor yet starts (the backfill's
// start date).
//
// UltraCart refusing the connection stops polling and tells the merchant, on the connection
// and on every stream, until they connect again: a 410 (the app was disabled), a refresh token
// it no longer accepts, or a 401 that one renewal of the access token did not cure.
func Run(ctx context.Context, p source.Ports, job ucpoll.Job, deadline, since time.Time) (ucpoll.Result, error) {
	if p.Connections == nil {
		return ucpoll.Result{}, errors.New("polling is not configured in this runtime")
	}
	r := runner{p: p, job: job, log: p.Log.With(slog.String("account", job.Account), slog.String("stream", job.Stream))}
	// An OAuth connection's access token is renewed shortly before it expires, under the
	// connection's version check, so concurrent pollers never both rotate it.
	rot := &oauth.Rotator{Connections: p.Connections, Store: p.Store, Clock: p.Clock, Refresh: p.Refresh[domain.UltraCart]}
	conn, err := rot.Token(ctx, job.Account, connections.UltraCart)
	if errors.Is(err, oauth.ErrNoRefreshToken) || errors.Is(err, ultracartapi.ErrInvalidGrant) {
		return r.connectionBroken(ctx, connections.StatusBroken,
			"UltraCart no longer accepts cartrelay's access to this store ("+err.Error()+")")
	}
	if err != nil {
		return ucpoll.Result{}, err
	}
	if conn.Status != "" {
		// Another stream found the connection refused; this one stops without asking UltraCart.
		return r.stopStreams(ctx, conn.Status, conn.Problem)
	}
	res, err := r.runStream(ctx, conn, deadline, since)
	if err != nil || res.Outcome != poll.Stopped {
		return res, err
	}
	switch res.Cursor.Status {
	case ucpoll.StatusDisabled:
		return r.connectionBroken(ctx, connections.StatusDisabled,
			"UltraCart has disabled the cartrelay application for this store (HTTP 410)")
	case ucpoll.StatusUnauthorized:
		if conn.Kind != connections.KindOAuth || conn.RefreshToken == "" {
			return r.refused(ctx, "UltraCart refused the connection's credentials (HTTP 401)")
		}
		// One renewal per 401: UltraCart may have revoked the access token early.
		renewed, rerr := rot.Renew(ctx, job.Account, connections.UltraCart, conn.AccessToken)
		if rerr != nil {
			r.log.Warn("token renewal after a 401 failed", slog.Any("error", rerr))
			if !errors.Is(rerr, oauth.ErrNoRefreshToken) && !errors.Is(rerr, ultracartapi.ErrInvalidGrant) {
				// UltraCart or the table failed, not the grant: the stream stays stopped as
				// unauthorized and the merchant sees why; a reconnect resumes it.
				return res, rerr
			}
			return r.connectionBroken(ctx, connections.StatusBroken,
				"UltraCart refused the access token (HTTP 401) and would not renew it ("+rerr.Error()+")")
		}
		if err := ucpoll.Resume(ctx, p.Store, job.Account, job.Stream); err != nil {
			return res, err
		}
		r.log.Info("access token renewed after a 401; polling again")
		res, err = r.runStream(ctx, renewed, deadline, since)
		if err == nil && res.Outcome == poll.Stopped && res.Cursor.Status == ucpoll.StatusUnauthorized {
			return r.refused(ctx, "UltraCart refused a freshly renewed access token (HTTP 401)")
		}
		return res, err
	}
	return res, nil
}

// Engine is a poll engine over conn's credentials: its OAuth access token, or else its simple
// key. Its pages go to p.Sink, each under the name of the webhook event that carries the same
// full record, so ingest reads it with the webhook's code and its content dedupe recognises a
// record both sent.
func Engine(p source.Ports, conn connections.Connection, opts ucpoll.Options) (*ucpoll.Engine, error) {
	creds := ultracartapi.Credentials{BearerToken: conn.AccessToken}
	if creds.BearerToken == "" {
		creds.SimpleKey = conn.SimpleKey
	}
	sink := func(ctx context.Context, b ucpoll.Batch) error {
		if b.Event == "" {
			return fmt.Errorf("poll page %s of stream %s names no event", b.Delivery, b.Stream)
		}
		return p.Sink(ctx, b.Account, domain.UltraCart, b.Event, b.Delivery, b.Records)
	}
	return ucpoll.New(ucpoll.Deps{Deps: poll.Deps{Store: p.Store, Clock: p.Clock, Log: p.Log, Sleep: p.Sleep},
		Source: ultracartapi.New(conn.BaseURL, creds, p.HTTP), Sink: sink}, opts)
}

// Options are the UltraCart walk's options from p (the defaults when p has none).
func Options(p source.Ports) ucpoll.Options {
	o, _ := p.Tuning[domain.UltraCart].(ucpoll.Options)
	return o
}

type runner struct {
	p   source.Ports
	job ucpoll.Job
	log *slog.Logger
}

// refused handles credentials UltraCart refused for the job's stream. Refused for orders, the
// connection is broken. Refused for another stream only, the credentials may simply lack read
// access to it (a simple key made for orders, say): that stream stops with the reason, and the
// others carry on.
func (r runner) refused(ctx context.Context, problem string) (ucpoll.Result, error) {
	job := r.job
	if job.Stream == ucpoll.Orders {
		return r.connectionBroken(ctx, connections.StatusBroken, problem)
	}
	problem += " for " + job.Stream + ", while orders may still be read: the connection probably lacks read access to " +
		job.Stream + ". Grant it in UltraCart and connect again to poll " + job.Stream + "; the other streams carry on."
	r.log.Warn("stream stopped: UltraCart refuses it", slog.String("problem", problem))
	if err := ucpoll.Stop(ctx, r.p.Store, job.Account, ucpoll.StatusUnauthorized, problem, job.Stream); err != nil {
		return ucpoll.Result{}, fmt.Errorf("stop the stream: %w", err)
	}
	cur, _, err := ucpoll.LoadCursor(ctx, r.p.Store, job.Account, job.Stream)
	if err != nil {
		return ucpoll.Result{}, err
	}
	return ucpoll.Result{Outcome: poll.Stopped, Cursor: cur}, nil
}

// runStream runs the engine once with conn's credentials.
func (r runner) runStream(ctx context.Context, conn connections.Connection, deadline, since time.Time) (ucpoll.Result, error) {
	opts := Options(r.p)
	if !since.IsZero() {
		opts.Start = since
	}
	eng, err := Engine(r.p, conn, opts)
	if err != nil {
		return ucpoll.Result{}, err
	}
	res, err := eng.Run(ctx, r.job, deadline)
	if err != nil {
		return res, err
	}
	r.log.Info("poll run", slog.String("outcome", res.Outcome.String()), slog.Int("requests", res.Requests),
		slog.Int("orders", res.Orders), slog.Int64("done", res.Cursor.Done), slog.Int64("estimated", res.Cursor.Estimated),
		slog.Time("next_run_at", res.NextRunAt))
	return res, nil
}

// connectionBroken records on the connection, and on every stream so that the schedule stops
// enqueueing them, that UltraCart refused it; the console shows the problem with a link to
// connect again, which clears it.
func (r runner) connectionBroken(ctx context.Context, status, problem string) (ucpoll.Result, error) {
	problem += ". Polling has stopped; webhooks already registered keep arriving. " + r.p.ConnectAgain
	r.log.Warn("polling stopped: the UltraCart connection needs the merchant", slog.String("status", status),
		slog.String("problem", problem))
	if err := r.p.Connections.MarkProblem(ctx, r.job.Account, connections.UltraCart, status, problem); err != nil {
		return ucpoll.Result{}, fmt.Errorf("record the connection's problem: %w", err)
	}
	return r.stopStreams(ctx, status, problem)
}

// stopStreams stops every stream of the job's account with the connection's problem.
func (r runner) stopStreams(ctx context.Context, status, problem string) (ucpoll.Result, error) {
	if err := ucpoll.Stop(ctx, r.p.Store, r.job.Account, status, problem, ucpoll.Streams()...); err != nil {
		return ucpoll.Result{}, fmt.Errorf("stop the streams: %w", err)
	}
	cur, _, err := ucpoll.LoadCursor(ctx, r.p.Store, r.job.Account, r.job.Stream)
	if err != nil {
		return ucpoll.Result{}, err
	}
	return ucpoll.Result{Outcome: poll.Stopped, Cursor: cur}, nil
}
