package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/cli"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/ontraport"
	"github.com/cartrelay/cartrelay/shared/ontraport/ontraportfake"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/signedhooks"
)

// TestConsoleWalkInBrowser is a merchant's session in headless Chromium against the hub as
// `cartrelay serve` runs it, on the account `cartrelay demo` makes (its synthetic history of
// three years with the reports built from it, and its sample events posted to the hub). On top
// of the demo data the test adds what an operator meets at 2 a.m., since the demo has neither:
// ONTRAPORT refusing a key that was revoked (an order's delivery failed and was parked) and an
// order in a currency that does not exist (quarantined). The operator's `cartrelay console
// link` signs in; every page of the console is opened and photographed (under the test's
// artifact directory: go test -run TestConsoleWalkInBrowser -artifacts -outputdir DIR
// ./shared/app/); the key is fixed in Settings (checked with ONTRAPORT before it is saved), a
// signed-webhooks endpoint added there, sent an order and removed, the failed delivery replayed
// and seen delivered, and the quarantined event discarded.
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
		for _, q := range []string{queue.Ingest, ontraportQueue, iterableQueue} {
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
	if a, _ := hub.env.Accounts.Get(ctx, account, ontraport.APIKey); a.SecretAt(string(ontraport.APIKey)).Reveal() != opGoodKey {
		t.Fatalf("the key was not saved")
	}

	walkWebhookEndpoint(t, hub, tab, account, visit, click, snap)

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

// walkWebhookEndpoint adds a signed-webhooks endpoint in Settings as a merchant at a keyboard
// would: each input of the new endpoint reached with Tab from the one before and named by its
// label. An http URL off this machine is refused with the reason and without the secret in the
// page; a local receiver is saved, listed with its secret only as set, takes an order signed as
// Standard Webhooks specifies (verified with the destination's own library) and nothing of a
// kind it did not ask for, and is removed with its box.
func walkWebhookEndpoint(t *testing.T, hub *browserHub, tab context.Context, account string,
	visit, click func(name, path string, wants ...string) page, snap func(name string)) {
	ctx := context.Background()
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("a walk's signing secret, 32 b."))
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	type received struct {
		header http.Header
		body   []byte
		at     time.Time
	}
	var mu sync.Mutex
	var got []received
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{r.Header.Clone(), body, hub.clk.Now()})
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	endpoint := receiver.URL + "/cartrelay"

	const (
		sendBox    = `#f-webhooks-enabled`
		saveButton = `//main//button[normalize-space(.)="Save settings"]`
	)
	byLabel := func(label string) string {
		return `//input[@id=//label[starts-with(normalize-space(.),"` + label + `")]/@for]`
	}
	// fill types the new endpoint from its name input on, moving with Tab only, and checks
	// that each Tab lands on the input the next label names.
	fill := func(values ...[2]string) {
		t.Helper()
		if err := chromedp.Run(tab, chromedp.Focus(byLabel("Add: name"), chromedp.BySearch)); err != nil {
			t.Fatalf("focus the new endpoint's name: %v", err)
		}
		for i, lv := range values {
			if i > 0 {
				if err := chromedp.Run(tab, chromedp.KeyEvent(kb.Tab)); err != nil {
					t.Fatal(err)
				}
			}
			var label string
			if err := chromedp.Run(tab, chromedp.Evaluate(`document.activeElement.labels?.[0]?.innerText ?? ("unlabelled " + document.activeElement.outerHTML)`, &label)); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(label, lv[0]) {
				t.Fatalf("the keyboard reached %q, want the input labelled %q", label, lv[0])
			}
			if err := chromedp.Run(tab, chromedp.KeyEvent(lv[1])); err != nil {
				t.Fatal(err)
			}
		}
	}
	pageHTML := func() string {
		t.Helper()
		var html string
		if err := chromedp.Run(tab, chromedp.OuterHTML("html", &html, chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
		return html
	}

	visit("settings-webhooks", "/console/settings", "Signed webhooks", "Send signed webhooks", "Add: name", "Add: URL", "Add: Signing secret", "Add: Fact kinds")
	off := "http://crm.example.com/cartrelay"
	fill([2]string{"Add: name", "crm"}, [2]string{"Add: URL", off}, [2]string{"Add: Signing secret", secret},
		[2]string{"Add: Previous secret", ""}, [2]string{"Add: Fact kinds", "OrderPlaced"})
	if err := chromedp.Run(tab, chromedp.Click(sendBox, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	refused := show(t, tab, "an http endpoint off this machine", chromedp.Click(saveButton, chromedp.BySearch))
	if refused.status != http.StatusUnprocessableEntity || !strings.Contains(refused.text, "Nothing was saved") ||
		!strings.Contains(refused.text, "webhooks.endpoints.crm.url") || !strings.Contains(refused.text, "endpoints must be https") ||
		!strings.Contains(refused.text, "localhost") {
		t.Fatalf("an http endpoint off this machine: %s", refused)
	}
	if strings.Contains(pageHTML(), secret) {
		t.Fatal("the refused settings page shows the signing secret")
	}
	if a, _ := hub.env.Accounts.Get(ctx, account); len(a.EntryNames(signedhooks.Section())) != 0 {
		t.Fatalf("a refused endpoint was saved: %v", a.EntryNames(signedhooks.Section()))
	}
	snap("settings-webhooks-refused")

	// The page keeps what was typed but the secret: the URL is corrected and the secret typed again.
	if err := chromedp.Run(tab, chromedp.Clear(byLabel("Add: URL"), chromedp.BySearch)); err != nil {
		t.Fatal(err)
	}
	fill([2]string{"Add: name", ""}, [2]string{"Add: URL", endpoint}, [2]string{"Add: Signing secret", secret})
	saved := click("settings-webhooks-saved", saveButton, "Saved.", "crm: URL", "crm: Signing secret", "Remove crm")
	if saved.status != http.StatusOK {
		t.Fatalf("saving the endpoint: %s", saved)
	}
	html := pageHTML()
	if strings.Contains(html, secret) {
		t.Fatal("the settings page shows the signing secret")
	}
	for _, want := range []string{`value="` + endpoint + `"`, `value="OrderPlaced"`, `crm: Signing secret <small>(set)</small>`,
		`name="clear:webhooks.endpoints.crm.secret" aria-label="Remove crm: Signing secret"`} {
		if !strings.Contains(html, want) {
			t.Errorf("the saved endpoint is not listed with %s", want)
		}
	}
	a, err := hub.env.Accounts.Get(ctx, account, signedhooks.Secrets()...)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Flag("webhooks.enabled") || a.Text("webhooks.endpoints.crm.url") != endpoint ||
		a.SecretAt("webhooks.endpoints.crm.secret").Reveal() != secret || a.Text("webhooks.endpoints.crm.kinds") != "OrderPlaced" {
		t.Fatalf("saved %v", a.Settings)
	}

	// An order reaches the endpoint, signed.
	order := bytes.ReplaceAll(fixture(t, "ultracart", "order_create.json"), []byte("-0002001"), []byte("-0002077"))
	postWebhook(t, hub.base+"/webhooks/ultracart/"+account, order)
	var first received
	waitFor(t, hub, "the order to reach the webhook endpoint", func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(got) > 0 {
			first = got[0]
		}
		return len(got) > 0
	})
	// The hub's clock is not the wall clock, so the timestamp is held to the specification's
	// five minutes against the hub's clock and the signature checked apart from it.
	if err := wh.VerifyIgnoringTimestamp(first.body, first.header); err != nil {
		t.Fatalf("the request does not verify: %v\n%v\n%s", err, first.header, first.body)
	}
	ts, err := strconv.ParseInt(first.header.Get("webhook-timestamp"), 10, 64)
	if err != nil || first.at.Sub(time.Unix(ts, 0)).Abs() > 5*time.Minute {
		t.Errorf("webhook-timestamp %q, received at %s", first.header.Get("webhook-timestamp"), first.at)
	}
	var payload struct {
		Type string
		Data struct{ ID, Email string }
	}
	if err := json.Unmarshal(first.body, &payload); err != nil || payload.Type != string(domain.FactOrderPlaced) ||
		payload.Data.ID != first.header.Get("webhook-id") || !strings.Contains(payload.Data.ID, "0002077") {
		t.Fatalf("the request's body (%v): %s", err, first.body)
	}
	// The endpoint has the request before the forwarder, back from it, logs the delivery.
	waitFor(t, hub, "the delivery to the endpoint to be logged", func() bool {
		ds, _ := history.New(hub.env.Store).ContactDeliveries(ctx, account, payload.Data.Email, signedhooks.Name, payload.Data.ID)
		return len(ds) > 0 && ds[0].Status == history.DeliverySent
	})
	visit("delivery-webhook", "/console/delivery?"+url.Values{"email": {payload.Data.Email}, "dest": {signedhooks.Name}, "fact": {payload.Data.ID}}.Encode(),
		"delivered")

	// Removed with its box; sending is turned off with it, since it needs an endpoint.
	visit("settings-webhooks-before-remove", "/console/settings", "Remove crm")
	if err := chromedp.Run(tab, chromedp.Click(`//label[normalize-space(.)="Remove crm"]/input[@type="checkbox"]`, chromedp.BySearch), chromedp.Click(sendBox, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	removed := click("settings-webhooks-removed", saveButton, "Saved.")
	if strings.Contains(removed.text, "Remove crm") || strings.Contains(removed.text, "crm: URL") {
		t.Errorf("the removed endpoint is still listed: %s", removed)
	}
	if a, err := hub.env.Accounts.Get(ctx, account); err != nil || len(a.EntryNames(signedhooks.Section())) != 0 || a.Flag("webhooks.enabled") {
		t.Fatalf("after removing the endpoint: %v, %v", a.Settings, err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, r := range got {
		if !strings.Contains(string(r.body), `"type":"OrderPlaced"`) {
			t.Errorf("the endpoint takes OrderPlaced only, and was sent %s", r.body)
		}
	}
}
