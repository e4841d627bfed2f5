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
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/outbound"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Deps are what the console reads and writes.
type Deps struct {
	Accounts *accounts.Repo
	// Connections shows whether UltraCart is connected; nil shows it as unknown.
	Connections *connections.Repo
	// Store holds the history, the poller's cursors, the sessions' valid-after times, sign-in
	// links and the audit log.
	Store store.Store
	// Queue shows the queues' depths and holds the dead letters; nil leaves both out.
	Queue queue.Queue
	// Actions replay what failed; nil leaves the replay buttons out.
	Actions Actions
	// Erasure erases contacts at their request; nil leaves the erase button out.
	Erasure Erasure
	// Reports answers the reports and the orders page's totals; nil leaves them out.
	Reports *reports.Engine
	// Clock times sign-in links; the system clock when nil.
	Clock clock.Clock
	// CheckKey asks a source (by its registered name) whether an API key the settings set for
	// account works, before it is saved (source.Connect.Check): an error matching
	// source.ErrRefused is a refusal, any other means it could not be asked. Nil asks nobody
	// and saves no key.
	CheckKey func(ctx context.Context, account, source, key string) error
	// HTTP calls ONTRAPORT and Iterable to check keys and read Iterable's lists; a guarded
	// client with a short timeout when nil.
	HTTP *http.Client
	// PublicBaseURL prefixes links and redirects; empty keeps them relative to the host.
	PublicBaseURL string
	Log           *slog.Logger
}

// Actions are what the console asks of the rest of cartrelay (package app implements them), so
// a replay from the browser is exactly the replay of the CLI.
type Actions interface {
	// ReplayDelivery queues one failed fact for its destination again; nil error means queued
	// (or delivered since, which makes the replay a no-op).
	ReplayDelivery(ctx context.Context, account, email, dest, factID string) error
	// ReplayDestination queues every failed, undelivered fact of one destination again.
	ReplayDestination(ctx context.Context, account, dest string) (queued, failed int, err error)
	// ReplayQuarantined sends a kept-raw event to ingest again and marks it replayed.
	ReplayQuarantined(ctx context.Context, account, id string) error
	// ShowEvent reads an ingest queue message back as the source event it carries.
	ShowEvent(ctx context.Context, message string) (json.RawMessage, error)
}

// Console serves /console/* for signed-in merchants.
type Console struct {
	d        Deps
	sessions *Sessions
	assets   assets
	history  *history.Repo
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
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	if d.HTTP == nil {
		d.HTTP = outbound.Client(checkTimeout)
	}
	return &Console{d: d, sessions: s, assets: loadAssets(), history: history.New(d.Store)}, nil
}

// checkTimeout bounds a call to ONTRAPORT or Iterable made while a page waits.
const checkTimeout = 8 * time.Second

// Sessions returns the console's session signer.
func (c *Console) Sessions() *Sessions { return c.sessions }

// Request is one browser request to the console.
type Request struct {
	Method string
	// Path is the part after /console/: "" or "home", "settings", "contacts", "logout", ...
	Path         string
	Query        url.Values
	Cookies      []string
	CookieHeader string
	// Form is the posted form (nil on GET).
	Form url.Values
	// Origin and Host are the request's headers of those names, for the sign-in link's check
	// that its form was posted from its own page.
	Origin         string
	Host           string
	AcceptEncoding string
	// SourceIP is the client's address, recorded with the actions it takes.
	SourceIP  string
	RequestID string
	Now       time.Time
}

// Response is a page in the console's layout (Document), a page outside it (Body, an HTML
// fragment, with Title), a redirect (Location) or a file (File).
type Response struct {
	Status   int
	Title    string
	Body     string
	Document string
	Location string
	Cookies  []string
	File     *File
}

// File is an answer that is not a page: a stylesheet, a script, a CSV download.
type File struct {
	ContentType string
	Body        []byte
	// Gzip says Body is gzip-compressed and goes out with Content-Encoding: gzip.
	Gzip bool
	// Download is the file name a browser saves it under; empty shows it.
	Download string
	// Immutable lets a browser keep it for a year: its name changes with its content.
	Immutable bool
}

// URL is the public address of a console page.
func (c *Console) URL(path string) string {
	return strings.TrimRight(c.d.PublicBaseURL, "/") + "/console/" + path
}

// homePath is the dashboard's canonical address. The HTTP API routes /console/{proxy+},
// which does not match /console/ itself, so links and redirects use /console/home; the
// dashboard answers at /console/ as well for a front end that routes it.
const homePath = "home"

