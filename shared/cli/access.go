package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/console"
	"github.com/cartrelay/cartrelay/shared/onetime"
)

// Links the operator hands out: invites that let one new store connect, and console sign-in
// links (shared/onetime). Both are printed with the deployment's public address.

func cmdInvitesCreate(ctx context.Context, c *ctx2, args []string) error {
	account, args, _, err := flagValue(args, "--account")
	if err != nil {
		return err
	}
	expires, args, _, err := flagValue(args, "--expires")
	if err != nil {
		return err
	}
	base, args, _, err := flagValue(args, "--url")
	if err != nil {
		return err
	}
	if _, err := positional(args, 0, "no arguments"); err != nil {
		return err
	}
	ttl := app.InviteTTL
	if expires != "" {
		if ttl, err = parseDays(expires); err != nil {
			return usagef("--expires takes a duration such as 7d or 48h: %v", err)
		}
	}
	if base, err = c.linkBase(base); err != nil {
		return err
	}
	if account != "" {
		if err := c.requireAccount(ctx, account); err != nil {
			return err
		}
		b, err := c.env.Accounts.Binding(ctx, account)
		if err == nil {
			return fmt.Errorf("account %s is already bound to the UltraCart store %s; an invite cannot move it to another store", account, cmpOr(b.MerchantID, "(not yet named by UltraCart)"))
		}
		if !errors.Is(err, accounts.ErrNotBound) {
			return err
		}
	}
	token, tk, err := onetime.New(c.env.Store, c.io.Clock).Issue(ctx, onetime.Invite, account, ttl)
	if err != nil {
		return err
	}
	out := map[string]any{"link": base + "/connect?invite=" + url.QueryEscape(token), "expires_at": tk.ExpiresAt.Format(time.RFC3339)}
	if account != "" {
		out["account"] = account
	}
	if err := writeJSON(c.io.Out, out); err != nil {
		return err
	}
	fmt.Fprintf(c.io.Err, "Send the link to the merchant; it connects one UltraCart store%s and works until %s.\n",
		map[bool]string{true: " to account " + account, false: " as a new account"}[account != ""], tk.ExpiresAt.Format(time.RFC3339))
	return nil
}

func cmdConsoleLink(ctx context.Context, c *ctx2, args []string) error {
	base, args, _, err := flagValue(args, "--url")
	if err != nil {
		return err
	}
	pos, err := positional(args, 1, "ACCOUNT")
	if err != nil {
		return err
	}
	if base, err = c.linkBase(base); err != nil {
		return err
	}
	link, tk, err := consoleLink(ctx, c, pos[0], base)
	if err != nil {
		return err
	}
	if err := writeJSON(c.io.Out, map[string]any{"account": pos[0], "link": link, "expires_at": tk.ExpiresAt.Format(time.RFC3339)}); err != nil {
		return err
	}
	fmt.Fprintf(c.io.Err, "Open the link in a browser within %s; it signs in once.\n", app.ConsoleLinkTTL)
	return nil
}

// consoleLink makes a sign-in link to account's console under base.
func consoleLink(ctx context.Context, c *ctx2, account, base string) (string, onetime.Ticket, error) {
	token, tk, err := onetime.New(c.env.Store, c.io.Clock).Issue(ctx, onetime.ConsoleLink, account, app.ConsoleLinkTTL)
	if err != nil {
		return "", tk, err
	}
	return base + "/console/link/" + token, tk, nil
}

func cmdConsoleSignout(ctx context.Context, c *ctx2, args []string) error {
	pos, err := positional(args, 1, "ACCOUNT")
	if err != nil {
		return err
	}
	now := c.io.Clock.Now().UTC()
	if err := console.EndSessions(ctx, c.env.Store, pos[0], now); err != nil {
		return err
	}
	return writeJSON(c.io.Out, map[string]any{"account": pos[0], "sessions_ended_at": now.Format(time.RFC3339Nano)})
}

// linkBase is the public address links are made for: --url, else PUBLIC_BASE_URL, else (on
// the embedded backend) the address of the serve running over this data directory, else
// serve's default.
func (c *ctx2) linkBase(flag string) (string, error) {
	base := flag
	if base == "" {
		base = c.io.Getenv("PUBLIC_BASE_URL")
	}
	if base == "" && c.globals.Backend == "aws" {
		return "", usagef("set PUBLIC_BASE_URL to the stack's public URL (its ConnectUrl output without /connect), or pass --url")
	}
	if base == "" {
		base = "http://127.0.0.1:8080"
		abs, _ := filepath.Abs(c.globals.Data)
		if serves, err := runningServes(c.io.Getenv); err == nil {
			for _, r := range serves {
				if r.Data == abs {
					base = "http://" + dialable(r.Addr)
					break
				}
			}
		}
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usagef("the public URL must be like https://hub.example.com, got %q", base)
	}
	return strings.TrimRight(base, "/"), nil
}

// dialable turns a listening address (":8080", "0.0.0.0:8080") into one a browser can open.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// parseDays reads a Go duration, or a number of days ("7d").
func parseDays(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		days, err = strconv.Atoi(n)
		d = time.Duration(days) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err == nil && d <= 0 {
		err = fmt.Errorf("%q is not a positive duration", s)
	}
	return d, err
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
