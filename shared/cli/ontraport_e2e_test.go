package cli_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/ontraport/ontraportfake"
)

// TestOntraportEndToEnd posts UltraCart webhooks to `cartrelay serve` with ONTRAPORT pointed at
// the fake, and follows an order and its refund into ONTRAPORT: one transaction with the order's
// total, one refund of it, and a delivery log with the requests but not the API key.
func TestOntraportEndToEnd(t *testing.T) {
	const appID, key = "2_1_e2e", "op-e2e-K3y-secret"
	fake := ontraportfake.New(ontraportfake.Options{AppID: appID, APIKey: key})
	defer fake.Close()
	data := t.TempDir()
	putAccount(t, data, "acme", fmt.Sprintf(`{"ultracart":{"webhook_username":"uc","webhook_password":"pw-123"},
 "forward_since":"2020-01-01T00:00:00Z","ontraport":{"enabled":true,"app_id":%q,"api_key":%q,"base_url":%q}}`, appID, key, fake.URL))
	s := startServe(t, data)
	hook := "http://" + s.addr + "/webhooks/ultracart/acme"

	if code := post(t, hook, ucOrder("OP-1", "Olly@Example.com", "129.90", "0.00")); code != http.StatusOK {
		t.Fatalf("webhook answered %d", code)
	}
	eventually(t, 30*time.Second, "the order is logged in ONTRAPORT", func() (bool, string) {
		txs := fake.TransactionsFor("ultracart:OP-1")
		return len(txs) == 1 && txs[0].Total == ontraportfake.MustAmount("129.90"), fmt.Sprintf("%+v\ncalls: %+v", txs, fake.Calls())
	})
	c, ok := fake.ContactByEmail("olly@example.com")
	if !ok || c.Fields["firstname"] != "Ann" {
		t.Fatalf("contact %+v", c)
	}

	if code := post(t, hook, ucOrder("OP-1", "olly@example.com", "129.90", "129.90")); code != http.StatusOK {
		t.Fatalf("refund webhook answered %d", code)
	}
	inv := fake.TransactionsFor("ultracart:OP-1")[0].ID
	eventually(t, 30*time.Second, "the refund reaches ONTRAPORT", func() (bool, string) {
		r := fake.Refunds()
		return len(r) == 1 && r[0].TransactionID == inv && !r[0].All, fmt.Sprintf("%+v", r)
	})

	eventually(t, 30*time.Second, "the delivery log shows both deliveries", func() (bool, string) {
		out, code := runCLI(t, data, "contacts", "get", "acme", "olly@example.com")
		if code != 0 {
			return false, out
		}
		if strings.Contains(out, key) {
			t.Fatalf("the API key is in the delivery log:\n%s", out)
		}
		var v struct {
			Deliveries []struct {
				Destination string `json:"destination"`
				FactKind    string `json:"fact_kind"`
				Status      string `json:"status"`
				Requests    []struct {
					URL            string            `json:"url"`
					RequestHeaders map[string]string `json:"request_headers"`
					Status         int               `json:"status"`
				} `json:"requests"`
			} `json:"deliveries"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			return false, out
		}
		sent := map[string]bool{}
		for _, d := range v.Deliveries {
			if d.Destination != "ontraport" || d.Status != "sent" || len(d.Requests) == 0 {
				continue
			}
			if d.Requests[0].RequestHeaders["Api-Key"] != "[redacted]" {
				t.Fatalf("request headers %v", d.Requests[0].RequestHeaders)
			}
			sent[d.FactKind] = true
		}
		return sent["OrderPlaced"] && sent["OrderRefunded"], out
	})

	// A replayed webhook changes nothing in ONTRAPORT.
	if code := post(t, hook, ucOrder("OP-1", "olly@example.com", "129.90", "129.90")); code != http.StatusOK {
		t.Fatalf("replay answered %d", code)
	}
	time.Sleep(2 * time.Second)
	if n, r := len(fake.TransactionsFor("ultracart:OP-1")), len(fake.Refunds()); n != 1 || r != 1 {
		t.Fatalf("after a replay: %d transactions, %d refunds", n, r)
	}
	if m := fake.MaxInWindow(); m > 180 {
		t.Fatalf("%d requests in a minute", m)
	}
}
