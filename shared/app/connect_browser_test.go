package app_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/localrun"
	"github.com/cartrelay/cartrelay/shared/oauth"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/testenv"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucsource"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// browserTimeout bounds each scenario's browser steps, so that a page that never loads fails
// the test instead of stalling CI.
const browserTimeout = 60 * time.Second

const (
	connectButton = `//*[self::button or self::a][normalize-space(.)="Connect UltraCart"]`
	approveButton = `//button[normalize-space(.)="Approve"]`
	denyButton    = `//button[normalize-space(.)="Deny"]`
)

// TestConnectInBrowser drives the UltraCart connect flow in headless Chromium over real HTTP:
// the hub behind the local runtime's API Gateway routes, and a fake UltraCart, on another
// site, whose consent page the browser approves or denies.
func TestConnectInBrowser(t *testing.T) {
	browser := newBrowser(t)

	t.Run("approve, then reuse the callback", func(t *testing.T) {
		hub := startBrowserHub(t)
		tab := newTab(t, browser)
		consent := hub.openConsent(t, tab)

		cookie := stateCookie(t, tab, hub.base)
		if cookie == nil {
			t.Fatal("the browser holds no state cookie after the start")
		}
		// Chromium treats http://127.0.0.1 as a secure context, so it keeps a Secure cookie
		// there too; what matters is that it kept the cookie exactly as the hub set it.
		want := oauth.CookieSettingsFor(hub.base)
		if !cookie.HTTPOnly || cookie.SameSite != network.CookieSameSiteLax || cookie.Path != want.Path || cookie.Secure != want.Secure {
			t.Errorf("state cookie %+v, want HttpOnly, SameSite=Lax, Path=%s, Secure=%t", *cookie, want.Path, want.Secure)
		}
		if !strings.Contains(consent.text, "DEMO_Store") {
			t.Errorf("consent page does not name the store:\n%s", consent.text)
		}

		done := show(t, tab, "approve", chromedp.Click(approveButton, chromedp.BySearch))
		hookURL := hub.base + "/webhooks/ultracart/uc-demo-store"
		if done.h1 != "UltraCart connected" || done.status != 200 || !strings.Contains(done.text, hookURL) {
			t.Fatalf("after approving: %s", done)
		}
		cb, err := url.Parse(done.url)
		if err != nil || cb.Path != "/oauth/ultracart/callback" || cb.Query().Get("code") == "" || cb.Query().Get("state") == "" {
			t.Fatalf("the success page is at %s, want the callback with a code and state", done.url)
		}

		hooks := hub.fake.Webhooks()
		if len(hooks) != 1 || hooks[0].WebhookURL != hookURL {
			t.Fatalf("webhooks registered on UltraCart: %+v, want one for %s", hooks, hookURL)
		}
		ctx := context.Background()
		acct, err := hub.env.Accounts.Get(ctx, "uc-demo-store", hub.env.Accounts.SecretNames()...)
		if err != nil {
			t.Fatalf("account demo-store: %v", err)
		}
		if !ucsource.CheckBasic(acct, hooks[0].BasicUsername, hooks[0].BasicPassword) {
			t.Error("the registered webhook does not authenticate as the account")
		}
		conn, err := hub.env.Connections.Get(ctx, "uc-demo-store", connections.UltraCart)
		if err != nil {
			t.Fatalf("connection: %v", err)
		}
		if conn.Kind != connections.KindOAuth || !hub.fake.ValidAccessToken(conn.AccessToken) || conn.RefreshToken == "" {
			t.Errorf("connection %+v does not hold the issued tokens", conn)
		}
		if c := stateCookie(t, tab, hub.base); c != nil {
			t.Errorf("the state cookie outlived the callback: %+v", *c)
		}

		// The same callback URL again, as from the history: the cookie is gone, so it is
		// refused before the state is even looked up.
		again := show(t, tab, "reopen the callback", chromedp.Navigate(done.url))
		if again.status != 400 || again.h1 != "Sign-in cookie missing" || !strings.Contains(again.text, "same browser") {
			t.Errorf("reopened callback: %s", again)
		}
		// With the cookie put back, as someone replaying the whole request would, the state
		// itself is refused: it was used.
		restore := network.SetCookie(oauth.CookieName, cookie.Value).WithURL(hub.base + "/oauth/ultracart/callback").
			WithPath(cookie.Path).WithHTTPOnly(true).WithSecure(cookie.Secure).WithSameSite(network.CookieSameSiteLax)
		if err := chromedp.Run(tab, restore); err != nil {
			t.Fatalf("restore the state cookie: %v", err)
		}
		replay := show(t, tab, "replay the callback", chromedp.Navigate(done.url))
		if replay.status != 400 || replay.h1 != "This link has expired" || !strings.Contains(replay.text, "already used") ||
			!strings.Contains(replay.text, "Nothing was changed") {
			t.Errorf("replayed callback: %s", replay)
		}
		if after := hub.fake.Webhooks(); len(after) != 1 || after[0].WebhookOID != hooks[0].WebhookOID ||
			after[0].BasicPassword != hooks[0].BasicPassword {
			t.Errorf("webhooks after the reuse: %+v, want %+v", after, hooks)
		}
		if c, err := hub.env.Connections.Get(ctx, "uc-demo-store", connections.UltraCart); err != nil || c.AccessToken != conn.AccessToken {
			t.Errorf("connection after the reuse: %+v, %v; want the tokens unchanged", c, err)
		}
	})

	t.Run("state expired at the consent page", func(t *testing.T) {
		hub := startBrowserHub(t)
		tab := newTab(t, browser)
		hub.openConsent(t, tab)
		// The merchant lingers on UltraCart's page past the state's lifetime. The browser's
		// own cookie lives in real time, so only the hub's check of the state can refuse.
		hub.clk.Advance(oauth.StateTTL + time.Minute)

		p := show(t, tab, "approve", chromedp.Click(approveButton, chromedp.BySearch))
		if p.status != 400 || p.h1 != "This link has expired" || !strings.Contains(p.text, "within 10 minutes") ||
			!strings.Contains(p.text, "Nothing was changed") {
			t.Errorf("after approving late: %s", p)
		}
		if !strings.HasPrefix(p.url, hub.base+"/oauth/ultracart/callback?") {
			t.Errorf("the error page is at %s, want the callback", p.url)
		}
		hub.assertNothingStored(t)
	})

	t.Run("deny", func(t *testing.T) {
		hub := startBrowserHub(t)
		tab := newTab(t, browser)
		hub.openConsent(t, tab)
		p := show(t, tab, "deny", chromedp.Click(denyButton, chromedp.BySearch))
		if p.status != 403 || p.h1 != "Access not granted" || !strings.Contains(p.text, "nothing was changed") {
			t.Errorf("after denying: %s", p)
		}
		hub.assertNothingStored(t)
	})
}

