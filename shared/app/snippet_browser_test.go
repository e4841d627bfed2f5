package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/visitortoken"
)

// TestSnippetInBrowser runs the tracking snippet as a storefront serves it, in headless
// Chromium, against cartrelay serve on another site: the page identifies the shopper with a
// token its server signed, its cart changes reach the contact as CartUpdated facts, a cart
// pushed before the snippet has loaded waits for it, and the facts are routed to Iterable.
func TestSnippetInBrowser(t *testing.T) {
	browser := newBrowser(t)
	hub := startBrowserHub(t)
	ctx := context.Background()
	if _, err := hub.env.Accounts.Put(ctx, "acme", []byte(`{"allowed_domains":"localhost","iterable":{"enabled":true}}`)); err != nil {
		t.Fatal(err)
	}
	secret, err := hub.env.Keys.Ensure(ctx, "acme", accountkeys.Tracking)
	if err != nil {
		t.Fatal(err)
	}
	token, err := visitortoken.Sign(secret.Value, "ann@example.com", hub.clk.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}

	const tee = `{sku: "TEE-1", name: "T-shirt", price: 1500, quantity: 2, url: location.origin + "/tee"}`
	const mug = `{sku: "MUG-1", name: "Mug", price: 899, quantity: 1}`
	cartJS := func(items ...string) string {
		return `cartrelay.push(["cart", {currency: "USD", url: location.origin + "/cart", items: [` + strings.Join(items, ", ") + `]}])`
	}
	// The store, on localhost: another site than serve on 127.0.0.1, as a real storefront is.
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queued := `["identify", "` + token + `"]`
		if r.URL.Path == "/cart" {
			// The cart page reports the cart before the snippet has even loaded.
			queued += `, ["cart", {currency: "USD", url: location.origin + "/cart", items: [` + tee + `]}]`
		}
		w.Header().Set("content-type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><title>Shop</title>
<script>window.cartrelay = [%s];</script>
<script src="%s/track/cartrelay.js" data-account="acme" async></script></head>
<body><h1>Shop</h1>
<button id="tee" onclick='%s'>Add a T-shirt</button>
<button id="mug" onclick='%s'>Add a mug</button></body></html>`, queued, hub.base, cartJS(tee), cartJS(tee, mug))
	}))
	t.Cleanup(shop.Close)
	shopURL := strings.Replace(shop.URL, "//127.0.0.1:", "//localhost:", 1)

	repo := history.New(hub.env.Store)
	// waitFor polls the contact until its storefront cart has lines lines and it has facts
	// CartUpdated facts.
	waitFor := func(what string, lines, facts int) {
		t.Helper()
		var v *history.ContactView
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if v, err = repo.View(ctx, "acme", "ann@example.com"); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, f := range v.Facts {
				if f.Kind == domain.FactCartUpdated {
					n++
				}
			}
			for _, c := range v.Carts {
				if c.Source == domain.Storefront && len(c.Items) == lines && n == facts {
					return
				}
			}
		}
		t.Fatalf("%s: the contact's carts %+v and facts never showed %d line(s) and %d CartUpdated", what, v.Carts, lines, facts)
	}

	tab := newTab(t, browser)
	if p := show(t, tab, "open the shop", chromedp.Navigate(shopURL+"/")); p.status != 200 || p.h1 != "Shop" {
		t.Fatalf("the shop: %s", p)
	}
	if err := chromedp.Run(tab, chromedp.WaitVisible("#tee", chromedp.ByID), chromedp.Click("#tee", chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	waitFor("a T-shirt added", 1, 1)
	if err := chromedp.Run(tab, chromedp.Click("#mug", chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	waitFor("a mug added", 2, 2)
	if p := show(t, tab, "open the cart page", chromedp.Navigate(shopURL+"/cart")); p.status != 200 {
		t.Fatalf("the cart page: %s", p)
	}
	waitFor("the mug removed, reported before the snippet loaded", 1, 3)

	v, err := repo.View(ctx, "acme", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range v.Carts {
		if c.Source != domain.Storefront {
			continue
		}
		if li := c.Items[0]; li.SKU != "TEE-1" || li.Quantity != 2 || li.Total != (domain.Money{Minor: 3000, Currency: "USD"}) ||
			li.URL != shopURL+"/tee" || c.ReturnURL != shopURL+"/cart" {
			t.Errorf("stored cart %+v", c)
		}
	}
	// serve's forwarder takes each fact to Iterable (a dry run: the account has no API key).
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ds, err := repo.Deliveries(ctx, "acme", false, 0)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, d := range ds {
			if d.Dest == "iterable" && d.FactKind == string(domain.FactCartUpdated) {
				n++
			}
		}
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d CartUpdated deliveries to Iterable, want 3: %+v", n, ds)
		}
	}
}
