package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/oauth"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

func TestAccountID(t *testing.T) {
	for in, want := range map[string]string{
		"DEMO":                  "uc-demo",
		"Demo_Store.1":          "uc-demo-store-1",
		"--ABC--":               "uc-abc",
		"X":                     "uc-x",
		strings.Repeat("A", 70): "uc-" + strings.Repeat("a", 60),
	} {
		got, err := oauth.AccountID(in)
		if err != nil || got != want {
			t.Errorf("AccountID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := oauth.AccountID("__"); err == nil {
		t.Error("a merchant id without letters or digits gave an account id")
	}
}

func TestCookieSettings(t *testing.T) {
	for base, want := range map[string]oauth.CookieSettings{
		"https://hub.example.com":     {Path: "/oauth/", Secure: true},
		"https://x.example.com/prod/": {Path: "/prod/oauth/", Secure: true},
		"http://127.0.0.1:8080":       {Path: "/oauth/", Secure: false},
		"http://localhost:8080":       {Path: "/oauth/", Secure: false},
		"http://hub.example.com":      {Path: "/oauth/", Secure: true},
	} {
		if got := oauth.CookieSettingsFor(base); got != want {
			t.Errorf("%s: %+v, want %+v", base, got, want)
		}
	}
	set := oauth.CookieSettingsFor("http://127.0.0.1:8080").SetCookie("n1")
	if strings.Contains(set, "Secure") || !strings.Contains(set, "HttpOnly") || !strings.Contains(set, "SameSite=Lax") {
		t.Errorf("local cookie %q", set)
	}
	if got := oauth.NonceFrom(nil, "a=1; cartrelay_oauth=n2; b=3"); got != "n2" {
		t.Errorf("nonce from header: %q", got)
	}
}

func TestStatesSingleUse(t *testing.T) {
	env, clk := embedded(t)
	ctx := context.Background()
	s := oauth.NewStates(env.Store, clk)
	p, err := s.Begin(ctx, "ultracart")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Consume(ctx, "thrivecart", p.State, p.Nonce); !errors.Is(err, oauth.ErrUnknownState) {
		t.Errorf("another provider's callback: %v", err)
	}
	if err := s.Consume(ctx, "ultracart", p.State, "other"); !errors.Is(err, oauth.ErrNonceMismatch) {
		t.Errorf("wrong nonce: %v", err)
	}
	if err := s.Consume(ctx, "ultracart", p.State, p.Nonce); err != nil {
		t.Fatal(err)
	}
	if err := s.Consume(ctx, "ultracart", p.State, p.Nonce); !errors.Is(err, oauth.ErrUnknownState) {
		t.Errorf("second use: %v", err)
	}
}

func embedded(t *testing.T) (*wiring.Env, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	env, err := operator.Embedded(context.Background(), t.TempDir(), wiring.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	return env, clk
}

// connect runs the authorization-code grant against the fake and stores the connection with
// an access token about to expire.
func connect(t *testing.T, env *wiring.Env, clk *clock.Fake, fake *ultracartfake.Server, o ultracartapi.OAuth) connections.Connection {
	t.Helper()
	ctx := context.Background()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(o.AuthorizeURL("https://hub.example.com/cb", "s"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, _ := url.Parse(resp.Header.Get("Location"))
	tok, err := o.Exchange(ctx, back.Query().Get("code"), "https://hub.example.com/cb")
	if err != nil {
		t.Fatal(err)
	}
	c, err := env.Connections.Put(ctx, connections.Connection{Account: "acme", Provider: connections.UltraCart,
		Kind: connections.KindOAuth, BaseURL: fake.URL, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken,
		ExpiresAt: clk.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRotatorRaceRotatesOnce(t *testing.T) {
	env, clk := embedded(t)
	fake := ultracartfake.New(ultracartfake.Options{ClientID: "cid", ClientSecret: "sec", Clock: clk})
	t.Cleanup(fake.Close)
	o := ultracartapi.OAuth{BaseURL: fake.URL, ClientID: "cid", ClientSecret: "sec"}
	before := connect(t, env, clk, fake, o)

	r := &oauth.Rotator{Connections: env.Connections, Store: env.Store, Clock: clk, Refresh: oauth.UltraCartRefresh(o),
		Wait: 5 * time.Millisecond, Attempts: 400}
	var wg sync.WaitGroup
	got := make([]connections.Connection, 2)
	errs := make([]error, 2)
	startLine := make(chan struct{})
	for i := range got {
		wg.Go(func() {
			<-startLine
			got[i], errs[i] = r.Token(context.Background(), "acme", connections.UltraCart)
		})
	}
	close(startLine)
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if got[i].AccessToken == before.AccessToken || !fake.ValidAccessToken(got[i].AccessToken) {
			t.Errorf("caller %d holds %q, not a fresh valid token", i, got[i].AccessToken)
		}
	}
	if got[0].AccessToken != got[1].AccessToken {
		t.Errorf("callers hold different tokens: %q and %q", got[0].AccessToken, got[1].AccessToken)
	}
	if n := fake.Rotations(); n != 1 {
		t.Errorf("%d rotations, want 1", n)
	}
	stored, err := env.Connections.Get(context.Background(), "acme", connections.UltraCart)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Version() != before.Version()+1 || stored.RefreshToken == before.RefreshToken ||
		!stored.ExpiresAt.Equal(clk.Now().Add(time.Hour)) {
		t.Errorf("stored %+v", stored)
	}

	// A fresh token is handed out without asking UltraCart again.
	if c, err := r.Token(context.Background(), "acme", connections.UltraCart); err != nil || c.AccessToken != stored.AccessToken {
		t.Errorf("fresh token: %v", err)
	}
	if n := fake.Rotations(); n != 1 {
		t.Errorf("%d rotations after a fresh read, want 1", n)
	}
}

func TestRotatorUsesTheTokenRotatedElsewhere(t *testing.T) {
	// Another process rotated at UltraCart and stored the pair after this one read the
	// connection: the refused old refresh token makes this one re-read and use theirs.
	env, clk := embedded(t)
	fake := ultracartfake.New(ultracartfake.Options{ClientID: "cid", ClientSecret: "sec", Clock: clk})
	t.Cleanup(fake.Close)
	o := ultracartapi.OAuth{BaseURL: fake.URL, ClientID: "cid", ClientSecret: "sec"}
	before := connect(t, env, clk, fake, o)
	refresh := oauth.UltraCartRefresh(o)
	var theirs connections.Connection
	r := &oauth.Rotator{Connections: env.Connections, Store: env.Store, Clock: clk,
		Refresh: func(ctx context.Context, c connections.Connection) (ultracartapi.Token, error) {
			tok, err := refresh(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			other := before
			other.AccessToken, other.RefreshToken, other.ExpiresAt = tok.AccessToken, tok.RefreshToken, clk.Now().Add(time.Hour)
			if theirs, err = env.Connections.Put(ctx, other); err != nil {
				t.Fatal(err)
			}
			return refresh(ctx, c) // the old refresh token is now spent
		}}
	c, err := r.Token(context.Background(), "acme", connections.UltraCart)
	if err != nil || c.AccessToken != theirs.AccessToken {
		t.Fatalf("got %q, %v; want the other process's %q", c.AccessToken, err, theirs.AccessToken)
	}
}

func TestRotatorWithoutRefreshToken(t *testing.T) {
	env, clk := embedded(t)
	ctx := context.Background()
	if _, err := env.Connections.Put(ctx, connections.Connection{Account: "acme", Provider: connections.UltraCart,
		Kind: connections.KindOAuth, AccessToken: "a", ExpiresAt: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	r := &oauth.Rotator{Connections: env.Connections, Store: env.Store, Clock: clk}
	if _, err := r.Token(ctx, "acme", connections.UltraCart); !errors.Is(err, oauth.ErrNoRefreshToken) {
		t.Errorf("got %v", err)
	}
}

func TestRotatorRenewsARejectedTokenOnce(t *testing.T) {
	// A 401 on a token that is not near its expiry gets one refresh; a second caller that saw
	// the same 401 gets the renewed token without another rotation.
	env, clk := embedded(t)
	ctx := context.Background()
	fake := ultracartfake.New(ultracartfake.Options{ClientID: "cid", ClientSecret: "sec", Clock: clk})
	t.Cleanup(fake.Close)
	o := ultracartapi.OAuth{BaseURL: fake.URL, ClientID: "cid", ClientSecret: "sec"}
	connect(t, env, clk, fake, o)
	r := &oauth.Rotator{Connections: env.Connections, Store: env.Store, Clock: clk, Refresh: oauth.UltraCartRefresh(o)}
	// The stored token expires in a minute, so this first read renews it for an hour.
	before, err := r.Token(ctx, "acme", connections.UltraCart)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := r.Token(ctx, "acme", connections.UltraCart); err != nil || c.AccessToken != before.AccessToken {
		t.Fatalf("a token an hour from expiry was renewed again: %q, %v", c.AccessToken, err)
	}
	rotations := fake.Rotations()
	first, err := r.Renew(ctx, "acme", connections.UltraCart, before.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if first.AccessToken == before.AccessToken || !fake.ValidAccessToken(first.AccessToken) {
		t.Fatalf("renewed token %q is not a fresh valid one", first.AccessToken)
	}
	second, err := r.Renew(ctx, "acme", connections.UltraCart, before.AccessToken)
	if err != nil || second.AccessToken != first.AccessToken {
		t.Fatalf("second renew: %q, %v; want %q", second.AccessToken, err, first.AccessToken)
	}
	if n := fake.Rotations() - rotations; n != 1 {
		t.Errorf("%d rotations for two renewals of one rejected token, want 1", n)
	}
}
