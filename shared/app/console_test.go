package app_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/console"
	"github.com/cartrelay/cartrelay/shared/iterable/iterablefake"
	"github.com/cartrelay/cartrelay/shared/ontraport/ontraportfake"
	"github.com/cartrelay/cartrelay/shared/thrivecart/tcsource"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartfake"
)

const consoleKey = "0123456789abcdef0123456789abcdef-console-test-key"

// consoleFixture is the OAuth fixture with the console on and ThriveCart's, ONTRAPORT's and
// Iterable's APIs faked (an account reaches the last two through its base_url settings:
// f.destinations gives the patch).
type consoleFixture struct {
	*oauthFixture
	tc *thrivecartfake.Server
	op *ontraportfake.Server
	it *iterablefake.Server
}

// Keys the fakes accept.
const (
	opAppID   = "2_1234"
	opGoodKey = "op-good-key-0001"
	itGoodKey = "it-good-key-0001"
)

// destinations is the account-file patch fragment pointing ONTRAPORT and Iterable at the fakes.
func (f *consoleFixture) destinations() string {
	return `"ontraport":{"base_url":"` + f.op.URL + `"},"iterable":{"base_url":"` + f.it.URL + `"}`
}

func newConsoleFixture(t *testing.T) *consoleFixture {
	t.Helper()
	return newConsoleFixtureWith(t, nil)
}

