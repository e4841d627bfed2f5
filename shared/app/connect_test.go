package app_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/sources"
	"github.com/cartrelay/cartrelay/shared/ultracart"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucsource"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

const hubURL = "https://hub.example.com"

// oauthFixture is the embedded runtime configured for the OAuth connect flow against a fake
// UltraCart that approves at once.
type oauthFixture struct {
	t    *testing.T
	env  *wiring.Env
	clk  *clock.Fake
	fake *ultracartfake.Server
}

func newOAuthFixture(t *testing.T, auth ultracartapi.ClientAuth) *oauthFixture {
	t.Helper()
	return newOAuthFixtureWith(t, auth, nil)
}

// newOAuthFixtureWith is newOAuthFixture with configure applied to the runtime's Config.
func newOAuthFixtureWith(t *testing.T, auth ultracartapi.ClientAuth, configure func(*app.Config)) *oauthFixture {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	fake := ultracartfake.New(ultracartfake.Options{ClientID: "cid", ClientSecret: "c-secret", ClientAuth: auth,
		MerchantID: "DEMO_Store", Clock: clk})
	t.Cleanup(fake.Close)
	cfg := app.Config{PublicBaseURL: hubURL, UltraCartClientID: "cid", UltraCartClientSecret: "c-secret",
		UltraCartBaseURL: fake.URL, UltraCartClientAuth: auth}
	if configure != nil {
		configure(&cfg)
	}
	env, err := operator.Embedded(context.Background(), t.TempDir(), wiring.Options{Clock: clk, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	return &oauthFixture{t: t, env: env, clk: clk, fake: fake}
}

func (f *oauthFixture) get(path string, query map[string]string, cookies []string) events.APIGatewayV2HTTPResponse {
	f.t.Helper()
	req := httpReq(http.MethodGet, path, "", nil, nil)
	req.QueryStringParameters = query
	req.Cookies = cookies
	resp, err := f.env.App.Connect(context.Background(), req)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp
}

// flow is one started connection: the cookie the browser holds and what UltraCart sent back.
type flow struct {
	cookie    string
	setCookie string
	callback  map[string]string
}

// start opens /oauth/ultracart/start and follows the redirect to the fake's authorize
// endpoint, which redirects straight back to the callback.
func (f *oauthFixture) start() flow {
	f.t.Helper()
	return f.authorize(f.get("/oauth/ultracart/start", nil, nil))
}

// authorize follows a flow's start (resp, the redirect to UltraCart) to the callback.
func (f *oauthFixture) authorize(resp events.APIGatewayV2HTTPResponse) flow {
	f.t.Helper()
	if resp.StatusCode != http.StatusFound || len(resp.Cookies) != 1 {
		f.t.Fatalf("start: %d, cookies %v: %s", resp.StatusCode, resp.Cookies, resp.Body)
	}
	loc := resp.Headers["location"]
	if !strings.HasPrefix(loc, f.fake.URL+"/rest/v2/oauth/authorize?") {
		f.t.Fatalf("start redirects to %s", loc)
	}
	au, _ := url.Parse(loc)
	if got := au.Query().Get("redirect_uri"); got != hubURL+"/oauth/ultracart/callback" {
		f.t.Fatalf("redirect_uri %q", got)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	back, err := hc.Get(loc)
	if err != nil {
		f.t.Fatal(err)
	}
	back.Body.Close()
	cb, err := url.Parse(back.Header.Get("Location"))
	if err != nil || back.StatusCode != http.StatusFound || cb.Path != "/oauth/ultracart/callback" {
		f.t.Fatalf("authorize answered %d, location %q", back.StatusCode, back.Header.Get("Location"))
	}
	q := map[string]string{}
	for k, v := range cb.Query() {
		q[k] = v[0]
	}
	nameValue, _, _ := strings.Cut(resp.Cookies[0], ";")
	return flow{cookie: nameValue, setCookie: resp.Cookies[0], callback: q}
}

func (f *oauthFixture) finish(fl flow) events.APIGatewayV2HTTPResponse {
	f.t.Helper()
	return f.get("/oauth/ultracart/callback", fl.callback, []string{fl.cookie})
}

func (f *oauthFixture) connection(account string) connections.Connection {
	f.t.Helper()
	c, err := f.env.Connections.Get(context.Background(), account, connections.UltraCart)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// assertNothingStored checks that no account, connection or webhook came out of a refused flow.
func (f *oauthFixture) assertNothingStored() {
	f.t.Helper()
	ctx := context.Background()
	if ids, err := f.env.Accounts.IDs(ctx); err != nil || len(ids) != 0 {
		f.t.Errorf("accounts %v (%v), want none", ids, err)
	}
	if refs, err := f.env.Connections.List(ctx, connections.UltraCart); err != nil || len(refs) != 0 {
		f.t.Errorf("connections %v (%v), want none", refs, err)
	}
	if hooks := f.fake.Webhooks(); len(hooks) != 0 {
		f.t.Errorf("webhooks %+v, want none", hooks)
	}
}

func TestConnectPageOffersUltraCart(t *testing.T) {
	f := newOAuthFixture(t, "")
	resp := f.get("/connect", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, "Connect UltraCart") ||
		!strings.Contains(resp.Body, `action="`+hubURL+`/oauth/ultracart/start"`) {
		t.Fatalf("%d: %s", resp.StatusCode, resp.Body)
	}
}

func TestConnectHappyPath(t *testing.T) {
	for _, auth := range []ultracartapi.ClientAuth{ultracartapi.ClientAuthBasic, ultracartapi.ClientAuthPost} {
		t.Run(string(auth), func(t *testing.T) {
			f := newOAuthFixture(t, auth)
			ctx := context.Background()
			fl := f.start()
			for _, want := range []string{"HttpOnly", "Secure", "SameSite=Lax", "Path=/oauth/", "Max-Age=600"} {
				if !strings.Contains(fl.setCookie, want) {
					t.Errorf("state cookie %q lacks %s", fl.setCookie, want)
				}
			}
			resp := f.finish(fl)
			hookURL := hubURL + "/webhooks/ultracart/uc-demo-store"
			if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, hookURL) || !strings.Contains(resp.Body, "backfill") {
				t.Fatalf("callback: %d: %s", resp.StatusCode, resp.Body)
			}
			if len(resp.Cookies) != 1 || !strings.Contains(resp.Cookies[0], "Max-Age=0") {
				t.Errorf("callback does not clear the cookie: %v", resp.Cookies)
			}

			acct, err := f.env.Accounts.Get(ctx, "uc-demo-store", f.env.Accounts.SecretNames()...)
			if err != nil {
				t.Fatal(err)
			}
			c := f.connection("uc-demo-store")
			if c.Kind != connections.KindOAuth || !f.fake.ValidAccessToken(c.AccessToken) || c.RefreshToken == "" ||
				!c.ExpiresAt.Equal(f.clk.Now().Add(time.Hour)) || c.BaseURL != f.fake.URL {
				t.Errorf("connection %+v", c)
			}

			hooks := f.fake.Webhooks()
			if len(hooks) != 1 {
				t.Fatalf("webhooks %+v", hooks)
			}
			h := hooks[0]
			if h.WebhookURL != hookURL || h.AuthenticationType != "basic" || !ucsource.CheckBasic(acct, h.BasicUsername, h.BasicPassword) {
				t.Errorf("webhook %+v does not authenticate as the account", h)
			}
			if h.MaximumSize <= 0 || h.MaximumSize >= app.DefaultMaxBodyBytes {
				t.Errorf("maximum_size %d, want below %d", h.MaximumSize, app.DefaultMaxBodyBytes)
			}
			events := h.Events()
			if len(events) == 0 {
				t.Error("no events subscribed")
			}
			for _, e := range events {
				if !ultracart.Interpreted(e) {
					t.Errorf("subscribed to %s, which ingest does not read", e)
				}
			}
			for _, cat := range h.EventCategories {
				if cat.EventCategory == "order" && cat.Events[0].Expansion != ultracartapi.OrderExpansion {
					t.Errorf("order expansion %q", cat.Events[0].Expansion)
				}
			}

			// The state was used: the same callback again is refused and changes nothing.
			again := f.finish(fl)
			if again.StatusCode != http.StatusBadRequest || !strings.Contains(again.Body, "already used") {
				t.Errorf("reused state: %d: %s", again.StatusCode, again.Body)
			}
			if c2 := f.connection("uc-demo-store"); c2.Version() != c.Version() {
				t.Errorf("a reused state changed the connection")
			}
		})
	}
}

func TestConnectReconnectUpdatesWebhook(t *testing.T) {
	f := newOAuthFixture(t, "")
	ctx := context.Background()
	if resp := f.finish(f.start()); resp.StatusCode != http.StatusOK {
		t.Fatalf("first connect: %d: %s", resp.StatusCode, resp.Body)
	}
	first := f.connection("uc-demo-store")
	acct1, _ := f.env.Accounts.Get(ctx, "uc-demo-store", f.env.Accounts.SecretNames()...)
	callsBefore := len(f.fake.Calls())
	if resp := f.finish(f.start()); resp.StatusCode != http.StatusOK {
		t.Fatalf("reconnect: %d: %s", resp.StatusCode, resp.Body)
	}
	second := f.connection("uc-demo-store")
	acct2, _ := f.env.Accounts.Get(ctx, "uc-demo-store", f.env.Accounts.SecretNames()...)
	if second.AccessToken == first.AccessToken || second.Version() != first.Version()+1 || !second.ConnectedAt.Equal(first.ConnectedAt) {
		t.Errorf("reconnect did not replace the tokens in place: %+v then %+v", first, second)
	}
	if acct2.UltraCart.WebhookUsername != acct1.UltraCart.WebhookUsername {
		t.Error("reconnect replaced the webhook credentials")
	}
	hooks := f.fake.Webhooks()
	if len(hooks) != 1 {
		t.Fatalf("reconnect left %d webhooks, want 1", len(hooks))
	}
	var posts, puts int
	for _, c := range f.fake.Calls()[callsBefore:] {
		switch {
		case c.Method == http.MethodPost && c.Path == "/rest/v2/webhook/webhooks":
			posts++
		case c.Method == http.MethodPut && strings.HasPrefix(c.Path, "/rest/v2/webhook/webhooks/"):
			puts++
		}
	}
	if posts != 0 || puts != 1 {
		t.Errorf("reconnect: webhook inserts %d, updates %d; want 0 and 1", posts, puts)
	}
}

func TestConnectRefusals(t *testing.T) {
	cases := []struct {
		name   string
		run    func(f *oauthFixture) events.APIGatewayV2HTTPResponse
		status int
		text   string
	}{
		{"expired state", func(f *oauthFixture) events.APIGatewayV2HTTPResponse {
			fl := f.start()
			f.clk.Advance(11 * time.Minute)
			return f.finish(fl)
		}, http.StatusBadRequest, "expired"},
		{"state reused after a denial", func(f *oauthFixture) events.APIGatewayV2HTTPResponse {
			f.fake.DenyAuthorization(true)
			fl := f.start()
			f.finish(fl)
			fl.callback = map[string]string{"state": fl.callback["state"], "code": "code-1"}
			return f.finish(fl)
		}, http.StatusBadRequest, "already used"},
		{"forged state", func(f *oauthFixture) events.APIGatewayV2HTTPResponse {
			fl := f.start()
			fl.callback["state"] = "forged-state"
			return f.finish(fl)
		}, http.StatusBadRequest, "expired"},
		{"missing cookie", func(f *oauthFixture) events.APIGatewayV2HTTPResponse {
			fl := f.start()
			return f.get("/oauth/ultracart/callback", fl.callback, nil)
		}, http.StatusBadRequest, "cookie"},
		{"mismatched cookie", func(f *oauthFixture) events.APIGatewayV2HTTPResponse {
			victim, attacker := f.start(), f.start()
			victim.cookie = attacker.cookie
			return f.finish(victim)
		}, http.StatusBadRequest, "another window"},
		{"access denied", func(f *oauthFixture) events.APIGatewayV2HTTPResponse {
			f.fake.DenyAuthorization(true)
			return f.finish(f.start())
		}, http.StatusForbidden, "not approved"},
		{"token exchange refused", func(f *oauthFixture) events.APIGatewayV2HTTPResponse {
			f.fake.FailTokenRequests("authorization code expired <b>")
			return f.finish(f.start())
		}, http.StatusBadGateway, "invalid_grant: authorization code expired &lt;b&gt;"},
		{"a new store whose webhook cannot be registered", func(f *oauthFixture) events.APIGatewayV2HTTPResponse {
			// UltraCart names a new store only in the answer to the webhook insert.
			f.fake.FailWebhookWrites("webhook service unavailable")
			return f.finish(f.start())
		}, http.StatusBadGateway, "webhook service unavailable</code>. Nothing was saved"},
		{"expired authorization code explained", func(f *oauthFixture) events.APIGatewayV2HTTPResponse {
			f.fake.FailTokenRequests("authorization code expired")
			return f.finish(f.start())
		}, http.StatusBadGateway, "probably expired. Start again"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newOAuthFixture(t, "")
			resp := tc.run(f)
			if resp.StatusCode != tc.status || !strings.Contains(resp.Body, tc.text) {
				t.Errorf("got %d, want %d with %q: %s", resp.StatusCode, tc.status, tc.text, resp.Body)
			}
			if ct := resp.Headers["content-type"]; !strings.HasPrefix(ct, "text/html") {
				t.Errorf("content-type %q", ct)
			}
			f.assertNothingStored()
		})
	}
}

func TestConnectMismatchedCookieLeavesTheRealFlowWorking(t *testing.T) {
	f := newOAuthFixture(t, "")
	victim, attacker := f.start(), f.start()
	forged := victim
	forged.cookie = attacker.cookie
	if resp := f.finish(forged); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("forged: %d", resp.StatusCode)
	}
	if resp := f.finish(victim); resp.StatusCode != http.StatusOK {
		t.Fatalf("the real browser could not finish: %d: %s", resp.StatusCode, resp.Body)
	}
}

// A reconnect of a known store whose webhook cannot be written still saves the new tokens:
// polling does not depend on the webhook.
func TestConnectWebhookFailureKeepsTheConnection(t *testing.T) {
	f := newOAuthFixture(t, "")
	if resp := f.finish(f.start()); resp.StatusCode != http.StatusOK {
		t.Fatalf("first connect: %d: %s", resp.StatusCode, resp.Body)
	}
	before := f.connection("uc-demo-store")
	f.fake.FailWebhookWrites("webhook service unavailable")
	resp := f.finish(f.start())
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(resp.Body, "connection is saved") ||
		!strings.Contains(resp.Body, "webhook service unavailable") {
		t.Fatalf("%d: %s", resp.StatusCode, resp.Body)
	}
	if c := f.connection("uc-demo-store"); c.AccessToken == before.AccessToken || !f.fake.ValidAccessToken(c.AccessToken) {
		t.Error("the new tokens were not saved")
	}
}

// TestConnectPicksTheFlowBySourceName: /oauth/{source}/{step} runs the flow of the source named
// in the path. A name no source is registered under, a source that connects through its
// settings, and a step no flow has are each a 404 that says so, and none of them starts a flow.
func TestConnectPicksTheFlowBySourceName(t *testing.T) {
	f := newOAuthFixture(t, "")
	for _, tc := range []struct {
		path   string
		status int
		says   string
	}{
		{"/oauth/ultracart/start", http.StatusFound, ""},
		{"/oauth/shopify/start", http.StatusNotFound, `unknown source &#34;shopify&#34;: the sources are ultracart, thrivecart`},
		{"/oauth/shopify/callback", http.StatusNotFound, `unknown source &#34;shopify&#34;`},
		{"/oauth/thrivecart/start", http.StatusNotFound, "ThriveCart is not connected by signing in here"},
		{"/oauth/thrivecart/callback", http.StatusNotFound, "ThriveCart is not connected by signing in here"},
		{"/oauth/ultracart/renew", http.StatusNotFound, "There is no page here"},
		{"/oauth/ultracart", http.StatusNotFound, "There is no page here"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp := f.get(tc.path, nil, nil)
			if resp.StatusCode != tc.status || !strings.Contains(resp.Body, tc.says) {
				t.Fatalf("%d %s; want %d saying %q", resp.StatusCode, resp.Body, tc.status, tc.says)
			}
			started := len(resp.Cookies) > 0
			if started != (tc.status == http.StatusFound) {
				t.Errorf("cookies %v: a flow started = %v, want %v", resp.Cookies, started, tc.status == http.StatusFound)
			}
			if tc.status == http.StatusFound && !strings.HasPrefix(resp.Headers["location"], f.fake.URL) {
				t.Errorf("location %s, want UltraCart's authorize page", resp.Headers["location"])
			}
		})
	}
}

