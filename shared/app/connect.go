package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/console"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/oauth"
	"github.com/cartrelay/cartrelay/shared/onetime"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/reviews"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartapi"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucsource"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

// Connect serves the merchant's browser: /connect, /oauth/*, /console/* and /review/*.
func (a *App) Connect(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	resp, err := a.connect(ctx, req)
	// Pages may quote what UltraCart or ThriveCart answered; none may show a secret. (A base64
	// body is a static file of the console's own.)
	if !resp.IsBase64Encoded {
		resp.Body = a.d.Known.String(resp.Body)
	}
	return secured(req, resp), err
}

func (a *App) connect(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	path := req.RawPath
	if path == "" {
		path = req.RequestContext.HTTP.Path
	}
	switch {
	case path == "/connect" || path == "/connect/":
		return a.connectPage(ctx, req), nil
	case path == ultracartStartPath:
		return a.ultracartStart(ctx, req), nil
	case path == ultracartCallbackPath:
		return a.ultracartCallback(ctx, req), nil
	case strings.HasPrefix(path, "/review/"):
		return a.review(ctx, req, strings.TrimPrefix(path, "/review/")), nil
	case path == "/console":
		return redirect(a.publicURL("/console/home")), nil
	case strings.HasPrefix(path, "/console/"):
		return a.consoleRoute(ctx, req, strings.TrimPrefix(path, "/console/")), nil
	case strings.HasPrefix(path, "/oauth/"):
		return htmlPage(http.StatusNotFound, "Not available", `<p>This page is not available in this version of cartrelay.</p>`), nil
	}
	return htmlPage(http.StatusNotFound, "Not found", `<p>There is no page here.</p>`), nil
}

// review answers GET /review/{token}: a genuine, unexpired review link redirects to the
// merchant's review page for its product, marked as a verified purchase (shared/reviews); any
// other gets a page saying what is wrong, and the log says why.
func (a *App) review(ctx context.Context, req events.APIGatewayV2HTTPRequest, token string) events.APIGatewayV2HTTPResponse {
	if m := req.RequestContext.HTTP.Method; m != "" && m != http.MethodGet && m != http.MethodHead {
		return htmlPage(http.StatusMethodNotAllowed, "Not allowed", `<p>Review links are opened, not posted to.</p>`)
	}
	ch := reviews.Checker{Accounts: a.d.Accounts, Keys: a.d.Keys, LinkTTL: func(acct accounts.Account) time.Duration {
		// An unparsable setting leaves the default, as delivery does.
		s, _ := iterable.ParseSettings(acct)
		return s.ReviewLinkTTL
	}, Template: iterable.ReviewURLTemplate}
	p := ch.Handle(ctx, a.d.Clock.Now(), token)
	log := a.d.Log.With(slog.String("account", p.Account), slog.String("request_id", req.RequestContext.RequestID))
	if p.Location != "" {
		log.Info("review link followed")
		// no-referrer keeps the token out of the review site's logs.
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusFound,
			Headers: map[string]string{"location": p.Location, "cache-control": "no-store", "referrer-policy": "no-referrer"}}
	}
	log.Info("review link refused", slog.Int("status", p.Status), slog.String("reason", p.Reason))
	return htmlPage(p.Status, p.Title, p.Body)
}

func htmlPage(status int, title, body string) events.APIGatewayV2HTTPResponse {
	const head = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>`
	page := head + title + ` · cartrelay</title><style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}code{background:#f3f3f3;padding:0 .2em}</style></head><body><h1>` +
		title + `</h1>` + body + `</body></html>`
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Body: page,
		Headers: map[string]string{"content-type": "text/html; charset=utf-8", "x-content-type-options": "nosniff", "cache-control": "no-store"}}
}

// The UltraCart OAuth connect flow.
//
// GET /oauth/ultracart/start stores a single-use state (shared/oauth) bound to a nonce in an
// HttpOnly, SameSite=Lax cookie scoped to /oauth/, and redirects to UltraCart's authorize URL.
// GET /oauth/ultracart/callback checks and consumes the state against the cookie, trades the
// code for tokens, finds the account bound to the store or binds the store to a new one
// (storebind.go), stores the tokens sealed in the account's connection record, and registers
// (or, on reconnect, updates) the account's UltraCart webhook. The schedule function polls every
// connection, so the backfill starts on its own.