// newConsoleFixtureWith is newConsoleFixture with configure applied to the runtime's Config.
func newConsoleFixtureWith(t *testing.T, configure func(*app.Config)) *consoleFixture {
	t.Helper()
	tc := thrivecartfake.New("Demo Store", "tc-good-key")
	t.Cleanup(tc.Close)
	op := ontraportfake.New(ontraportfake.Options{AppID: opAppID, APIKey: opGoodKey})
	t.Cleanup(op.Close)
	spec, _ := iterablefake.FindSpec()
	it, err := iterablefake.New(iterablefake.Options{APIKey: itGoodKey, SpecPath: spec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(it.Close)
	f := newOAuthFixtureWith(t, "", func(c *app.Config) {
		c.ConsoleSessionKey = consoleKey
		c.ThriveCartBaseURL = tc.URL
		if configure != nil {
			configure(c)
		}
	})
	return &consoleFixture{oauthFixture: f, tc: tc, op: op, it: it}
}

func (f *consoleFixture) do(method, path string, query map[string]string, form url.Values, cookies []string) events.APIGatewayV2HTTPResponse {
	f.t.Helper()
	req := httpReq(method, path, "application/x-www-form-urlencoded", []byte(form.Encode()), nil)
	req.QueryStringParameters = query
	req.Cookies = cookies
	resp, err := f.env.App.Connect(context.Background(), req)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp
}

// session issues a session for account directly, as a sign-in to it would.
func (f *consoleFixture) session(account string) string {
	f.t.Helper()
	s, err := console.NewSessions(consoleKey, hubURL)
	if err != nil {
		f.t.Fatal(err)
	}
	sess, err := s.Issue(account, f.clk.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	return cookieValue(f.t, []string{s.SetCookie(sess, f.clk.Now())})
}

func (f *consoleFixture) put(id, patch string) {
	f.t.Helper()
	if _, err := f.env.Accounts.Put(context.Background(), id, []byte(patch)); err != nil {
		f.t.Fatal(err)
	}
}

// cookieValue is the "name=value" of the console cookie among Set-Cookie values.
func cookieValue(t testing.TB, setCookies []string) string {
	t.Helper()
	for _, c := range setCookies {
		if strings.HasPrefix(c, console.CookieName+"=") {
			nv, _, _ := strings.Cut(c, ";")
			return nv
		}
	}
	t.Fatalf("no console cookie in %v", setCookies)
	return ""
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// settingsForm is the settings page's form as the browser would post it unchanged.
func (f *consoleFixture) settingsForm(cookie string) url.Values {
	f.t.Helper()
	resp := f.do(http.MethodGet, "/console/settings", nil, nil, []string{cookie})
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("settings: %d: %s", resp.StatusCode, resp.Body)
	}
	form := url.Values{}
	m := csrfField.FindStringSubmatch(resp.Body)
	if m == nil {
		f.t.Fatalf("no CSRF token on the page: %s", resp.Body)
	}
	form.Set("csrf", m[1])
	for _, tag := range inputTag.FindAllString(resp.Body, -1) {
		a := attrs(tag)
		switch {
		case a["name"] == "" || a["name"] == "csrf":
		case a["type"] == "text":
			form.Set(a["name"], a["value"])
		case a["type"] == "checkbox" && a["checked"] == "checked":
			v := a["value"]
			if v == "" {
				v = "on"
			}
			form.Add(a["name"], v)
		}
	}
	return form
}

var (
	inputTag  = regexp.MustCompile(`<input [^>]*>`)
	attrValue = regexp.MustCompile(`([a-z-]+)(?:="([^"]*)")?`)
)

// attrs reads an HTML tag's attributes (a bare one, like checked, has its own name as value).
func attrs(tag string) map[string]string {
	out := map[string]string{}
	for _, m := range attrValue.FindAllStringSubmatch(strings.TrimSuffix(strings.TrimPrefix(tag, "<input "), ">"), -1) {
		v := html.UnescapeString(m[2])
		if !strings.Contains(m[0], "=") {
			v = m[1]
		}
		out[m[1]] = v
	}
	return out
}

func TestConsoleSignIn(t *testing.T) {
	f := newConsoleFixture(t)
	if resp := f.finish(f.start()); resp.StatusCode != http.StatusOK {
		t.Fatalf("connect: %d: %s", resp.StatusCode, resp.Body)
	}
	hooksBefore := len(f.fake.Calls())
	fl := f.authorize(f.do(http.MethodGet, "/console/login", nil, nil, nil))
	resp := f.finish(fl)
	if resp.StatusCode != http.StatusFound || resp.Headers["location"] != hubURL+"/console/home" {
		t.Fatalf("callback: %d %v: %s", resp.StatusCode, resp.Headers, resp.Body)
	}
	var set string
	for _, c := range resp.Cookies {
		if strings.HasPrefix(c, console.CookieName+"=") {
			set = c
		}
	}
	for _, want := range []string{"HttpOnly", "Secure", "SameSite=Lax", "Path=/console/", "Max-Age=43200"} {
		if !strings.Contains(set, want) {
			t.Errorf("session cookie %q lacks %s", set, want)
		}
	}
	// The sign-in only read UltraCart (the token and the webhook listing) and wrote nothing.
	for _, c := range f.fake.Calls()[hooksBefore:] {
		if c.Method != http.MethodGet && !strings.Contains(c.Path, "oauth") {
			t.Errorf("sign-in called %s %s", c.Method, c.Path)
		}
	}
	cookie := cookieValue(t, resp.Cookies)
	page := f.do(http.MethodGet, "/console/home", nil, nil, []string{cookie})
	for _, want := range []string{"uc-demo-store", hubURL + "/webhooks/ultracart/uc-demo-store", hubURL + "/webhooks/thrivecart/uc-demo-store",
		"<strong>connected</strong>", "orders", "refunds", "/console/settings", "/console/logout"} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("dashboard lacks %q: %s", want, page.Body)
		}
	}
	if page.StatusCode != http.StatusOK || page.Headers["x-frame-options"] != "DENY" {
		t.Errorf("dashboard: %d %v", page.StatusCode, page.Headers)
	}
}

func TestConsoleSignInNeedsAnAccount(t *testing.T) {
	f := newConsoleFixture(t)
	resp := f.finish(f.authorize(f.do(http.MethodGet, "/console/login", nil, nil, nil)))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Body, "Nothing was changed") || !strings.Contains(resp.Body, "console sign-in link") {
		t.Fatalf("%d: %s", resp.StatusCode, resp.Body)
	}
	for _, c := range resp.Cookies {
		if strings.HasPrefix(c, console.CookieName+"=") {
			t.Errorf("a session was set: %s", c)
		}
	}
	f.assertNothingStored()
}

func TestConsoleWithoutSession(t *testing.T) {
	f := newConsoleFixture(t)
	f.put("demo-store", `{}`)
	for _, path := range []string{"/console/", "/console/home", "/console/settings", "/console"} {
		resp := f.do(http.MethodGet, path, nil, nil, nil)
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Headers["location"], hubURL+"/console/") {
			t.Errorf("%s: %d %v", path, resp.StatusCode, resp.Headers)
		}
	}
	if resp := f.do(http.MethodGet, "/console/", nil, nil, nil); resp.Headers["location"] != hubURL+"/console/login" {
		t.Errorf("no session goes to %q", resp.Headers["location"])
	}
	resp := f.do(http.MethodPost, "/console/settings", nil, url.Values{"iterable.enabled": {"on"}}, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("post without a session: %d", resp.StatusCode)
	}
	login := f.do(http.MethodGet, "/console/login", nil, nil, nil)
	if login.StatusCode != http.StatusFound || !strings.HasPrefix(login.Headers["location"], f.fake.URL+"/rest/v2/oauth/authorize?") {
		t.Errorf("login: %d %v", login.StatusCode, login.Headers)
	}
}

