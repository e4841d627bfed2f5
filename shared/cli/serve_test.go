package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/cli"
	"github.com/cartrelay/cartrelay/shared/lease"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/testenv"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartfake"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// server runs `cartrelay serve` in process on a free port over dataDir.
type server struct {
	t      *testing.T
	addr   string
	cancel context.CancelFunc
	done   chan int
	// logs is what serve wrote to stdout and stderr.
	logs *testenv.SyncBuffer
}

// log is what serve has written to its output and log so far.
func (s *server) log() string {
	return s.logs.String()
}

func startServe(t *testing.T, dataDir string) *server { return startServeLogging(t, dataDir, "warn") }

// startServeLogging starts serve with LOG_LEVEL level.
func startServeLogging(t *testing.T, dataDir, level string) *server {
	t.Helper()
	if os.Getenv("CARTRELAY_RUN_DIR") == "" {
		// Where serve notes that it runs: the test's own, not the user's.
		t.Setenv("CARTRELAY_RUN_DIR", t.TempDir())
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	s := &server{t: t, cancel: cancel, done: make(chan int, 1), logs: &testenv.SyncBuffer{}}
	go func() {
		code := cli.Main(ctx, []string{"--data", dataDir, "serve", "--addr", "127.0.0.1:0"}, cli.IO{
			Out: s.logs, Err: s.logs,
			Signals: func(c context.Context) (context.Context, context.CancelFunc) { return c, func() {} },
			Ready:   func(a string) { ready <- a },
			Getenv: func(k string) string {
				return map[string]string{"LOG_LEVEL": level, "CARTRELAY_RUN_DIR": os.Getenv("CARTRELAY_RUN_DIR"),
					"THRIVECART_BASE_URL": os.Getenv("THRIVECART_BASE_URL")}[k]
			},
		})
		s.done <- code
	}()
	select {
	case s.addr = <-ready:
	case code := <-s.done:
		t.Fatalf("serve exited with %d before it was ready:\n%s", code, s.logs.String())
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not become ready within 20 s")
	}
	t.Cleanup(func() { s.stop() })
	return s
}

// stop cancels serve as SIGTERM does and returns its exit code.
func (s *server) stop() int {
	if s.cancel == nil {
		return 0
	}
	s.cancel()
	s.cancel = nil
	select {
	case code := <-s.done:
		return code
	case <-time.After(60 * time.Second):
		s.t.Fatal("serve did not stop within 60 s of its cancellation")
	}
	return -1
}

// runCLI runs one command against dataDir and returns its stdout.
func runCLI(t *testing.T, dataDir string, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), append([]string{"--data", dataDir}, args...), cli.IO{Out: &out, Err: &errb})
	if code != 0 {
		return out.String() + errb.String(), code
	}
	return out.String(), code
}

func putAccount(t *testing.T, dataDir, account, body string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "account.json")
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runCLI(t, dataDir, "accounts", "put", account, "--file", f); code != 0 {
		t.Fatalf("accounts put: %d %s", code, out)
	}
}

const testAccount = `{"ultracart":{"webhook_username":"uc","webhook_password":"pw-123"},"thrivecart":{"secret":"tc-word"},
 "forward_since":"2020-01-01T00:00:00Z","ontraport":{"enabled":true},"iterable":{"enabled":true}}`

func ucOrder(id, email, total, refunded string) string {
	return fmt.Sprintf(`{"events":[{"order_create":{"order_id":%q,"merchant_id":"DEMO","creation_dts":"2026-11-01T10:00:00Z",
 "current_stage":"Completed Order","billing":{"email":%q,"first_name":"Ann","country_code":"US"},
 "items":[{"merchant_item_id":"SKU-1","description":"Thing","quantity":1,"cost":{"value":%s,"currency_code":"USD"}}],
 "summary":{"total":{"value":%s,"currency_code":"USD"},"subtotal":{"value":%s,"currency_code":"USD"},"total_refunded":{"value":%s,"currency_code":"USD"}},
 "payment":{"payment_dts":"2026-11-01T10:01:00Z","payment_status":"Processed","test_order":false}}}]}`, id, email, total, total, total, refunded)
}

