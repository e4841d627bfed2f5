package app_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/audit"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/iterable/iterablefake"
	"github.com/cartrelay/cartrelay/shared/ontraport"
	"github.com/cartrelay/cartrelay/shared/ontraport/ontraportfake"
)

// TestConsoleChecksDestinationKeys: an ONTRAPORT or Iterable key is checked with its vendor
// before it is saved; a refused key saves nothing of the post, and a vendor that cannot be
// reached says so rather than calling the key wrong.
func TestConsoleChecksDestinationKeys(t *testing.T) {
	f := newConsoleFixture(t)
	ctx := context.Background()
	f.put("shop", `{`+f.destinations()+`}`)
	cookie := f.session("shop")
	post := func(set map[string]string) (int, string) {
		t.Helper()
		return f.postSettings(&cookie, set)
	}

	status, body := post(map[string]string{"ontraport.app_id": opAppID, "ontraport.api_key": "op-wrong-key", "iterable.email_list_ids": "5"})
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "ONTRAPORT refused the App ID &#34;2_1234&#34; with this API key") ||
		strings.Contains(body, "op-wrong-key") {
		t.Fatalf("wrong ONTRAPORT key: %d: %s", status, body)
	}
	if a, _ := f.env.Accounts.Get(ctx, "shop"); a.SecretAt("ontraport.api_key").IsSet() || a.Text("iterable.email_list_ids") != "" || a.Text("ontraport.app_id") != "" {
		t.Fatalf("a refused key saved something: %+v", a.Settings)
	}
	if status, body := post(map[string]string{"ontraport.app_id": opAppID, "ontraport.api_key": opGoodKey}); status != http.StatusOK || !strings.Contains(body, "Saved.") {
		t.Fatalf("good ONTRAPORT key: %d: %s", status, body)
	}
	// A new app id is checked with the stored key.
	if status, body := post(map[string]string{"ontraport.app_id": "2_9999"}); status != http.StatusUnprocessableEntity || !strings.Contains(body, "2_9999") {
		t.Fatalf("an app id that does not go with the stored key: %d: %s", status, body)
	}
	// ONTRAPORT down is not a wrong key.
	f.op.SetFault(func(ontraportfake.Request) ontraportfake.Fault { return ontraportfake.ServerError })
	if status, body := post(map[string]string{"ontraport.api_key": opGoodKey}); status != http.StatusUnprocessableEntity ||
		!strings.Contains(body, "ONTRAPORT could not be reached to check the API key") {
		t.Fatalf("ONTRAPORT failing: %d: %s", status, body)
	}
	f.op.SetFault(nil)

	if status, body := post(map[string]string{"iterable.api_key": "it-wrong"}); status != http.StatusUnprocessableEntity ||
		!strings.Contains(body, "Iterable refused this API key in the US data center") {
		t.Fatalf("wrong Iterable key: %d: %s", status, body)
	}
	f.clk.Advance(time.Second) // entries of one instant have no order
	if status, body := post(map[string]string{"iterable.api_key": itGoodKey}); status != http.StatusOK || !strings.Contains(body, "Saved.") {
		t.Fatalf("good Iterable key: %d: %s", status, body)
	}
	a, _ := f.env.Accounts.Get(ctx, "shop", ontraport.APIKey, iterable.APIKey)
	if a.SecretAt("ontraport.api_key").Reveal() != opGoodKey || a.Text("ontraport.app_id") != opAppID || a.SecretAt("iterable.api_key").Reveal() != itGoodKey {
		t.Fatalf("saved keys: ontraport %v/%q, iterable %v", a.SecretAt("ontraport.api_key").IsSet(), a.Text("ontraport.app_id"), a.SecretAt("iterable.api_key").IsSet())
	}
	log, err := audit.List(ctx, f.env.Store, "shop", "", 10)
	if err != nil || len(log.Entries) != 2 || !strings.Contains(log.Entries[0].Summary, "iterable.api_key") ||
		!strings.Contains(log.Entries[1].Summary, "ontraport.api_key") || strings.Contains(log.Entries[1].Summary, opGoodKey) {
		t.Errorf("activity %+v %v, want the two saves naming the keys changed", log.Entries, err)
	}
}

