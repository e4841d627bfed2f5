package app_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// Every answer of the browser routes and the webhook routes, pages, redirects and errors
// alike, forbids framing and sniffing and sends no Referer; over HTTPS it also pins HTTPS.
func TestSecurityHeadersOnEveryRoute(t *testing.T) {
	f := newConsoleFixture(t)
	f.put("shop", `{"ultracart":{"webhook_username":"u","webhook_password":"p"},"thrivecart":{"secret":"w"}}`)
	type route struct {
		handler      func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
		method, path string
	}
	routes := []route{
		{f.env.App.Connect, http.MethodGet, "/connect"},
		{f.env.App.Connect, http.MethodGet, "/oauth/ultracart/start"},
		{f.env.App.Connect, http.MethodGet, "/oauth/ultracart/callback"},
		{f.env.App.Connect, http.MethodGet, "/oauth/nope"},
		{f.env.App.Connect, http.MethodGet, "/console"},
		{f.env.App.Connect, http.MethodGet, "/console/home"},
		{f.env.App.Connect, http.MethodGet, "/console/login"},
		{f.env.App.Connect, http.MethodPost, "/console/logout"},
		{f.env.App.Connect, http.MethodGet, "/review/not-a-token"},
		{f.env.App.Connect, http.MethodGet, "/nowhere"},
		{f.env.App.Webhook, http.MethodPost, "/webhooks/ultracart/shop"},
		{f.env.App.Webhook, http.MethodHead, "/webhooks/thrivecart/shop"},
		{f.env.App.Webhook, http.MethodPost, "/webhooks/nope/shop"},
		{f.env.App.Webhook, http.MethodPost, "/track/shop"},
	}
	want := map[string]string{"x-frame-options": "DENY", "content-security-policy": "frame-ancestors 'none'",
		"x-content-type-options": "nosniff"}
	for _, proto := range []string{"https", "http"} {
		for _, r := range routes {
			req := httpReq(r.method, r.path, "application/x-www-form-urlencoded", nil, map[string]string{"x-forwarded-proto": proto})
			req.RequestContext.HTTP.SourceIP = "192.0.2.1"
			resp, err := r.handler(context.Background(), req)
			if err != nil {
				t.Fatalf("%s %s: %v", r.method, r.path, err)
			}
			for k, v := range want {
				if resp.Headers[k] != v {
					t.Errorf("%s %s %s (%d): %s is %q, want %q", proto, r.method, r.path, resp.StatusCode, k, resp.Headers[k], v)
				}
			}
			// Console pages allow a Referer to their own origin (browsers send "Origin: null"
			// with form posts under no-referrer); nothing sends one to another site.
			if rp := resp.Headers["referrer-policy"]; rp != "no-referrer" && rp != "same-origin" {
				t.Errorf("%s %s %s: referrer-policy %q", proto, r.method, r.path, rp)
			}
			hsts := resp.Headers["strict-transport-security"]
			if (proto == "https") != (hsts == "max-age=31536000") {
				t.Errorf("%s %s %s: strict-transport-security %q", proto, r.method, r.path, hsts)
			}
		}
	}
}
