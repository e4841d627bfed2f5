package deploy

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/localrun"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartapi"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// recordingTransport answers every request with 200 and remembers its URL, so a client can
// be pointed at a real vendor's address without leaving the machine.
type recordingTransport struct{ urls []string }

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.urls = append(rt.urls, req.URL.String())
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

// TestThriveCartBaseUrlDefault: a stack deployed with the defaults calls ThriveCart's API at
// https://thrivecart.com/api/external/..., through the functions that talk to ThriveCart.
func TestThriveCartBaseUrlDefault(t *testing.T) {
	tpl := loadTemplate(t)
	def := scalar(get(tpl.root, "Parameters", "ThriveCartBaseUrl", "Default"))
	if def == "" {
		t.Fatal("ThriveCartBaseUrl has no default")
	}
	for _, fn := range []string{"PollFunction", "ConnectFunction"} {
		if got := ref(tpl.env(fn)["THRIVECART_BASE_URL"]); got != "ThriveCartBaseUrl" {
			t.Errorf("%s: THRIVECART_BASE_URL is %q, want !Ref ThriveCartBaseUrl", fn, got)
		}
	}
	rt := &recordingTransport{}
	c := thrivecartapi.Client{BaseURL: def, HTTP: &http.Client{Transport: rt}}
	if _, err := c.Ping(context.Background(), "key"); err != nil {
		t.Fatal(err)
	}
	if want := "https://thrivecart.com/api/external/ping"; len(rt.urls) != 1 || rt.urls[0] != want {
		t.Errorf("with the default ThriveCartBaseUrl %q the client called %v, want %s", def, rt.urls, want)
	}
}

// TestRouteThrottles: the stage throttles every route as `cartrelay serve` does, each source's
// webhooks, the page views and the review links with limits of their own.
func TestRouteThrottles(t *testing.T) {
	tpl := loadTemplate(t)
	var stage string
	for _, id := range tpl.ofType("AWS::ApiGatewayV2::Stage") {
		stage = id
	}
	props := get(tpl.resources[stage], "Properties")
	throttle := func(n *yaml.Node, what string) localrun.Throttle {
		return localrun.Throttle{Rate: float64(num(t, get(n, "ThrottlingRateLimit"), what+" rate")),
			Burst: num(t, get(n, "ThrottlingBurstLimit"), what+" burst")}
	}
	def := throttle(get(props, "DefaultRouteSettings"), "DefaultRouteSettings")
	if def != wiring.DefaultThrottle() {
		t.Errorf("DefaultRouteSettings %+v, serve uses %+v", def, wiring.DefaultThrottle())
	}
	settings := get(props, "RouteSettings")
	routeIDs := map[string]string{}
	for _, id := range tpl.ofType("AWS::ApiGatewayV2::Route") {
		routeIDs[scalar(get(tpl.resources[id], "Properties", "RouteKey"))] = id
	}
	own := map[string]bool{}
	for _, r := range wiring.HTTPRoutes() {
		got := def
		if n := get(settings, r.RouteKey); n != nil {
			got = throttle(n, r.RouteKey)
			own[r.RouteKey] = true
			// A route setting for a route the stage may be created before fails the deploy.
			if !slices.Contains(strs(get(tpl.resources[stage], "DependsOn")), routeIDs[r.RouteKey]) {
				t.Errorf("%s has route settings but the stage does not depend on its route %s", r.RouteKey, routeIDs[r.RouteKey])
			}
		}
		if got != r.Throttle {
			t.Errorf("%s: the template throttles it at %+v, serve at %+v", r.RouteKey, got, r.Throttle)
		}
	}
	for _, k := range keys(settings) {
		if routeIDs[k] == "" {
			t.Errorf("RouteSettings names %q, which is no route", k)
		}
	}
	for _, k := range []string{"ANY /webhooks/ultracart/{proxy+}", "ANY /webhooks/thrivecart/{proxy+}", "ANY /track/{proxy+}", "GET /review/{proxy+}"} {
		if !own[k] {
			t.Errorf("%s shares the default throttle; it needs its own so a flood elsewhere cannot starve it", k)
		}
	}
}

// TestConnectRequiresInviteByDefault: a stack deployed with the defaults lets a new store
// connect only with an operator's invite.
func TestConnectRequiresInviteByDefault(t *testing.T) {
	tpl := loadTemplate(t)
	def := scalar(get(tpl.root, "Parameters", "ConnectRequiresInvite", "Default"))
	if got := ref(tpl.env("ConnectFunction")["CONNECT_REQUIRES_INVITE"]); got != "ConnectRequiresInvite" {
		t.Fatalf("ConnectFunction: CONNECT_REQUIRES_INVITE is %q, want !Ref ConnectRequiresInvite", got)
	}
	required, err := wiring.RequiresInvite(func(string) string { return def }, false)
	if err != nil || !required {
		t.Errorf("the default %q gives %t, %v; want invites required", def, required, err)
	}
}

// TestForwardIterableSealsOnlyReviewKeys: the Iterable forwarder makes an account's review key
// when it signs the first link, so it may encrypt, but only values sealed for that purpose.
func TestForwardIterableSealsOnlyReviewKeys(t *testing.T) {
	tpl := loadTemplate(t)
	found := false
	for _, p := range seq(get(tpl.resources["ForwardIterableFunction"], "Properties", "Policies")) {
		for _, s := range seq(get(p, "Statement")) {
			if !slices.Contains(strs(get(s, "Action")), "kms:Encrypt") {
				continue
			}
			found = true
			allowed := strs(get(s, "Condition", "StringEquals", "kms:EncryptionContext:"+secrets.ContextSecret))
			for secret, want := range map[string]bool{
				accountkeys.Secret(accountkeys.Review):   true,
				accountkeys.Secret(accountkeys.Tracking): false,
				"iterable.api_key":                       false,
			} {
				if got := slices.Contains(allowed, secret); got != want {
					t.Errorf("statement %s: encrypting %s allowed=%v, want %v (condition %v)", scalar(get(s, "Sid")), secret, got, want, allowed)
				}
			}
		}
	}
	if !found {
		t.Error("ForwardIterableFunction may not kms:Encrypt, so it cannot make an account's review key")
	}
}
