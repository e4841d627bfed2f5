package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/phone"
	"github.com/cartrelay/cartrelay/shared/thrivecart/tcpoll"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartapi"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartfake"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// TestScheduleWalksThriveCart runs ThriveCart polling through the real handlers: the schedule
// enqueues a job per account, the poll consumer walks the transactions with the account's API
// key, and ingest stores what it found. An account without a key is looked at again only
// after tcpoll.NoKeyRecheck.
func TestScheduleWalksThriveCart(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	tc := thrivecartfake.New("acme", "tc-key")
	t.Cleanup(tc.Close)
	tc.SetClock(clk)
	var txs []thrivecartapi.Transaction
	for i := range 3 {
		at := clk.Now().AddDate(0, 0, -3+i)
		txs = append(txs, thrivecartapi.Transaction{EventID: thrivecartapi.Flex(fmt.Sprint(700 + i)),
			Timestamp: thrivecartapi.Flex(fmt.Sprint(at.Unix())), TransactionType: "rebill", ItemType: "product", ItemID: "12",
			Amount: "2900", OrderID: thrivecartapi.Flex(fmt.Sprint(8800 + i)), InvoiceID: thrivecartapi.Flex(fmt.Sprintf("000000%03d-2", i)),
			Currency: "USD", Customer: thrivecartapi.Customer{Name: "Sam Lee", Email: fmt.Sprintf("sam%d@example.com", i)},
			Reference: "product-12"})
	}
	tc.Add("acme", txs...)
	env, err := operator.Embedded(ctx, t.TempDir(), wiring.Options{Clock: clk, Phone: phone.E164,
		Config: app.Config{ThriveCartBaseURL: tc.URL}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	h := &harness{t: t, env: env, clk: clk, sent: map[string][]domain.Fact{}}
	h.account("acme", "")
	if _, err := env.Accounts.Put(ctx, "acme", []byte(`{"thrivecart":{"api_key":"tc-key"}}`)); err != nil {
		t.Fatal(err)
	}
	h.account("bolt", "")

	if jobs := h.pollAll(); jobs != 2 {
		t.Fatalf("%d poll jobs, want one per account", jobs)
	}
	for i := range 3 {
		c := h.contact("acme", fmt.Sprintf("sam%d@example.com", i))
		if len(c.Orders) != 1 || c.Orders[0].Total.String() != "29.00 USD" || !c.Orders[0].Rebill {
			t.Errorf("sam%d's orders: %+v", i, c.Orders)
		}
	}
	if q := h.quarantined("acme"); len(q) != 0 {
		t.Errorf("quarantined: %+v", q)
	}
	cur, _, err := tcpoll.LoadCursor(ctx, env.Store, "acme")
	if err != nil || cur.Done != 3 || !cur.CaughtUp || cur.Status != "" {
		t.Fatalf("acme's cursor: %+v (%v)", cur, err)
	}
	if cur, _, _ := tcpoll.LoadCursor(ctx, env.Store, "bolt"); cur.Status != tcpoll.StatusNoKey {
		t.Errorf("bolt's cursor: status %q, want %q", cur.Status, tcpoll.StatusNoKey)
	}
	calls := len(tc.Calls())

	// Nothing is due again at once; after the interval only acme is.
	if jobs := h.pollAll(); jobs != 0 {
		t.Errorf("%d poll jobs right after a run, want 0", jobs)
	}
	clk.Advance(11 * time.Minute)
	if jobs := h.pollAll(); jobs != 1 {
		t.Errorf("%d poll jobs after the interval, want 1 (bolt has no key)", jobs)
	}
	if len(tc.Calls()) == calls {
		t.Error("the second walk did not ask ThriveCart")
	}
}
