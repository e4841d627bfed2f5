package reviews_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/reviews"
	"github.com/cartrelay/cartrelay/shared/sitehosts"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
	storeembedded "github.com/cartrelay/cartrelay/shared/store/embedded"
)

var update = flag.Bool("update", false, "rewrite testdata/golden_token.json")

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func acct(id, template, domains string) accounts.Account {
	a := accounts.Account{ID: id, AllowedDomains: domains}
	a.Set("iterable.review_url_template", template)
	return a
}

// reviewKey is a stand-in for the account's generated review key.
func reviewKey(account string) accountkeys.Key {
	sum := sha256.Sum256([]byte("review key of " + account))
	return accountkeys.Key{Value: hex.EncodeToString(sum[:])}
}

func mustKey(t *testing.T, a accounts.Account) []byte {
	t.Helper()
	return reviews.SigningKey(reviewKey(a.ID))
}

func claims() reviews.Claims {
	return reviews.Claims{Account: "acme", OrderID: "UC-1001", SKU: "MUG-01", Expires: now.Add(30 * 24 * time.Hour)}
}

// TestGoldenToken pins the token format: links already in customers' mailboxes must keep
// working after an upgrade.
func TestGoldenToken(t *testing.T) {
	key := mustKey(t, acct("acme", "", ""))
	tok, err := reviews.Sign(key, claims())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "golden_token.json")
	if *update {
		b, _ := json.MarshalIndent(map[string]string{"account": "acme", "review_key": reviewKey("acme").Value, "token": tok}, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var golden struct{ Token string }
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &golden); err != nil {
		t.Fatal(err)
	}
	if tok != golden.Token {
		t.Fatalf("token format changed:\n got %s\nwant %s", tok, golden.Token)
	}
	c, err := reviews.Verify(key, golden.Token, now)
	if err != nil || c.SKU != "MUG-01" || c.OrderID != "UC-1001" || c.Account != "acme" {
		t.Fatalf("golden token: %+v %v", c, err)
	}
}

