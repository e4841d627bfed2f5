package app

import (
	"context"
	"errors"

	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucsource"
)

// CheckUltraCart asks UltraCart whether conn's credentials may read the store's orders, with
// one cheap request under the account's lease and request budget (ucpoll.Engine.Check), so a
// key is known good before it is saved.
func (a *App) CheckUltraCart(ctx context.Context, conn connections.Connection) error {
	if a.ports == nil {
		return errors.New("polling is not configured in this runtime")
	}
	eng, err := ucsource.Engine(*a.ports, conn, a.d.Polling.Options)
	if err != nil {
		return err
	}
	return eng.Check(ctx, conn.Account)
}