func TestConsoleRefusesBadSessions(t *testing.T) {
	f := newConsoleFixture(t)
	f.put("demo-store", `{}`)
	good := f.session("demo-store")
	name, value, _ := strings.Cut(good, "=")
	payload, sig, _ := strings.Cut(value, ".")

	other, err := console.NewSessions(strings.Repeat("k", 32), hubURL)
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.Issue("demo-store", f.clk.Now())

	flipped := []byte(sig)
	flipped[0] ^= 1
	cases := map[string]string{
		"tampered signature": name + "=" + payload + "." + string(flipped),
		"tampered payload":   name + "=" + strings.ToUpper(payload[:4]) + payload[4:] + "." + sig,
		"no signature":       name + "=" + payload,
		"another key":        cookieValue(t, []string{other.SetCookie(foreign, f.clk.Now())}),
	}
	for label, cookie := range cases {
		resp := f.do(http.MethodGet, "/console/", nil, nil, []string{cookie})
		if resp.StatusCode != http.StatusFound || resp.Headers["location"] != hubURL+"/console/login" {
			t.Errorf("%s: %d %v", label, resp.StatusCode, resp.Headers)
		}
	}
	if resp := f.do(http.MethodGet, "/console/", nil, nil, []string{good}); resp.StatusCode != http.StatusOK {
		t.Fatalf("good session: %d", resp.StatusCode)
	}
	f.clk.Advance(console.SessionTTL)
	if resp := f.do(http.MethodGet, "/console/", nil, nil, []string{good}); resp.StatusCode != http.StatusFound {
		t.Errorf("expired session: %d", resp.StatusCode)
	}
}

func TestConsoleShowsOnlyTheSessionsAccount(t *testing.T) {
	f := newConsoleFixture(t)
	ctx := context.Background()
	f.put("shop-a", `{"iterable":{"data_center":"us"}}`)
	f.put("shop-b", `{"iterable":{"data_center":"eu","api_key":"b-secret-iterable-key","email_list_ids":"777"}}`)
	a := f.session("shop-a")
	b0, _ := f.env.Accounts.Get(ctx, "shop-b", f.env.Accounts.SecretNames()...)

	// Parameters naming B change nothing: the session decides.
	resp := f.do(http.MethodGet, "/console/settings", map[string]string{"account": "shop-b", "id": "shop-b"}, nil, []string{a})
	// The stylesheet's name carries a hash of its content, which may hold any digits.
	page := regexp.MustCompile(`/console/assets/[^"]+`).ReplaceAllString(resp.Body, "")
	if !strings.Contains(page, "shop-a") || strings.Contains(page, "shop-b") || strings.Contains(page, "777") {
		t.Errorf("A's session saw B: %s", resp.Body)
	}
	form := f.settingsForm(a)
	form.Set("account", "shop-b")
	form.Set("id", "shop-b")
	form.Set("iterable.email_list_ids", "123")
	if resp := f.do(http.MethodPost, "/console/settings", map[string]string{"account": "shop-b"}, form, []string{a}); resp.StatusCode != http.StatusOK {
		t.Fatalf("post: %d: %s", resp.StatusCode, resp.Body)
	}
	if resp := f.do(http.MethodPost, "/console/settings/shop-b", nil, form, []string{a}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("post to a path naming B: %d", resp.StatusCode)
	}
	acctA, _ := f.env.Accounts.Get(ctx, "shop-a", f.env.Accounts.SecretNames()...)
	b1, _ := f.env.Accounts.Get(ctx, "shop-b", f.env.Accounts.SecretNames()...)
	if acctA.Text("iterable.email_list_ids") != "123" {
		t.Errorf("A's list ids %q, want 123", acctA.Text("iterable.email_list_ids"))
	}
	if b1.Version != b0.Version || b1.Text("iterable.email_list_ids") != "777" {
		t.Errorf("B changed through A's session: %+v", b1.Settings)
	}

	// B's CSRF token does not work with A's cookie.
	formB := f.settingsForm(f.session("shop-b"))
	formB.Set("iterable.email_list_ids", "999")
	if resp := f.do(http.MethodPost, "/console/settings", nil, formB, []string{a}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("B's token with A's cookie: %d", resp.StatusCode)
	}
}