// The paths are the ones UltraCart's source registration names (ucsource.Registration).
const (
	ultracartStartPath    = ucsource.StartPath
	ultracartCallbackPath = ucsource.CallbackPath
)

// oauthReady reports whether the OAuth connect flow can run in this runtime.
func (a *App) oauthReady() bool {
	c := a.d.Config
	return c.UltraCartClientID != "" && c.PublicBaseURL != "" && a.d.Polling != nil && a.d.Polling.Connections != nil
}

func (a *App) publicURL(path string) string {
	return strings.TrimRight(a.d.Config.PublicBaseURL, "/") + path
}

func (a *App) ultracartOAuth() ultracartapi.OAuth {
	c := a.d.Config
	return ultracartapi.OAuth{BaseURL: c.UltraCartBaseURL, ClientID: c.UltraCartClientID,
		ClientSecret: c.UltraCartClientSecret, Auth: c.UltraCartClientAuth, HTTP: a.sourceHTTP()}
}

func (a *App) sourceHTTP() *http.Client {
	if a.d.Polling != nil {
		return a.d.Polling.HTTP
	}
	return nil
}

func (a *App) connectPage(ctx context.Context, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	if !a.oauthReady() {
		return htmlPage(http.StatusOK, "Connect your store",
			`<p>cartrelay is running. Webhooks are accepted at <code>/webhooks/ultracart/ACCOUNT</code> and <code>/webhooks/thrivecart/ACCOUNT</code>.</p>
<p>Connecting UltraCart by OAuth needs <code>ULTRACART_CLIENT_ID</code>, <code>ULTRACART_CLIENT_SECRET</code> and <code>PUBLIC_BASE_URL</code>; until they are set, configure the account with <code>cartrelay accounts put</code>.</p>`)
	}
	invite := req.QueryStringParameters["invite"]
	hidden, intro := "", ""
	if invite != "" {
		tk, err := a.tickets().Check(ctx, onetime.Invite, invite)
		if err != nil {
			return a.invitePage(err, tk)
		}
		hidden = `<input type="hidden" name="invite" value="` + html.EscapeString(invite) + `">`
		if tk.Account != "" {
			intro = `<p>You are invited to connect your store to the cartrelay account <code>` + html.EscapeString(tk.Account) + `</code>.</p>`
		}
	}
	button := `<form method="get" action="` + html.EscapeString(a.publicURL(ultracartStartPath)) + `">` + hidden +
		`<button type="submit" style="font-size:1.1rem;padding:.5em 1.2em">Connect UltraCart</button></form>`
	if invite == "" && a.d.Config.ConnectRequiresInvite {
		return a.inviteNeeded(`<p>A store that is already connected can connect again without one, to renew its connection:</p>` + button)
	}
	return htmlPage(http.StatusOK, "Connect your store", intro+
		`<p>Connect your UltraCart store to cartrelay. You will sign in to UltraCart and approve read access to orders, auto orders, customers, items and affiliates, and the management of one webhook.</p>`+
		button+`
<p>Afterwards cartrelay registers a webhook for new events and starts loading your order history in the background.</p>`)
}

func getOnly(req events.APIGatewayV2HTTPRequest) bool {
	m := req.RequestContext.HTTP.Method
	return m == "" || m == http.MethodGet || m == http.MethodHead
}