// browserHub is the hub served the way `cartrelay serve` serves it (wiring.ServeConfig on
// localrun), over an embedded store, with a fake UltraCart that asks for consent. Both share a
// fake clock.
type browserHub struct {
	base string
	// data is the hub's data directory, which the CLI opens as `cartrelay --data` does.
	data string
	env  *wiring.Env
	clk  *clock.Fake
	fake *ultracartfake.Server
}

func startBrowserHub(t *testing.T) *browserHub {
	t.Helper()
	return startBrowserHubWith(t, nil)
}

// startBrowserHubWith is startBrowserHub with configure applied to the hub's Config.
func startBrowserHubWith(t *testing.T, configure func(*app.Config)) *browserHub {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	fake := ultracartfake.New(ultracartfake.Options{ClientID: "cid", ClientSecret: "c-secret", MerchantID: "DEMO_Store", Clock: clk})
	t.Cleanup(fake.Close)
	fake.AskConsent(true)
	// Addressed as localhost, the fake is another site than the hub on 127.0.0.1, as UltraCart
	// is: the SameSite=Lax cookie must come back on a cross-site redirect.
	ucURL := strings.Replace(fake.URL, "//127.0.0.1:", "//localhost:", 1)

	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hub log:\n%s", logs)
		}
	})

	// The port is chosen before the runtime is built, because the public base URL names it;
	// another process may take it in between, so a failed listen is retried on a new one.
	for attempt := 1; ; attempt++ {
		port := testenv.FreePort(t)
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		conf := app.Config{PublicBaseURL: base, UltraCartClientID: "cid", UltraCartClientSecret: "c-secret", UltraCartBaseURL: ucURL}
		if configure != nil {
			configure(&conf)
		}
		data := t.TempDir()
		env, err := operator.Embedded(context.Background(), data, wiring.Options{Clock: clk, Log: log, Config: conf})
		if err != nil {
			t.Fatal(err)
		}
		ready := make(chan string, 1)
		// The schedule would poll the new connection; an hour keeps it out of the way.
		cfg, err := wiring.ServeConfig(env, wiring.ServeOptions{Addr: fmt.Sprintf("127.0.0.1:%d", port),
			ScheduleEvery: time.Hour, Ready: func(a string) { ready <- a }})
		if err != nil {
			env.Close()
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- localrun.Run(ctx, cfg) }()
		select {
		case <-ready:
			t.Cleanup(func() {
				cancel()
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("serve: %v", err)
					}
				case <-time.After(30 * time.Second):
					t.Error("serve did not stop within 30 s")
				}
				env.Close()
			})
			return &browserHub{base: base, data: data, env: env, clk: clk, fake: fake}
		case err := <-done:
			cancel()
			env.Close()
			if attempt == 3 {
				t.Fatalf("serve on %s: %v", base, err)
			}
		case <-time.After(20 * time.Second):
			cancel()
			t.Fatal("serve was not ready within 20 s")
		}
	}
}

