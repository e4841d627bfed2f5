package cli_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/poller"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartapi"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartfake"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
)

func TestConnectionsPutAndBackfillStatus(t *testing.T) {
	data := t.TempDir()
	putAccount(t, data, "acme", testAccount)
	out, code := runCLI(t, data, "connections", "put", "acme", "ultracart", "--simple-key", "sk-0123456789")
	if code != 0 {
		t.Fatalf("connections put: %d %s", code, out)
	}
	if strings.Contains(out, "sk-0123456789") {
		t.Fatal("the key was printed back")
	}
	if out, code := runCLI(t, data, "connections", "put", "ghost", "ultracart", "--simple-key", "k"); code == 0 {
		t.Fatalf("a connection for an unknown account was accepted: %s", out)
	}
	out, code = runCLI(t, data, "backfill", "acme", "--status")
	if code != 0 {
		t.Fatalf("backfill --status: %d %s", code, out)
	}
	var cursors []struct {
		Stream string `json:"stream"`
	}
	if err := json.Unmarshal([]byte(out), &cursors); err != nil || len(cursors) != len(poller.Streams()) {
		t.Fatalf("status %q: %v", out, err)
	}
}

// TestBackfillWalksHistoryThenServeIngestsIt connects an account to a fake UltraCart by key,
// runs `cartrelay backfill` to the present, and checks that serve ingests every order once.
func TestBackfillWalksHistoryThenServeIngestsIt(t *testing.T) {
	data := t.TempDir()
	putAccount(t, data, "acme", testAccount)
	const n = 450
	fake := ultracartfake.New(ultracartfake.Options{Orders: n, Start: time.Now().AddDate(0, 0, -20), Spacing: 20 * time.Minute,
		SimpleKey: "uc-key"})
	t.Cleanup(fake.Close)
	if out, code := runCLI(t, data, "connections", "put", "acme", "ultracart", "--simple-key", "uc-key", "--base-url", fake.URL); code != 0 {
		t.Fatalf("connections put: %s", out)
	}
	out, code := runCLI(t, data, "backfill", "acme", "--since", time.Now().AddDate(0, 0, -30).Format("2006-01-02"))
	if code != 0 {
		t.Fatalf("backfill exited %d: %s", code, out)
	}
	var cursors []struct {
		Stream   string `json:"stream"`
		Done     int64  `json:"done"`
		CaughtUp bool   `json:"caught_up"`
	}
	if err := json.Unmarshal([]byte(out), &cursors); err != nil {
		t.Fatalf("backfill output %q: %v", out, err)
	}
	for _, c := range cursors {
		if !c.CaughtUp {
			t.Fatalf("stream %s not caught up: %+v", c.Stream, c)
		}
		if c.Stream == "orders" && c.Done < n {
			t.Fatalf("orders stream walked %d of %d orders", c.Done, n)
		}
	}
	startServe(t, data)
	eventually(t, 60*time.Second, "every backfilled order is stored once", func() (bool, string) {
		out, code := runCLI(t, data, "orders", "list", "acme")
		if code != 0 {
			return false, out
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return len(lines) == n, fmt.Sprintf("%d orders stored", len(lines))
	})
}

// TestBackfillThriveCartOnly backfills an account that has a ThriveCart API key and no UltraCart
// connection: the ThriveCart walk runs to the present and its cursor is printed.
func TestBackfillThriveCartOnly(t *testing.T) {
	data := t.TempDir()
	tc := thrivecartfake.New("acme", "tc-key")
	t.Cleanup(tc.Close)
	var txs []thrivecartapi.Transaction
	for i := range 250 {
		at := time.Now().Add(-time.Duration(250-i) * time.Hour)
		txs = append(txs, thrivecartapi.Transaction{EventID: thrivecartapi.Flex(fmt.Sprint(1000 + i)),
			Timestamp: thrivecartapi.Flex(fmt.Sprint(at.Unix())), TransactionType: "rebill", ItemType: "product", ItemID: "7",
			Amount: "1500", OrderID: thrivecartapi.Flex(fmt.Sprint(9000 + i)), InvoiceID: thrivecartapi.Flex(fmt.Sprintf("%09d-2", i)),
			Currency: "USD", Customer: thrivecartapi.Customer{Name: "Lee Ray", Email: fmt.Sprintf("lee%d@example.com", i)}})
	}
	tc.Add("acme", txs...)
	t.Setenv("THRIVECART_BASE_URL", tc.URL)
	putAccount(t, data, "acme", strings.Replace(testAccount, `"thrivecart":{"secret":"tc-word"}`,
		`"thrivecart":{"secret":"tc-word","api_key":"tc-key"}`, 1))
	out, code := runCLI(t, data, "backfill", "acme")
	if code != 0 {
		t.Fatalf("backfill exited %d: %s", code, out)
	}
	var cursors []struct {
		Source   string `json:"source"`
		Stream   string `json:"stream"`
		Done     int64  `json:"done"`
		CaughtUp bool   `json:"caught_up"`
	}
	if err := json.Unmarshal([]byte(out), &cursors); err != nil || len(cursors) == 0 {
		t.Fatalf("backfill output %q: %v", out, err)
	}
	last := cursors[len(cursors)-1]
	if last.Source != "thrivecart" || last.Stream != "transactions" || last.Done != 250 || !last.CaughtUp {
		t.Fatalf("thrivecart cursor %+v, want 250 transactions caught up", last)
	}
}