func (a *App) ultracartStart(ctx context.Context, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	if !getOnly(req) {
		return htmlPage(http.StatusMethodNotAllowed, "Not allowed", `<p>Open this page with a link.</p>`)
	}
	if !a.oauthReady() {
		return htmlPage(http.StatusNotFound, "Not available", `<p>Connecting UltraCart by OAuth is not configured on this cartrelay.</p>`)
	}
	fl := oauth.Flow{Purpose: oauth.PurposeConnect}
	if invite := req.QueryStringParameters["invite"]; invite != "" {
		tk, err := a.tickets().Check(ctx, onetime.Invite, invite)
		if err != nil {
			return a.invitePage(err, tk)
		}
		fl.Invite = onetime.Ref(invite)
	}
	if resp, ok := a.startThrottled(ctx, req); !ok {
		return resp
	}
	p, err := oauth.NewStates(a.d.Store, a.d.Clock).BeginFlow(ctx, connections.UltraCart, fl)
	if err != nil {
		a.d.Log.Error("oauth start", slog.Any("error", err), slog.String("request_id", req.RequestContext.RequestID))
		return htmlPage(http.StatusInternalServerError, "Please try again",
			`<p>cartrelay could not start the connection just now. <a href="`+html.EscapeString(a.publicURL("/connect"))+`">Try again</a>.</p>`)
	}
	loc := a.ultracartOAuth().AuthorizeURL(a.publicURL(ultracartCallbackPath), p.State)
	return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusFound,
		Headers: map[string]string{"location": loc, "cache-control": "no-store", "referrer-policy": "no-referrer"},
		Cookies: []string{oauth.CookieSettingsFor(a.d.Config.PublicBaseURL).SetCookie(p.Nonce)}}
}

func (a *App) ultracartCallback(ctx context.Context, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	log := a.d.Log.With(slog.String("request_id", req.RequestContext.RequestID), slog.String("flow", "ultracart_oauth"))
	resp := a.callback(ctx, log, req)
	// The flow is over whatever happened; a retry starts afresh with a new state and cookie.
	resp.Cookies = append(resp.Cookies, oauth.CookieSettingsFor(a.d.Config.PublicBaseURL).ClearCookie())
	resp.Headers["referrer-policy"] = "no-referrer"
	return resp
}

func (a *App) callback(ctx context.Context, log *slog.Logger, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	if !getOnly(req) {
		return htmlPage(http.StatusMethodNotAllowed, "Not allowed", `<p>UltraCart sends you back here with a link.</p>`)
	}
	if !a.oauthReady() {
		return htmlPage(http.StatusNotFound, "Not available", `<p>Connecting UltraCart by OAuth is not configured on this cartrelay.</p>`)
	}
	again := `<p><a href="` + html.EscapeString(a.publicURL("/connect")) + `">Start again</a>.</p>`
	q := req.QueryStringParameters
	nonce := oauth.NonceFrom(req.Cookies, header(req, "cookie"))
	fl, err := oauth.NewStates(a.d.Store, a.d.Clock).ConsumeFlow(ctx, connections.UltraCart, q["state"], nonce)
	switch {
	case errors.Is(err, oauth.ErrNoCookie):
		log.Warn("oauth callback without the state cookie")
		return htmlPage(http.StatusBadRequest, "Sign-in cookie missing",
			`<p>Your browser did not send the cookie that cartrelay set when the connection started. Finish the connection in the same browser that started it, with cookies allowed for this site.</p>`+again)
	case errors.Is(err, oauth.ErrNonceMismatch):
		log.Warn("oauth callback with another browser's state")
		return htmlPage(http.StatusBadRequest, "Started in another window",
			`<p>This answer from UltraCart belongs to a connection started elsewhere, not in this browser, so cartrelay ignored it. Nothing was changed.</p>`+again)
	case errors.Is(err, oauth.ErrUnknownState):
		log.Warn("oauth callback with an unknown, expired or used state")
		return htmlPage(http.StatusBadRequest, "This link has expired",
			`<p>This sign-in link is unknown, expired (a connection must be finished within 10 minutes) or was already used. Nothing was changed.</p>`+again)
	case err != nil:
		log.Error("oauth state", slog.Any("error", err))
		return htmlPage(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not check this sign-in just now.</p>`+again)
	}
	if fl.Purpose == oauth.PurposeConsole {
		again = `<p><a href="` + html.EscapeString(a.publicURL("/console/login")) + `">Sign in again</a>.</p>`
	}
	if e := q["error"]; e != "" {
		log.Info("oauth refused at UltraCart", slog.String("error", e))
		if e == "access_denied" {
			return htmlPage(http.StatusForbidden, "Access not granted",
				`<p>UltraCart reports that access was not approved, so your store was not connected and nothing was changed.</p>`+again)
		}
		return htmlPage(http.StatusBadRequest, "UltraCart did not connect",
			`<p>UltraCart answered: <code>`+html.EscapeString(e)+`</code> `+html.EscapeString(q["error_description"])+`. Nothing was changed.</p>`+again)
	}
	if q["code"] == "" {
		log.Warn("oauth callback without a code")
		return htmlPage(http.StatusBadRequest, "UltraCart did not connect", `<p>UltraCart sent no authorization code. Nothing was changed.</p>`+again)
	}
	tok, err := a.ultracartOAuth().Exchange(ctx, q["code"], a.publicURL(ultracartCallbackPath))
	a.d.Known.Add(tok.AccessToken, tok.RefreshToken)
	if err != nil {
		log.Warn("oauth token exchange failed", slog.Any("error", err))
		why := ""
		if errors.Is(err, ultracartapi.ErrInvalidGrant) {
			// UltraCart's approval code works once, for a few minutes: a page left open too
			// long, or a callback opened twice, ends here.
			why = `<p>UltraCart's approval is good for a few minutes and for one use only, so it has probably expired. Start again and approve without a long pause.</p>`
		}
		return htmlPage(http.StatusBadGateway, "UltraCart refused the connection",
			`<p>UltraCart did not hand over access: <code>`+html.EscapeString(tokenErrorText(err))+`</code>. Nothing was changed.</p>`+why+again)
	}
	if fl.Purpose == oauth.PurposeConsole {
		return a.consoleSignedIn(ctx, log, tok, again)
	}
	return a.connected(ctx, log, tok, fl, again)
}