// openConsent opens /connect, clicks its connect action and checks that the browser landed on
// UltraCart's consent page for this hub's callback.
func (h *browserHub) openConsent(t *testing.T, tab context.Context) page {
	t.Helper()
	p := show(t, tab, "open /connect", chromedp.Navigate(h.base+"/connect"))
	if p.status != 200 || p.h1 != "Connect your store" || !strings.Contains(p.text, "Connect UltraCart") {
		t.Fatalf("connect page: %s", p)
	}
	p = show(t, tab, "connect", chromedp.Click(connectButton, chromedp.BySearch))
	u, err := url.Parse(p.url)
	if err != nil || u.Hostname() != "localhost" || u.Path != "/rest/v2/oauth/authorize" {
		t.Fatalf("connect led to %s, want UltraCart's authorize page", p.url)
	}
	if got := u.Query().Get("redirect_uri"); got != h.base+"/oauth/ultracart/callback" {
		t.Errorf("redirect_uri %q, want this hub's callback", got)
	}
	if p.status != 200 || p.h1 != "Authorize application" {
		t.Fatalf("authorize page: %s", p)
	}
	return p
}

// assertNothingStored checks that a refused flow left no account, connection or webhook.
func (h *browserHub) assertNothingStored(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if ids, err := h.env.Accounts.IDs(ctx); err != nil || len(ids) != 0 {
		t.Errorf("accounts %v (%v), want none", ids, err)
	}
	if refs, err := h.env.Connections.List(ctx, connections.UltraCart); err != nil || len(refs) != 0 {
		t.Errorf("connections %v (%v), want none", refs, err)
	}
	for _, w := range h.fake.Webhooks() {
		t.Errorf("webhook %d for %s registered, want none", w.WebhookOID, w.WebhookURL)
	}
}

