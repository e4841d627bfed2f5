package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"html"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/onetime"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
	src "github.com/cartrelay/cartrelay/shared/source"
)

// Who may start a connection, and how often.
//
// Connecting a store the deployment does not know yet creates an account, so where the
// operator asks for it (ConnectRequiresInvite: on by default in AWS, off for `cartrelay
// serve`) a new store connects only with an invite: a single-use, expiring link the operator
// makes with `cartrelay invites create` (shared/onetime). A store already bound to an account
// reconnects without one. Every start of an UltraCart flow (connect or console sign-in) writes
// a state item, so starts are throttled per client and in total.

// Default start throttles: ten flows a minute from one client, and at most StartTotalPerMinute
// from everyone, so at most ten minutes' worth of those (the state's lifetime) are pending.
const (
	StartPerClientPerMinute = 10
	StartTotalPerMinute     = 120
)

// InviteTTL is how long an invite stays usable unless the operator says otherwise.
const InviteTTL = 7 * 24 * time.Hour

// ConsoleLinkTTL is how long a console sign-in link stays usable.
const ConsoleLinkTTL = 10 * time.Minute

func (a *App) tickets() *onetime.Tickets { return onetime.New(a.d.Store, a.d.Clock) }

// invitePage explains why an invite cannot be used.
func (a *App) invitePage(err error, tk onetime.Ticket) events.APIGatewayV2HTTPResponse {
	return pageResponse(a.invitePageOf(err, tk))
}

func (a *App) invitePageOf(err error, tk onetime.Ticket) src.Page {
	ask := `<p>Ask whoever runs this cartrelay for a new invite link (they make one with <code>cartrelay invites create</code>).</p>`
	switch {
	case errors.Is(err, onetime.ErrUsed):
		return src.Page{Status: http.StatusGone, Title: "Invite already used",
			Body: `<p>This invite link was already used to connect a store; each invite connects one store.</p>
<p>If it was you, your store is connected: <a href="` + html.EscapeString(a.publicURL("/console/login")) + `">sign in to the console</a>. Otherwise:</p>` + ask}
	case errors.Is(err, onetime.ErrExpired):
		return src.Page{Status: http.StatusGone, Title: "Invite expired",
			Body: `<p>This invite link expired on ` + html.EscapeString(tk.ExpiresAt.UTC().Format("2 January 2006 at 15:04 UTC")) + `.</p>` + ask}
	case errors.Is(err, onetime.ErrUnknown):
		return src.Page{Status: http.StatusNotFound, Title: "Invite not valid",
			Body: `<p>This invite link is not one this cartrelay issued. Check that the whole link was copied.</p>` + ask}
	}
	a.d.Log.Error("invite unreadable", slog.Any("error", err))
	return src.Page{Status: http.StatusInternalServerError, Title: "Please try again", Body: `<p>cartrelay could not check the invite just now.</p>`}
}

// inviteNeeded answers a new store that came without an invite where one is required.
func (a *App) inviteNeeded(extra string) events.APIGatewayV2HTTPResponse {
	return pageResponse(inviteNeededPage(extra))
}

func inviteNeededPage(extra string) src.Page {
	return src.Page{Status: http.StatusForbidden, Title: "Invitation needed",
		Body: `<p>This cartrelay connects new stores by invitation. Ask whoever runs it for an invite link (they make one with <code>cartrelay invites create</code>) and open it in this browser.</p>` + extra}
}

// startThrottled answers 429 when the client, or everyone together, started too many flows in
// the last minute; ok is true when this start may go on. The client's bucket is counted first,
// so one client cannot use up everyone's; a refused start writes nothing.
func (a *App) startThrottled(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, bool) {
	perClient, total := a.d.Config.StartPerClientPerMinute, a.d.Config.StartTotalPerMinute
	if perClient <= 0 {
		perClient = StartPerClientPerMinute
	}
	if total <= 0 {
		total = StartTotalPerMinute
	}
	buckets := []struct {
		name, pk string
		limit    int
	}{
		{"client", "RL#oauth-start#client#" + clientKey(req.RequestContext.HTTP.SourceIP), perClient},
		{"all", "RL#oauth-start#all", total},
	}
	for _, b := range buckets {
		lim, err := ratelimit.NewShared(a.d.Store, a.d.Clock, b.pk, ratelimit.Limit{Requests: b.limit, Window: time.Minute})
		if err != nil {
			return htmlPage(http.StatusInternalServerError, "Please try again", `<p>cartrelay could not start the sign-in just now.</p>`), false
		}
		wait, err := lim.Reserve(ctx)
		if err != nil {
			a.d.Log.Error("oauth start throttle", slog.Any("error", err))
			return htmlPage(http.StatusServiceUnavailable, "Please try again", `<p>cartrelay could not start the sign-in just now. Try again in a minute.</p>`), false
		}
		if wait > 0 {
			a.d.Log.Warn("oauth start throttled", slog.String("bucket", b.name), slog.String("request_id", req.RequestContext.RequestID))
			secs := int((wait + time.Second - 1) / time.Second)
			resp := htmlPage(http.StatusTooManyRequests, "Too many attempts",
				`<p>Too many connections or sign-ins were started from here in the last minute. Wait `+strconv.Itoa(secs)+` seconds and try again.</p>`)
			resp.Headers["retry-after"] = strconv.Itoa(secs)
			return resp, false
		}
	}
	return events.APIGatewayV2HTTPResponse{}, true
}

// clientKey names a client for the throttle: its IPv4 address, or the /64 of an IPv6 one (a
// single client commonly holds a whole /64), hashed so the table keeps no addresses.
func clientKey(ip string) string {
	if p := net.ParseIP(ip); p != nil && p.To4() == nil {
		ip = p.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	sum := sha256.Sum256([]byte(ip))
	return hex.EncodeToString(sum[:12])
}

// Webhook serves the webhook routes (webhook below), with the security headers.
func (a *App) Webhook(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	resp, err := a.webhook(ctx, req)
	return secured(req, resp), err
}

// Security headers on every answer of the browser routes and the webhook routes: no framing by
// other sites (X-Frame-Options and CSP frame-ancestors), no content sniffing, no Referer
// leaving the deployment (OAuth callbacks and review links carry codes and tokens in their
// URLs), and HSTS when the request came over HTTPS. A header a handler set is kept.
func secured(req events.APIGatewayV2HTTPRequest, resp events.APIGatewayV2HTTPResponse) events.APIGatewayV2HTTPResponse {
	if resp.Headers == nil {
		resp.Headers = map[string]string{}
	}
	set := func(k, v string) {
		for have := range resp.Headers {
			if strings.EqualFold(have, k) {
				return
			}
		}
		resp.Headers[k] = v
	}
	set("x-frame-options", "DENY")
	set("content-security-policy", "frame-ancestors 'none'")
	set("x-content-type-options", "nosniff")
	set("referrer-policy", "no-referrer")
	if strings.EqualFold(header(req, "x-forwarded-proto"), "https") {
		set("strict-transport-security", "max-age=31536000")
	}
	return resp
}
