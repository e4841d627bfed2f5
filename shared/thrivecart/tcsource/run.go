package tcsource

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/poll"
	"github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/thrivecart"
	"github.com/cartrelay/cartrelay/shared/thrivecart/tcpoll"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartapi"
)

// run is the registration's poll run; its Detail is the tcpoll.Result.
func run(ctx context.Context, p source.Ports, job source.Job, deadline time.Time) (source.Result, error) {
	res, err := Run(ctx, p, job.Account, deadline)
	return source.Result{Outcome: res.Outcome, Done: res.Cursor.Done, Estimated: res.Cursor.Estimated,
		Status: res.Cursor.Status, LastError: res.Cursor.LastError, NextRunAt: res.NextRunAt, Detail: res}, err
}

// Run walks account's ThriveCart transactions with its API key until deadline. Each page goes
// to p.Sink as "transaction" source events, which ingest maps without counting again what a
// webhook counted.
func Run(ctx context.Context, p source.Ports, account string, deadline time.Time) (tcpoll.Result, error) {
	api := client(p)
	key := func(ctx context.Context, account string) (string, error) {
		acct, err := p.Accounts.Get(ctx, account, accounts.ThriveCartAPIKey)
		if errors.Is(err, accounts.ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		return acct.ThriveCart.APIKey.Reveal(), nil
	}
	sink := func(ctx context.Context, b tcpoll.Batch) error {
		return p.Sink(ctx, b.Account, domain.ThriveCart, thrivecart.EventTransaction, b.Delivery, b.Records)
	}
	opts, _ := p.Tuning[domain.ThriveCart].(tcpoll.Options)
	// The engine names the account and source on its own lines.
	eng, err := tcpoll.New(tcpoll.Deps{Deps: poll.Deps{Store: p.Store, Clock: p.Clock, Log: p.Log, Sleep: p.Sleep},
		Source: api, Key: key, Sink: sink}, opts)
	if err != nil {
		return tcpoll.Result{}, err
	}
	res, err := eng.Run(ctx, tcpoll.Job{Account: account}, deadline)
	if err != nil {
		return res, err
	}
	level := slog.LevelInfo
	if res.Outcome == poll.Stopped && res.Cursor.Status != tcpoll.StatusNoKey {
		level = slog.LevelWarn
	}
	p.Log.With(slog.String("account", account), slog.String("source", tcpoll.Source)).Log(ctx, level, "poll run",
		slog.String("outcome", res.Outcome.String()), slog.Int("requests", res.Requests),
		slog.Int("records", res.Records), slog.Int64("done", res.Cursor.Done), slog.String("status", res.Cursor.Status),
		slog.Time("next_run_at", res.NextRunAt))
	return res, nil
}

// client is ThriveCart's API over p's HTTP client and ThriveCart base URL.
func client(p source.Ports) thrivecartapi.Client {
	api := thrivecartapi.Client{BaseURL: p.APIBase[domain.ThriveCart], HTTP: p.HTTP}
	if api.BaseURL == "" {
		api.BaseURL = thrivecartapi.DefaultBaseURL
	}
	return api
}

// check asks ThriveCart whether conn's API key (its SimpleKey) works, with GET /ping, before the
// key is saved in the account's settings. A refused key is source.ErrRefused, its text
// ThriveCart's answer, shown to the merchant as is.
func check(ctx context.Context, p source.Ports, conn connections.Connection) error {
	_, err := client(p).Ping(ctx, conn.SimpleKey)
	if errors.Is(err, thrivecartapi.ErrKeyRefused) {
		return source.Refused(err)
	}
	return err
}
