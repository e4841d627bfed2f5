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

	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/redact"
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