func post(t *testing.T, url, body string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("uc", "pw-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not happen within %s; last state:\n%s", what, within, last)
}

// TestWalkingSkeleton posts a webhook to the local runtime and follows it through the ingest
// queue, the ingest handler, the destination queues and both forwarders.
func TestWalkingSkeleton(t *testing.T) {
	data := t.TempDir()
	putAccount(t, data, "acme", testAccount)
	s := startServe(t, data)

	resp, err := http.Get("http://" + s.addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()

	if code := post(t, "http://"+s.addr+"/webhooks/ultracart/acme", ucOrder("W-1", "Ann@Example.com", "100.00", "0.00")); code != http.StatusOK {
		t.Fatalf("webhook answered %d, want 200", code)
	}
	eventually(t, 20*time.Second, "both forwarders record the OrderPlaced fact", func() (bool, string) {
		out, code := runCLI(t, data, "contacts", "get", "acme", "ann@example.com")
		if code != 0 {
			return false, out
		}
		var v struct {
			Profile struct {
				LTV           json.RawMessage `json:"ltv"`
				PurchaseCount int             `json:"purchase_count"`
			} `json:"profile"`
			Facts      []struct{ Kind, ID string } `json:"facts"`
			Deliveries []struct {
				Destination string `json:"destination"`
				FactKind    string `json:"fact_kind"`
				Status      string `json:"status"`
			} `json:"deliveries"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			return false, out
		}
		dests := map[string]bool{}
		for _, d := range v.Deliveries {
			if d.FactKind == "OrderPlaced" {
				dests[d.Destination] = true
			}
		}
		return v.Profile.PurchaseCount == 1 && dests["ontraport"] && dests["iterable"], out
	})
}

// TestServeStopsWithoutLoss posts a steady stream of webhooks, stops serve mid-stream (as
// SIGTERM does), restarts it, and checks that every delivery that was answered 200 ends up in
// the stored history.
func TestServeStopsWithoutLoss(t *testing.T) {
	data := t.TempDir()
	putAccount(t, data, "acme", testAccount)
	s := startServe(t, data)

	var mu sync.Mutex
	var accepted []string
	stopPosting := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stopPosting:
					return
				default:
				}
				id := fmt.Sprintf("S-%d-%d", w, i)
				if post(t, "http://"+s.addr+"/webhooks/ultracart/acme", ucOrder(id, fmt.Sprintf("buyer%d@example.com", w), "10.00", "0.00")) == http.StatusOK {
					mu.Lock()
					accepted = append(accepted, id)
					mu.Unlock()
				}
			}
		}(w)
	}
	time.Sleep(1500 * time.Millisecond)
	if code := s.stop(); code != 0 {
		t.Fatalf("serve exited with %d after its stop, want 0", code)
	}
	close(stopPosting)
	wg.Wait()
	if len(accepted) < 5 {
		t.Fatalf("only %d deliveries were accepted before the stop; the test needs a stream", len(accepted))
	}
	startServe(t, data)
	eventually(t, 60*time.Second, "every accepted order is stored", func() (bool, string) {
		out, code := runCLI(t, data, "orders", "list", "acme")
		if code != 0 {
			return false, out
		}
		stored := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var o struct{ ID string }
			if json.Unmarshal([]byte(line), &o) == nil {
				stored[o.ID] = true
			}
		}
		var missing []string
		for _, id := range accepted {
			if !stored[id] {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0, fmt.Sprintf("%d accepted, %d stored, missing %v", len(accepted), len(stored), missing[:min(10, len(missing))])
	})
}

// TestDemoFillsAContact runs `cartrelay demo` against a running serve, as the README tells a
// new user to, and checks what `contacts get` then shows.
func TestDemoFillsAContact(t *testing.T) {
	data := t.TempDir()
	s := startServe(t, data)
	if out, code := runCLI(t, data, "demo", "--url", "http://"+s.addr); code != 0 {
		t.Fatalf("demo exited %d:\n%s", code, out)
	}
	eventually(t, 20*time.Second, "the demo contact is filled in", func() (bool, string) {
		out, code := runCLI(t, data, "contacts", "get", "demo", "jane.doe@example.com")
		if code != 0 {
			return false, out
		}
		var v struct {
			Profile struct {
				PurchaseCount int                     `json:"purchase_count"`
				LTV           struct{ Amount string } `json:"ltv"`
			} `json:"profile"`
			Facts []struct{ Kind string } `json:"facts"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			return false, out
		}
		kinds := map[string]int{}
		for _, f := range v.Facts {
			kinds[f.Kind]++
		}
		// 129.90 − 30.00 + 49.00 + 19.00: two UltraCart orders, one partly refunded, and a
		// ThriveCart sale; the retried delivery counts once.
		return v.Profile.PurchaseCount == 3 && v.Profile.LTV.Amount == "167.90" &&
			kinds["OrderPlaced"] == 3 && kinds["OrderRefunded"] == 1, out
	})

	// On a terminal the contact is a page to read; --full (and a pipe) give the whole record.
	var short, errb bytes.Buffer
	if code := cli.Main(context.Background(), []string{"--data", data, "contacts", "get", "demo", "jane.doe@example.com"},
		cli.IO{Out: &short, Err: &errb, Terminal: true}); code != 0 {
		t.Fatalf("contacts get on a terminal: %d %s", code, errb.String())
	}
	// Serve may still be recording deliveries, so the comparison is made between two piped
	// reads that agree: the record did not change in between.
	var full string
	var fullTerm bytes.Buffer
	eventually(t, 20*time.Second, "the record stops changing", func() (bool, string) {
		before, _ := runCLI(t, data, "contacts", "get", "demo", "jane.doe@example.com")
		fullTerm.Reset()
		cli.Main(context.Background(), []string{"--data", data, "contacts", "get", "demo", "jane.doe@example.com", "--full"},
			cli.IO{Out: &fullTerm, Err: &errb, Terminal: true})
		full, _ = runCLI(t, data, "contacts", "get", "demo", "jane.doe@example.com")
		return before == full, "the record changed between two reads"
	})
	if fullTerm.String() != full {
		t.Error("--full on a terminal differs from the piped record")
	}
	lines := strings.Count(short.String(), "\n")
	t.Logf("contacts get: %d lines on a terminal, %d with --full:\n%s", lines, strings.Count(full, "\n"), short.String())
	if lines > 60 || lines*10 > strings.Count(full, "\n") {
		t.Errorf("the short form has %d lines (the full record %d):\n%s", lines, strings.Count(full, "\n"), short.String())
	}
	for _, want := range []string{"Jane Doe <jane.doe@example.com> in account demo", "lifetime value 167.90 USD (gross 197.90, refunded 30.00) · 3 purchases",
		"Orders (3)", "DEMO-10001", "DEMO-10002", "7001", "Facts (", "OrderRefunded", "Deliveries: ",
		"The whole record, with every request and response: cartrelay contacts get demo jane.doe@example.com --full"} {
		if !strings.Contains(short.String(), want) {
			t.Errorf("the short form lacks %q:\n%s", want, short.String())
		}
	}
	if strings.Contains(short.String(), "request_body") || json.Valid(short.Bytes()) {
		t.Errorf("the short form carries the raw record:\n%s", short.String())
	}

	// The synthetic history fills the reports, which reconcile with the stored orders.
	out, code := runCLI(t, data, "reports", "revenue", "demo", "--by", "month", "--from", "2024-01-01", "--format", "csv")
	var months, withOrders int
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Split(line, ","); len(f) > 2 && len(f[0]) == 7 && f[0][4] == '-' {
			months++
			if f[1] != "0" {
				withOrders++
			}
		}
	}
	if code != 0 || months < 20 || withOrders < months-1 {
		t.Errorf("revenue by month: exit %d, %d months, %d with orders:\n%s", code, months, withOrders, out)
	}
	for _, kind := range []string{"cohorts", "subscriptions", "attribution", "engagement"} {
		if out, code := runCLI(t, data, "reports", kind, "demo", "--from", "2025-01-01", "--format", "csv"); code != 0 || strings.Count(out, "\n") < 5 {
			t.Errorf("reports %s: exit %d\n%s", kind, code, out)
		}
	}
	if out, code := runCLI(t, data, "reports", "verify", "demo"); code != 0 || !strings.Contains(out, `"differences": []`) {
		t.Errorf("verify: %d %s", code, out)
	}
	// Again: the history is there already, and nothing is written twice.
	_, errOut, code := runCLIBoth(t, data, "demo", "--url", "http://"+s.addr)
	if code != 0 || !strings.Contains(errOut, "has its synthetic history already") {
		t.Errorf("demo again: %d %s", code, errOut)
	}
	if out, code := runCLI(t, data, "reports", "verify", "demo"); code != 0 || !strings.Contains(out, `"differences": []`) {
		t.Errorf("verify after demo ran again: %d %s", code, out)
	}
}

