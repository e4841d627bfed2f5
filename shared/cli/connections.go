package cli

import (
	"context"
	"net/url"

	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/poller"
)

func cmdConnectionsPut(ctx context.Context, c *ctx2, args []string) error {
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
		return usagef("connections put needs --simple-key KEY (an UltraCart simple API key with order read access)")
	}
	if base != "" {
		if u, err := url.Parse(base); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return usagef("--base-url must be an absolute http(s) URL, got %q", base)
		}
	}
	if _, err := c.env.Accounts.Get(ctx, pos[0]); err != nil {
		return err
	}
	conn, err := c.env.Connections.Put(ctx, connections.Connection{Account: pos[0], Provider: connections.UltraCart,
		Kind: connections.KindSimpleKey, SimpleKey: key, BaseURL: base})
	if err != nil {
		return err
	}
	return writeJSON(c.io.Out, map[string]any{"account": conn.Account, "provider": conn.Provider, "kind": conn.Kind,
		"base_url": conn.BaseURL, "connected_at": conn.ConnectedAt, "simple_key": "[set]"})
}

func cmdBackfill(ctx context.Context, c *ctx2, args []string) error {
	status, args := flagBool(args, "--status")
	pos, err := positional(args, 1, "ACCOUNT")
	if err != nil {
		return err
	}
	if !status {
		return usagef("backfill runs on its own once an account is connected ('cartrelay connections put'); use --status to follow it")
	}
	var out []poller.Cursor
	for _, stream := range poller.Streams() {
		cur, _, err := poller.LoadCursor(ctx, c.env.Store, pos[0], stream)
		if err != nil {
			return err
		}
		out = append(out, cur)
	}
	return writeJSON(c.io.Out, out)
}