// SignIn starts a session for account id, which a sign-in (via: ViaUltraCart or ViaLink)
// resolved to, if such an account exists; a store that was never connected has nothing to show.
func (c *Console) SignIn(ctx context.Context, id, via string, now time.Time) Response {
	if _, err := c.d.Accounts.Get(ctx, id); errors.Is(err, accounts.ErrNotFound) {
		connect := strings.TrimRight(c.d.PublicBaseURL, "/") + "/connect"
		return page(http.StatusForbidden, "No account for this store", `<p>Your UltraCart store has no cartrelay account yet, so there is nothing to show. <a href="`+
			esc(connect)+`">Connect the store</a> first.</p>`)
	} else if err != nil {
		c.d.Log.Error("console sign-in: account", slog.String("account", id), slog.Any("error", err))
		return page(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not read your account just now.</p>`)
	}
	sess, err := c.sessions.IssueVia(id, via, now)
	if err != nil {
		c.d.Log.Error("console sign-in: session", slog.Any("error", err))
		return page(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not sign you in just now.</p>`)
	}
	c.d.Log.Info("console sign-in", slog.String("account", id), slog.String("via", via))
	return Response{Status: http.StatusFound, Location: c.URL(homePath), Cookies: []string{c.sessions.SetCookie(sess, now)}}
}

// route is one console page: what answers a GET and what answers a POST (nil: not allowed).
// Every POST carries the session's CSRF token, checked before its handler runs.
type route struct {
	get  func(*pageCtx) Response
	post func(*pageCtx) Response
}

func (c *Console) routes() map[string]route {
	return map[string]route{
		"":                    {get: (*pageCtx).home},
		homePath:              {get: (*pageCtx).home},
		"settings":            {get: (*pageCtx).settingsPage, post: (*pageCtx).saveSettings},
		"audit":               {get: (*pageCtx).auditPage},
		"contacts":            {get: (*pageCtx).contacts},
		"contact":             {get: (*pageCtx).contact},
		"contact/erase":       {get: (*pageCtx).eraseConfirm, post: (*pageCtx).eraseContact},
		"contact/erasure":     {get: (*pageCtx).erasureStatus},
		"orders":              {get: (*pageCtx).orders},
		"order":               {get: (*pageCtx).order},
		"deliveries":          {get: (*pageCtx).deliveries},
		"delivery":            {get: (*pageCtx).delivery},
		"delivery/replay":     {post: (*pageCtx).replayDelivery},
		"deliveries/replay":   {post: (*pageCtx).replayDestination},
		"quarantine":          {get: (*pageCtx).quarantine},
		"quarantine/event":    {get: (*pageCtx).quarantined},
		"quarantine/replay":   {post: (*pageCtx).replayQuarantined},
		"quarantine/discard":  {post: (*pageCtx).discardQuarantined},
		"dead-letters":        {get: (*pageCtx).deadLetters},
		"dead-letter":         {get: (*pageCtx).deadLetter},
		"dead-letter/replay":  {post: (*pageCtx).replayDeadLetter},
		"dead-letter/discard": {post: (*pageCtx).discardDeadLetter},
		"reports":             {get: (*pageCtx).reportsHome},
		"report":              {get: (*pageCtx).report},
		"report.csv":          {get: (*pageCtx).reportCSV},
		"report/drill":        {get: (*pageCtx).reportDrill},
		"reports/save":        {post: (*pageCtx).saveReport},
		"reports/delete":      {post: (*pageCtx).deleteReport},
	}
}

// Serve answers a console request other than /console/login, which package app handles.
func (c *Console) Serve(ctx context.Context, req Request) Response {
	if req.Path == "logout" {
		return c.logout(ctx, req)
	}
	if token, ok := strings.CutPrefix(req.Path, "link/"); ok {
		return c.link(ctx, req, token)
	}
	if name, ok := strings.CutPrefix(req.Path, "assets/"); ok {
		return c.serveAsset(req, name)
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
		if !isGet(req.Method) {
			return page(http.StatusForbidden, "Signed out", `<p>Your console session has ended, so nothing was changed. <a href="`+
				esc(c.URL("login"))+`">Sign in again</a>.</p>`)
		}
		return Response{Status: http.StatusFound, Location: c.URL("login")}
	}
	if req.Query == nil {
		req.Query = url.Values{}
	}
	p := &pageCtx{ctx: ctx, c: c, sess: sess, req: req,
		log: c.d.Log.With(slog.String("account", sess.Account), slog.String("request_id", req.RequestID))}
	rt, ok := c.routes()[req.Path]
	if !ok {
		return p.notFound("There is no console page here.")
	}
	switch {
	case isGet(req.Method) && rt.get != nil:
		return rt.get(p)
	case req.Method == http.MethodPost && rt.post != nil:
		if !c.sessions.CheckCSRF(sess, req.Form.Get("csrf")) {
			p.log.Warn("console: post without a valid CSRF token", slog.String("path", req.Path))
			return p.page(http.StatusForbidden, "", "Form expired", `<p>This form did not come from your console session, so nothing was changed. Go back, reload the page and try again.</p>`)
		}
		return rt.post(p)
	case rt.get != nil:
		return p.page(http.StatusMethodNotAllowed, "", "Not allowed", `<p>This page is only read.</p>`)
	}
	return p.page(http.StatusMethodNotAllowed, "", "Not allowed", `<p>This address takes the form on its page; open the page and use its button.</p>`)
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