// TestTheCLIFollowsTheDataDirectoryOfTheRunningServe starts serve over a data directory of its
// own (as `make run DATA=./elsewhere` does) and runs the CLI from another folder without
// --data: demo and the commands after it use serve's directory, and say so.
func TestTheCLIFollowsTheDataDirectoryOfTheRunningServe(t *testing.T) {
	elsewhere := t.TempDir()
	t.Setenv("CARTRELAY_RUN_DIR", t.TempDir())
	s := startServe(t, elsewhere)
	t.Chdir(t.TempDir()) // the default ./.cartrelay is an empty folder here
	cli := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := cli.Main(context.Background(), args, cli.IO{Out: &out, Err: &errb})
		return out.String(), errb.String(), code
	}
	out, errs, code := cli("demo", "--url", "http://"+s.addr, "--orders", "0")
	if code != 0 {
		t.Fatalf("demo exited %d:\n%s%s", code, out, errs)
	}
	if want := "using " + elsewhere + ", the data directory of the serve running on " + s.addr; !strings.Contains(errs, want) {
		t.Errorf("demo's stderr %q does not say %q", errs, want)
	}
	eventually(t, 20*time.Second, "the demo orders are listed without --data", func() (bool, string) {
		out, errs, code := cli("orders", "list", "demo")
		return code == 0 && strings.Count(out, "\n") == 3, out + errs
	})
	if _, err := os.Stat(".cartrelay"); err == nil {
		t.Error("a ./.cartrelay was created although serve uses another directory")
	}

	// A chosen directory that is not serve's is refused before anything is written, naming
	// serve's.
	other := t.TempDir()
	_, errs, code = cli("--data", other, "demo", "--url", "http://"+s.addr)
	if want := "the serve on " + s.addr + " uses the data directory " + elsewhere + ", not " + other; code != 1 || !strings.Contains(errs, want) {
		t.Fatalf("demo --data OTHER: exit %d, stderr %q; want %q", code, errs, want)
	}

	// A serve that noted nothing (started before this version, say): the refusal names the
	// directory demo wrote into.
	t.Setenv("CARTRELAY_RUN_DIR", t.TempDir())
	_, errs, code = cli("--data", other, "demo", "--url", "http://"+s.addr, "--account", "demo2", "--orders", "0")
	if want := "refused the demo account's credentials, which demo wrote into the data directory " + other; code != 1 || !strings.Contains(errs, want) {
		t.Fatalf("demo against an unnoted serve: exit %d, stderr %q; want %q", code, errs, want)
	}
}

