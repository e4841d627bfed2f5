package app_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/onetime"
)

func newInviteFixture(t *testing.T) *consoleFixture {
	t.Helper()
	return newConsoleFixtureWith(t, func(c *app.Config) { c.ConnectRequiresInvite = true })
}

// invite issues an invite as `cartrelay invites create` does.
func (f *oauthFixture) invite(account string, ttl time.Duration) string {
	f.t.Helper()
	token, _, err := onetime.New(f.env.Store, f.clk).Issue(context.Background(), onetime.Invite, account, ttl)
	if err != nil {
		f.t.Fatal(err)
	}
	return token
}

// startWith opens the start route with the query (an invite) and follows it to the callback.
func (f *oauthFixture) startWith(merchant string, query map[string]string) flow {
	f.t.Helper()
	f.fake.SignInAs(merchant)
	return f.authorize(f.get("/oauth/ultracart/start", query, nil))
}

// assertNoBinding checks that nothing of merchant's store reached the table or kept a webhook.
func (f *oauthFixture) assertNoBinding(merchant string) {
	f.t.Helper()
	ctx := context.Background()
	if ids, err := f.env.Accounts.IDs(ctx); err != nil || len(ids) != 0 {
		f.t.Errorf("accounts %v (%v), want none", ids, err)
	}
	if _, err := f.env.Accounts.BindingOfMerchant(ctx, merchant); !errors.Is(err, accounts.ErrNotBound) {
		f.t.Errorf("%s is bound: %v", merchant, err)
	}
	if refs, err := f.env.Connections.List(ctx, connections.UltraCart); err != nil || len(refs) != 0 {
		f.t.Errorf("connections %v (%v), want none", refs, err)
	}
	if hooks := f.fake.WebhooksOf(merchant); len(hooks) != 0 {
		f.t.Errorf("webhooks left in %s: %+v", merchant, hooks)
	}
}

// Where invites are required, a store nobody invited cannot create an account: not through
// the page, not by opening the start route directly, whether or not UltraCart names it.
func TestInviteRequiredForANewStore(t *testing.T) {
	for _, mode := range merchantModes {
		t.Run(mode.name, func(t *testing.T) {
			f := newInviteFixture(t)
			f.fake.OmitWebhookMerchantIDs(mode.hide)
			page := f.get("/connect", nil, nil)
			if page.StatusCode != http.StatusForbidden || !strings.Contains(page.Body, "Invitation needed") ||
				!strings.Contains(page.Body, "cartrelay invites create") || !strings.Contains(page.Body, "Connect UltraCart") {
				t.Fatalf("/connect without an invite: %d: %s", page.StatusCode, page.Body)
			}
			resp := f.finish(f.startWith("STRANGER", nil))
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Body, "Invitation needed") || !strings.Contains(resp.Body, "Nothing was changed") {
				t.Fatalf("callback without an invite: %d: %s", resp.StatusCode, resp.Body)
			}
			f.assertNoBinding("STRANGER")
		})
	}
}

// An invite connects one store, once; a connected store reconnects without one.
func TestInviteConnectsOneStoreOnce(t *testing.T) {
	for _, mode := range merchantModes {
		t.Run(mode.name, func(t *testing.T) {
			f := newInviteFixture(t)
			ctx := context.Background()
			f.fake.OmitWebhookMerchantIDs(mode.hide)
			token := f.invite("", app.InviteTTL)
			page := f.get("/connect", map[string]string{"invite": token}, nil)
			if page.StatusCode != http.StatusOK || !strings.Contains(page.Body, `name="invite" value="`+token+`"`) {
				t.Fatalf("/connect with the invite: %d: %s", page.StatusCode, page.Body)
			}
			resp := f.finish(f.startWith("NEWSTORE", map[string]string{"invite": token}))
			id := connectedAs.FindStringSubmatch(resp.Body)
			if resp.StatusCode != http.StatusOK || id == nil {
				t.Fatalf("connect with the invite: %d: %s", resp.StatusCode, resp.Body)
			}
			if _, err := f.env.Accounts.Binding(ctx, id[1]); err != nil {
				t.Fatalf("binding of %s: %v", id[1], err)
			}
			// The invite is spent: the page says so, and another store cannot use it.
			if page := f.get("/connect", map[string]string{"invite": token}, nil); page.StatusCode != http.StatusGone || !strings.Contains(page.Body, "already used") {
				t.Errorf("/connect with a used invite: %d: %s", page.StatusCode, page.Body)
			}
			if start := f.get("/oauth/ultracart/start", map[string]string{"invite": token}, nil); start.StatusCode != http.StatusGone {
				t.Errorf("start with a used invite: %d: %s", start.StatusCode, start.Body)
			}
			// The store reconnects without an invite.
			resp = f.finish(f.startWith("NEWSTORE", nil))
			if again := connectedAs.FindStringSubmatch(resp.Body); resp.StatusCode != http.StatusOK || again == nil || again[1] != id[1] {
				t.Fatalf("reconnect: %d: %s", resp.StatusCode, resp.Body)
			}
		})
	}
}