func TestVerify(t *testing.T) {
	key := mustKey(t, acct("acme", "", ""))
	good, err := reviews.Sign(key, claims())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	reencode := func(mutate func(map[string]any)) string {
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		mutate(m)
		b, _ := json.Marshal(m)
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
	}
	otherKey := []byte("another key")
	otherAccountKey := mustKey(t, acct("other", "", ""))
	forged, _ := reviews.Sign(otherKey, claims())
	for _, tc := range []struct {
		name  string
		key   []byte
		token string
		at    time.Time
		want  error
	}{
		{"valid", key, good, now, nil},
		{"valid until the last second", key, good, now.Add(30*24*time.Hour - time.Second), nil},
		{"expired", key, good, now.Add(30 * 24 * time.Hour), reviews.ErrExpired},
		{"another product", key, reencode(func(m map[string]any) { m["s"] = "SHIRT-XL" }), now, reviews.ErrSignature},
		{"another order", key, reencode(func(m map[string]any) { m["o"] = "UC-9999" }), now, reviews.ErrSignature},
		{"life stretched", key, reencode(func(m map[string]any) { m["x"] = now.Add(365 * 24 * time.Hour).Unix() }), now.Add(60 * 24 * time.Hour), reviews.ErrSignature},
		{"signature flipped", key, parts[0] + "." + parts[1] + "." + flip(parts[2]), now, reviews.ErrSignature},
		{"signed with another key", key, forged, now, reviews.ErrSignature},
		{"checked under another account's key", otherAccountKey, good, now, reviews.ErrSignature},
		{"no key", nil, good, now, reviews.ErrNoKey},
		{"two parts", key, parts[0] + "." + parts[1], now, reviews.ErrMalformed},
		{"unknown version", key, "r9." + parts[1] + "." + parts[2], now, reviews.ErrMalformed},
		{"not base64", key, parts[0] + ".%%%." + parts[2], now, reviews.ErrSignature},
		{"huge", key, strings.Repeat("a", 5000), now, reviews.ErrMalformed},
		{"empty", key, "", now, reviews.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := reviews.Verify(tc.key, tc.token, tc.at)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

func TestRedirectURL(t *testing.T) {
	c := reviews.Claims{SKU: "MUG 01&x", OrderID: "UC-1"}
	shop, _ := sitehosts.Parse("example.com")
	for _, tc := range []struct {
		template, want string
		hosts          sitehosts.List
		err            error
	}{
		{"https://shop.example.com/reviews/new?sku={sku}&order={order_id}", "https://shop.example.com/reviews/new?order=UC-1&sku=MUG+01%26x&verified_buyer=true", shop, nil},
		{"https://shop.example.com/r?p={sku}&v={verified}", "https://shop.example.com/r?p=MUG+01%26x&v=true", shop, nil},
		{"https://example.com/review", "https://example.com/review?verified_buyer=true", shop, nil},
		{"https://evil.example.net/r?p={sku}", "", shop, sitehosts.ErrNotAllowed},
		{"https://shop.example.com/r", "", sitehosts.List{}, sitehosts.ErrNotAllowed},
		{"https://{sku}/r", "", shop, reviews.ErrTemplate}, // the product names the host
		{"", "", shop, reviews.ErrTemplate},
		{"/relative/{sku}", "", shop, reviews.ErrTemplate},
		{"javascript:alert({sku})", "", shop, reviews.ErrTemplate},
	} {
		got, err := reviews.RedirectURL(tc.template, c, tc.hosts)
		if !errors.Is(err, tc.err) || got != tc.want || (err != nil && !errors.Is(err, reviews.ErrTemplate)) {
			t.Errorf("%q: got %q %v, want %q %v", tc.template, got, err, tc.want, tc.err)
		}
	}
}

type fakeAccounts map[string]accounts.Account

func (f fakeAccounts) Get(_ context.Context, id string, _ ...accounts.Field) (accounts.Account, error) {
	a, ok := f[id]
	if !ok {
		return accounts.Account{}, accounts.ErrNotFound
	}
	return a, nil
}

// fakeKeys holds the review keys of the accounts that have one.
type fakeKeys map[string]accountkeys.Key

func (f fakeKeys) Get(_ context.Context, account string, name accountkeys.Name) (accountkeys.Key, error) {
	k, ok := f[account]
	if !ok || name != accountkeys.Review {
		return accountkeys.Key{}, accountkeys.ErrNotFound
	}
	return k, nil
}

// TestHandle: only a link cartrelay signed, unexpired and within the account's link lifetime,
// redirects, and only to the merchant's own domains. The attacks of a merchant (or anyone who
// knows the Iterable API key) minting a link to send shoppers from the deployment's domain to
// another site fail on each count.
func TestHandle(t *testing.T) {
	const template = "https://shop.example.com/reviews/new?sku={sku}"
	live := acct("acme", template, "example.com")
	live.Set("iterable.api_key", accounts.NewSecret("itbl-test-key"))
	elsewhere := acct("elsewhere", "https://evil.example.net/r?sku={sku}", "example.com")
	unset := acct("unset", template, "")
	noTemplate := acct("plain", "", "example.com")
	nokey := acct("nokey", template, "example.com")
	accts := fakeAccounts{"acme": live, "elsewhere": elsewhere, "unset": unset, "plain": noTemplate, "nokey": nokey}
	keys := fakeKeys{}
	for id := range accts {
		if id != "nokey" {
			keys[id] = reviewKey(id)
		}
	}
	sign := func(account string, key []byte, expires time.Time) string {
		c := claims()
		c.Account, c.Expires = account, expires
		tok, err := reviews.Sign(key, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	in30d := now.Add(30 * 24 * time.Hour)
	tok := sign("acme", mustKey(t, live), in30d)
	// The key links were signed with before: derived from the merchant-set Iterable API key.
	apiKeyMAC := hmac.New(sha256.New, []byte("itbl-test-key"))
	apiKeyMAC.Write([]byte("cartrelay review links v1\x00acme"))
	selfMinted := sign("acme", apiKeyMAC.Sum(nil), in30d)
	ch := reviews.Checker{Accounts: accts, Keys: keys, LinkTTL: func(accounts.Account) time.Duration { return 30 * 24 * time.Hour },
		Template: iterable.ReviewURLTemplate}

	for _, tc := range []struct {
		name     string
		token    string
		at       time.Time
		status   int
		location string
		body     string
	}{
		{"redirects", tok, now, 302, "https://shop.example.com/reviews/new?sku=MUG-01&verified_buyer=true", ""},
		{"expired", tok, now.Add(31 * 24 * time.Hour), 410, "", "expired on 22 December 2026"},
		{"tampered", tok[:len(tok)-2] + "xx", now, 404, "", "not valid"},
		{"garbage", "hello", now, 404, "", "not valid"},
		{"unknown account", sign("ghost", mustKey(t, acct("ghost", "", "")), in30d), now, 404, "", "not valid"},
		{"self-minted with the Iterable API key", selfMinted, now, 404, "", "not valid"},
		{"account that never signed a link", sign("nokey", mustKey(t, nokey), in30d), now, 404, "", "not valid"},
		{"expiry beyond the link lifetime", sign("acme", mustKey(t, live), now.Add(10*365*24*time.Hour)), now, 404, "", "not valid"},
		{"review page on another site", sign("elsewhere", mustKey(t, elsewhere), in30d), now, 404, "", "not taking reviews"},
		{"no allowed_domains", sign("unset", mustKey(t, unset), in30d), now, 404, "", "not taking reviews"},
		{"no review page configured", sign("plain", mustKey(t, noTemplate), in30d), now, 404, "", "not taking reviews"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ch.Handle(context.Background(), tc.at, tc.token)
			if p.Status != tc.status || p.Location != tc.location || !strings.Contains(p.Body, tc.body) {
				t.Fatalf("Handle = %+v", p)
			}
			if tc.status != 302 && (p.Title == "" || p.Reason == "") {
				t.Fatalf("a refusal needs a title for the page and a reason for the log: %+v", p)
			}
		})
	}
	// Without a lifetime from the settings, MaxLinkTTL caps it.
	far := sign("acme", mustKey(t, live), now.Add(reviews.MaxLinkTTL+time.Hour))
	if p := (reviews.Checker{Accounts: accts, Keys: keys, Template: iterable.ReviewURLTemplate}).Handle(context.Background(), now, far); p.Status != 404 || !strings.Contains(p.Body, "not valid") {
		t.Fatalf("a link expiring past MaxLinkTTL: %+v", p)
	}
}

func TestAskedClaim(t *testing.T) {
	ctx := context.Background()
	db, err := sqlitedb.InDir(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := storeembedded.New(ctx, db, clock.NewFake(now))
	if err != nil {
		t.Fatal(err)
	}
	a := reviews.NewAsked(st)
	steps := []struct {
		sku, by string
		want    bool
	}{
		{"MUG-01", "req-1", true},
		{"MUG-01", "req-1", true},  // the same request retried still names it
		{"MUG-01", "req-2", false}, // a later request does not ask again
		{"SHIRT", "req-2", true},
	}
	for _, s := range steps {
		got, err := a.Claim(ctx, "acme", "ann@example.com", s.sku, s.by, now)
		if err != nil || got != s.want {
			t.Fatalf("Claim(%s, %s) = %v %v, want %v", s.sku, s.by, got, err, s.want)
		}
	}
	if ok, _ := a.WasAsked(ctx, "acme", "bob@example.com", "MUG-01"); ok {
		t.Fatal("another contact counts as asked")
	}
}
