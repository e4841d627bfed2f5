package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/poll"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/thrivecart"
	"github.com/cartrelay/cartrelay/shared/thrivecart/tcpoll"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartapi"
)

// pollJob is a poll-queue message. Source is the registered source (shared/sources) whose
// poller runs it; a job without one is UltraCart's, as every job was before ThriveCart was
// polled.
type pollJob struct {
	Account string `json:"account"`
	Source  string `json:"source,omitempty"`
	Stream  string `json:"stream"`
}

func pollMessage(j pollJob) queue.Message {
	body, _ := json.Marshal(j)
	source := j.Source
	if source == "" {
		source = string(domain.UltraCart)
	}
	return queue.Message{Body: string(body), Attributes: map[string]string{"account": j.Account, "source": source}}
}

// ThriveCartPollRun walks account's ThriveCart transactions with its API key until deadline.
// The poll consumer and `cartrelay backfill` both run it.
func (a *App) ThriveCartPollRun(ctx context.Context, account string, deadline time.Time) (tcpoll.Result, error) {
	p := a.d.Polling
	if p == nil {
		return tcpoll.Result{}, errors.New("polling is not configured in this runtime")
	}
	log := a.d.Log.With(slog.String("account", account), slog.String("source", tcpoll.Source))
	// The engine names the account and source on its own lines.
	eng, err := tcpoll.New(tcpoll.Deps{Deps: poll.Deps{Store: a.d.Store, Clock: a.d.Clock, Log: a.d.Log, Sleep: p.Sleep},
		Source: a.thriveCartAPI(), Key: a.thriveCartKey, Sink: a.thriveCartSink}, p.ThriveCart)
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
	log.Log(ctx, level, "poll run", slog.String("outcome", res.Outcome.String()), slog.Int("requests", res.Requests),
		slog.Int("records", res.Records), slog.Int64("done", res.Cursor.Done), slog.String("status", res.Cursor.Status),
		slog.Time("next_run_at", res.NextRunAt))
	return res, nil
}

func (a *App) thriveCartAPI() thrivecartapi.Client {
	base := a.d.Config.ThriveCartBaseURL
	if base == "" {
		base = thrivecartapi.DefaultBaseURL
	}
	c := thrivecartapi.Client{BaseURL: base}
	if a.d.Polling != nil && a.d.Polling.HTTP != nil {
		c.HTTP = a.d.Polling.HTTP
	}
	return c
}

func (a *App) thriveCartKey(ctx context.Context, account string) (string, error) {
	acct, err := a.d.Accounts.Get(ctx, account, accounts.ThriveCartAPIKey)
	if errors.Is(err, accounts.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return acct.ThriveCart.APIKey.Reveal(), nil
}

// thriveCartSink puts a page of transactions on the ingest queue, each a "transaction" source
// event that ingest maps without counting again what a webhook counted.
func (a *App) thriveCartSink(ctx context.Context, b tcpoll.Batch) error {
	return a.enqueuePolled(ctx, b.Account, domain.ThriveCart, thrivecart.EventTransaction, b.Delivery, b.Records)
}

// enqueuePolled puts polled records on the ingest queue as source events of one delivery, the
// way a webhook delivery goes there.
func (a *App) enqueuePolled(ctx context.Context, account string, source domain.Source, event, delivery string, records []json.RawMessage) error {
	now := a.d.Clock.Now()
	msgs := make([]queue.Message, 0, len(records))
	for i, rec := range records {
		e := SourceEvent{Account: account, Source: source, Name: event, Payload: rec,
			ReceivedAt: now, Delivery: delivery, Index: i, Via: "poll"}
		body, err := EncodeSourceEvent(ctx, a.d.Store, now, e)
		if err != nil {
			return err
		}
		msgs = append(msgs, queue.Message{ID: fmt.Sprintf("e%d", i), Body: body,
			Attributes: map[string]string{"account": account, "source": string(source), "event": event}})
	}
	return a.d.Queue.Send(ctx, queue.Ingest, msgs)
}