// newBrowser starts headless Chromium for the test and closes it when the test ends; it skips
// (fails under CI=true) when Chromium is not installed.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	exe := testenv.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe),
		// Tests run as root in CI containers, where Chromium's sandbox cannot start.
		chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	// Registered before the first Run so that a failed start still kills the process; the
	// allocator's cancel waits for it to exit, and the user data dir is removed after that.
	t.Cleanup(func() {
		if err := chromedp.Cancel(browser); err != nil {
			t.Logf("close Chromium: %v", err)
		}
		cancelBrowser()
		cancelAlloc()
	})
	// The first Run starts the process under this context, so it must not carry a deadline;
	// chromedp gives up on its own if Chromium does not come up within 20 s.
	if err := chromedp.Run(browser); err != nil {
		t.Fatalf("start Chromium (%s): %v", exe, err)
	}
	return browser
}

// newTab opens a tab in a fresh browser context of browser (its own cookies), whose steps
// share one deadline of browserTimeout.
func newTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	return newTabWithin(t, browser, browserTimeout)
}

// newTabWithin is newTab with a deadline of its own, for a test that walks many pages.
func newTabWithin(t *testing.T, browser context.Context, within time.Duration) context.Context {
	t.Helper()
	// chromedp.WithNewBrowserContext opens the tab without a window, which headless Chromium
	// refuses ("no browser is open"); asking for a new window works.
	var bc cdp.BrowserContextID
	var id target.ID
	err := chromedp.Run(browser, chromedp.ActionFunc(func(ctx context.Context) error {
		b := cdp.WithExecutor(ctx, chromedp.FromContext(ctx).Browser)
		var err error
		if bc, err = target.CreateBrowserContext().Do(b); err != nil {
			return err
		}
		id, err = target.CreateTarget("about:blank").WithBrowserContextID(bc).WithNewWindow(true).Do(b)
		return err
	}))
	if err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	tab, cancel := chromedp.NewContext(browser, chromedp.WithTargetID(id))
	t.Cleanup(func() {
		cancel()
		err := chromedp.Run(browser, chromedp.ActionFunc(func(ctx context.Context) error {
			return target.DisposeBrowserContext(bc).Do(cdp.WithExecutor(ctx, chromedp.FromContext(ctx).Browser))
		}))
		if err != nil {
			t.Errorf("close the tab's browser context: %v", err)
		}
	})
	if err := chromedp.Run(tab); err != nil {
		t.Fatalf("attach to the tab: %v", err)
	}
	tab, cancelTimeout := context.WithTimeout(tab, within)
	t.Cleanup(cancelTimeout)
	return tab
}

// page is what the browser shows after a navigation: the address and status of the document
// it ended on, after redirects, and the page's visible text.
type page struct {
	url    string
	status int64
	h1     string
	text   string
}

func (p page) String() string {
	return fmt.Sprintf("%d %s, heading %q:\n%s", p.status, p.url, p.h1, p.text)
}

// show runs action, which must lead to a navigation, and returns the page it ends on.
func show(t *testing.T, tab context.Context, what string, action chromedp.Action) page {
	t.Helper()
	resp, err := chromedp.RunResponse(tab, action)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	p := page{url: resp.URL, status: resp.Status}
	err = chromedp.Run(tab,
		chromedp.Evaluate(`document.querySelector("h1")?.innerText ?? ""`, &p.h1),
		chromedp.Evaluate(`document.body.innerText`, &p.text))
	if err != nil {
		t.Fatalf("%s: read the page: %v", what, err)
	}
	return p
}

// stateCookie is the browser's OAuth state cookie for base's callback, or nil.
func stateCookie(t *testing.T, tab context.Context, base string) *network.Cookie {
	t.Helper()
	var cookies []*network.Cookie
	err := chromedp.Run(tab, chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cookies, err = network.GetCookies().WithURLs([]string{base + "/oauth/ultracart/callback"}).Do(ctx)
		return err
	}))
	if err != nil {
		t.Fatalf("read cookies: %v", err)
	}
	for _, c := range cookies {
		if c.Name == oauth.CookieName {
			return c
		}
	}
	return nil
}

// lockedBuffer collects the hub's log from its many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
