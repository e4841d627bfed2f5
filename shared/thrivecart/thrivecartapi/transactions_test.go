package thrivecartapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartapi"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartfake"
)

func tx(id, ts int, typ string, amount int64) thrivecartapi.Transaction {
	return thrivecartapi.Transaction{EventID: thrivecartapi.Flex(fmt.Sprint(id)), Timestamp: thrivecartapi.Flex(fmt.Sprint(ts)),
		TransactionType: typ, ItemType: "product", ItemID: "12", Amount: thrivecartapi.Flex(fmt.Sprint(amount)),
		OrderID: thrivecartapi.Flex(fmt.Sprint(4000 + id)), InvoiceID: "000000001", Currency: "USD",
		Customer: thrivecartapi.Customer{Name: "A B", Email: fmt.Sprintf("c%d@example.com", id)}}
}

func TestTransactionsPages(t *testing.T) {
	fake := thrivecartfake.New("acme", "good-key")
	defer fake.Close()
	for i := 1; i <= 5; i++ {
		fake.Add("acme", tx(i, 1_700_000_000+i, thrivecartapi.TypeCharge, int64(1000*i)))
	}
	fake.Add("acme", tx(6, 1_700_000_100, thrivecartapi.TypeRefund, 500))
	c := thrivecartapi.Client{BaseURL: fake.URL, Mode: "live"}
	ctx := context.Background()

	p1, err := c.Transactions(ctx, "good-key", thrivecartapi.TransactionsQuery{Type: thrivecartapi.TypeAny, Page: 1, PerPage: 4})
	if err != nil {
		t.Fatal(err)
	}
	if p1.Meta.Total != 6 || p1.Meta.Results != 4 || len(p1.Transactions) != 4 || len(p1.Raw) != 4 {
		t.Fatalf("page 1: meta %+v, %d items", p1.Meta, len(p1.Transactions))
	}
	if p1.Transactions[0].EventID != "6" || p1.Transactions[0].TransactionType != "refund" || p1.Transactions[1].EventID != "5" {
		t.Fatalf("not newest first: %+v", p1.Transactions[:2])
	}
	if got := p1.Transactions[1]; got.Amount != "5000" || got.At() != time.Unix(1_700_000_005, 0).UTC() || got.Customer.Email != "c5@example.com" {
		t.Fatalf("item: %+v", got)
	}
	var raw map[string]any
	if err := json.Unmarshal(p1.Raw[1], &raw); err != nil || raw["order_id"] == nil {
		t.Fatalf("raw record: %s, %v", p1.Raw[1], err)
	}
	p2, err := c.Transactions(ctx, "good-key", thrivecartapi.TransactionsQuery{Page: 2, PerPage: 4})
	if err != nil || len(p2.Transactions) != 2 || p2.Transactions[1].EventID != "1" {
		t.Fatalf("page 2: %+v, %v", p2, err)
	}
	p3, err := c.Transactions(ctx, "good-key", thrivecartapi.TransactionsQuery{Page: 3, PerPage: 4})
	if err != nil || len(p3.Transactions) != 0 || p3.Meta.Total != 6 {
		t.Fatalf("page 3: %+v, %v", p3, err)
	}
	refunds, err := c.Transactions(ctx, "good-key", thrivecartapi.TransactionsQuery{Type: thrivecartapi.TypeRefund, PerPage: 100})
	if err != nil || len(refunds.Transactions) != 1 || refunds.Meta.Total != 1 {
		t.Fatalf("refunds: %+v, %v", refunds, err)
	}
	if q := fake.Calls()[0].Query; !strings.Contains(q, "perPage=4") || !strings.Contains(q, "page=1") || !strings.Contains(q, "transactionType=any") {
		t.Errorf("query sent: %s", q)
	}
}

