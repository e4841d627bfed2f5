package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/outbound"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

func cmdConnectionsPut(ctx context.Context, c *ctx2, args []string) error {
	noCheck, args := flagBool(args, "--no-check")
	key, args, found, err := flagValue(args, "--simple-key")
	if err != nil {
		return err
	}
	base, args, _, err := flagValue(args, "--base-url")
	if err != nil {
		return err
	}
	pos, err := positional(args, 2, "ACCOUNT ultracart")
	if err != nil {
		return err
	}
	if pos[1] != connections.UltraCart {
		return usagef("only ultracart connections can be put with a key; got %q", pos[1])
	}
	if !found || key == "" {
		return usagef("connections put needs --simple-key KEY (an UltraCart simple API key with read access to orders, auto orders, customers, items and affiliates)")
	}
	if base != "" {
		if err := outbound.CheckBaseURL(base); err != nil {
			return usagef("--base-url %v", err)
		}
	}
	// The old credentials are replaced, never read.
	conn, err := c.env.Connections.Peek(ctx, pos[0], connections.UltraCart)
	if errors.Is(err, connections.ErrNotFound) {
		conn, err = connections.Connection{Account: pos[0], Provider: connections.UltraCart}, nil
	}
	if err != nil {
		return err
	}
	// A new key replaces whatever was there (OAuth tokens included) and answers a refused
	// connection: its problem is cleared and stopped streams resume where they were.
	conn.ClearCredentials()
	conn.Kind, conn.SimpleKey, conn.BaseURL = connections.KindSimpleKey, key, base
	conn.Status, conn.Problem, conn.ProblemAt = "", "", time.Time{}
	if !noCheck {
		if err := c.env.App.CheckConnection(ctx, conn); err != nil {
			return keyRefused(conn, err)
		}
	}
	if conn, err = c.env.Connections.Put(ctx, conn); err != nil {
		return err
	}
	if err := ucpoll.Resume(ctx, c.env.Store, conn.Account, ucpoll.Streams()...); err != nil {
		return err
	}
	return writeJSON(c.io.Out, map[string]any{"account": conn.Account, "provider": conn.Provider, "kind": conn.Kind,
		"base_url": conn.BaseURL, "connected_at": conn.ConnectedAt, "simple_key": "[set]"})
}

// keyRefused explains why a key was not saved, and what to do about it.
func keyRefused(conn connections.Connection, err error) error {
	where := "UltraCart"
	if conn.BaseURL != "" {
		where = conn.BaseURL
	}
	var te *ultracartapi.TransportError
	var rl *ultracartapi.RateLimitedError
	switch {
	case errors.Is(err, ultracartapi.ErrUnauthorized):
		return fmt.Errorf("UltraCart refused the key (%w). Nothing was saved. Check the key in UltraCart "+
			"(Configuration → Development → API Keys) and that it may read orders, auto orders, customers, items and affiliates", err)
	case errors.Is(err, ultracartapi.ErrAppDisabled):
		return fmt.Errorf("UltraCart has disabled the application behind this key (%w). Nothing was saved; enable it in UltraCart or make a new key", err)
	case errors.As(err, &te):
		return fmt.Errorf("could not reach %s to check the key (%w). Nothing was saved; check --base-url and the network, "+
			"or save the key unchecked with --no-check", where, err)
	case errors.As(err, &rl), errors.Is(err, ucpoll.ErrNoBudget):
		return fmt.Errorf("could not check the key now (%w). Nothing was saved; try again in a minute, or save it unchecked with --no-check", err)
	}
	return fmt.Errorf("UltraCart did not accept the check of the key (%w). Nothing was saved; save it unchecked with --no-check if UltraCart is at fault", err)
}
