// Package console is the merchant console: a signed-in merchant sees and edits one account,
// the one its UltraCart sign-in resolved to.
//
// Sign-in itself runs through the UltraCart OAuth flow in package app, which calls SignIn once
// UltraCart has said which store the browser speaks for. From then on a signed session cookie
// (see Sessions) decides the account on every request; no request parameter can name another.
// Every form posts a CSRF token derived from the session.
package console

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/poller"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/thrivecart/tcpoll"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartapi"
)

// Deps are what the console reads and writes.
type Deps struct {
	Accounts *accounts.Repo
	// Connections shows whether UltraCart is connected; nil shows it as unknown.
	Connections *connections.Repo
	// Store holds the poller's cursors, the sessions' valid-after times and sign-in links.
	Store store.Store
	// Clock times sign-in links; the system clock when nil.
	Clock      clock.Clock
	ThriveCart thrivecartapi.Client
	// PublicBaseURL prefixes links and redirects; empty keeps them relative to the host.
	PublicBaseURL string
	Log           *slog.Logger
}

// Console serves /console/* for signed-in merchants.
type Console struct {
	d        Deps
	sessions *Sessions
}

// New returns the console; a session key shorter than MinKeyBytes is a *KeyError, and then
// the console must stay off.
func New(d Deps, sessionKey string) (*Console, error) {
	s, err := NewSessions(sessionKey, d.PublicBaseURL)
	if err != nil {
		return nil, err
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Console{d: d, sessions: s}, nil
}

// Sessions returns the console's session signer.
func (c *Console) Sessions() *Sessions { return c.sessions }

// Request is one browser request to the console.
type Request struct {
	Method string
	// Path is the part after /console/: "" or "home", "settings", "logout".
	Path         string
	Cookies      []string
	CookieHeader string
	// Form is the posted form (nil on GET).
	Form url.Values
	// Origin and Host are the request's headers of those names, for the sign-in link's check
	// that its form was posted from its own page.
	Origin    string
	Host      string
	RequestID string
	Now       time.Time
}

// Response is a page (Body, an HTML fragment, with Title) or a redirect (Location).
type Response struct {
	Status   int
	Title    string
	Body     string
	Location string
	Cookies  []string
}

// URL is the public address of a console page.
func (c *Console) URL(path string) string {
	return strings.TrimRight(c.d.PublicBaseURL, "/") + "/console/" + path
}

// homePath is the dashboard's canonical address. The HTTP API routes /console/{proxy+},
// which does not match /console/ itself, so links and redirects use /console/home; the
// dashboard answers at /console/ as well for a front end that routes it.
const homePath = "home"

// SignIn starts a session for account id, which UltraCart's sign-in resolved to, if such an
// account exists; a store that was never connected has nothing to show.
func (c *Console) SignIn(ctx context.Context, id string, now time.Time) Response {
	if _, err := c.d.Accounts.Get(ctx, id); errors.Is(err, accounts.ErrNotFound) {
		connect := strings.TrimRight(c.d.PublicBaseURL, "/") + "/connect"
		return page(http.StatusForbidden, "No account for this store", `<p>Your UltraCart store has no cartrelay account yet, so there is nothing to show. <a href="`+
			esc(connect)+`">Connect the store</a> first.</p>`)
	} else if err != nil {
		c.d.Log.Error("console sign-in: account", slog.String("account", id), slog.Any("error", err))
		return page(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not read your account just now.</p>`)
	}
	sess, err := c.sessions.Issue(id, now)
	if err != nil {
		c.d.Log.Error("console sign-in: session", slog.Any("error", err))
		return page(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not sign you in just now.</p>`)
	}
	c.d.Log.Info("console sign-in", slog.String("account", id))
	return Response{Status: http.StatusFound, Location: c.URL(homePath), Cookies: []string{c.sessions.SetCookie(sess, now)}}
}

// Serve answers a console request other than /console/login, which package app handles.
func (c *Console) Serve(ctx context.Context, req Request) Response {
	if req.Path == "logout" {
		return c.logout(ctx, req)
	}
	if token, ok := strings.CutPrefix(req.Path, "link/"); ok {
		return c.link(ctx, req, token)
	}
	sess, err := c.sessions.FromRequest(req.Cookies, req.CookieHeader, req.Now)
	if err == nil {
		var current bool
		if current, err = c.current(ctx, sess); err != nil {
			c.d.Log.Error("console: sessions unreadable", slog.String("account", sess.Account), slog.Any("error", err))
			return page(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not check your session just now.</p>`)
		}
		if !current {
			err = ErrNoSession
		}
	}
	if err != nil {
		if req.Method != "" && req.Method != http.MethodGet && req.Method != http.MethodHead {
			return page(http.StatusForbidden, "Signed out", `<p>Your console session has ended, so nothing was changed. <a href="`+
				esc(c.URL("login"))+`">Sign in again</a>.</p>`)
		}
		return Response{Status: http.StatusFound, Location: c.URL("login")}
	}
	log := c.d.Log.With(slog.String("account", sess.Account), slog.String("request_id", req.RequestID))
	switch req.Path {
	case "", homePath:
		if !isGet(req.Method) {
			return page(http.StatusMethodNotAllowed, "Not allowed", `<p>This page is only read.</p>`)
		}
		return c.dashboard(ctx, log, sess)
	case "settings":
		if isGet(req.Method) {
			return c.settings(ctx, log, sess, http.StatusOK, nil, settingsState{})
		}
		if req.Method == http.MethodPost {
			return c.saveSettings(ctx, log, sess, req.Form, req.Now)
		}
		return page(http.StatusMethodNotAllowed, "Not allowed", `<p>Open or submit the settings form.</p>`)
	}
	return page(http.StatusNotFound, "Not found", `<p>There is no console page here.</p>`)
}

// logout removes the session cookie. With the page's CSRF token it also ends every session of
// the account (a copied cookie stops working too); without it, a forged sign-out from another
// site costs the merchant one sign-in and ends nothing else.
func (c *Console) logout(ctx context.Context, req Request) Response {
	if req.Method != http.MethodPost {
		return page(http.StatusMethodNotAllowed, "Not allowed", `<p>Sign out with the button on the console.</p>`)
	}
	sess, err := c.sessions.FromRequest(req.Cookies, req.CookieHeader, req.Now)
	if err == nil && c.sessions.CheckCSRF(sess, req.Form.Get("csrf")) {
		if err := EndSessions(ctx, c.d.Store, sess.Account, req.Now); err != nil {
			c.d.Log.Error("console: sessions not ended", slog.String("account", sess.Account), slog.Any("error", err))
			return page(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not sign you out just now; you are still signed in. <a href="`+
				esc(c.URL(homePath))+`">Back to the console</a>.</p>`)
		}
		c.d.Log.Info("console sign-out", slog.String("account", sess.Account))
	}
	r := page(http.StatusOK, "Signed out", `<p>You are signed out of the cartrelay console.</p><p><a href="`+esc(c.URL("login"))+`">Sign in again</a>.</p>`)
	r.Cookies = []string{c.sessions.ClearCookie()}
	return r
}

func isGet(m string) bool { return m == "" || m == http.MethodGet || m == http.MethodHead }

func page(status int, title, body string) Response {
	return Response{Status: status, Title: title, Body: body}
}

// streamView is one poller stream's progress on the dashboard.
type streamView struct {
	Name        string
	Started     bool
	Done        int64
	Estimated   int64
	CaughtUp    bool
	Status      string
	LastError   string
	LastErrorAt string
}

type dashboardView struct {
	Account           string
	UltraCartWebhook  string
	ThriveCartWebhook string
	// Connected is "connected", "not connected", "unknown", or the connection's problem status
	// ("broken", "disabled") with Problem saying why since ProblemAt.
	Connected string
	Problem   string
	ProblemAt string
	Streams   []streamView
	// ThriveCart is the ThriveCart transactions walk.
	ThriveCart  streamView
	SettingsURL string
	LogoutURL   string
	ConnectURL  string
	// Unbound is true for an account no UltraCart store is bound to (one the operator made):
	// /connect would make a new account, so the page does not offer it.
	Unbound bool
	// CSRF goes with the sign-out form.
	CSRF string
}

func (c *Console) dashboard(ctx context.Context, log *slog.Logger, sess Session) Response {
	base := strings.TrimRight(c.d.PublicBaseURL, "/")
	v := dashboardView{Account: sess.Account, Connected: "unknown",
		UltraCartWebhook:  base + "/webhooks/ultracart/" + sess.Account,
		ThriveCartWebhook: base + "/webhooks/thrivecart/" + sess.Account,
		SettingsURL:       c.URL("settings"), LogoutURL: c.URL("logout"), ConnectURL: base + "/connect", CSRF: c.sessions.CSRFToken(sess)}
	if c.d.Connections != nil {
		conn, err := c.d.Connections.Get(ctx, sess.Account, connections.UltraCart)
		switch {
		case err == nil && conn.Status != "":
			v.Connected, v.Problem = conn.Status, conn.Problem
			if !conn.ProblemAt.IsZero() {
				v.ProblemAt = conn.ProblemAt.UTC().Format(time.RFC3339)
			}
		case err == nil:
			v.Connected = "connected"
		case errors.Is(err, connections.ErrNotFound):
			v.Connected = "not connected"
		default:
			log.Warn("console: connection unreadable", slog.Any("error", err))
		}
	}
	if _, err := c.d.Accounts.Binding(ctx, sess.Account); errors.Is(err, accounts.ErrNotBound) {
		v.Unbound = true
	} else if err != nil {
		log.Warn("console: binding unreadable", slog.Any("error", err))
	}
	for _, stream := range poller.Streams() {
		sv := streamView{Name: stream}
		cur, found, err := poller.LoadCursor(ctx, c.d.Store, sess.Account, stream)
		if err != nil {
			log.Warn("console: cursor unreadable", slog.String("stream", stream), slog.Any("error", err))
			sv.LastError = "progress could not be read"
		} else if found {
			sv.Started, sv.Done, sv.Estimated, sv.CaughtUp = true, cur.Done, cur.Estimated, cur.CaughtUp
			sv.Status, sv.LastError = cur.Status, cur.LastError
			if !cur.LastErrorAt.IsZero() {
				sv.LastErrorAt = cur.LastErrorAt.UTC().Format(time.RFC3339)
			}
		}
		v.Streams = append(v.Streams, sv)
	}
	v.ThriveCart = streamView{Name: tcpoll.Stream}
	if cur, found, err := tcpoll.LoadCursor(ctx, c.d.Store, sess.Account); err != nil {
		log.Warn("console: thrivecart cursor unreadable", slog.Any("error", err))
		v.ThriveCart.LastError = "progress could not be read"
	} else if found {
		v.ThriveCart = streamView{Name: tcpoll.Stream, Started: cur.Status != tcpoll.StatusNoKey || cur.Done > 0, Done: cur.Done,
			Estimated: cur.Estimated, CaughtUp: cur.CaughtUp, Status: cur.Status, LastError: cur.LastError}
		if msg := tcpoll.StatusMessage(cur.Status); msg != "" {
			v.ThriveCart.LastError = msg
		}
		if !cur.LastErrorAt.IsZero() {
			v.ThriveCart.LastErrorAt = cur.LastErrorAt.UTC().Format(time.RFC3339)
		}
	}
	return page(http.StatusOK, "Your cartrelay account", renderDashboard(v))
}

// settingsState is the outcome of a post, shown above the form.
type settingsState struct {
	Saved    bool
	Problems []string
}

type settingsView struct {
	Account      string
	Sections     []sectionView
	CSRF         string
	Action       string
	DashboardURL string
	LogoutURL    string
	settingsState
}

func (c *Console) settings(ctx context.Context, log *slog.Logger, sess Session, status int, form url.Values, st settingsState) Response {
	a, err := c.d.Accounts.Get(ctx, sess.Account)
	if err != nil {
		log.Error("console: account unreadable", slog.Any("error", err))
		return page(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not read your account just now.</p>`)
	}
	v := settingsView{Account: sess.Account, Sections: views(a, form), CSRF: c.sessions.CSRFToken(sess),
		Action: c.URL("settings"), DashboardURL: c.URL(homePath), LogoutURL: c.URL("logout"), settingsState: st}
	return page(status, "Settings", renderSettings(v))
}

func (c *Console) saveSettings(ctx context.Context, log *slog.Logger, sess Session, form url.Values, now time.Time) Response {
	if !c.sessions.CheckCSRF(sess, form.Get("csrf")) {
		log.Warn("console: settings post without a valid CSRF token")
		return page(http.StatusForbidden, "Form expired", `<p>This form did not come from your console session, so nothing was changed. <a href="`+
			esc(c.URL("settings"))+`">Open the settings again</a>.</p>`)
	}
	sub, err := parseForm(form)
	if err != nil {
		log.Error("console: settings form", slog.Any("error", err))
		return page(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not read the form.</p>`)
	}
	if sub.NewThriveCartKey != "" {
		if _, err := c.d.ThriveCart.Ping(ctx, sub.NewThriveCartKey); err != nil {
			msg := "ThriveCart could not be reached to check the API key, so nothing was saved; try again shortly."
			if errors.Is(err, thrivecartapi.ErrKeyRefused) {
				msg = "thrivecart.api_key: " + err.Error() + ". Nothing was saved."
			}
			log.Info("console: thrivecart key not accepted", slog.Any("error", err))
			return c.settings(ctx, log, sess, http.StatusUnprocessableEntity, form, settingsState{Problems: []string{msg}})
		}
	}
	before, err := c.d.Accounts.Get(ctx, sess.Account)
	if err != nil {
		log.Error("console: account unreadable", slog.Any("error", err))
		return page(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not read your account just now; nothing was changed.</p>`)
	}
	after, err := c.d.Accounts.Put(ctx, sess.Account, sub.Patch)
	var inv *accounts.InvalidError
	switch {
	case errors.As(err, &inv):
		var problems []string
		for _, p := range inv.Problems {
			problems = append(problems, p.Message)
		}
		log.Info("console: settings refused", slog.Int("problems", len(problems)))
		return c.settings(ctx, log, sess, http.StatusUnprocessableEntity, form, settingsState{Problems: problems})
	case err != nil:
		log.Error("console: settings not saved", slog.Any("error", err))
		return c.settings(ctx, log, sess, http.StatusInternalServerError, form,
			settingsState{Problems: []string{"cartrelay could not save the settings just now; nothing was changed."}})
	}
	if sub.NewThriveCartKey != "" {
		// A stream stopped for a refused or missing key starts again with the checked one.
		if err := tcpoll.Resume(ctx, c.d.Store, sess.Account); err != nil {
			log.Warn("console: thrivecart polling not resumed; it resumes within the hour", slog.Any("error", err))
		}
	}
	var cookies []string
	if accounts.SecretsDiffer(before, after) {
		// New keys end every other session (one that saw the old keys may belong to whoever
		// they were changed against); this browser gets a new one.
		if err := EndSessions(ctx, c.d.Store, sess.Account, now); err != nil {
			log.Error("console: sessions not ended after a key change", slog.Any("error", err))
		} else if fresh, err := c.sessions.Issue(sess.Account, now); err != nil {
			log.Error("console: session not renewed", slog.Any("error", err))
		} else {
			sess, cookies = fresh, []string{c.sessions.SetCookie(fresh, now)}
			log.Info("console: keys changed; other sessions ended")
		}
	}
	log.Info("console: settings saved")
	r := c.settings(ctx, log, sess, http.StatusOK, nil, settingsState{Saved: true})
	r.Cookies = append(r.Cookies, cookies...)
	return r
}
