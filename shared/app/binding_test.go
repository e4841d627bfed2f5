package app_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/console"
	"github.com/cartrelay/cartrelay/shared/thrivecart/tcsource"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

// The account-binding attacks of the security review, each run twice: against an UltraCart that
// fills in merchant_id on Webhook objects, and against one that leaves it out (UltraCart
// documents the field but not that it is always there).
var merchantModes = []struct {
	name string
	hide bool
}{{"merchant ids shown", false}, {"merchant ids hidden", true}}

var connectedAs = regexp.MustCompile(`connected as account <code>([a-z0-9-]+)</code>`)

// connectAs runs the connect flow as a user of store merchant and returns the page and the
// account it connected.
func (f *oauthFixture) connectAs(merchant string) (events.APIGatewayV2HTTPResponse, string) {
	f.t.Helper()
	f.fake.SignInAs(merchant)
	resp := f.finish(f.start())
	m := connectedAs.FindStringSubmatch(resp.Body)
	if resp.StatusCode != http.StatusOK || m == nil {
		f.t.Fatalf("connect as %s: %d: %s", merchant, resp.StatusCode, resp.Body)
	}
	return resp, m[1]
}

// signInAs runs the console sign-in as a user of store merchant.
func (f *consoleFixture) signInAs(merchant string) events.APIGatewayV2HTTPResponse {
	f.t.Helper()
	f.fake.SignInAs(merchant)
	return f.finish(f.authorize(f.do(http.MethodGet, "/console/login", nil, nil, nil)))
}

func hasSession(resp events.APIGatewayV2HTTPResponse) bool {
	for _, c := range resp.Cookies {
		if strings.HasPrefix(c, console.CookieName+"=") && !strings.Contains(c, "Max-Age=0") {
			return true
		}
	}
	return false
}

// Attack 1: the operator keeps a ThriveCart-only account "demo"; someone whose UltraCart store
// is DEMO signs in to the console through UltraCart, to set the ThriveCart secret word and the
// Iterable key. The sign-in must not reach "demo", even with a webhook of the attacker's store
// pointing at demo's URL; connecting the store makes an account of its own.
func TestBindingConsoleSignInCannotReachAnOperatorAccount(t *testing.T) {
	for _, mode := range merchantModes {
		t.Run(mode.name, func(t *testing.T) {
			f := newConsoleFixture(t)
			ctx := context.Background()
			f.fake.OmitWebhookMerchantIDs(mode.hide)
			f.put("demo", `{"thrivecart":{"secret":"operator-word"},"iterable":{"api_key":"operator-iterable-key"}}`)
			before, _ := f.env.Accounts.Get(ctx, "demo", f.env.Accounts.SecretNames()...)
			f.fake.AddWebhook("DEMO", ultracartapi.HubWebhook(hubURL+"/webhooks/ultracart/demo", "guess", "guess", 1<<20))

			resp := f.signInAs("DEMO")
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Body, "Nothing was changed") ||
				!strings.Contains(resp.Body, "console sign-in link") || hasSession(resp) {
				t.Fatalf("sign-in as DEMO: %d %v: %s", resp.StatusCode, resp.Cookies, resp.Body)
			}

			// Connected, the store gets an account of its own, and signing in opens that one.
			_, id := f.connectAs("DEMO")
			if id == "demo" || !accounts.IsStoreID(id) {
				t.Fatalf("DEMO connected as account %q", id)
			}
			f.put(id, `{`+f.destinations()+`}`) // the console checks an Iterable key with Iterable
			resp = f.signInAs("DEMO")
			if resp.StatusCode != http.StatusFound || !hasSession(resp) {
				t.Fatalf("sign-in after connecting: %d: %s", resp.StatusCode, resp.Body)
			}
			cookie := cookieValue(t, resp.Cookies)
			if page := f.do(http.MethodGet, "/console/home", nil, nil, []string{cookie}); !strings.Contains(page.Body, "Account <code>"+id+"</code>") {
				t.Fatalf("the session does not show %s: %s", id, page.Body)
			}
			form := f.settingsForm(cookie)
			form.Set("thrivecart.secret", "attacker-word")
			form.Set("iterable.api_key", itGoodKey)
			if resp := f.do(http.MethodPost, "/console/settings", nil, form, []string{cookie}); resp.StatusCode != http.StatusOK {
				t.Fatalf("settings: %d: %s", resp.StatusCode, resp.Body)
			}
			after, _ := f.env.Accounts.Get(ctx, "demo", f.env.Accounts.SecretNames()...)
			if after.Version != before.Version || !tcsource.CheckSecret(after, "operator-word") || after.SecretAt("iterable.api_key").Reveal() != "operator-iterable-key" {
				t.Errorf("demo changed: version %d → %d", before.Version, after.Version)
			}
			if _, err := f.env.Accounts.Binding(ctx, "demo"); !errors.Is(err, accounts.ErrNotBound) {
				t.Errorf("demo got bound: %v", err)
			}
		})
	}
}

