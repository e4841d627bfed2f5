package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"

	"github.com/schollz/progressbar/v3"

	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/outbound"
	"github.com/cartrelay/cartrelay/shared/poller"
	"github.com/cartrelay/cartrelay/shared/thrivecart/tcpoll"
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
		return usagef("connections put needs --simple-key KEY (an UltraCart simple API key with read access to orders, auto orders, customers and items)")
	}
	if base != "" {
		if err := outbound.CheckBaseURL(base); err != nil {
			return usagef("--base-url %v", err)
		}
	}
	if _, err := c.env.Accounts.Get(ctx, pos[0]); err != nil {
		return err
	}
	conn, err := c.env.Connections.Get(ctx, pos[0], connections.UltraCart)
	if errors.Is(err, connections.ErrNotFound) {
		conn, err = connections.Connection{Account: pos[0], Provider: connections.UltraCart}, nil
	}
	if err != nil {
		return err
	}
	// A new key replaces whatever was there (OAuth tokens included) and answers a refused
	// connection: its problem is cleared and stopped streams resume where they were.
	conn.Kind, conn.SimpleKey, conn.BaseURL = connections.KindSimpleKey, key, base
	conn.AccessToken, conn.RefreshToken, conn.ExpiresAt = "", "", time.Time{}
	conn.Status, conn.Problem, conn.ProblemAt = "", "", time.Time{}
	if conn, err = c.env.Connections.Put(ctx, conn); err != nil {
		return err
	}
	if err := poller.Resume(ctx, c.env.Store, conn.Account, poller.Streams()...); err != nil {
		return err
	}
	return writeJSON(c.io.Out, map[string]any{"account": conn.Account, "provider": conn.Provider, "kind": conn.Kind,
		"base_url": conn.BaseURL, "connected_at": conn.ConnectedAt, "simple_key": "[set]"})
}

func cmdBackfill(ctx context.Context, c *ctx2, args []string) error {
	status, args := flagBool(args, "--status")
	sinceArg, args, hasSince, err := flagValue(args, "--since")
	if err != nil {
		return err
	}
	pos, err := positional(args, 1, "ACCOUNT")
	if err != nil {
		return err
	}
	account := pos[0]
	if status {
		return printCursors(ctx, c, account)
	}
	var since time.Time
	if hasSince {
		if since, err = ParseSince(sinceArg); err != nil {
			return err
		}
		fmt.Fprintf(c.io.Err, "--since bounds the orders and refunds walked; auto orders, customers and items are read in full, since one unchanged for years is as current as one changed today\n")
	}
	acct, err := c.env.Accounts.Get(ctx, account)
	if err != nil {
		return err
	}
	hasThriveCart := acct.ThriveCart.APIKey.Reveal() != ""
	// A stream that stops (a key without access to customers, say) does not keep the others
	// from catching up; its error is reported with the rest at the end.
	var errs []error
	for _, stream := range poller.Streams() {
		err := c.backfillStream(ctx, account, stream, since)
		if err == nil {
			continue
		}
		if errors.Is(err, errNoConnection) && hasThriveCart {
			fmt.Fprintf(c.io.Err, "%v; backfilling ThriveCart only\n", err)
			break
		}
		if ctx.Err() != nil || errors.Is(err, errNoConnection) {
			return err
		}
		errs = append(errs, err)
	}
	if hasThriveCart {
		if err := c.backfillThriveCart(ctx, account); err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
		}
	}
	if err := printCursors(ctx, c, account); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// backfillThriveCart walks the account's ThriveCart transactions to the present, with a
// progress bar, or follows the process that holds the walk's lease.
func (c *ctx2) backfillThriveCart(ctx context.Context, account string) error {
	progress := c.progress(account+" thrivecart "+tcpoll.Stream, "transactions")
	defer fmt.Fprintln(c.io.Err)
	show := func(cur tcpoll.Cursor) { progress(cur.Done, cur.Estimated) }
	for {
		res, err := c.env.App.ThriveCartPollRun(ctx, account, c.io.Clock.Now().Add(5*time.Minute))
		if err != nil {
			return err
		}
		show(res.Cursor)
		switch res.Outcome {
		case tcpoll.CaughtUp:
			return nil
		case tcpoll.Later:
			return fmt.Errorf("%s thrivecart: paused until %s to stay within ThriveCart's request limit (%s); it resumes on its own",
				account, res.NextRunAt.UTC().Format(time.RFC3339), res.Cursor.LastError)
		case tcpoll.Stopped:
			msg := tcpoll.StatusMessage(res.Cursor.Status)
			if msg == "" {
				msg = res.Cursor.LastError
			}
			return fmt.Errorf("%s thrivecart: stopped (%s): %s", account, res.Cursor.Status, msg)
		case tcpoll.Busy:
			cur, _, err := tcpoll.LoadCursor(ctx, c.env.Store, account)
			if err != nil {
				return err
			}
			show(cur)
			if done, err := followed(ctx, cur.CaughtUp); done || err != nil {
				return err
			}
		}
	}
}