func TestConsoleSettingsCSRF(t *testing.T) {
	f := newConsoleFixture(t)
	f.put("demo-store", `{}`)
	cookie := f.session("demo-store")
	form := f.settingsForm(cookie)
	form.Set("iterable.email_list_ids", "42")
	for label, token := range map[string]string{"missing": "", "bad": "not-the-token", "another session's": csrfField.FindStringSubmatch(
		f.do(http.MethodGet, "/console/settings", nil, nil, []string{f.session("demo-store")}).Body)[1]} {
		bad := url.Values{}
		for k, v := range form {
			bad[k] = v
		}
		bad.Set("csrf", token)
		resp := f.do(http.MethodPost, "/console/settings", nil, bad, []string{cookie})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Body, "nothing was changed") {
			t.Errorf("%s token: %d: %s", label, resp.StatusCode, resp.Body)
		}
	}
	if a, _ := f.env.Accounts.Get(context.Background(), "demo-store", f.env.Accounts.SecretNames()...); a.Text("iterable.email_list_ids") != "" {
		t.Errorf("saved without a valid token: %q", a.Text("iterable.email_list_ids"))
	}
}

func TestConsoleSettingsValidate(t *testing.T) {
	f := newConsoleFixture(t)
	f.put("demo-store", `{"iterable":{"review_wait":"48h"}}`)
	cookie := f.session("demo-store")
	form := f.settingsForm(cookie)
	if form.Get("iterable.review_wait") != "48h" {
		t.Fatalf("the form does not show the stored value: %v", form)
	}
	form.Set("iterable.review_wait", "soonish")
	form.Set("iterable.email_list_ids", "55")
	resp := f.do(http.MethodPost, "/console/settings", nil, form, []string{cookie})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(resp.Body, "iterable.review_wait") ||
		!strings.Contains(resp.Body, "soonish") || !strings.Contains(resp.Body, "Nothing was saved") {
		t.Fatalf("%d: %s", resp.StatusCode, resp.Body)
	}
	a, _ := f.env.Accounts.Get(context.Background(), "demo-store", f.env.Accounts.SecretNames()...)
	if a.Text("iterable.review_wait") != "48h" || a.Text("iterable.email_list_ids") != "" {
		t.Errorf("a refused post saved: %+v", a.Settings)
	}
}

func TestConsoleSecretsAndThriveCartKey(t *testing.T) {
	f := newConsoleFixture(t)
	ctx := context.Background()
	f.put("demo-store", `{"ontraport":{"app_id":"2_1234","api_key":"op-secret-value-1"}}`)
	cookie := f.session("demo-store")
	page := f.do(http.MethodGet, "/console/settings", nil, nil, []string{cookie})
	if strings.Contains(page.Body, "op-secret-value-1") || !strings.Contains(page.Body, "API key <small>(set)</small>") {
		t.Errorf("secret shown or not marked set: %s", page.Body)
	}

	// A refused key is not saved, and neither is anything else in the post.
	form := f.settingsForm(cookie)
	form.Set("thrivecart.api_key", "tc-wrong-key")
	form.Set("iterable.email_list_ids", "9")
	resp := f.do(http.MethodPost, "/console/settings", nil, form, []string{cookie})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(resp.Body, "ThriveCart refused the API key") ||
		strings.Contains(resp.Body, "tc-wrong-key") {
		t.Fatalf("bad key: %d: %s", resp.StatusCode, resp.Body)
	}
	if a, _ := f.env.Accounts.Get(ctx, "demo-store", f.env.Accounts.SecretNames()...); a.ThriveCart.APIKey.IsSet() || a.Text("iterable.email_list_ids") != "" {
		t.Errorf("refused key saved: %+v", a.Settings)
	}

	form = f.settingsForm(cookie)
	form.Set("thrivecart.api_key", "tc-good-key")
	form.Set("thrivecart.secret", "TCSECRETWORD")
	resp = f.do(http.MethodPost, "/console/settings", nil, form, []string{cookie})
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, "Saved.") || strings.Contains(resp.Body, "tc-good-key") {
		t.Fatalf("good key: %d: %s", resp.StatusCode, resp.Body)
	}
	a, _ := f.env.Accounts.Get(ctx, "demo-store", f.env.Accounts.SecretNames()...)
	if a.ThriveCart.APIKey.Reveal() != "tc-good-key" || !tcsource.CheckSecret(a, "TCSECRETWORD") || a.SecretAt("ontraport.api_key").Reveal() != "op-secret-value-1" {
		t.Errorf("after save: thrivecart key %v, ontraport key kept %v", a.ThriveCart.APIKey.IsSet(), a.SecretAt("ontraport.api_key").Reveal() == "op-secret-value-1")
	}
	if f.tc.Pings() != 2 {
		t.Errorf("pings %d, want 2", f.tc.Pings())
	}

	// An unchanged form keeps the secrets and pings nothing; the remove box deletes one.
	form = f.settingsForm(cookie)
	form.Set("clear:ontraport.api_key", "on")
	if resp := f.do(http.MethodPost, "/console/settings", nil, form, []string{cookie}); resp.StatusCode != http.StatusOK {
		t.Fatalf("resave: %d: %s", resp.StatusCode, resp.Body)
	}
	a, _ = f.env.Accounts.Get(ctx, "demo-store", f.env.Accounts.SecretNames()...)
	if a.ThriveCart.APIKey.Reveal() != "tc-good-key" || a.SecretAt("ontraport.api_key").IsSet() || f.tc.Pings() != 2 {
		t.Errorf("resave: thrivecart %v, ontraport %v, pings %d", a.ThriveCart.APIKey.IsSet(), a.SecretAt("ontraport.api_key").IsSet(), f.tc.Pings())
	}
}

