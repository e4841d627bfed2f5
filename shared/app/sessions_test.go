package app_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/onetime"
)

// signedIn reports whether cookie opens the dashboard.
func (f *consoleFixture) signedIn(cookie string) bool {
	f.t.Helper()
	resp := f.do(http.MethodGet, "/console/home", nil, nil, []string{cookie})
	return resp.StatusCode == http.StatusOK
}

// dashboardCSRF is the CSRF token of the sign-out form on cookie's dashboard.
func (f *consoleFixture) dashboardCSRF(cookie string) string {
	f.t.Helper()
	m := csrfField.FindStringSubmatch(f.do(http.MethodGet, "/console/home", nil, nil, []string{cookie}).Body)
	if m == nil {
		f.t.Fatal("no CSRF token on the dashboard's sign-out form")
	}
	return m[1]
}

// Signing out ends the session everywhere: a copy of the cookie (another browser, or a stolen
// one) stops working too. A sign-in afterwards works.
func TestConsoleSignOutEndsEverySession(t *testing.T) {
	f := newConsoleFixture(t)
	f.put("shop", `{}`)
	here, elsewhere := f.session("shop"), f.session("shop")
	f.clk.Advance(time.Minute)
	resp := f.do(http.MethodPost, "/console/logout", nil, url.Values{"csrf": {f.dashboardCSRF(here)}}, []string{here})
	if resp.StatusCode != http.StatusOK || len(resp.Cookies) != 1 || !strings.Contains(resp.Cookies[0], "Max-Age=0") {
		t.Fatalf("sign-out: %d %v", resp.StatusCode, resp.Cookies)
	}
	for label, cookie := range map[string]string{"the signed-out cookie replayed": here, "another browser's session": elsewhere} {
		if f.signedIn(cookie) {
			t.Errorf("%s still opens the console", label)
		}
		form := f.settingsFormOrNil(cookie)
		if form != nil {
			t.Errorf("%s still reads the settings", label)
		}
	}
	f.clk.Advance(time.Second)
	if again := f.session("shop"); !f.signedIn(again) {
		t.Error("a sign-in after the sign-out does not work")
	}
}

// A sign-out posted from another site (without the page's CSRF token) only clears that
// browser's cookie; it cannot end the merchant's other sessions.
func TestConsoleForgedSignOutEndsNothingElse(t *testing.T) {
	f := newConsoleFixture(t)
	f.put("shop", `{}`)
	cookie := f.session("shop")
	f.clk.Advance(time.Minute)
	if resp := f.do(http.MethodPost, "/console/logout", nil, url.Values{}, []string{cookie}); resp.StatusCode != http.StatusOK {
		t.Fatalf("forged sign-out: %d", resp.StatusCode)
	}
	if !f.signedIn(cookie) {
		t.Error("a sign-out without the CSRF token ended the session")
	}
}

// Changing the account's keys ends every other session; the browser that made the change gets
// a new cookie. Other settings end nothing.
func TestConsoleKeyChangeEndsOtherSessions(t *testing.T) {
	f := newConsoleFixture(t)
	f.put("shop", `{`+f.destinations()+`}`)
	mine, theirs := f.session("shop"), f.session("shop")
	f.clk.Advance(time.Minute)

	form := f.settingsForm(mine)
	form.Set("iterable.email_list_ids", "12")
	if resp := f.do(http.MethodPost, "/console/settings", nil, form, []string{mine}); resp.StatusCode != http.StatusOK || len(resp.Cookies) != 0 {
		t.Fatalf("a change without keys: %d %v", resp.StatusCode, resp.Cookies)
	}
	if !f.signedIn(theirs) {
		t.Fatal("a change of a list id ended another session")
	}

	form = f.settingsForm(mine)
	form.Set("iterable.api_key", itGoodKey)
	resp := f.do(http.MethodPost, "/console/settings", nil, form, []string{mine})
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, "Saved.") {
		t.Fatalf("key change: %d: %s", resp.StatusCode, resp.Body)
	}
	renewed := cookieValue(t, resp.Cookies)
	if f.signedIn(theirs) || f.signedIn(mine) {
		t.Error("sessions from before the key change still open the console")
	}
	if !f.signedIn(renewed) {
		t.Fatal("the browser that changed the key was signed out")
	}
	// The page after the save carries the new session's CSRF token: its form posts.
	if m := csrfField.FindStringSubmatch(resp.Body); m == nil || m[1] != f.dashboardCSRF(renewed) {
		t.Error("the settings page after the key change carries a stale CSRF token")
	}
}