func tokenErrorText(err error) string {
	var te *ultracartapi.TokenError
	if errors.As(err, &te) {
		return strings.Trim(te.Code+": "+te.Description, ": ")
	}
	return err.Error()
}

// ensureAccount returns account id, bound to the store that is connecting, completing it with
// fresh webhook credentials when it has none. Existing credentials are kept, so a reconnect does
// not break deliveries already in flight.
func (a *App) ensureAccount(ctx context.Context, id string) (accounts.Account, error) {
	// The password is registered with the store's webhook.
	acct, err := a.d.Accounts.Get(ctx, id, accounts.UltraCartWebhookPassword)
	if err != nil && !errors.Is(err, accounts.ErrNotFound) {
		return acct, err
	}
	if err == nil && acct.UltraCart.WebhookUsername != "" && acct.UltraCart.WebhookPassword.IsSet() {
		return acct, nil
	}
	user, pass, err := newWebhookCredentials()
	if err != nil {
		return acct, err
	}
	patch, err := json.Marshal(map[string]any{"ultracart": map[string]string{"webhook_username": user, "webhook_password": pass}})
	if err != nil {
		return acct, err
	}
	return a.d.Accounts.PutForStore(ctx, id, patch)
}

// saveConnection stores the tokens, replacing any earlier credentials (a simple key included),
// under the record's version guard; a concurrent writer makes it re-read and try again.
func (a *App) saveConnection(ctx context.Context, id string, tok ultracartapi.Token) error {
	conns := a.d.Polling.Connections
	var err error
	for range 3 {
		var c connections.Connection
		// The old credentials are replaced, never opened.
		c, err = conns.Peek(ctx, id, connections.UltraCart)
		if errors.Is(err, connections.ErrNotFound) {
			c, err = connections.Connection{Account: id, Provider: connections.UltraCart}, nil
		}
		if err != nil {
			return err
		}
		c.ClearCredentials()
		c.Kind = connections.KindOAuth
		c.BaseURL = a.d.Config.UltraCartBaseURL
		c.AccessToken, c.RefreshToken, c.SimpleKey = tok.AccessToken, tok.RefreshToken, ""
		c.ExpiresAt = time.Time{}
		if tok.ExpiresIn > 0 {
			c.ExpiresAt = a.d.Clock.Now().Add(tok.ExpiresIn)
		}
		// Connecting again is how the merchant answers a refused or disabled connection.
		c.Status, c.Problem, c.ProblemAt = "", "", time.Time{}
		if _, err = conns.Put(ctx, c); !errors.Is(err, connections.ErrConflict) {
			break
		}
	}
	if err != nil {
		return err
	}
	// Streams stopped by the old credentials carry on from where they were.
	return ucpoll.Resume(ctx, a.d.Store, id, ucpoll.Streams()...)
}

