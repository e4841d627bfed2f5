package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/sources"
)

// CheckConnection asks the source conn is for (its Provider, a registered source's name)
// whether conn's credentials work, before they are saved (source.Connect.Check): one cheap
// request, under the source's request budget where it has one. An error matching
// source.ErrRefused means the source refused them; a name that is not registered is an error
// wrapping sources.ErrUnknown.
func (a *App) CheckConnection(ctx context.Context, conn connections.Connection) error {
	reg, err := sources.LookupConnecting(conn.Provider)
	if err != nil {
		return err
	}
	if reg.Connect.Check == nil {
		return fmt.Errorf("%s credentials cannot be checked before they are saved", reg.Label)
	}
	if a.ports == nil {
		return errors.New("source APIs are not reachable in this runtime (polling is not configured)")
	}
	return reg.Connect.Check(ctx, *a.ports, conn)
}

// checkKey is CheckConnection for an API key the console's settings set for source.
func (a *App) checkKey(ctx context.Context, account, source, key string) error {
	return a.CheckConnection(ctx, connections.Connection{Account: account, Provider: source, Kind: connections.KindSimpleKey, SimpleKey: key})
}