// TestANoteOfAStoppedServeIsIgnored checks that the CLI reads its default directory again once
// serve has stopped, or when a serve was killed without removing its note.
func TestANoteOfAStoppedServeIsIgnored(t *testing.T) {
	run := t.TempDir()
	t.Setenv("CARTRELAY_RUN_DIR", run)
	s := startServe(t, t.TempDir())
	if notes, _ := filepath.Glob(filepath.Join(run, "*.json")); len(notes) != 1 {
		t.Fatalf("notes while serving: %v", notes)
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	if notes, _ := filepath.Glob(filepath.Join(run, "*.json")); len(notes) != 0 {
		t.Fatalf("notes left after a clean stop: %v", notes)
	}
	// A killed serve's note: its process is gone.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip("no 'true' to get the id of a finished process")
	}
	note := fmt.Sprintf(`{"addr":"127.0.0.1:9","data":%q,"pid":%d}`, t.TempDir(), dead.Process.Pid)
	if err := os.WriteFile(filepath.Join(run, "127.0.0.1_9.json"), []byte(note), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), []string{"orders", "list", "nosuch"}, cli.IO{Out: &out, Err: &errb})
	if want := `no account "nosuch" in the data directory ./.cartrelay, which has no accounts yet`; code != 1 || !strings.Contains(errb.String(), want) {
		t.Fatalf("exit %d, stderr %q; want %q", code, errb.String(), want)
	}
}

