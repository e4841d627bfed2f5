package app_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/signedhooks"
)

// TestConsoleWebhookEndpoints: the settings form has the signed webhooks' section, generated
// from its registration: an endpoint is added with its secret, shown with the secret only as
// set, refused with the reason when its URL is not https, and removed.
func TestConsoleWebhookEndpoints(t *testing.T) {
	f := newConsoleFixture(t)
	ctx := context.Background()
	f.put("shop", `{}`)
	cookie := f.session("shop")
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("w", 32)))
	post := func(set map[string]string) (int, string) {
		t.Helper()
		return f.postSettings(&cookie, set)
	}

	status, body := post(map[string]string{"new:webhooks.endpoints": "crm", "new:webhooks.endpoints.url": "http://crm.example.com/in",
		"new:webhooks.endpoints.secret": secret})
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "endpoints must be https") || strings.Contains(body, secret) {
		t.Fatalf("an http endpoint: %d: %s", status, body)
	}
	status, body = post(map[string]string{"webhooks.enabled": "on", "new:webhooks.endpoints": "crm",
		"new:webhooks.endpoints.url": "https://crm.example.com/in", "new:webhooks.endpoints.secret": secret,
		"new:webhooks.endpoints.kinds": "OrderPlaced"})
	if status != http.StatusOK || !strings.Contains(body, "Saved.") {
		t.Fatalf("adding an endpoint: %d: %s", status, body)
	}
	a, err := f.env.Accounts.Get(ctx, "shop", signedhooks.Secrets()...)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Flag("webhooks.enabled") || a.Text("webhooks.endpoints.crm.url") != "https://crm.example.com/in" ||
		a.SecretAt("webhooks.endpoints.crm.secret").Reveal() != secret || a.Text("webhooks.endpoints.crm.kinds") != "OrderPlaced" {
		t.Fatalf("saved %v", a.Settings)
	}
	page := f.do(http.MethodGet, "/console/settings", nil, nil, []string{cookie}).Body
	for _, want := range []string{"Signed webhooks", `name="webhooks.endpoints.crm.url" value="https://crm.example.com/in"`, "crm: Signing secret <small>(set)</small>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the settings page does not show %q", want)
		}
	}
	if strings.Contains(page, secret) {
		t.Error("the settings page shows the secret")
	}
	// Saving the page as it is keeps the endpoint and its secret.
	if status, body := post(nil); status != http.StatusOK {
		t.Fatalf("saving unchanged: %d: %s", status, body)
	}
	if a, _ := f.env.Accounts.Get(ctx, "shop", signedhooks.Secrets()...); a.SecretAt("webhooks.endpoints.crm.secret").Reveal() != secret {
		t.Fatal("saving the page unchanged lost the endpoint's secret")
	}
	if status, body := post(map[string]string{"remove:webhooks.endpoints.crm": "on", "webhooks.enabled": ""}); status != http.StatusOK {
		t.Fatalf("removing the endpoint: %d: %s", status, body)
	}
	if a, err := f.env.Accounts.Get(ctx, "shop"); err != nil || len(a.EntryNames(signedhooks.Section())) != 0 || a.Flag("webhooks.enabled") {
		t.Fatalf("after removing: %v, %v", a.Settings, err)
	}
}

// postSettings posts the settings form as the page has it, with set changed, and follows the
// session a key change renews.
func (f *consoleFixture) postSettings(cookie *string, set map[string]string) (int, string) {
	f.t.Helper()
	form := f.settingsForm(*cookie)
	for k, v := range set {
		form.Set(k, v)
	}
	resp := f.do(http.MethodPost, "/console/settings", nil, form, []string{*cookie})
	for _, c := range resp.Cookies {
		if strings.HasPrefix(c, "cartrelay_console=") {
			*cookie = cookieValue(f.t, resp.Cookies)
		}
	}
	return resp.StatusCode, resp.Body
}