// The merchant console (shared/console).
//
// GET /console/login begins the same UltraCart OAuth flow as /connect with the state's
// purpose set to console, so one registered redirect URI serves both. The callback then only
// identifies the store: it signs the browser in to the account bound to that store, if there
// is one, and stores nothing (a sign-in must not create accounts, touch the connection or
// re-register webhooks). Every other /console/ page is console.Serve's.

func redirect(loc string) events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusFound,
		Headers: map[string]string{"location": loc, "cache-control": "no-store"}}
}

// console builds the console over this runtime; it fails when the session key is unusable.
func (a *App) console() (*console.Console, error) {
	var conns *connections.Repo
	if a.d.Polling != nil {
		conns = a.d.Polling.Connections
	}
	base := a.d.Config.ThriveCartBaseURL
	if base == "" {
		base = thrivecartapi.DefaultBaseURL
	}
	return console.New(console.Deps{Accounts: a.d.Accounts, Connections: conns, Store: a.d.Store, Queue: a.d.Queue,
		Actions: consoleActions{a}, Erasure: a.eraser, Reports: &reports.Engine{Store: a.d.Store, Accounts: a.d.Accounts, Clock: a.d.Clock},
		Clock: a.d.Clock, ThriveCart: thrivecartapi.Client{BaseURL: base}, PublicBaseURL: a.d.Config.PublicBaseURL, Log: a.d.Log},
		a.d.Config.ConsoleSessionKey)
}

func consoleOff(err error) events.APIGatewayV2HTTPResponse {
	return htmlPage(http.StatusServiceUnavailable, "Console not configured",
		`<p>The merchant console is off on this cartrelay: `+html.EscapeString(err.Error())+`.</p>
<p>Set <code>CONSOLE_SESSION_KEY</code> to at least 32 random characters (for example the output of <code>openssl rand -hex 32</code>) and restart. It signs the console's sign-in cookies, so keep it secret; changing it signs everyone out.</p>`)
}

func (a *App) consoleRoute(ctx context.Context, req events.APIGatewayV2HTTPRequest, sub string) events.APIGatewayV2HTTPResponse {
	c, err := a.console()
	if err != nil {
		return consoleOff(err)
	}
	if sub == "login" {
		return a.consoleLogin(ctx, req)
	}
	host := header(req, "host")
	if host == "" {
		host = req.RequestContext.DomainName
	}
	creq := console.Request{Method: req.RequestContext.HTTP.Method, Path: sub, Query: queryOf(req), Cookies: req.Cookies,
		CookieHeader: header(req, "cookie"), Origin: header(req, "origin"), Host: host, AcceptEncoding: header(req, "accept-encoding"),
		SourceIP: req.RequestContext.HTTP.SourceIP, RequestID: req.RequestContext.RequestID, Now: a.d.Clock.Now()}
	if creq.Method == http.MethodPost {
		form, err := formBody(req)
		if err != nil {
			return htmlPage(http.StatusBadRequest, "Bad form", `<p>The form could not be read.</p>`)
		}
		creq.Form = form
	}
	return consoleResponse(c.Serve(ctx, creq))
}

// queryOf is a request's query: the raw string when the front end passes it (API Gateway and
// serve do), which keeps repeated keys apart, else API Gateway's joined map.
func queryOf(req events.APIGatewayV2HTTPRequest) url.Values {
	if req.RawQueryString != "" {
		if v, err := url.ParseQuery(req.RawQueryString); err == nil {
			return v
		}
	}
	v := url.Values{}
	for k, x := range req.QueryStringParameters {
		v.Set(k, x)
	}
	return v
}

// formBody reads a posted form, which API Gateway may hand over base64-encoded.
func formBody(req events.APIGatewayV2HTTPRequest) (url.Values, error) {
	body := req.Body
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return nil, fmt.Errorf("form body: %w", err)
		}
		body = string(b)
	}
	if len(body) > 64<<10 {
		return nil, errors.New("form body too large")
	}
	return url.ParseQuery(body)
}

