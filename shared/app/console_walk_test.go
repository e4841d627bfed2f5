package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/cli"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/ontraport/ontraportfake"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/reports"
)

// TestConsoleWalkInBrowser is a merchant's session in headless Chromium against the hub as
// `cartrelay serve` runs it, on the account `cartrelay demo` makes (its synthetic history of
// three years with the reports built from it, and its sample events posted to the hub). On top
// of the demo data the test adds what an operator meets at 2 a.m., since the demo has neither:
// ONTRAPORT refusing a key that was revoked (an order's delivery failed and was parked) and an
// order in a currency that does not exist (quarantined). The operator's `cartrelay console
// link` signs in; every page of the console is opened and photographed (under the test's
// artifact directory: go test -run TestConsoleWalkInBrowser -artifacts -outputdir DIR
// ./shared/app/); the key is fixed in Settings (checked with ONTRAPORT before it is saved), the
// failed delivery replayed and seen delivered, and the quarantined event discarded.
func TestConsoleWalkInBrowser(t *testing.T) {
	browser := newBrowser(t)
	op := ontraportfake.New(ontraportfake.Options{AppID: opAppID, APIKey: opGoodKey})
	t.Cleanup(op.Close)
	hub := startBrowserHubWith(t, func(c *app.Config) {
		c.ConsoleSessionKey = consoleKey
		c.UltraCartClientID, c.UltraCartClientSecret = "", ""
	})
	ctx := context.Background()
	runDir := t.TempDir()
	cartrelay := func(args ...string) []byte {
		t.Helper()
		var out, errb bytes.Buffer
		getenv := func(k string) string {
			if k == "CARTRELAY_RUN_DIR" {
				return runDir
			}
			return ""
		}
		if code := cli.Main(ctx, append([]string{"--data", hub.data}, args...),
			cli.IO{Out: &out, Err: &errb, Clock: hub.clk, Getenv: getenv}); code != 0 {
			t.Fatalf("cartrelay %s: exit %d\n%s", strings.Join(args, " "), code, errb.String())
		}
		return out.Bytes()
	}

	// The demo, as a newcomer runs it beside `make run`.
	const account, jane = "demo", "jane.doe@example.com"
	cartrelay("demo", "--url", hub.base)
	repo := history.New(hub.env.Store)
	waitFor(t, hub, "the demo's events to be ingested and delivered", func() bool {
		for _, q := range []string{queue.Ingest, queue.Ontraport, queue.Iterable} {
			if s, err := hub.env.Queue.Stats(ctx, q); err != nil || s.Visible+s.InFlight+s.Delayed > 0 {
				return false
			}
		}
		c, err := repo.LoadContact(ctx, account, jane)
		return err == nil && len(c.Orders) == 3
	})

	// On top of it: a revoked ONTRAPORT key, an order whose delivery ONTRAPORT refuses for it,
	// and an order in the currency XYZ.
	patch := `{"ultracart":{"webhook_username":"` + ucUser + `","webhook_password":"` + ucPass + `"},` +
		`"ontraport":{"enabled":true,"app_id":"` + opAppID + `","api_key":"a-revoked-key","base_url":"` + op.URL + `"}}`
	if _, err := hub.env.Accounts.Put(ctx, account, []byte(patch)); err != nil {
		t.Fatal(err)
	}
	order := fixture(t, "ultracart", "order_create.json")
	postWebhook(t, hub.base+"/webhooks/ultracart/"+account, order)
	postWebhook(t, hub.base+"/webhooks/ultracart/"+account, bytes.ReplaceAll(bytes.ReplaceAll(order, []byte(`"USD"`), []byte(`"XYZ"`)), []byte("-0002001"), []byte("-0002099")))

	var failed history.Delivery
	waitFor(t, hub, "the order's delivery to ONTRAPORT to fail and be parked", func() bool {
		ds, _ := repo.Deliveries(ctx, account, true, 0)
		for _, d := range ds {
			if d.Dest == "ontraport" && d.FactKind == string(domain.FactOrderPlaced) {
				failed = d
				return true
			}
		}
		return false
	})
	var quarantined []history.Quarantined
	waitFor(t, hub, "the XYZ order to be quarantined", func() bool {
		quarantined, _ = repo.QuarantineList(ctx, account, 10)
		return len(quarantined) == 1
	})
	if _, err := (&reports.Engine{Store: hub.env.Store, Accounts: hub.env.Accounts, Clock: hub.clk}).Save(ctx, account, "2024 by month",
		reports.Params{Kind: "revenue", From: "2024-01-01", To: "2024-12-31", By: "month"}, hub.clk.Now()); err != nil {
		t.Fatal(err)
	}

	// The operator's command prints the sign-in link.
	out := cartrelay("console", "link", account, "--url", hub.base)
	var printed struct{ Link string }
	if err := json.Unmarshal(out, &printed); err != nil || !strings.HasPrefix(printed.Link, hub.base+"/console/link/") {
		t.Fatalf("cartrelay console link printed %q (%v)", out, err)
	}

	// About forty pages: more than one page's deadline on a busy machine.
	tab := newTabWithin(t, browser, 5*time.Minute)
	shots := t.ArtifactDir()
	snap := func(name string) {
		t.Helper()
		var png []byte
		if err := chromedp.Run(tab, chromedp.FullScreenshot(&png, 100)); err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	visit := func(name, path string, wants ...string) page {
		t.Helper()
		p := show(t, tab, name, chromedp.Navigate(hub.base+path))
		expect(t, name, p, wants...)
		snap(name)
		return p
	}
	click := func(name, xpath string, wants ...string) page {
		t.Helper()
		p := show(t, tab, name, chromedp.Click(xpath, chromedp.BySearch))
		expect(t, name, p, wants...)
		snap(name)
		return p
	}

	show(t, tab, "open the link", chromedp.Navigate(printed.Link))
	home := click("home", openConsoleButton, "Needs attention", "failed deliveries", "quarantined events", "ONTRAPORT", "Reports", "2024 by month")
	if home.url != hub.base+"/console/home" {
		t.Errorf("signed in at %s", home.url)
	}
	email := failed.Email
	visit("contacts", "/console/contacts?q=marcus", email)
	visit("contact", "/console/contact?email="+url.QueryEscape(email), "Marcus Reyes", "Timeline", "Deliveries", "DEMO-0002001")
	click("erase-confirm", `//main//a[normalize-space(.)="Erase this contact"]`, "Erase this contact?", "cannot be undone", "ONTRAPORT contact is anonymized")
	// The demo's own contact and orders, and its synthetic shoppers.
	visit("contacts-demo", "/console/contacts?q=demo-shopper1", "demo-shopper1")
	visit("contact-demo", "/console/contact?email="+url.QueryEscape(jane), "Jane", "DEMO-10001", "DEMO-10002", "Timeline")
	visit("orders-recent", "/console/orders", "DEMO-10002", "Totals from the reports")
	visit("orders", "/console/orders?from=2024-05-02&to=2024-05-02", "DEMO-0002001", "Totals from the reports")
	click("order", `//main//a[normalize-space(.)="DEMO-0002001"]`, "Order DEMO-0002001", "What the destinations did")
	visit("deliveries", "/console/deliveries?from=2024-01-01&status=parked", "Replay every failed delivery to ONTRAPORT")
	deliveryPath := "/console/delivery?" + url.Values{"email": {email}, "dest": {"ontraport"}, "fact": {failed.FactID}}.Encode()
	visit("delivery-failed", deliveryPath, "What to do:", "Replay")
	visit("quarantine", "/console/quarantine", quarantined[0].ID)
	visit("quarantined-event", "/console/quarantine/event?id="+url.QueryEscape(quarantined[0].ID), "XYZ", "Discard")
	visit("dead-letters", "/console/dead-letters")
	visit("reports", "/console/reports", "Saved reports", "2024 by month")
	for _, kind := range reports.Kinds {
		p := visit("report-"+kind, "/console/report?kind="+kind+"&from=2024-01-01&to=2024-12-31&by=month", reports.KindTitle(kind))
		if p.status != http.StatusOK || strings.Contains(p.text, "Nothing in this range") {
			t.Errorf("report %s on the demo's history: %s", kind, p)
		}
	}
	// The revenue chart is drawn by the console's own copy of ECharts.
	show(t, tab, "revenue report", chromedp.Navigate(hub.base+"/console/report?kind=revenue&from=2024-01-01&to=2024-12-31&by=month"))
	var drawn int
	if err := chromedp.Run(tab, chromedp.WaitVisible(`div.chart[data-rendered="true"] svg`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('div.chart[data-rendered="true"] svg').length`, &drawn)); err != nil || drawn == 0 {
		t.Errorf("the revenue chart was not drawn: %d %v", drawn, err)
	}
	snap("report-revenue-chart")
	click("drill-down", `(//main//td/a[contains(@href,"/console/report/drill")])[1]`, "Behind the number")
	visit("activity", "/console/audit")

	// Settings: the right key, checked with ONTRAPORT before it is saved.
	visit("settings", "/console/settings", "Time zone", "ONTRAPORT", "Iterable")
	if err := chromedp.Run(tab, chromedp.SendKeys(`#f-ontraport-api_key`, opGoodKey, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	click("settings-saved", `//main//button[normalize-space(.)="Save settings"]`, "saved")
	if a, _ := hub.env.Accounts.Get(ctx, account, accounts.OntraportAPIKey); a.Ontraport.APIKey.Reveal() != opGoodKey {
		t.Fatalf("the key was not saved")
	}

	// Replay: asked to confirm, then queued, then delivered.
	visit("delivery-before-replay", deliveryPath)
	click("replay-confirm", `//main//button[normalize-space(.)="Replay"]`, "Replay this delivery?", "nothing is sent twice")
	click("replay-queued", `//main//button[normalize-space(.)="Replay now"]`, "Replay queued")
	waitFor(t, hub, "the replayed order to reach ONTRAPORT", func() bool {
		ds, _ := repo.ContactDeliveries(ctx, account, email, "ontraport", failed.FactID)
		return len(ds) > 0 && ds[0].Status == history.DeliverySent
	})
	if len(op.Transactions()) == 0 {
		t.Error("ONTRAPORT has no transaction after the replay")
	}
	visit("delivery-replayed", deliveryPath, "delivered")

	// Discard: asked to confirm, then gone from the quarantine and kept in the activity log.
	visit("quarantined-before-discard", "/console/quarantine/event?id="+url.QueryEscape(quarantined[0].ID))
	click("discard-confirm", `//main//button[normalize-space(.)="Discard"]`, "Discard this event?", "activity log keeps a copy")
	click("discarded", `//main//button[normalize-space(.)="Discard"]`, "Event discarded")
	if left, _ := repo.QuarantineList(ctx, account, 10); len(left) != 0 {
		t.Errorf("quarantine after the discard: %+v", left)
	}
	visit("activity-after", "/console/audit", "Replayed the OrderPlaced", "Discarded the quarantined", "Changed settings")

	// Readable on a phone: the page fits a 390 px screen without scrolling sideways.
	if err := chromedp.Run(tab, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	visit("phone-home", "/console/home")
	var overflow bool
	if err := chromedp.Run(tab, chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow)); err != nil || overflow {
		t.Errorf("the home page scrolls sideways on a phone (%v)", err)
	}
	t.Logf("screenshots in %s", shots)
}

func expect(t *testing.T, name string, p page, wants ...string) {
	t.Helper()
	if p.status != http.StatusOK {
		t.Errorf("%s: %s", name, p)
		return
	}
	for _, w := range wants {
		if !strings.Contains(p.text, w) {
			t.Errorf("%s lacks %q:\n%s", name, w, p.text)
		}
	}
}

// postWebhook posts an UltraCart webhook to the hub with the account's credentials.
func postWebhook(t *testing.T, u string, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(ucUser, ucPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook: %d", resp.StatusCode)
	}
}

// waitFor lets the hub's functions work (moving its clock on, for retries that wait) until cond
// holds.
func waitFor(t *testing.T, hub *browserHub, what string, cond func() bool) {
	t.Helper()
	for range 300 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
		hub.clk.Advance(30 * time.Second)
	}
	t.Fatalf("waited in vain for %s", what)
}