// An invite used by another browser between the start and the callback binds nothing.
func TestInviteUsedDuringTheFlow(t *testing.T) {
	f := newInviteFixture(t)
	token := f.invite("", app.InviteTTL)
	first, second := f.startWith("ONE", map[string]string{"invite": token}), f.startWith("TWO", map[string]string{"invite": token})
	if resp := f.finish(first); resp.StatusCode != http.StatusOK {
		t.Fatalf("first: %d: %s", resp.StatusCode, resp.Body)
	}
	resp := f.finish(second)
	if resp.StatusCode != http.StatusGone || !strings.Contains(resp.Body, "already used") {
		t.Fatalf("second: %d: %s", resp.StatusCode, resp.Body)
	}
	if _, err := f.env.Accounts.BindingOfMerchant(context.Background(), "TWO"); !errors.Is(err, accounts.ErrNotBound) {
		t.Errorf("TWO got bound: %v", err)
	}
	if hooks := f.fake.WebhooksOf("TWO"); len(hooks) != 0 {
		t.Errorf("TWO kept webhooks: %+v", hooks)
	}
}

func TestInvitePages(t *testing.T) {
	f := newInviteFixture(t)
	expired := f.invite("", time.Hour)
	f.clk.Advance(time.Hour)
	for label, tc := range map[string]struct {
		token  string
		status int
		text   string
	}{
		"expired":   {expired, http.StatusGone, "expired on 20 November 2026 at 13:00 UTC"},
		"unknown":   {"not-an-invite", http.StatusNotFound, "not one this cartrelay issued"},
		"truncated": {expired[:20], http.StatusNotFound, "whole link"},
	} {
		for _, path := range []string{"/connect", "/oauth/ultracart/start"} {
			resp := f.get(path, map[string]string{"invite": tc.token}, nil)
			if resp.StatusCode != tc.status || !strings.Contains(resp.Body, tc.text) || !strings.Contains(resp.Body, "cartrelay invites create") {
				t.Errorf("%s %s: %d: %s", label, path, resp.StatusCode, resp.Body)
			}
		}
	}
}

// The operator invites a store into an account it made; the store binds to that account, which
// keeps its webhook credentials, and the store then signs in to it through UltraCart.
func TestInviteForAnOperatorAccount(t *testing.T) {
	for _, mode := range merchantModes {
		t.Run(mode.name, func(t *testing.T) {
			f := newInviteFixture(t)
			ctx := context.Background()
			f.fake.OmitWebhookMerchantIDs(mode.hide)
			f.put("acme", `{"ultracart":{"webhook_username":"acme-user","webhook_password":"acme-password"}}`)
			token := f.invite("acme", app.InviteTTL)
			if page := f.get("/connect", map[string]string{"invite": token}, nil); !strings.Contains(page.Body, "account <code>acme</code>") {
				t.Errorf("the page does not name the account: %s", page.Body)
			}
			resp := f.finish(f.startWith("ACME", map[string]string{"invite": token}))
			if m := connectedAs.FindStringSubmatch(resp.Body); resp.StatusCode != http.StatusOK || m == nil || m[1] != "acme" {
				t.Fatalf("connect: %d: %s", resp.StatusCode, resp.Body)
			}
			hooks := f.fake.WebhooksOf("ACME")
			if len(hooks) != 1 || hooks[0].WebhookURL != hubURL+"/webhooks/ultracart/acme" || hooks[0].BasicUsername != "acme-user" || hooks[0].BasicPassword != "acme-password" {
				t.Errorf("ACME's webhooks: %+v", hooks)
			}
			if _, err := f.env.Accounts.Binding(ctx, "acme"); err != nil {
				t.Errorf("acme not bound: %v", err)
			}
			if resp := f.signInAs("ACME"); resp.StatusCode != http.StatusFound || !hasSession(resp) {
				t.Errorf("sign-in: %d: %s", resp.StatusCode, resp.Body)
			}
		})
	}
}

