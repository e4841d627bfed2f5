package thrivecartfake_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartapi"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartfake"
)

func get(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	return resp.StatusCode, doc
}

// The fake answers with the fields and JSON types of ThriveCart's published collection, and no
// more, so a client cannot come to rely on something ThriveCart never promised.
func TestAnswersAreTheDocumentedOnes(t *testing.T) {
	s := thrivecartfake.New("acme", "key")
	defer s.Close()
	_, ping := get(t, s.URL+"/api/external/ping")
	documented := map[string]bool{"account_name": true, "account_id": true, "account_version": true, "account_url": true,
		"user_id": true, "user_username": true, "user_name": true, "custom_domain_enabled": true, "custom_domain": true}
	for k := range ping {
		if !documented[k] {
			t.Errorf("ping answers %q, which ThriveCart does not document", k)
		}
	}
	s.Add("acme", thrivecartapi.Transaction{EventID: "446660", BaseProduct: "1", Timestamp: "1605459703", TransactionType: "rebill",
		ItemType: "product", ItemID: "1", Amount: "10000", OrderID: "7700", InvoiceID: "1467", Currency: "USD"})
	_, page := get(t, s.URL+"/api/external/transactions")
	txs, _ := page["transactions"].([]any)
	if len(txs) != 1 {
		t.Fatalf("transactions %v", page)
	}
	tx := txs[0].(map[string]any)
	for _, k := range []string{"event_id", "base_product", "order_id", "invoice_id"} {
		if _, isString := tx[k].(string); !isString {
			t.Errorf("%s is %T, ThriveCart documents a string", k, tx[k])
		}
	}
	for _, k := range []string{"timestamp", "item_id", "amount"} {
		if _, isNumber := tx[k].(float64); !isNumber {
			t.Errorf("%s is %T, ThriveCart documents an integer", k, tx[k])
		}
	}
	s.SetLimit(0)
	if status, body := get(t, s.URL+"/api/external/transactions"); status != http.StatusTooManyRequests || body != nil {
		t.Errorf("over the limit: %d %v, want a bare 429", status, body)
	}
}
