package app

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/reviews"
)

// Connect serves the merchant's browser: /connect, /oauth/*, /console/* and /review/*.
func (a *App) Connect(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	path := req.RawPath
	if path == "" {
		path = req.RequestContext.HTTP.Path
	}
	switch {
	case path == "/connect" || path == "/connect/":
		return htmlPage(http.StatusOK, "Connect your store",
			`<p>cartrelay is running. Webhooks are accepted at <code>/webhooks/ultracart/ACCOUNT</code> and <code>/webhooks/thrivecart/ACCOUNT</code>.</p>
<p>Connecting UltraCart by OAuth is not available in this version; configure the account with <code>cartrelay accounts put</code>.</p>`), nil
	case strings.HasPrefix(path, "/review/"):
		return a.review(ctx, req, strings.TrimPrefix(path, "/review/")), nil
	case strings.HasPrefix(path, "/oauth/"), strings.HasPrefix(path, "/console/"):
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
	p := reviews.Handle(ctx, a.d.Accounts, a.d.Clock.Now(), token)
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