// settingsFormOrNil is the settings form, or nil when the cookie does not open the page.
func (f *consoleFixture) settingsFormOrNil(cookie string) url.Values {
	f.t.Helper()
	resp := f.do(http.MethodGet, "/console/settings", nil, nil, []string{cookie})
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	return f.settingsForm(cookie)
}

var linkButton = regexp.MustCompile(`<form method="post" action="([^"]+)">`)

// consoleLink issues a sign-in link as `cartrelay console link` does and returns its path.
func (f *consoleFixture) consoleLink(account string) string {
	f.t.Helper()
	token, _, err := onetime.New(f.env.Store, f.clk).Issue(context.Background(), onetime.ConsoleLink, account, app.ConsoleLinkTTL)
	if err != nil {
		f.t.Fatal(err)
	}
	return "/console/link/" + token
}

func (f *consoleFixture) postLink(path, origin string) events.APIGatewayV2HTTPResponse {
	f.t.Helper()
	req := httpReq(http.MethodPost, path, "application/x-www-form-urlencoded", nil, map[string]string{"origin": origin, "host": "hub.example.com"})
	resp, err := f.env.App.Connect(context.Background(), req)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp
}

// A console sign-in link opens the account's console once, within ten minutes, and needs no
// UltraCart application; opening it (as a link preview would) does not use it.
func TestConsoleLink(t *testing.T) {
	f := newConsoleFixtureWith(t, func(c *app.Config) { c.UltraCartClientID = "" })
	f.put("shop", `{}`)
	path := f.consoleLink("shop")
	for range 2 {
		page := f.do(http.MethodGet, path, nil, nil, nil)
		m := linkButton.FindStringSubmatch(page.Body)
		if page.StatusCode != http.StatusOK || !strings.Contains(page.Body, "account <code>shop</code>") || m == nil || m[1] != hubURL+path {
			t.Fatalf("the link's page: %d: %s", page.StatusCode, page.Body)
		}
	}
	if resp := f.postLink(path, "https://evil.example.net"); resp.StatusCode != http.StatusForbidden || hasSession(resp) {
		t.Fatalf("posted from another site: %d: %s", resp.StatusCode, resp.Body)
	}
	resp := f.postLink(path, hubURL)
	if resp.StatusCode != http.StatusFound || resp.Headers["location"] != hubURL+"/console/home" || !hasSession(resp) {
		t.Fatalf("sign-in by link: %d %v: %s", resp.StatusCode, resp.Headers, resp.Body)
	}
	if !f.signedIn(cookieValue(t, resp.Cookies)) {
		t.Fatal("the link's session does not open the console")
	}
	for label, r := range map[string]events.APIGatewayV2HTTPResponse{
		"reopened": f.do(http.MethodGet, path, nil, nil, nil), "posted again": f.postLink(path, hubURL)} {
		if r.StatusCode != http.StatusGone || !strings.Contains(r.Body, "already used") || hasSession(r) {
			t.Errorf("%s: %d: %s", label, r.StatusCode, r.Body)
		}
	}

	late := f.consoleLink("shop")
	f.clk.Advance(app.ConsoleLinkTTL)
	if r := f.postLink(late, hubURL); r.StatusCode != http.StatusGone || !strings.Contains(r.Body, "expired") || hasSession(r) {
		t.Errorf("expired link: %d: %s", r.StatusCode, r.Body)
	}
	if r := f.postLink("/console/link/made-up", ""); r.StatusCode != http.StatusNotFound || hasSession(r) {
		t.Errorf("made-up link: %d: %s", r.StatusCode, r.Body)
	}
}