// TestConsoleIterableListPicker: with a working key, the list settings are the project's own
// lists by name; a list the account has that Iterable no longer lists stays, ticked.
func TestConsoleIterableListPicker(t *testing.T) {
	f := newConsoleFixture(t)
	ctx := context.Background()
	news := f.it.AddList("Newsletter", "Standard")
	vip := f.it.AddList("VIP buyers", "Standard")
	f.it.AddList("Do not mail", "Suppression")
	f.put("shop", `{"iterable":{"base_url":"`+f.it.URL+`","api_key":"`+itGoodKey+`","email_list_ids":"`+strconv.FormatInt(news, 10)+`,999"}}`)
	cookie := f.session("shop")
	page := f.do(http.MethodGet, "/console/settings", nil, nil, []string{cookie})
	for _, want := range []string{"> Newsletter", "> VIP buyers", "#" + strconv.FormatInt(vip, 10), "list #999", "not among the project",
		`name="iterable.email_list_ids" value="` + strconv.FormatInt(news, 10) + `" checked`} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("settings page lacks %q", want)
		}
	}
	if strings.Contains(page.Body, "Do not mail") {
		t.Error("a suppression list is offered as a list to join")
	}
	form := f.settingsForm(cookie)
	form.Del("iterable.email_list_ids")
	form.Add("iterable.email_list_ids", strconv.FormatInt(vip, 10))
	form.Add("iterable.sms_list_ids", strconv.FormatInt(news, 10))
	if resp := f.do(http.MethodPost, "/console/settings", nil, form, []string{cookie}); resp.StatusCode != http.StatusOK {
		t.Fatalf("save: %d: %s", resp.StatusCode, resp.Body)
	}
	a, _ := f.env.Accounts.Get(ctx, "shop")
	if a.Text("iterable.email_list_ids") != strconv.FormatInt(vip, 10) || a.Text("iterable.sms_list_ids") != strconv.FormatInt(news, 10) {
		t.Errorf("saved lists: email %q, sms %q", a.Text("iterable.email_list_ids"), a.Text("iterable.sms_list_ids"))
	}

	// Iterable unreachable: the ids are a text box, and the page says why.
	f.it.Inject(iterablefake.Fault{Path: "/api/lists", Status: 503})
	page = f.do(http.MethodGet, "/console/settings", nil, nil, []string{cookie})
	if !strings.Contains(page.Body, "Iterable could not be reached to show the lists by name") ||
		!strings.Contains(page.Body, `name="iterable.email_list_ids" value="`+strconv.FormatInt(vip, 10)+`"`) {
		t.Errorf("settings with Iterable down: %s", page.Body)
	}
}

// TestConsoleTimezone: the account's time zone is a setting; an unknown one is refused, and the
// pages show times in the saved one.
func TestConsoleTimezone(t *testing.T) {
	f := newConsoleFixture(t)
	f.put("shop", `{}`)
	cookie := f.session("shop")
	form := f.settingsForm(cookie)
	form.Set("timezone", "Mars/Olympus")
	resp := f.do(http.MethodPost, "/console/settings", nil, form, []string{cookie})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(resp.Body, "not a known IANA time zone") {
		t.Fatalf("unknown zone: %d: %s", resp.StatusCode, resp.Body)
	}
	form.Set("timezone", "Europe/Berlin")
	if resp := f.do(http.MethodPost, "/console/settings", nil, form, []string{cookie}); resp.StatusCode != http.StatusOK ||
		!strings.Contains(resp.Body, `name="timezone" value="Europe/Berlin"`) {
		t.Fatalf("save the zone: %d: %s", resp.StatusCode, resp.Body)
	}
	if a, _ := f.env.Accounts.Get(context.Background(), "shop"); a.Timezone != "Europe/Berlin" {
		t.Errorf("timezone %q", a.Timezone)
	}
	// The activity log's time is in the account's zone: 12:00 UTC is 13:00 in Berlin in November.
	home := f.do(http.MethodGet, "/console/home", nil, nil, []string{cookie})
	if !strings.Contains(home.Body, "2026-11-20 13:00 CET") {
		t.Errorf("home does not show times in the account's zone: %s", home.Body)
	}
}