func TestConsoleLogout(t *testing.T) {
	f := newConsoleFixture(t)
	f.put("demo-store", `{}`)
	cookie := f.session("demo-store")
	if resp := f.do(http.MethodGet, "/console/logout", nil, nil, []string{cookie}); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET logout: %d", resp.StatusCode)
	}
	resp := f.do(http.MethodPost, "/console/logout", nil, url.Values{}, []string{cookie})
	if resp.StatusCode != http.StatusOK || len(resp.Cookies) != 1 {
		t.Fatalf("logout: %d %v", resp.StatusCode, resp.Cookies)
	}
	for _, want := range []string{console.CookieName + "=;", "Max-Age=0", "Path=/console/"} {
		if !strings.Contains(resp.Cookies[0], want) {
			t.Errorf("logout cookie %q lacks %s", resp.Cookies[0], want)
		}
	}
}

func TestConsoleOffWithoutKey(t *testing.T) {
	for _, key := range []string{"", "too-short"} {
		f := newOAuthFixtureWith(t, "", func(c *app.Config) { c.ConsoleSessionKey = key })
		for _, path := range []string{"/console/", "/console/login"} {
			resp := f.get(path, nil, nil)
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(resp.Body, "CONSOLE_SESSION_KEY") {
				t.Errorf("key %q, %s: %d: %s", key, path, resp.StatusCode, resp.Body)
			}
		}
	}
}

// The sign-in's time limit is the OAuth state's: a console login left open is refused.
func TestConsoleSignInExpiredState(t *testing.T) {
	f := newConsoleFixture(t)
	f.put("demo-store", `{}`)
	fl := f.authorize(f.do(http.MethodGet, "/console/login", nil, nil, nil))
	f.clk.Advance(11 * time.Minute)
	resp := f.finish(fl)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Body, "expired") {
		t.Fatalf("%d: %s", resp.StatusCode, resp.Body)
	}
}

// An account no store is bound to does not offer /connect, which would make a new account: it
// says how its merchant gets its store bound to it.
func TestConsoleUnboundAccountOffersNoConnect(t *testing.T) {
	f := newConsoleFixture(t)
	f.put("acme", `{}`)
	page := f.do(http.MethodGet, "/console/home", nil, nil, []string{f.session("acme")})
	if page.StatusCode != http.StatusOK || strings.Contains(page.Body, `href="`+hubURL+`/connect"`) ||
		!strings.Contains(page.Body, "cartrelay invites create --account acme") {
		t.Errorf("dashboard of an unbound account: %d: %s", page.StatusCode, page.Body)
	}
	// Once a store is bound to it, a lost connection is mended by connecting again.
	_, id := f.connectAs("ACME")
	page = f.do(http.MethodGet, "/console/home", nil, nil, []string{f.session(id)})
	if strings.Contains(page.Body, "invites create") {
		t.Errorf("dashboard of a bound account: %s", page.Body)
	}
}
