package console

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/cartrelay/cartrelay/shared/onetime"
)

// Sign-in links. The operator makes one with `cartrelay console link ACCOUNT`: a single-use
// link to /console/link/TOKEN, valid for ten minutes (shared/onetime), that signs its holder
// in to that account, with or without an UltraCart application. Opening it shows a button; only
// posting that button's form uses the link, so a chat or mail client that fetches the link to
// preview it does not spend it. The post must come from the link's own page (its Origin), so
// another site cannot sign a visitor in to an account of its choosing.

func (c *Console) link(ctx context.Context, req Request, token string) Response {
	tickets := onetime.New(c.d.Store, c.d.Clock)
	log := c.d.Log.With(slog.String("request_id", req.RequestID))
	switch req.Method {
	case "", http.MethodGet, http.MethodHead:
		tk, err := tickets.Check(ctx, onetime.ConsoleLink, token)
		if err != nil {
			return c.linkRefused(log, err)
		}
		return page(http.StatusOK, "Sign in to cartrelay", `<p>This link signs you in to the cartrelay console of account <code>`+esc(tk.Account)+`</code>. It works once.</p>
<form method="post" action="`+esc(c.URL("link/"+token))+`"><button type="submit" style="font-size:1.1rem;padding:.5em 1.2em">Open the console</button></form>`)
	case http.MethodPost:
		if !c.sameOrigin(req) {
			log.Warn("console: sign-in link posted from another site", slog.String("origin", req.Origin))
			return page(http.StatusForbidden, "Not signed in", `<p>This sign-in was not started from its own page, so cartrelay did not sign you in. Open the link itself and press its button.</p>`)
		}
		tk, err := tickets.Use(ctx, onetime.ConsoleLink, token)
		if err != nil {
			return c.linkRefused(log, err)
		}
		log.Info("console sign-in by link", slog.String("account", tk.Account))
		return c.SignIn(ctx, tk.Account, ViaLink, req.Now)
	}
	return page(http.StatusMethodNotAllowed, "Not allowed", `<p>Open the link in a browser.</p>`)
}

func (c *Console) linkRefused(log *slog.Logger, err error) Response {
	again := `<p>Ask whoever runs this cartrelay for a new one (<code>cartrelay console link ACCOUNT</code>).</p>`
	switch {
	case errors.Is(err, onetime.ErrUsed):
		return page(http.StatusGone, "Sign-in link already used", `<p>Each sign-in link works once, and this one was used.</p>`+again)
	case errors.Is(err, onetime.ErrExpired):
		return page(http.StatusGone, "Sign-in link expired", `<p>Sign-in links work for ten minutes, and this one has expired.</p>`+again)
	case errors.Is(err, onetime.ErrUnknown):
		return page(http.StatusNotFound, "Sign-in link not valid", `<p>This is not a sign-in link this cartrelay made. Check that the whole link was copied.</p>`+again)
	}
	log.Error("console: sign-in link unreadable", slog.Any("error", err))
	return page(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not check the link just now.</p>`)
}

// sameOrigin reports whether a post came from this deployment's pages: its Origin header, when
// the browser sends one, names the public base URL's host (or, without one, the request's Host).
func (c *Console) sameOrigin(req Request) bool {
	if req.Origin == "" {
		return true
	}
	o, err := url.Parse(req.Origin)
	if err != nil || o.Host == "" {
		return false
	}
	want := req.Host
	if b, err := url.Parse(c.d.PublicBaseURL); err == nil && b.Host != "" {
		want = b.Host
	}
	return want != "" && strings.EqualFold(o.Host, want)
}
