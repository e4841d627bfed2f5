package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/cli"
	"github.com/cartrelay/cartrelay/shared/testenv"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartapi"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartfake"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
)

func TestConnectionsPutAndBackfillStatus(t *testing.T) {
	data := t.TempDir()
	putAccount(t, data, "acme", testAccount)
	var errb strings.Builder
	if code := cli.Main(context.Background(), []string{"--data", data, "backfill", "acme", "--status"}, cli.IO{Out: io.Discard, Err: &errb}); code != 0 ||
		!strings.Contains(errb.String(), "account acme has no UltraCart connection, so its UltraCart streams are not polled") {
		t.Fatalf("--status without a connection: %d %s", code, errb.String())
	}
	fake := ultracartfake.New(ultracartfake.Options{SimpleKey: "sk-0123456789"})
	t.Cleanup(fake.Close)
	out, code := runCLI(t, data, "connections", "put", "acme", "ultracart", "--simple-key", "sk-0123456789", "--base-url", fake.URL)
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
	if err := json.Unmarshal([]byte(out), &cursors); err != nil || len(cursors) != len(ucpoll.Streams()) {
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

// TestConnectionsPutChecksTheKey saves a key only once UltraCart accepted it, with one cheap
// request, and says why when it did not.
func TestConnectionsPutChecksTheKey(t *testing.T) {
	data := t.TempDir()
	putAccount(t, data, "acme", testAccount)
	fake := ultracartfake.New(ultracartfake.Options{SimpleKey: "uc-key"})
	t.Cleanup(fake.Close)
	noConnection := func() bool {
		out, code := runCLI(t, data, "backfill", "acme")
		return code != 0 && strings.Contains(out, "account acme has no UltraCart connection")
	}

	out, code := runCLI(t, data, "connections", "put", "acme", "ultracart", "--simple-key", "wrong-key", "--base-url", fake.URL)
	if code != 1 || !strings.Contains(out, "UltraCart refused the key") || !strings.Contains(out, "Nothing was saved") {
		t.Fatalf("a wrong key: exit %d: %s", code, out)
	}
	if !noConnection() {
		t.Fatal("a refused key was saved")
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	out, code = runCLI(t, data, "connections", "put", "acme", "ultracart", "--simple-key", "uc-key", "--base-url", closed.URL)
	if code != 1 || !strings.Contains(out, "could not reach "+closed.URL+" to check the key") || !strings.Contains(out, "--no-check") {
		t.Fatalf("an unreachable UltraCart: exit %d: %s", code, out)
	}
	if !noConnection() {
		t.Fatal("an unchecked key was saved")
	}

	calls := len(fake.Calls())
	out, code = runCLI(t, data, "connections", "put", "acme", "ultracart", "--simple-key", "uc-key", "--base-url", fake.URL)
	if code != 0 {
		t.Fatalf("the right key: exit %d: %s", code, out)
	}
	got := fake.Calls()[calls:]
	if len(got) != 1 || got[0].Path != "/rest/v2/order/orders/query" || got[0].Limit != 1 || got[0].Status != http.StatusOK {
		t.Fatalf("the check sent %+v, want one order query for one order", got)
	}
	if noConnection() {
		t.Fatal("the accepted key was not saved")
	}

	// --no-check saves without asking (UltraCart down, say).
	out, code = runCLI(t, data, "connections", "put", "acme", "ultracart", "--simple-key", "other", "--base-url", closed.URL, "--no-check")
	if code != 0 {
		t.Fatalf("--no-check: exit %d: %s", code, out)
	}
}

// TestBackfillShowsAFailingConnectionAtOnce connects to an UltraCart that answers every
// request with a server error: the progress line and `backfill --status` say so while the
// backfill waits to retry, and --status shows where the walk began and its window in words.
func TestBackfillShowsAFailingConnectionAtOnce(t *testing.T) {
	data := t.TempDir()
	putAccount(t, data, "acme", testAccount)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("UC-REST-ERROR", "database unavailable")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":{"developer_message":"database unavailable"},"success":false,"metadata":{}}`))
	}))
	t.Cleanup(down.Close)
	if out, code := runCLI(t, data, "connections", "put", "acme", "ultracart", "--simple-key", "k", "--base-url", down.URL, "--no-check"); code != 0 {
		t.Fatal(out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var progress testenv.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, []string{"--data", data, "backfill", "acme", "--since", "2024-01-01"},
			cli.IO{Out: io.Discard, Err: &progress})
	}()
	eventually(t, 5*time.Second, "the progress line shows the error", func() (bool, string) {
		s := progress.String()
		return strings.Contains(s, "acme orders — retrying after: ") && strings.Contains(s, "database unavailable"), s
	})
	out, code := runCLI(t, data, "backfill", "acme", "--status", "--format", "json")
	if code != 0 {
		t.Fatal(out)
	}
	var status []map[string]any
	if err := json.Unmarshal([]byte(out), &status); err != nil || len(status) == 0 {
		t.Fatalf("%s: %v", out, err)
	}
	orders := status[0]
	if orders["stream"] != "orders" || !strings.Contains(fmt.Sprint(orders["last_error"]), "database unavailable") ||
		orders["since"] != "2024-01-01T00:00:00Z" || orders["window"] != "24h0m0s" {
		t.Fatalf("orders status while failing: %s", out)
	}
	if status[2]["since"] != "all history" {
		t.Fatalf("auto orders status: %v", status[2])
	}
	table, code := runCLI(t, data, "backfill", "acme", "--status", "--format", "table")
	if code != 0 || !strings.Contains(table, "2024-01-01T00:00:00Z") || !strings.Contains(table, "database unavailable") {
		t.Fatalf("status table:\n%s", table)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("backfill did not stop when cancelled")
	}
}