// consoleCSP keeps the console's pages to what the console itself serves: its stylesheet, its
// chart script and Apache ECharts from /console/assets, and nothing from any other site.
// ECharts styles the elements it draws through the DOM, which style-src does not govern.
const consoleCSP = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

func consoleResponse(r console.Response) events.APIGatewayV2HTTPResponse {
	var resp events.APIGatewayV2HTTPResponse
	switch {
	case r.Location != "":
		resp = redirect(r.Location)
	case r.File != nil:
		resp = fileResponse(r.Status, r.File)
	case r.Document != "":
		resp = events.APIGatewayV2HTTPResponse{StatusCode: r.Status, Body: r.Document,
			Headers: map[string]string{"content-type": "text/html; charset=utf-8", "x-content-type-options": "nosniff", "cache-control": "no-store",
				"x-frame-options": "DENY", "content-security-policy": consoleCSP}}
	default:
		resp = htmlPage(r.Status, html.EscapeString(r.Title), r.Body)
		// The console shows account settings: no framing by other sites.
		resp.Headers["x-frame-options"] = "DENY"
		resp.Headers["content-security-policy"] = "frame-ancestors 'none'"
	}
	// Not no-referrer: under it browsers send "Origin: null" with the console's own form
	// posts, and the sign-in link checks that origin. Other sites still get no Referer.
	resp.Headers["referrer-policy"] = "same-origin"
	resp.Cookies = append(resp.Cookies, r.Cookies...)
	return resp
}

// fileResponse is a file of the console: a static asset (cached for a year: its name changes
// with its content) or a download. Anything that is not plain text travels base64-encoded, as
// API Gateway requires.
func fileResponse(status int, f *console.File) events.APIGatewayV2HTTPResponse {
	resp := events.APIGatewayV2HTTPResponse{StatusCode: status,
		Headers: map[string]string{"content-type": f.ContentType, "x-content-type-options": "nosniff", "cache-control": "no-store"}}
	if f.Immutable {
		resp.Headers["cache-control"] = "public, max-age=31536000, immutable"
	}
	if f.Download != "" {
		resp.Headers["content-disposition"] = `attachment; filename="` + strings.ReplaceAll(f.Download, `"`, "") + `"`
	}
	if f.Gzip {
		resp.Headers["content-encoding"] = "gzip"
		resp.Headers["vary"] = "Accept-Encoding"
		resp.Body, resp.IsBase64Encoded = base64.StdEncoding.EncodeToString(f.Body), true
		return resp
	}
	resp.Body = string(f.Body)
	return resp
}

func (a *App) consoleLogin(ctx context.Context, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	if !getOnly(req) {
		return htmlPage(http.StatusMethodNotAllowed, "Not allowed", `<p>Open this page with a link.</p>`)
	}
	if !a.oauthReady() {
		return htmlPage(http.StatusServiceUnavailable, "Sign-in not available",
			`<p>Signing in to the console goes through UltraCart, which needs <code>ULTRACART_CLIENT_ID</code>, <code>ULTRACART_CLIENT_SECRET</code> and <code>PUBLIC_BASE_URL</code> on this cartrelay.</p>
<p>Without them, whoever runs this cartrelay can give you a sign-in link: <code>cartrelay console link ACCOUNT</code>.</p>`)
	}
	if resp, ok := a.startThrottled(ctx, req); !ok {
		return resp
	}
	p, err := oauth.NewStates(a.d.Store, a.d.Clock).BeginFor(ctx, connections.UltraCart, oauth.PurposeConsole)
	if err != nil {
		a.d.Log.Error("console sign-in start", slog.Any("error", err), slog.String("request_id", req.RequestContext.RequestID))
		return htmlPage(http.StatusInternalServerError, "Please try again",
			`<p>cartrelay could not start the sign-in just now. <a href="`+html.EscapeString(a.publicURL("/console/login"))+`">Try again</a>.</p>`)
	}
	loc := a.ultracartOAuth().AuthorizeURL(a.publicURL(ultracartCallbackPath), p.State)
	return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusFound,
		Headers: map[string]string{"location": loc, "cache-control": "no-store", "referrer-policy": "no-referrer"},
		Cookies: []string{oauth.CookieSettingsFor(a.d.Config.PublicBaseURL).SetCookie(p.Nonce)}}
}
