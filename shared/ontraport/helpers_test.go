package ontraport

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/ontraport/ontraportfake"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
	"github.com/cartrelay/cartrelay/shared/store"
	storeembedded "github.com/cartrelay/cartrelay/shared/store/embedded"
)

const (
	testAppID = "2_12345_TestApp"
	testKey   = "op-test-key-7f9a2c"
	testAcct  = "acme"
)

var t0 = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

// env is a destination over an embedded table and a fake ONTRAPORT, on a fake clock.
type env struct {
	t    *testing.T
	clk  *clock.Fake
	st   store.Store
	fake *ontraportfake.Server
	dest *Destination
	acct accounts.Account
}

type envOpt func(*ontraportfake.Options, *Options, *accounts.Account)

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	clk := clock.NewFake(t0)
	ctx := context.Background()
	db, err := sqlitedb.InDir(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := storeembedded.New(ctx, db, clk)
	if err != nil {
		t.Fatal(err)
	}
	fo := ontraportfake.Options{AppID: testAppID, APIKey: testKey, Clock: clk}
	do := Options{Store: st, Clock: clk, HTTPClient: &http.Client{Timeout: 2 * time.Second},
		Sleep: func(_ context.Context, d time.Duration) error { clk.Advance(d); return nil }}
	acct := testAccount()
	for _, o := range opts {
		o(&fo, &do, &acct)
	}
	fake := ontraportfake.New(fo)
	t.Cleanup(fake.Close)
	if acct.Text(keyPath(keyBaseURL)) == "" {
		set(&acct, keyBaseURL, fake.URL)
	}
	return &env{t: t, clk: clk, st: st, fake: fake, dest: New(do), acct: acct}
}

// testAccount is an account with ONTRAPORT on and every other setting unset (its default).
func testAccount() accounts.Account {
	a := accounts.Account{ID: testAcct, ForwardSince: t0.Add(-24 * time.Hour)}
	set(&a, keyEnabled, true, keyAppID, testAppID, keyAPIKey, accounts.NewSecret(testKey), keyHistory, accounts.HistoryProfiles)
	return a
}

// set sets settings of a's ONTRAPORT section, given as pairs of its key ("fields.ltv") and a
// value as the accounts repo reads it (accounts.Account.Set).
func set(a *accounts.Account, pairs ...any) {
	for i := 0; i+1 < len(pairs); i += 2 {
		a.Set(keyPath(pairs[i].(string)), pairs[i+1])
	}
}

func (e *env) deliver(f domain.Fact) (deliver.Outcome, error) {
	e.t.Helper()
	return e.dest.Deliver(context.Background(), e.acct, f)
}

// mustDeliver delivers f, fails on an error, and marks the fact done as the forwarder does.
func (e *env) mustDeliver(f domain.Fact) deliver.Outcome {
	e.t.Helper()
	out, err := e.deliver(f)
	if err != nil {
		e.t.Fatalf("deliver %s: %v\nnote: %s", f.ID, err, out.Note)
	}
	e.markDone(f, out)
	return out
}

// markDone writes the fact-done marker in the forwarder's format (shared/app).
func (e *env) markDone(f domain.Fact, out deliver.Outcome) {
	e.t.Helper()
	rec := map[string]any{"at": e.clk.Now(), "status": out.Status, "result": out.Done}
	if err := history.New(e.st).MarkFactDone(context.Background(), f.Account, Name, f.ID, rec); err != nil {
		e.t.Fatal(err)
	}
}

func money(s, cur string) domain.Money {
	m, err := domain.ParseMoney(s, cur)
	if err != nil {
		panic(err)
	}
	return m
}

func usd(s string) domain.Money { return money(s, "USD") }

// orderFact is OrderPlaced for a simple order.
func orderFact(id, email string, items []domain.LineItem, ship, tax, disc, total string) domain.Fact {
	o := domain.Order{Key: domain.OrderKey(domain.UltraCart, id, ""), Source: domain.UltraCart, OrderID: id, Email: email,
		Status: domain.OrderPaid, Currency: "USD", PaidAt: t0, CreatedAt: t0, Items: items,
		Shipping: usd(ship), Tax: usd(tax), Discount: usd(disc), Total: usd(total),
		Billing: domain.Address{FirstName: "Ann", LastName: "Lee", Address1: "1 Main St", City: "Springfield", Region: "IL", PostalCode: "62701", CountryCode: "US"},
		Phone:   "+12175550100"}
	return domain.Fact{ID: domain.OrderPlacedID(testAcct, o.Key), Account: testAcct, Kind: domain.FactOrderPlaced,
		Email: email, OccurredAt: t0, Order: &o}
}

func lineItem(sku string, qty int64, unit string) domain.LineItem {
	return domain.LineItem{SKU: sku, Name: "Item " + sku, Quantity: qty, UnitPrice: usd(unit)}
}

// refundFact is OrderRefunded for placed with a cumulative refunded amount grown by delta.
func refundFact(placed domain.Fact, delta, cumulative string) domain.Fact {
	o := *placed.Order
	o.Refunded = usd(cumulative)
	c, _ := o.Refunded.Cmp(o.Total)
	r := &domain.Refund{Delta: usd(delta), Cumulative: usd(cumulative), Full: c >= 0, At: t0.Add(time.Hour)}
	return domain.Fact{ID: domain.OrderRefundedID(testAcct, o.Key, o.Refunded), Account: testAcct, Kind: domain.FactOrderRefunded,
		Email: placed.Email, OccurredAt: r.At, Order: &o, Refund: r}
}

func readJSONFile(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}