func TestTransactionsErrors(t *testing.T) {
	fake := thrivecartfake.New("acme", "good-key")
	defer fake.Close()
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	fake.SetClock(clk)
	c := thrivecartapi.Client{BaseURL: fake.URL}
	ctx := context.Background()
	q := thrivecartapi.TransactionsQuery{Page: 1, PerPage: 10}

	_, err := c.Transactions(ctx, "bad-key", q)
	var ke *thrivecartapi.KeyError
	if !errors.As(err, &ke) || !errors.Is(err, thrivecartapi.ErrKeyRefused) || ke.Code != "invalid_token" || thrivecartapi.Retryable(err) {
		t.Fatalf("bad key: %v", err)
	}
	// The client refuses what ThriveCart would; the fake refuses it too when sent.
	if _, err := c.Transactions(ctx, "good-key", thrivecartapi.TransactionsQuery{PerPage: 101}); err == nil || len(fake.Calls()) != 0 {
		t.Fatalf("perPage 101 sent or accepted: %v", err)
	}
	for _, k := range []string{"", "good-key"} {
		req, _ := http.NewRequest(http.MethodGet, fake.URL+"/api/external/transactions?perPage=101", nil)
		if k != "" {
			req.Header.Set("Authorization", "Bearer "+k)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		want, code := http.StatusBadRequest, "invalid_request"
		if k == "" {
			want, code = http.StatusUnauthorized, "auth.missing"
		}
		if resp.StatusCode != want || doc["error"] != code {
			t.Fatalf("perPage 101 with key %q: %d %v", k, resp.StatusCode, doc)
		}
	}

	fake.FailNext(http.StatusBadGateway)
	_, err = c.Transactions(ctx, "good-key", q)
	var ae *thrivecartapi.APIError
	if !errors.As(err, &ae) || ae.Status != 502 || !errors.Is(err, thrivecartapi.ErrServer) || !thrivecartapi.Retryable(err) {
		t.Fatalf("502: %v", err)
	}

	// 58 more fill the minute (the 400 and the 502 counted); the 61st is refused until the minute has
	// passed, with a bare 429: ThriveCart documents no body for it.
	for i := range 58 {
		if _, err := c.Transactions(ctx, "good-key", q); err != nil {
			t.Fatalf("request %d: %v", i+3, err)
		}
	}
	_, err = c.Transactions(ctx, "good-key", q)
	var rl *thrivecartapi.RateLimitedError
	if !errors.As(err, &rl) || !errors.Is(err, thrivecartapi.ErrRateLimited) || !thrivecartapi.Retryable(err) {
		t.Fatalf("61st: %v", err)
	}
	if fake.MaxInMinute("acme") != 60 {
		t.Errorf("admitted in a minute: %d", fake.MaxInMinute("acme"))
	}
	clk.Advance(time.Minute)
	if _, err := c.Transactions(ctx, "good-key", q); err != nil {
		t.Fatalf("after a minute: %v", err)
	}
}

func TestTransactionsServerAnswers(t *testing.T) {
	var mode string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mode = r.Header.Get("X-TC-Mode")
		switch r.URL.Query().Get("page") {
		case "1":
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
		case "2":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_request","error_description":"perPage"}`))
		case "3":
			_, _ = w.Write([]byte(`{"transactions":[{"event_id":"9","amount":"1999","order_id":77,"timestamp":"1700000000"}],"meta":{"total":"1","results":"1"}}`))
		default:
			_, _ = w.Write([]byte(`<html>`))
		}
	}))
	defer srv.Close()
	c := thrivecartapi.Client{BaseURL: srv.URL, Mode: "test"}
	ctx := context.Background()
	_, err := c.Transactions(ctx, "k", thrivecartapi.TransactionsQuery{Page: 1})
	var rl *thrivecartapi.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 30*time.Second || mode != "test" {
		t.Fatalf("429: %v (mode %q)", err, mode)
	}
	_, err = c.Transactions(ctx, "k", thrivecartapi.TransactionsQuery{Page: 2})
	var ae *thrivecartapi.APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "invalid_request" || thrivecartapi.Retryable(err) || errors.Is(err, thrivecartapi.ErrServer) {
		t.Fatalf("400: %v", err)
	}
	p, err := c.Transactions(ctx, "k", thrivecartapi.TransactionsQuery{Page: 3})
	if err != nil || p.Meta.Total != 1 || p.Transactions[0].Amount != "1999" || p.Transactions[0].OrderID != "77" {
		t.Fatalf("strings and numbers: %+v, %v", p, err)
	}
	if _, err := c.Transactions(ctx, "k", thrivecartapi.TransactionsQuery{Page: 4}); err == nil || thrivecartapi.Retryable(err) {
		t.Fatalf("unreadable answer: %v", err)
	}
}

// TestDecodeKeepsAnUnreadableTransaction: one odd record must not stop the walk on its page
// for good; it travels on raw, for ingest to keep with its reason.
func TestDecodeKeepsAnUnreadableTransaction(t *testing.T) {
	body := []byte(`{"transactions":[{"event_id":"1","timestamp":1717351385,"amount":4900},{"event_id":"2","amount":{"USD":4900}}],"meta":{"total":"2"}}`)
	page, err := thrivecartapi.DecodeTransactionsPage(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Raw) != 2 || len(page.Transactions) != 2 || page.Meta.Total != 2 || page.Meta.Results != 2 {
		t.Fatalf("page %+v", page)
	}
	if page.Transactions[0].EventID != "1" || page.Transactions[0].At().IsZero() {
		t.Errorf("readable transaction: %+v", page.Transactions[0])
	}
	if page.Transactions[1] != (thrivecartapi.Transaction{}) || !strings.Contains(string(page.Raw[1]), `"USD":4900`) {
		t.Errorf("unreadable transaction: %+v, raw %s", page.Transactions[1], page.Raw[1])
	}
	if _, err := thrivecartapi.DecodeTransactionsPage([]byte(`<html>`)); err == nil {
		t.Error("an HTML answer was read as a page")
	}
}

func FuzzDecodeTransactionsPage(f *testing.F) {
	f.Add([]byte(`{"transactions":[{"event_id":"1","timestamp":1717351385,"amount":"4900","customer":{"email":"a@b.c"}}],"meta":{"total":1,"results":1}}`))
	f.Add([]byte(`{"transactions":[{"amount":[1]}],"meta":{"total":"x"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		page, err := thrivecartapi.DecodeTransactionsPage(body)
		if err != nil {
			return
		}
		if len(page.Raw) != len(page.Transactions) {
			t.Fatalf("%d raw records for %d transactions", len(page.Raw), len(page.Transactions))
		}
	})
}