// TestConnectPageWithoutOAuth: without an OAuth application the connect page names every
// registered source's webhook and what connecting UltraCart by OAuth needs.
func TestConnectPageWithoutOAuth(t *testing.T) {
	f := newOAuthFixtureWith(t, "", func(c *app.Config) { c.UltraCartClientID = "" })
	resp := f.get("/connect", nil, nil)
	for _, want := range []string{"<code>/webhooks/ultracart/ACCOUNT</code> and <code>/webhooks/thrivecart/ACCOUNT</code>",
		"Connecting UltraCart by OAuth needs <code>ULTRACART_CLIENT_ID</code>, <code>ULTRACART_CLIENT_SECRET</code> and <code>PUBLIC_BASE_URL</code>"} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, want) {
			t.Fatalf("%d %s; want it to say %s", resp.StatusCode, resp.Body, want)
		}
	}
	if strings.Contains(resp.Body, "<button") {
		t.Errorf("a connect button without an OAuth application: %s", resp.Body)
	}
	if start := f.get("/oauth/ultracart/start", nil, nil); start.StatusCode != http.StatusNotFound || len(start.Cookies) != 0 {
		t.Errorf("start without an OAuth application: %d %v", start.StatusCode, start.Cookies)
	}
}

// TestCheckConnectionPicksTheSource: a key is checked by the source its connection names; a
// name no source is registered under is an error, never a key taken unchecked.
func TestCheckConnectionPicksTheSource(t *testing.T) {
	f := newOAuthFixture(t, "")
	ctx := context.Background()
	err := f.env.App.CheckConnection(ctx, connections.Connection{Account: "acme", Provider: "shopify", Kind: connections.KindSimpleKey, SimpleKey: "k"})
	if !errors.Is(err, sources.ErrUnknown) {
		t.Fatalf("unknown source: %v; want sources.ErrUnknown", err)
	}
	err = f.env.App.CheckConnection(ctx, connections.Connection{Account: "acme", Provider: connections.UltraCart, Kind: connections.KindSimpleKey,
		SimpleKey: "not-a-key", BaseURL: f.fake.URL})
	if !errors.Is(err, source.ErrRefused) {
		t.Fatalf("a key UltraCart refuses: %v; want source.ErrRefused", err)
	}
}