// progress starts a progress bar on stderr and returns the function that moves it: done of an
// estimated total, which a walk revises as it learns more (unknown while 0).
func (c *ctx2) progress(desc, unit string) func(done, estimated int64) {
	bar := progressbar.NewOptions64(-1, progressbar.OptionSetWriter(c.io.Err),
		progressbar.OptionSetDescription(desc), progressbar.OptionShowCount(),
		progressbar.OptionSetItsString(unit), progressbar.OptionShowIts(), progressbar.OptionThrottle(200*time.Millisecond))
	return func(done, estimated int64) {
		if estimated > 0 && bar.GetMax64() != max(estimated, done) {
			bar.ChangeMax64(max(estimated, done))
		}
		_ = bar.Set64(done)
	}
}

// followed is one step of following a walk another process runs: done once it caught up,
// otherwise it waits a second before the next look.
func followed(ctx context.Context, caughtUp bool) (done bool, err error) {
	if caughtUp {
		return true, nil
	}
	return false, clock.Sleep(ctx, time.Second)
}

// errNoConnection marks a backfill of an account that has no UltraCart connection.
var errNoConnection = errors.New("no UltraCart connection")

// progressUnit names what a stream's progress bar counts.
func progressUnit(stream string) string {
	switch stream {
	case poller.Orders, poller.Refunds:
		return "orders"
	case poller.AutoOrders:
		return "auto orders"
	}
	return stream
}

// backfillStream walks one stream to the present in this process, with a progress bar. When
// another process (serve, or the poll function) holds the stream's lease, it follows that one's
// progress instead.
func (c *ctx2) backfillStream(ctx context.Context, account, stream string, since time.Time) error {
	progress := c.progress(account+" "+stream, progressUnit(stream))
	defer fmt.Fprintln(c.io.Err)
	show := func(cur poller.Cursor) { progress(cur.Done, cur.Estimated) }
	for {
		// Each run is bounded like a poll function's, so the cursor is saved and progress shows.
		res, err := c.env.App.PollRun(ctx, poller.Job{Account: account, Stream: stream}, c.io.Clock.Now().Add(5*time.Minute), since)
		if errors.Is(err, connections.ErrNotFound) {
			return fmt.Errorf("account %s has %w; add one with 'cartrelay connections put %s ultracart --simple-key KEY'", account, errNoConnection, account)
		}
		if err != nil {
			return err
		}
		switch res.Outcome {
		case poller.Continue:
			show(res.Cursor)
		case poller.CaughtUp:
			show(res.Cursor)
			return nil
		case poller.Later:
			show(res.Cursor)
			return fmt.Errorf("%s %s: paused until %s to stay within UltraCart's request limits (%s); it resumes on its own, or run backfill again then",
				account, stream, res.NextRunAt.UTC().Format(time.RFC3339), res.Cursor.LastError)
		case poller.Stopped:
			if res.Cursor.Status == poller.StatusUnauthorized && stream != poller.Orders {
				return fmt.Errorf("%s %s: stopped (%s): %s; a key that reads orders may still lack read access to %s",
					account, stream, res.Cursor.Status, res.Cursor.LastError, progressUnit(stream))
			}
			return fmt.Errorf("%s %s: stopped (%s): %s", account, stream, res.Cursor.Status, res.Cursor.LastError)
		case poller.Busy:
			cur, _, err := poller.LoadCursor(ctx, c.env.Store, account, stream)
			if err != nil {
				return err
			}
			show(cur)
			if done, err := followed(ctx, cur.CaughtUp); done || err != nil {
				return err
			}
		}
	}
}

// printCursors prints every stream's cursor: UltraCart's, then ThriveCart's.
func printCursors(ctx context.Context, c *ctx2, account string) error {
	var out []any
	for _, stream := range poller.Streams() {
		cur, _, err := poller.LoadCursor(ctx, c.env.Store, account, stream)
		if err != nil {
			return err
		}
		out = append(out, cur)
	}
	// ThriveCart's, once its walk has run (every account gets one; without a key it only
	// says so).
	cur, found, err := tcpoll.LoadCursor(ctx, c.env.Store, account)
	if err != nil {
		return err
	}
	if found {
		out = append(out, cur)
	}
	return writeJSON(c.io.Out, out)
}