// An account the operator wired to a store by hand (its webhook credentials typed into the
// store) is still not bound: signing in through UltraCart does not open it. The operator's
// console link is the way in.
func TestBindingUnboundAccountHasNoUltraCartSignIn(t *testing.T) {
	for _, mode := range merchantModes {
		t.Run(mode.name, func(t *testing.T) {
			f := newConsoleFixture(t)
			f.fake.OmitWebhookMerchantIDs(mode.hide)
			f.put("acme", `{"ultracart":{"webhook_username":"acme-user","webhook_password":"acme-password"}}`)
			f.fake.AddWebhook("ACME", ultracartapi.HubWebhook(hubURL+"/webhooks/ultracart/acme", "acme-user", "acme-password", 1<<20))
			if resp := f.signInAs("ACME"); resp.StatusCode != http.StatusForbidden || hasSession(resp) {
				t.Fatalf("sign-in to an unbound account: %d: %s", resp.StatusCode, resp.Body)
			}
		})
	}
}

// Attack 2: connecting as merchant ACME while the operator has an account "acme" must neither
// push acme's webhook password into ACME's store nor replace acme's UltraCart credentials.
func TestBindingConnectCannotTakeOverAnOperatorAccount(t *testing.T) {
	for _, mode := range merchantModes {
		t.Run(mode.name, func(t *testing.T) {
			f := newOAuthFixture(t, "")
			ctx := context.Background()
			f.fake.OmitWebhookMerchantIDs(mode.hide)
			if _, err := f.env.Accounts.Put(ctx, "acme", []byte(`{"ultracart":{"webhook_username":"acme-user","webhook_password":"acme-password-secret"}}`)); err != nil {
				t.Fatal(err)
			}
			conn, err := f.env.Connections.Put(ctx, connections.Connection{Account: "acme", Provider: connections.UltraCart,
				Kind: connections.KindSimpleKey, SimpleKey: "acme-simple-key"})
			if err != nil {
				t.Fatal(err)
			}
			before, _ := f.env.Accounts.Get(ctx, "acme", f.env.Accounts.SecretNames()...)
			// The store already has a webhook of another application, whose merchant_id (when
			// shown) names the store before cartrelay writes anything.
			other := f.fake.AddWebhook("ACME", ultracartapi.Webhook{WebhookURL: "https://shipping.example.com/hook", AuthenticationType: "none"})

			_, id := f.connectAs("ACME")
			if id == "acme" || !accounts.IsStoreID(id) {
				t.Fatalf("ACME connected as account %q", id)
			}
			hooks := f.fake.WebhooksOf("ACME")
			for _, h := range hooks {
				if h.BasicPassword == "acme-password-secret" || h.BasicUsername == "acme-user" || strings.HasSuffix(h.WebhookURL, "/acme") {
					t.Errorf("acme's webhook reached store ACME: %+v", h)
				}
			}
			if len(hooks) != 2 || !reflect.DeepEqual(hooks[0], other) {
				t.Errorf("store ACME's webhooks %+v, want the other application's untouched and cartrelay's", hooks)
			}
			after, _ := f.env.Accounts.Get(ctx, "acme", f.env.Accounts.SecretNames()...)
			if after.Version != before.Version {
				t.Errorf("acme changed: version %d → %d", before.Version, after.Version)
			}
			if c := f.connection("acme"); c.Version() != conn.Version() || c.Kind != connections.KindSimpleKey || c.SimpleKey != "acme-simple-key" || c.AccessToken != "" {
				t.Errorf("acme's connection replaced: %+v", c)
			}
			b, err := f.env.Accounts.Binding(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]string{false: "ACME", true: ""}[mode.hide]; b.MerchantID != want {
				t.Errorf("binding names merchant %q, want %q", b.MerchantID, want)
			}
			if !mode.hide && id != "uc-acme" {
				t.Errorf("ACME's account is %q, want uc-acme", id)
			}
		})
	}
}

