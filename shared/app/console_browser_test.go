package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/onetime"
)

const (
	openConsoleButton = `//button[normalize-space(.)="Open the console"]`
	signOutButton     = `//button[normalize-space(.)="Sign out"]`
)

// TestConsoleLinkInBrowser drives the operator's sign-in link in headless Chromium, on a hub
// with no UltraCart application (as `make run` is): the link opens the account's dashboard
// once; opened again, or after ten minutes, it is refused; signing out ends the session.
func TestConsoleLinkInBrowser(t *testing.T) {
	browser := newBrowser(t)
	hub := startBrowserHubWith(t, func(c *app.Config) {
		c.ConsoleSessionKey = consoleKey
		c.UltraCartClientID, c.UltraCartClientSecret = "", ""
	})
	ctx := context.Background()
	if _, err := hub.env.Accounts.Put(ctx, "shop", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	issue := func() string {
		token, _, err := onetime.New(hub.env.Store, hub.clk).Issue(ctx, onetime.ConsoleLink, "shop", app.ConsoleLinkTTL)
		if err != nil {
			t.Fatal(err)
		}
		return hub.base + "/console/link/" + token
	}

	t.Run("open, reuse, sign out", func(t *testing.T) {
		tab := newTab(t, browser)
		link := issue()
		p := show(t, tab, "open the link", chromedp.Navigate(link))
		if p.status != 200 || p.h1 != "Sign in to cartrelay" || !strings.Contains(p.text, "account shop") {
			t.Fatalf("the link's page: %s", p)
		}
		p = show(t, tab, "open the console", chromedp.Click(openConsoleButton, chromedp.BySearch))
		if p.status != 200 || p.h1 != "Your cartrelay account" || p.url != hub.base+"/console/home" ||
			!strings.Contains(p.text, "Account shop") || !strings.Contains(p.text, hub.base+"/webhooks/ultracart/shop") {
			t.Fatalf("after the link: %s", p)
		}
		again := show(t, tab, "reopen the link", chromedp.Navigate(link))
		if again.status != 410 || again.h1 != "Sign-in link already used" || !strings.Contains(again.text, "cartrelay console link") {
			t.Errorf("the link reopened: %s", again)
		}
		// The session it gave still works, until the merchant signs out.
		home := show(t, tab, "back to the dashboard", chromedp.Navigate(hub.base+"/console/home"))
		if home.status != 200 || home.h1 != "Your cartrelay account" {
			t.Fatalf("dashboard: %s", home)
		}
		out := show(t, tab, "sign out", chromedp.Click(signOutButton, chromedp.BySearch))
		if out.status != 200 || out.h1 != "Signed out" {
			t.Fatalf("sign out: %s", out)
		}
		after := show(t, tab, "the dashboard after signing out", chromedp.Navigate(hub.base+"/console/home"))
		if after.h1 == "Your cartrelay account" || !strings.HasPrefix(after.url, hub.base+"/console/login") {
			t.Errorf("after signing out: %s", after)
		}
	})

	t.Run("expired", func(t *testing.T) {
		tab := newTab(t, browser)
		link := issue()
		hub.clk.Advance(app.ConsoleLinkTTL)
		p := show(t, tab, "open the expired link", chromedp.Navigate(link))
		if p.status != 410 || p.h1 != "Sign-in link expired" || !strings.Contains(p.text, "ten minutes") {
			t.Errorf("the expired link: %s", p)
		}
	})
}