// TestCtrlCStopsServePromptlyDuringAPoll starts serve with a poll job whose UltraCart request
// hangs (a slow UltraCart), sends the process SIGINT as Ctrl-C does, and checks that serve
// stops at once with status 0, the walk's lease given back and its note removed.
func TestCtrlCStopsServePromptlyDuringAPoll(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	run := t.TempDir()
	t.Setenv("CARTRELAY_RUN_DIR", run)
	putAccount(t, data, "acme", testAccount)
	fake := ultracartfake.New(ultracartfake.Options{Orders: 50, Start: time.Now().AddDate(0, 0, -3), Spacing: time.Hour, SimpleKey: "uc-key"})
	t.Cleanup(fake.Close)
	if out, code := runCLI(t, data, "connections", "put", "acme", "ultracart", "--simple-key", "uc-key", "--base-url", fake.URL); code != 0 {
		t.Fatal(out)
	}
	// From now on UltraCart takes a minute to answer.
	inFlight, release := make(chan struct{}, 1), make(chan struct{})
	t.Cleanup(func() { close(release) })
	fake.OnRequest(func(_ context.Context, _ ultracartfake.Call) {
		select {
		case inFlight <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-time.After(time.Minute):
		}
	})
	enqueuePolls(t, data)

	ready, done := make(chan string, 1), make(chan int, 1)
	var logs testenv.SyncBuffer
	go func() {
		done <- cli.Main(ctx, []string{"--data", data, "serve", "--addr", "127.0.0.1:0"}, cli.IO{Out: &logs, Err: &logs,
			Ready:  func(a string) { ready <- a },
			Getenv: func(k string) string { return map[string]string{"CARTRELAY_RUN_DIR": run}[k] }})
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatalf("serve not ready:\n%s", logs.String())
	}
	select {
	case <-inFlight:
	case <-time.After(20 * time.Second):
		t.Fatalf("no poll reached UltraCart:\n%s", logs.String())
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d after Ctrl-C, want 0:\n%s", code, logs.String())
		}
	case <-time.After(10 * time.Second):
		// The grace period is 20 s: a stop that waits for the poll takes that long.
		t.Fatalf("serve still running 10 s after Ctrl-C:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "poll job interrupted; the schedule resumes it from its cursor") {
		t.Errorf("the interrupted poll is not logged as such:\n%s", logs.String())
	}
	env, err := operator.Embedded(ctx, data, wiring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if held, err := lease.Held(ctx, env.Store, store.Key{PK: ucpoll.AccountPK("acme"), SK: ucpoll.LeaseSK}); err != nil || held {
		t.Fatalf("the poll's lease is still held after the stop (%v): the next poll would wait for it to expire", err)
	}
	if notes, _ := filepath.Glob(filepath.Join(run, "*.json")); len(notes) != 0 {
		t.Fatalf("serve's note is left after the stop: %v", notes)
	}
}

// TestServeLogsAreReadable runs the whole local system at debug level, through webhooks, ingest,
// both forwarders running dry, and polls of a fake UltraCart (one stream of which it refuses),
// and reads every log line: each is JSON, no line names a key twice, and a dry run never reads
// like a call that was made.
func TestServeLogsAreReadable(t *testing.T) {
	data := t.TempDir()
	// A ThriveCart key ThriveCart refuses: its walk logs the refusal.
	tc := thrivecartfake.New("acme", "tc-key")
	t.Cleanup(tc.Close)
	t.Setenv("THRIVECART_BASE_URL", tc.URL)
	putAccount(t, data, "acme", strings.Replace(testAccount, `"thrivecart":{"secret":"tc-word"}`,
		`"thrivecart":{"secret":"tc-word","api_key":"tc-wrong"}`, 1))
	fake := ultracartfake.New(ultracartfake.Options{Orders: 30, Start: time.Now().AddDate(0, 0, -3), Spacing: time.Hour, SimpleKey: "uc-key"})
	t.Cleanup(fake.Close)
	fake.Forbid("/rest/v2/customer/")
	if out, code := runCLI(t, data, "connections", "put", "acme", "ultracart", "--simple-key", "uc-key", "--base-url", fake.URL); code != 0 {
		t.Fatal(out)
	}
	enqueuePolls(t, data)
	s := startServeLogging(t, data, "debug")
	if out, code := runCLI(t, data, "demo", "--url", "http://"+s.addr, "--orders", "0"); code != 0 {
		t.Fatalf("demo: %s", out)
	}
	eventually(t, 60*time.Second, "the demo and the polled orders are delivered", func() (bool, string) {
		out, code := runCLI(t, data, "deliveries", "list", "acme", "--format", "json")
		demo, _ := runCLI(t, data, "deliveries", "list", "demo", "--format", "json")
		if code != 0 || strings.Count(out, "OrderPlaced") < 2*30 || strings.Count(demo, "OrderPlaced") < 2*3 {
			return false, out
		}
		// Every poll job has run: the refused customers stream and ThriveCart's walk stopped.
		status, _ := runCLI(t, data, "backfill", "acme", "--status", "--format", "json")
		var streams []struct{ Source, Stream, Status string }
		_ = json.Unmarshal([]byte(status), &streams)
		stopped := 0
		for _, s := range streams {
			if s.Stream == "customers" && s.Status != "" || s.Source == "thrivecart" && s.Status != "" {
				stopped++
			}
		}
		return stopped == 2, status
	})
	if code := s.stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	lines := strings.Split(strings.TrimSpace(s.logs.String()), "\n")
	msgs := map[string]int{}
	for _, line := range lines {
		repeated, err := testenv.RepeatedKeys([]byte(line))
		if err != nil {
			t.Errorf("%v: %s", err, line)
			continue
		}
		if len(repeated) > 0 {
			t.Errorf("the key(s) %v appear twice: %s", repeated, line)
		}
		var l struct {
			Msg       string `json:"msg"`
			Status    string `json:"status"`
			InvoiceID *int64 `json:"invoice_id"`
		}
		_ = json.Unmarshal([]byte(line), &l)
		msgs[l.Msg]++
		if strings.HasPrefix(l.Msg, "logged a transaction") || l.Msg == "fact delivered" && l.Status == "dry_run" {
			t.Errorf("a dry run reads like a delivery: %s", line)
		}
		if strings.HasPrefix(l.Msg, "dry run") && l.InvoiceID != nil {
			t.Errorf("a dry run shows an id ONTRAPORT never gave: %s", line)
		}
	}
	for _, want := range []string{"dry run: would log a transaction in ONTRAPORT", "dry run: fact recorded, nothing sent",
		"ultracart request failed", "thrivecart request failed", "poll run"} {
		if msgs[want] == 0 {
			t.Errorf("no %q line among %d: the test did not cover it (%v)", want, len(lines), msgs)
		}
	}
}

// enqueuePolls does what the schedule's first tick in serve would: a poll job for every stream
// of every connection in data.
func enqueuePolls(t *testing.T, data string) {
	t.Helper()
	env, err := operator.Embedded(context.Background(), data, wiring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	if err := env.App.Schedule(context.Background(), events.EventBridgeEvent{}); err != nil {
		t.Fatal(err)
	}
}