// An invite for an account cannot move it to a second store, and a bound store cannot use an
// invite to reach another account; both leave the invite unused.
func TestInviteCannotRebind(t *testing.T) {
	f := newInviteFixture(t)
	ctx := context.Background()
	f.put("acme", `{}`)
	if resp := f.finish(f.startWith("ACME", map[string]string{"invite": f.invite("acme", app.InviteTTL)})); resp.StatusCode != http.StatusOK {
		t.Fatalf("bind acme: %d: %s", resp.StatusCode, resp.Body)
	}
	cases := []struct {
		name, merchant, account string
		text                    string
	}{
		{"second store for a bound account", "OTHER", "acme", "already connected to another UltraCart store"},
		{"bound store with an invite for another account", "ACME", "beta", "not to <code>beta</code>"},
	}
	f.put("beta", `{}`)
	for _, tc := range cases {
		token := f.invite(tc.account, app.InviteTTL)
		resp := f.finish(f.startWith(tc.merchant, map[string]string{"invite": token}))
		if resp.StatusCode != http.StatusConflict || !strings.Contains(resp.Body, tc.text) || !strings.Contains(resp.Body, "the invite was not used") {
			t.Errorf("%s: %d: %s", tc.name, resp.StatusCode, resp.Body)
		}
		if _, err := onetime.New(f.env.Store, f.clk).Check(ctx, onetime.Invite, token); err != nil {
			t.Errorf("%s: the invite was used: %v", tc.name, err)
		}
	}
	if _, err := f.env.Accounts.Binding(ctx, "beta"); !errors.Is(err, accounts.ErrNotBound) {
		t.Errorf("beta got bound: %v", err)
	}
	if b, err := f.env.Accounts.Binding(ctx, "acme"); err != nil || b.MerchantID != "ACME" {
		t.Errorf("acme's binding: %+v, %v", b, err)
	}
	if hooks := f.fake.WebhooksOf("OTHER"); len(hooks) != 0 {
		t.Errorf("OTHER kept webhooks: %+v", hooks)
	}
}

// startFrom opens path as a browser at ip would.
func (f *oauthFixture) startFrom(ip, path string) events.APIGatewayV2HTTPResponse {
	f.t.Helper()
	req := httpReq(http.MethodGet, path, "", nil, nil)
	req.RequestContext.HTTP.SourceIP = ip
	resp, err := f.env.App.Connect(context.Background(), req)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp
}

// Starts of the UltraCart flow (connect and console sign-in) write a state item each, so they
// are throttled per client; a refused start writes no state and sets no cookie.
func TestStartThrottlePerClient(t *testing.T) {
	f := newConsoleFixture(t)
	for i := range app.StartPerClientPerMinute {
		path := "/oauth/ultracart/start"
		if i%2 == 1 {
			path = "/console/login"
		}
		if resp := f.startFrom("203.0.113.7", path); resp.StatusCode != http.StatusFound {
			t.Fatalf("start %d: %d: %s", i+1, resp.StatusCode, resp.Body)
		}
	}
	refused := f.startFrom("203.0.113.7", "/oauth/ultracart/start")
	if refused.StatusCode != http.StatusTooManyRequests || refused.Headers["retry-after"] == "" || len(refused.Cookies) != 0 ||
		!strings.Contains(refused.Body, "Too many") {
		t.Fatalf("11th start from one client: %d %v %v: %s", refused.StatusCode, refused.Headers, refused.Cookies, refused.Body)
	}
	if resp := f.startFrom("203.0.113.8", "/oauth/ultracart/start"); resp.StatusCode != http.StatusFound {
		t.Errorf("another client: %d", resp.StatusCode)
	}
	// The addresses of one IPv6 /64 are one client.
	for i := range app.StartPerClientPerMinute {
		if resp := f.startFrom(fmt.Sprintf("2001:db8:0:1::%x", i+1), "/console/login"); resp.StatusCode != http.StatusFound {
			t.Fatalf("IPv6 start %d: %d", i+1, resp.StatusCode)
		}
	}
	if resp := f.startFrom("2001:db8:0:1::ff", "/console/login"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the same /64 past its limit: %d", resp.StatusCode)
	}
	if resp := f.startFrom("2001:db8:0:2::1", "/console/login"); resp.StatusCode != http.StatusFound {
		t.Errorf("another /64: %d", resp.StatusCode)
	}
	f.clk.Advance(time.Minute + 10*time.Second)
	if resp := f.startFrom("203.0.113.7", "/oauth/ultracart/start"); resp.StatusCode != http.StatusFound {
		t.Errorf("a minute later: %d: %s", resp.StatusCode, resp.Body)
	}
}

// All clients together get StartTotalPerMinute starts, so however many addresses start flows,
// the pending states stay bounded.
func TestStartThrottleTotal(t *testing.T) {
	f := newConsoleFixtureWith(t, func(c *app.Config) { c.StartTotalPerMinute = 3 })
	for i := range 3 {
		if resp := f.startFrom(fmt.Sprintf("198.51.100.%d", i+1), "/oauth/ultracart/start"); resp.StatusCode != http.StatusFound {
			t.Fatalf("start %d: %d", i+1, resp.StatusCode)
		}
	}
	if resp := f.startFrom("198.51.100.99", "/oauth/ultracart/start"); resp.StatusCode != http.StatusTooManyRequests || len(resp.Cookies) != 0 {
		t.Fatalf("past the total: %d", resp.StatusCode)
	}
	f.clk.Advance(time.Minute + 10*time.Second)
	if resp := f.startFrom("198.51.100.99", "/oauth/ultracart/start"); resp.StatusCode != http.StatusFound {
		t.Errorf("a minute later: %d", resp.StatusCode)
	}
}
