package signedhooks_test

import (
	"encoding/base64"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/deliver/delivertest"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/signedhooks"
	"github.com/cartrelay/cartrelay/shared/signedhooks/hookfake"
)

var now = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// secret makes a secret as the specification writes them, from a seed letter.
func secret(seed string) string {
	return "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat(seed, 32)))
}

type env struct {
	clk  *clock.Fake
	fake *hookfake.Receiver
	dest *signedhooks.Destination
	acct accounts.Account
}

// newEnv is the destination and one receiver, "crm", that verifies with secrets (the first is
// the endpoint's).
func newEnv(t testing.TB, secrets ...string) *env {
	t.Helper()
	if len(secrets) == 0 {
		secrets = []string{secret("a")}
	}
	clk := clock.NewFake(now)
	fake, err := hookfake.New(hookfake.Options{Secrets: secrets, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	dest := signedhooks.New(signedhooks.Options{Clock: clk, HTTP: fake.Client()})
	a := accounts.Account{ID: "acme", Settings: map[string]any{}}
	a = with(a, "webhooks.enabled", true)
	a = endpoint(a, "crm", fake.URL, secrets[0], "", "")
	return &env{clk: clk, fake: fake, dest: dest, acct: a}
}

// with returns a copy of a with one setting changed (nil removes it).
func with(a accounts.Account, path string, v any) accounts.Account {
	a.Settings = maps.Clone(a.Settings)
	if a.Settings == nil {
		a.Settings = map[string]any{}
	}
	if v == nil {
		delete(a.Settings, path)
	} else {
		a.Settings[path] = v
	}
	return a
}

// endpoint adds (or replaces) an endpoint; empty secrets are unset.
func endpoint(a accounts.Account, name, url, sec, previous, kinds string) accounts.Account {
	p := "webhooks.endpoints." + name + "."
	a = with(a, p+"url", url)
	a = with(a, p+"secret", accounts.NewSecret(sec))
	a = with(a, p+"previous_secret", accounts.NewSecret(previous))
	return with(a, p+"kinds", kinds)
}

// fact is delivertest's example fact of kind k (one order of ann@example.com, and so on).
func fact(t testing.TB, k domain.FactKind) domain.Fact {
	t.Helper()
	for _, f := range delivertest.Examples(t) {
		if f.Kind == k {
			return f
		}
	}
	t.Fatalf("delivertest has no example of %s", k)
	return domain.Fact{}
}
