package iterable_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/iterable/iterablefake"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
	"github.com/cartrelay/cartrelay/shared/store"
	storeembedded "github.com/cartrelay/cartrelay/shared/store/embedded"
)

// now is the fake clock's start in every test.
var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

const testKey = "itbl-server-key-0123"

// env is one test's store, clock, fake Iterable and destination.
type env struct {
	t    testing.TB
	clk  *clock.Fake
	st   store.Store
	fake *iterablefake.Server
	dest *iterable.Destination
	acct accounts.Account
}

type envOpts struct {
	limits     map[string]ratelimit.Limit
	fakeLimits map[string]iterablefake.Limit
	timeout    time.Duration
	noSpec     bool
	// store opens the destination's table; nil: SQLite in a temporary directory.
	store func(clock.Clock) store.Store
}

func openStore(t testing.TB, clk clock.Clock) store.Store {
	t.Helper()
	db, err := sqlitedb.InDir(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := storeembedded.New(context.Background(), db, clk)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// specPath is Iterable's Swagger file when the documents beside the checkout are present.
func specPath(t testing.TB) string {
	t.Helper()
	p, ok := iterablefake.FindSpec()
	if !ok {
		t.Log("Iterable's Swagger file is absent: requests are not checked against it")
	}
	return p
}

// testKeys makes the accounts' generated keys over st, sealed with a fixed local master key.
func testKeys(t testing.TB, st store.Store, clk clock.Clock) *accountkeys.Repo {
	t.Helper()
	master, err := secrets.NewLocalKey(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return accountkeys.New(st, secrets.NewSealer(master, clk), clk)
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	clk := clock.NewFake(now)
	var st store.Store
	if o.store != nil {
		st = o.store(clk)
	} else {
		st = openStore(t, clk)
	}
	fo := iterablefake.Options{APIKey: testKey, Clock: clk, Limits: o.fakeLimits}
	if !o.noSpec {
		fo.SpecPath = specPath(t)
	}
	fake, err := iterablefake.New(fo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	httpc := fake.Client()
	httpc.Timeout = o.timeout
	if httpc.Timeout == 0 {
		httpc.Timeout = 5 * time.Second
	}
	dest, err := iterable.New(iterable.Deps{Store: st, Clock: clk, HTTP: httpc, PublicBaseURL: "https://hooks.example.com",
		Limits: o.limits, Keys: testKeys(t, st, clk),
		// Waiting for a slot advances the fake clock instead of sleeping.
		Sleep: func(_ context.Context, d time.Duration) error { clk.Advance(d); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	a := accounts.Account{ID: "acme", AllowedDomains: "shop.example.com"}
	a.Set("iterable.enabled", true, "iterable.api_key", accounts.NewSecret(testKey), "iterable.base_url", fake.URL,
		"iterable.thumbnail_size", "200x200", "iterable.email_list_ids", "111", "iterable.sms_list_ids", "222",
		"iterable.purchase_list_ids", "333", "iterable.cart_list_ids", "444",
		"iterable.review_url_template", "https://shop.example.com/reviews/new?sku={sku}&order={order_id}")
	return &env{t: t, clk: clk, st: st, fake: fake, dest: dest, acct: a}
}

// dry is the account with no API key, against the public base URL.
func (e *env) dry() accounts.Account {
	a := e.acct
	a.Set("iterable.api_key", accounts.Secret{}, "iterable.base_url", iterable.DefaultBaseURL)
	return a
}

func loadFact(t testing.TB, name string) domain.Fact {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "facts", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var f domain.Fact
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return f
}

func factNames(t testing.TB) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join("testdata", "facts", "*.json"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no fact fixtures: %v", err)
	}
	var out []string
	for _, p := range m {
		out = append(out, strings.TrimSuffix(filepath.Base(p), ".json"))
	}
	return out
}

func accountsHistory(mode string) accounts.HistoryMode { return accounts.HistoryMode(mode) }

type accountT = accounts.Account
