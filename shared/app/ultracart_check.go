package app

import (
	"context"
	"errors"

	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/poll"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

// CheckUltraCart asks UltraCart whether conn's credentials may read the store's orders, with
// one cheap request under the account's lease and request budget (ucpoll.Engine.Check), so a
// key is known good before it is saved.
func (a *App) CheckUltraCart(ctx context.Context, conn connections.Connection) error {
	eng, err := a.ultracartEngine(conn, a.d.Polling.Options)
	if err != nil {
		return err
	}
	return eng.Check(ctx, conn.Account)
}

// ultracartEngine is a poll engine over conn's credentials: its OAuth access token, or else its
// simple key. It logs through the runtime's logger; the engine names the account and stream.
func (a *App) ultracartEngine(conn connections.Connection, opts ucpoll.Options) (*ucpoll.Engine, error) {
	p := a.d.Polling
	if p == nil {
		return nil, errors.New("polling is not configured in this runtime")
	}
	creds := ultracartapi.Credentials{BearerToken: conn.AccessToken}
	if creds.BearerToken == "" {
		creds.SimpleKey = conn.SimpleKey
	}
	return ucpoll.New(ucpoll.Deps{Deps: poll.Deps{Store: a.d.Store, Clock: a.d.Clock, Log: a.d.Log, Sleep: p.Sleep},
		Source: ultracartapi.New(conn.BaseURL, creds, p.HTTP), Sink: a.pollSink}, opts)
}
