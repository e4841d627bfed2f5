package app

import (
	"context"
	"encoding/base64"
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
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/oauth"
	"github.com/cartrelay/cartrelay/shared/onetime"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/reviews"
	src "github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/sources"
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
	case strings.HasPrefix(path, "/review/"):
		return a.review(ctx, req, strings.TrimPrefix(path, "/review/")), nil
	case path == "/console":
		return redirect(a.publicURL("/console/home")), nil
	case strings.HasPrefix(path, "/console/"):
		return a.consoleRoute(ctx, req, strings.TrimPrefix(path, "/console/")), nil
	case strings.HasPrefix(path, "/oauth/"):
		return a.oauthRoute(ctx, req, strings.TrimPrefix(path, "/oauth/")), nil
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

// pageResponse is a page a source's connect flow answered.
func pageResponse(p src.Page) events.APIGatewayV2HTTPResponse {
	return htmlPage(p.Status, p.Title, p.Body)
}

func htmlPage(status int, title, body string) events.APIGatewayV2HTTPResponse {
	const head = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>`
	page := head + title + ` · cartrelay</title><style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}code{background:#f3f3f3;padding:0 .2em}</style></head><body><h1>` +
		title + `</h1>` + body + `</body></html>`
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Body: page,
		Headers: map[string]string{"content-type": "text/html; charset=utf-8", "x-content-type-options": "nosniff", "cache-control": "no-store"}}
}

// A source's OAuth flow (source.OAuth), at /oauth/{source}/start and /oauth/{source}/callback.
//
// Start stores a single-use state (shared/oauth) bound to a nonce in an HttpOnly, SameSite=Lax
// cookie scoped to /oauth/, and redirects to the source's authorize URL. The callback checks and
// consumes the state against the cookie, answers the source's refusal, and hands the code to the
// source's Finish, which connects the store (ucsource: the tokens, the account bound to the
// store, its webhook) or, for a console sign-in, names the account to sign in to.

// oauthRoute serves /oauth/{source}/{step} with the flow of the source named in the path. A
// source that is not registered, one that connects otherwise, and any other step are a 404
// saying so.
func (a *App) oauthRoute(ctx context.Context, req events.APIGatewayV2HTTPRequest, rest string) events.APIGatewayV2HTTPResponse {
	name, step, _ := strings.Cut(rest, "/")
	reg, err := sources.LookupConnecting(name)
	if err != nil {
		return htmlPage(http.StatusNotFound, "Not found", `<p>There is no page here: `+html.EscapeString(err.Error())+`.</p>`)
	}
	if reg.Connect.OAuth == nil {
		return htmlPage(http.StatusNotFound, "Not available", `<p>`+html.EscapeString(reg.Label)+
			` is not connected by signing in here: its credentials go in the account's settings (the console's Settings, or <code>cartrelay accounts put</code>).</p>`)
	}
	switch step {
	case src.OAuthStart:
		return a.oauthStart(ctx, req, reg)
	case src.OAuthCallback:
		return a.oauthCallback(ctx, req, reg)
	}
	return htmlPage(http.StatusNotFound, "Not found", `<p>There is no page here.</p>`)
}

// oauthApps are the OAuth applications this deployment signs in with, by source.
func (a *App) oauthApps() map[domain.Source]src.OAuthApp {
	c := a.d.Config
	return map[domain.Source]src.OAuthApp{
		domain.UltraCart: {ClientID: c.UltraCartClientID, ClientSecret: c.UltraCartClientSecret, ClientAuth: string(c.UltraCartClientAuth)},
	}
}

// connectPorts are what reg's flow reaches; ok is false when this runtime cannot run it (its
// OAuth application or the public address is not configured, or nothing stores connections).
func (a *App) connectPorts(reg src.Registration) (p src.ConnectPorts, ok bool) {
	app := a.oauthApps()[reg.Name]
	if reg.Connect.OAuth == nil || app.ClientID == "" || a.d.Config.PublicBaseURL == "" || a.ports == nil || a.ports.Connections == nil {
		return p, false
	}
	return src.ConnectPorts{Ports: *a.ports, Accounts: a.d.Accounts, App: app, PublicURL: a.publicURL,
		MaxBodyBytes: min(a.d.Config.MaxBodyBytes, DefaultMaxBodyBytes), RequiresInvite: a.d.Config.ConnectRequiresInvite,
		Hold: a.d.Known.Add, InviteNeeded: inviteNeededPage, InvitePage: a.invitePageOf}, true
}

