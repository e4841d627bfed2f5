package cli_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/redact"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucsource"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// TestEchoedSecretsStayOutOfRecordsLogsAndOutput is the leak the review found: a vendor that
// quotes the API key back in its error body (Iterable's documentation does not say it never
// does) had the key kept in the delivery log, in the parked failure's reason and in the log.
// Here an Iterable stand-in refuses every request, quoting the key as is and JSON-escaped,
// and the customer's email must not reach the log either.
func TestEchoedSecretsStayOutOfRecordsLogsAndOutput(t *testing.T) {
	const key = "itbl-LEAK-0f9e8d7c6b5a4"
	const email = "Leaky.Customer@Example.com"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		msg, _ := json.Marshal(fmt.Sprintf("Invalid API key %s for this project (request %d bytes)", r.Header.Get("Api-Key"), len(body)))
		fmt.Fprintf(w, `{"code":"BadApiKey","msg":%s,"params":{"apiKey":%q}}`, msg, r.Header.Get("Api-Key"))
	}))
	defer echo.Close()

	data := t.TempDir()
	putAccount(t, data, "acme", fmt.Sprintf(`{"ultracart":{"webhook_username":"uc","webhook_password":"pw-123"},
 "forward_since":"2020-01-01T00:00:00Z","iterable":{"enabled":true,"api_key":%q,"base_url":%q}}`, key, echo.URL))
	s := startServe(t, data)
	if code := post(t, "http://"+s.addr+"/webhooks/ultracart/acme", ucOrder("LEAK-1", email, "49.00", "0.00")); code != http.StatusOK {
		t.Fatalf("webhook answered %d", code)
	}

	var failed string
	eventually(t, 30*time.Second, "the refused deliveries are parked", func() (bool, string) {
		out, code := runCLI(t, data, "deliveries", "list", "acme", "--failed", "--format", "json")
		failed = out
		return code == 0 && strings.Count(out, `"parked"`) >= 2, out
	})
	contact, code := runCLI(t, data, "contacts", "get", "acme", strings.ToLower(email), "--full")
	if code != 0 {
		t.Fatalf("contacts get: %s", contact)
	}
	for what, text := range map[string]string{"deliveries list": failed, "contacts get": contact, "serve's log": s.log()} {
		if strings.Contains(text, key) {
			t.Errorf("%s shows the API key:\n%s", what, text)
		}
	}
	if !strings.Contains(failed, redact.Mark) {
		t.Errorf("the failed deliveries do not show where the key was removed:\n%s", failed)
	}
	if !strings.Contains(failed, "BadApiKey") {
		t.Errorf("the reason of the failure is gone with the key:\n%s", failed)
	}
	logText := s.log()
	if strings.Contains(strings.ToLower(logText), "leaky.customer") {
		t.Errorf("serve's log names the customer:\n%s", logText)
	}
	if !strings.Contains(logText, "delivery parked") {
		t.Errorf("serve's log does not mention the parked deliveries:\n%s", logText)
	}

	// What is stored, read without any secret known: the table itself holds no key.
	env, err := operator.Embedded(context.Background(), data, wiring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	ds, err := history.New(env.Store).Deliveries(context.Background(), "acme", true, 50)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := json.Marshal(ds)
	if len(ds) < 2 || strings.Contains(string(stored), key) {
		t.Errorf("the stored delivery log (%d entries) holds the key:\n%s", len(ds), stored)
	}
}

// TestOutputHidesSecretsOfOlderRecords: a delivery recorded before secrets were scrubbed when
// written still holds the key the vendor echoed; the commands that print records open the
// account's secrets first, so their output does not show it.
func TestOutputHidesSecretsOfOlderRecords(t *testing.T) {
	const key = "itbl-OLD-LEAK-7c6b5a4d3e"
	ctx := context.Background()
	data := t.TempDir()
	putAccount(t, data, "acme", fmt.Sprintf(`{"iterable":{"enabled":true,"api_key":%q}}`, key))
	// A fresh process knows no secret, so what it records is kept as given: an old record.
	env, err := operator.Embedded(ctx, data, wiring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = history.New(env.Store).RecordDelivery(ctx, history.Delivery{Account: "acme", Email: "old@example.com", Dest: "iterable",
		FactID: "acme:OrderPlaced:ultracart:OLD-1", FactKind: "OrderPlaced", At: time.Now(), Attempt: 1, Status: history.DeliveryParked,
		Error: "iterable: HTTP 401 BadApiKey: Invalid API key " + key,
		Requests: []history.HTTPExchange{{Method: "POST", URL: "https://api.iterable.com/api/commerce/trackPurchase", Status: 401,
			ResponseBody: `{"code":"BadApiKey","msg":"Invalid API key ` + key + `"}`}}}, time.Hour)
	env.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"deliveries", "list", "acme", "--failed", "--format", "json"}, {"contacts", "get", "acme", "old@example.com", "--full"}} {
		out, code := runCLI(t, data, args...)
		if code != 0 && !strings.Contains(out, "no contact") {
			t.Fatalf("%v: %d %s", args, code, out)
		}
		if strings.Contains(out, key) {
			t.Errorf("%v shows the API key of an old record:\n%s", args, out)
		}
	}
	out, _ := runCLI(t, data, "deliveries", "list", "acme", "--failed", "--format", "json")
	if !strings.Contains(out, "Invalid API key "+redact.Mark) {
		t.Errorf("the old record is not shown with the key marked:\n%s", out)
	}
}

// TestAccountsReseal: secrets an earlier release sealed (format v1) are sealed again in the
// current format, unchanged; a second run finds nothing to do.
func TestAccountsReseal(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	// The master key the pinned values were sealed with (32 bytes of 7).
	if err := os.WriteFile(filepath.Join(data, operator.KeyFileName), []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	putAccount(t, data, "acme", `{"ultracart":{"webhook_username":"uc-user"}}`)
	env, err := operator.Embedded(ctx, data, wiring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	it, err := env.Store.Get(ctx, "A#acme", "ACCOUNT")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	_ = json.Unmarshal(it.Data, &doc)
	doc["ultracart"].(map[string]any)["webhook_password"] = "v1.local-3ecf24992363.xB2clyOVg4HpFt91q6EYvBgNVx5QEGUDpOVae2dq4qOkLXBpf_H1a-VHydbQQZYuqpw2x2vSyCjJxG2F.NAnRycp3_0YgQmDXkWryA1eJPQ_WBPhBkGYPWwNKfAnxKrQB1GxVNA0JGpw"
	it.Data, _ = json.Marshal(doc)
	if err := env.Store.Write(ctx, store.PutItem(it, store.Always)); err != nil {
		t.Fatal(err)
	}

	out, code := runCLI(t, data, "accounts", "reseal", "acme")
	if code != 0 || strings.TrimSpace(out) != `{"account":"acme","resealed":["ultracart.webhook_password"]}` {
		t.Fatalf("reseal: %d %s", code, out)
	}
	a, err := env.Accounts.Get(ctx, "acme", accounts.UltraCartWebhookPassword)
	if err != nil || !ucsource.CheckBasic(a, "uc-user", "v1-value-of-2025") {
		t.Fatalf("after reseal the password does not check: %v", err)
	}
	if out, code := runCLI(t, data, "accounts", "reseal"); code != 0 || strings.TrimSpace(out) != `{"account":"acme","resealed":[]}` {
		t.Fatalf("a second reseal: %d %s", code, out)
	}
}