// A store bound to an account reconnects it; another store cannot, even with a webhook that
// points at the account's URL, and never receives the account's credentials.
func TestBindingReconnectOnlyByTheBoundStore(t *testing.T) {
	for _, mode := range merchantModes {
		t.Run(mode.name, func(t *testing.T) {
			f := newOAuthFixture(t, "")
			ctx := context.Background()
			f.fake.OmitWebhookMerchantIDs(mode.hide)
			_, a := f.connectAs("AAA")
			aConn := f.connection(a)
			aAcct, _ := f.env.Accounts.Get(ctx, a, f.env.Accounts.SecretNames()...)
			aPass := aAcct.UltraCart.WebhookPassword.Reveal()
			decoy := f.fake.AddWebhook("BBB", ultracartapi.HubWebhook(hubURL+"/webhooks/ultracart/"+a, "not-it", "not-it", 1<<20))

			_, b := f.connectAs("BBB")
			if b == a {
				t.Fatalf("store BBB reconnected AAA's account %s", a)
			}
			if c := f.connection(a); c.AccessToken != aConn.AccessToken || c.Version() != aConn.Version() {
				t.Errorf("BBB's connect replaced %s's tokens", a)
			}
			for _, h := range f.fake.WebhooksOf("BBB") {
				if h.BasicPassword == aPass {
					t.Errorf("%s's webhook password reached store BBB: %+v", a, h)
				}
				if h.WebhookOID == decoy.WebhookOID && h.BasicPassword != "not-it" {
					t.Errorf("BBB's own webhook was rewritten: %+v", h)
				}
			}

			// AAA reconnects its own account: new tokens, the same webhook, updated in place.
			_, again := f.connectAs("AAA")
			if again != a {
				t.Fatalf("AAA reconnected as %s, want %s", again, a)
			}
			if c := f.connection(a); c.AccessToken == aConn.AccessToken || !f.fake.ValidAccessToken(c.AccessToken) {
				t.Errorf("AAA's reconnect kept the old tokens")
			}
			if hooks := f.fake.WebhooksOf("AAA"); len(hooks) != 1 || hooks[0].BasicPassword != aPass {
				t.Errorf("AAA's webhooks after the reconnect: %+v", hooks)
			}
		})
	}
}

// A store that connected while UltraCart named no merchant is recognised by its webhook and
// learns its merchant id when UltraCart first gives it; the console sign-in works throughout.
func TestBindingLearnsTheMerchantLater(t *testing.T) {
	f := newConsoleFixture(t)
	ctx := context.Background()
	f.fake.OmitWebhookMerchantIDs(true)
	_, id := f.connectAs("LATE")
	if b, err := f.env.Accounts.Binding(ctx, id); err != nil || b.MerchantID != "" {
		t.Fatalf("binding %+v, %v; want one without a merchant", b, err)
	}
	if resp := f.signInAs("LATE"); resp.StatusCode != http.StatusFound || !hasSession(resp) {
		t.Fatalf("sign-in by webhook: %d: %s", resp.StatusCode, resp.Body)
	}
	f.fake.OmitWebhookMerchantIDs(false)
	if _, again := f.connectAs("LATE"); again != id {
		t.Fatalf("reconnected as %s, want %s", again, id)
	}
	if b, err := f.env.Accounts.BindingOfMerchant(ctx, "LATE"); err != nil || b.Account != id {
		t.Fatalf("binding of LATE: %+v, %v", b, err)
	}
	if resp := f.signInAs("LATE"); resp.StatusCode != http.StatusFound || !hasSession(resp) {
		t.Fatalf("sign-in by merchant id: %d: %s", resp.StatusCode, resp.Body)
	}
	// With cartrelay's webhook removed from the store, nothing UltraCart answers names it: the
	// sign-in says to connect again, which finds the same account through the new webhook.
	for _, h := range f.fake.WebhooksOf("LATE") {
		f.fake.RemoveWebhook(h.WebhookOID)
	}
	if resp := f.signInAs("LATE"); resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Body, "restores it") {
		t.Fatalf("sign-in without a webhook: %d: %s", resp.StatusCode, resp.Body)
	}
	if _, again := f.connectAs("LATE"); again != id {
		t.Fatalf("reconnected without a webhook as %s, want %s", again, id)
	}
	if hooks := f.fake.WebhooksOf("LATE"); len(hooks) != 1 {
		t.Errorf("webhooks after the reconnect: %+v", hooks)
	}
	if resp := f.signInAs("LATE"); resp.StatusCode != http.StatusFound || !hasSession(resp) {
		t.Fatalf("sign-in after the reconnect: %d: %s", resp.StatusCode, resp.Body)
	}
}

// A new store's first connect, when UltraCart names no merchant, leaves one webhook at the
// account's URL, even after an earlier connect was interrupted between the insert and the
// binding.
func TestBindingReusesAnInterruptedConnectsWebhook(t *testing.T) {
	f := newOAuthFixture(t, "")
	f.fake.OmitWebhookMerchantIDs(true)
	left := f.fake.AddWebhook("NEW", ultracartapi.HubWebhook(hubURL+"/webhooks/ultracart/uc-nobodyhere", "u", "p", 1<<20))
	_, id := f.connectAs("NEW")
	hooks := f.fake.WebhooksOf("NEW")
	if len(hooks) != 1 || hooks[0].WebhookOID != left.WebhookOID || hooks[0].WebhookURL != hubURL+"/webhooks/ultracart/"+id {
		t.Errorf("webhooks %+v, want the left-over one pointed at %s", hooks, id)
	}
}

// Two merchant ids that fold to one name get two accounts.
func TestBindingFoldedMerchantIDsGetTwoAccounts(t *testing.T) {
	f := newOAuthFixture(t, "")
	_, a := f.connectAs("AC.ME")
	_, b := f.connectAs("AC-ME")
	if a != "uc-ac-me" || b != "uc-ac-me-2" {
		t.Errorf("accounts %q and %q, want uc-ac-me and uc-ac-me-2", a, b)
	}
}