// oauthReady reports whether the OAuth connect flow of reg can run in this runtime.
func (a *App) oauthReady(reg src.Registration) bool {
	_, ok := a.connectPorts(reg)
	return ok
}

// needs says what the runtime must set for reg's flow.
func needs(reg src.Registration) string {
	var names []string
	for _, n := range append(append([]string(nil), reg.Connect.OAuth.Needs...), "PUBLIC_BASE_URL") {
		names = append(names, `<code>`+html.EscapeString(n)+`</code>`)
	}
	return joinAnd(names)
}

// oauthSources are the registered sources that connect by OAuth, in the registry's order.
func oauthSources() []src.Registration {
	var out []src.Registration
	for _, r := range sources.Connecting() {
		if r.Connect.OAuth != nil {
			out = append(out, r)
		}
	}
	return out
}

func (a *App) publicURL(path string) string {
	return strings.TrimRight(a.d.Config.PublicBaseURL, "/") + path
}

// connectPage lists a button for every source that connects by OAuth here, or says what the
// runtime must set for them and where webhooks go meanwhile.
func (a *App) connectPage(ctx context.Context, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	var ready []src.Registration
	var missing []string
	for _, r := range oauthSources() {
		if a.oauthReady(r) {
			ready = append(ready, r)
		} else {
			missing = append(missing, `<p>Connecting `+html.EscapeString(r.Label)+` by OAuth needs `+needs(r)+
				`; until they are set, configure the account with <code>cartrelay accounts put</code>.</p>`)
		}
	}
	if len(ready) == 0 {
		var hooks []string
		for _, r := range sources.Connecting() {
			hooks = append(hooks, `<code>/webhooks/`+html.EscapeString(string(r.Name))+`/ACCOUNT</code>`)
		}
		return htmlPage(http.StatusOK, "Connect your store",
			`<p>cartrelay is running. Webhooks are accepted at `+joinAnd(hooks)+`.</p>
`+strings.Join(missing, "\n"))
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
	var buttons, sections strings.Builder
	for _, r := range ready {
		button := `<form method="get" action="` + html.EscapeString(a.publicURL(src.OAuthPath(r.Name, src.OAuthStart))) + `">` + hidden +
			`<button type="submit" style="font-size:1.1rem;padding:.5em 1.2em">Connect ` + html.EscapeString(r.Label) + `</button></form>`
		buttons.WriteString(button)
		sections.WriteString(`<p>Connect your ` + html.EscapeString(r.Label) + ` store to cartrelay. ` + html.EscapeString(r.Connect.OAuth.Approve) + `</p>` +
			button + "\n<p>" + html.EscapeString(r.Connect.OAuth.After) + `</p>`)
	}
	if invite == "" && a.d.Config.ConnectRequiresInvite {
		return a.inviteNeeded(`<p>A store that is already connected can connect again without one, to renew its connection:</p>` + buttons.String())
	}
	return htmlPage(http.StatusOK, "Connect your store", intro+sections.String())
}

// joinAnd joins items as a sentence does: "a", "a and b", "a, b and c".
func joinAnd(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

func getOnly(req events.APIGatewayV2HTTPRequest) bool {
	m := req.RequestContext.HTTP.Method
	return m == "" || m == http.MethodGet || m == http.MethodHead
}

// oauthStart begins a connect flow of reg: with the invite the link carries, checked, and
// throttled.
func (a *App) oauthStart(ctx context.Context, req events.APIGatewayV2HTTPRequest, reg src.Registration) events.APIGatewayV2HTTPResponse {
	if !getOnly(req) {
		return htmlPage(http.StatusMethodNotAllowed, "Not allowed", `<p>Open this page with a link.</p>`)
	}
	if !a.oauthReady(reg) {
		return htmlPage(http.StatusNotFound, "Not available", `<p>Connecting `+html.EscapeString(reg.Label)+` by OAuth is not configured on this cartrelay.</p>`)
	}
	fl := oauth.Flow{Purpose: oauth.PurposeConnect}
	if invite := req.QueryStringParameters["invite"]; invite != "" {
		tk, err := a.tickets().Check(ctx, onetime.Invite, invite)
		if err != nil {
			return a.invitePage(err, tk)
		}
		fl.Invite = onetime.Ref(invite)
	}
	return a.redirectToSource(ctx, req, reg, fl, "/connect", "connection")
}

// redirectToSource stores the flow's state and sends the browser to reg's authorize page, with
// the state's cookie; retry is where to start again when that fails.
func (a *App) redirectToSource(ctx context.Context, req events.APIGatewayV2HTTPRequest, reg src.Registration, fl oauth.Flow, retry, what string) events.APIGatewayV2HTTPResponse {
	p, _ := a.connectPorts(reg)
	if resp, ok := a.startThrottled(ctx, req); !ok {
		return resp
	}
	pend, err := oauth.NewStates(a.d.Store, a.d.Clock).BeginFlow(ctx, string(reg.Name), fl)
	if err != nil {
		a.d.Log.Error("oauth start", slog.Any("error", err), slog.String("source", string(reg.Name)), slog.String("request_id", req.RequestContext.RequestID))
		return htmlPage(http.StatusInternalServerError, "Please try again",
			`<p>cartrelay could not start the `+what+` just now. <a href="`+html.EscapeString(a.publicURL(retry))+`">Try again</a>.</p>`)
	}
	loc := reg.Connect.OAuth.AuthorizeURL(p, a.publicURL(src.OAuthPath(reg.Name, src.OAuthCallback)), pend.State)
	return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusFound,
		Headers: map[string]string{"location": loc, "cache-control": "no-store", "referrer-policy": "no-referrer"},
		Cookies: []string{oauth.CookieSettingsFor(a.d.Config.PublicBaseURL).SetCookie(pend.Nonce)}}
}

func (a *App) oauthCallback(ctx context.Context, req events.APIGatewayV2HTTPRequest, reg src.Registration) events.APIGatewayV2HTTPResponse {
	log := a.d.Log.With(slog.String("request_id", req.RequestContext.RequestID), slog.String("flow", string(reg.Name)+"_oauth"))
	resp := a.callback(ctx, log, req, reg)
	// The flow is over whatever happened; a retry starts afresh with a new state and cookie.
	resp.Cookies = append(resp.Cookies, oauth.CookieSettingsFor(a.d.Config.PublicBaseURL).ClearCookie())
	resp.Headers["referrer-policy"] = "no-referrer"
	return resp
}

func (a *App) callback(ctx context.Context, log *slog.Logger, req events.APIGatewayV2HTTPRequest, reg src.Registration) events.APIGatewayV2HTTPResponse {
	label := html.EscapeString(reg.Label)
	if !getOnly(req) {
		return htmlPage(http.StatusMethodNotAllowed, "Not allowed", `<p>`+label+` sends you back here with a link.</p>`)
	}
	p, ok := a.connectPorts(reg)
	if !ok {
		return htmlPage(http.StatusNotFound, "Not available", `<p>Connecting `+label+` by OAuth is not configured on this cartrelay.</p>`)
	}
	again := `<p><a href="` + html.EscapeString(a.publicURL("/connect")) + `">Start again</a>.</p>`
	q := req.QueryStringParameters
	nonce := oauth.NonceFrom(req.Cookies, header(req, "cookie"))
	fl, err := oauth.NewStates(a.d.Store, a.d.Clock).ConsumeFlow(ctx, string(reg.Name), q["state"], nonce)
	switch {
	case errors.Is(err, oauth.ErrNoCookie):
		log.Warn("oauth callback without the state cookie")
		return htmlPage(http.StatusBadRequest, "Sign-in cookie missing",
			`<p>Your browser did not send the cookie that cartrelay set when the connection started. Finish the connection in the same browser that started it, with cookies allowed for this site.</p>`+again)
	case errors.Is(err, oauth.ErrNonceMismatch):
		log.Warn("oauth callback with another browser's state")
		return htmlPage(http.StatusBadRequest, "Started in another window",
			`<p>This answer from `+label+` belongs to a connection started elsewhere, not in this browser, so cartrelay ignored it. Nothing was changed.</p>`+again)
	case errors.Is(err, oauth.ErrUnknownState):
		log.Warn("oauth callback with an unknown, expired or used state")
		return htmlPage(http.StatusBadRequest, "This link has expired",
			`<p>This sign-in link is unknown, expired (a connection must be finished within 10 minutes) or was already used. Nothing was changed.</p>`+again)
	case err != nil:
		log.Error("oauth state", slog.Any("error", err))
		return htmlPage(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not check this sign-in just now.</p>`+again)
	}
	var c *console.Console
	if fl.Purpose == oauth.PurposeConsole {
		again = `<p><a href="` + html.EscapeString(a.publicURL("/console/login")) + `">Sign in again</a>.</p>`
		if c, err = a.console(); err != nil {
			return consoleOff(err)
		}
	}
	if e := q["error"]; e != "" {
		log.Info("oauth refused at the source", slog.String("error", e))
		if e == "access_denied" {
			return htmlPage(http.StatusForbidden, "Access not granted",
				`<p>`+label+` reports that access was not approved, so your store was not connected and nothing was changed.</p>`+again)
		}
		return htmlPage(http.StatusBadRequest, label+" did not connect",
			`<p>`+label+` answered: <code>`+html.EscapeString(e)+`</code> `+html.EscapeString(q["error_description"])+`. Nothing was changed.</p>`+again)
	}
	if q["code"] == "" {
		log.Warn("oauth callback without a code")
		return htmlPage(http.StatusBadRequest, label+" did not connect", `<p>`+label+` sent no authorization code. Nothing was changed.</p>`+again)
	}
	pg := reg.Connect.OAuth.Finish(ctx, p, src.Callback{Code: q["code"], Redirect: a.publicURL(src.OAuthPath(reg.Name, src.OAuthCallback)),
		Flow: fl, Log: log, Again: again})
	if pg.SignIn != "" && c != nil {
		return consoleResponse(c.SignIn(ctx, pg.SignIn, string(reg.Name), a.d.Clock.Now()))
	}
	return pageResponse(pg)
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
	return console.New(console.Deps{Accounts: a.d.Accounts, Connections: conns, Store: a.d.Store, Queue: a.d.Queue,
		Actions: consoleActions{a}, Erasure: a.eraser, Reports: &reports.Engine{Store: a.d.Store, Accounts: a.d.Accounts, Clock: a.d.Clock},
		Clock: a.d.Clock, CheckKey: a.checkKey, PublicBaseURL: a.d.Config.PublicBaseURL, Log: a.d.Log},
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
	reg, ok := a.signInSource()
	if !ok {
		return htmlPage(http.StatusServiceUnavailable, "Sign-in not available",
			`<p>Signing in to the console goes through `+html.EscapeString(reg.Label)+`, which needs `+needs(reg)+` on this cartrelay.</p>
<p>Without them, whoever runs this cartrelay can give you a sign-in link: <code>cartrelay console link ACCOUNT</code>.</p>`)
	}
	return a.redirectToSource(ctx, req, reg, oauth.Flow{Purpose: oauth.PurposeConsole}, "/console/login", "sign-in")
}

// signInSource is the source whose OAuth flow signs merchants in to the console (the first
// registered one that offers it), and whether this runtime can run it.
func (a *App) signInSource() (src.Registration, bool) {
	for _, r := range oauthSources() {
		if r.Connect.OAuth.SignIn {
			return r, a.oauthReady(r)
		}
	}
	return src.Registration{Label: "a store's sign-in", Connect: src.Connect{OAuth: &src.OAuth{}}}, false
}
