// Package thrivecartfake is an in-process stand-in for ThriveCart's external API, for tests:
// it answers GET /api/external/ping and GET /api/external/transactions for the keys it was
// given and refuses any other.
//
// Where ThriveCart's behaviour is not documented the fake makes a reasonable guess, and the
// tests built on it should not depend on more than that guess:
//   - transactions come newest first (timestamp, then event id, descending);
//   - perPage above 100 (or below 1, or not a number) is refused with 400
//     {"error":"invalid_request","error_description":"..."}, rather than silently clamped;
//   - more than 60 requests in any rolling minute for one account answer 429 with no body and
//     no Retry-After header (ThriveCart documents the status and nothing else).
//
// Answers carry exactly the fields ThriveCart's published collection documents, with its
// types: ping's account fields, and transactions whose ids (event_id, order_id, invoice_id,
// base_product) are strings and whose timestamp, item_id and amount are integers.
package thrivecartfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartapi"
)

// PerMinute is ThriveCart's documented limit per connected account.
const PerMinute = 60

// Server is a running fake.
type Server struct {
	// URL is the fake's base URL, for thrivecartapi.Client.BaseURL.
	URL string

	srv         *httptest.Server
	accountName string

	mu    sync.Mutex
	clk   clock.Clock
	keys  map[string]string // key -> account
	pings int
	txs   map[string][]thrivecartapi.Transaction
	calls []Call
	fail  []int
	limit int
}

// Call records one /transactions request the fake answered.
type Call struct {
	Account string
	Query   string
	Status  int
	At      time.Time
}

// New starts a fake that accepts keys, naming the account accountName.
func New(accountName string, keys ...string) *Server {
	s := &Server{accountName: accountName, keys: map[string]string{}, clk: clock.System{}, txs: map[string][]thrivecartapi.Transaction{}, limit: PerMinute}
	for _, k := range keys {
		s.keys[k] = accountName
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the fake.
func (s *Server) Close() { s.srv.Close() }

// SetClock makes the fake's rate window read c (a clock.Fake in tests).
func (s *Server) SetClock(c clock.Clock) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clk = c
}

// SetLimit changes the requests allowed per rolling minute and account (PerMinute by default).
func (s *Server) SetLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit = n
}

// AddKey accepts key for account (whose transactions it then sees).
func (s *Server) AddKey(account, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key] = account
}

// RevokeKey refuses key from now on, as when the merchant regenerates it.
func (s *Server) RevokeKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, key)
}

// Add seeds transactions of account; New's account is accountName.
func (s *Server) Add(account string, txs ...thrivecartapi.Transaction) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txs[account] = append(s.txs[account], txs...)
}

// FailNext makes the next /transactions requests answer these statuses (one each) before
// answering normally again, for 5xx and 429 tests.
func (s *Server) FailNext(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = append(s.fail, statuses...)
}

// Pings counts the ping requests received, accepted or not.
func (s *Server) Pings() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pings
}

// Calls lists the /transactions requests received, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// MaxInMinute is the most /transactions requests of account the fake admitted within any
// rolling minute (refused ones left out).
func (s *Server) MaxInMinute(account string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ts []time.Time
	for _, c := range s.calls {
		if c.Account == account && c.Status != http.StatusTooManyRequests {
			ts = append(ts, c.At)
		}
	}
	best, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= time.Minute {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

func writeErr(w http.ResponseWriter, status int, code, desc string) {
	w.WriteHeader(status)
	doc := map[string]string{"error": code}
	if desc != "" {
		doc["error_description"] = desc
	}
	_ = json.NewEncoder(w).Encode(doc)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodGet {
		writeErr(w, http.StatusNotFound, "not_found", "")
		return
	}
	switch r.URL.Path {
	case "/api/external/ping":
		s.ping(w, r)
	case "/api/external/transactions":
		s.transactions(w, r)
	default:
		writeErr(w, http.StatusNotFound, "not_found", "")
	}
}

// auth finds the key's account, or answers 401 the way ThriveCart does.
func (s *Server) auth(w http.ResponseWriter, r *http.Request) (string, bool) {
	key, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !bearer || key == "" {
		writeErr(w, http.StatusUnauthorized, "auth.missing", "")
		return "", false
	}
	s.mu.Lock()
	acct, ok := s.keys[key]
	s.mu.Unlock()
	if !ok {
		writeErr(w, http.StatusUnauthorized, "invalid_token", "The access token provided is invalid")
		return "", false
	}
	return acct, true
}

func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.pings++
	s.mu.Unlock()
	if _, ok := s.auth(w, r); !ok {
		return
	}
	accountURL := "https://" + s.accountName + ".thrivecart.com/"
	w.Header().Set("X-ThriveCart-Account-Name", s.accountName)
	w.Header().Set("X-ThriveCart-Account-URL", accountURL)
	_ = json.NewEncoder(w).Encode(map[string]any{"account_name": s.accountName, "account_id": "1", "account_version": "pro",
		"account_url": accountURL, "user_id": "1", "user_username": "owner@example.com", "user_name": "Account Owner",
		"custom_domain_enabled": false, "custom_domain": nil})
}

func (s *Server) transactions(w http.ResponseWriter, r *http.Request) {
	acct, ok := s.auth(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clk.Now()
	call := Call{Account: acct, Query: r.URL.RawQuery, At: now}
	answer := func(status int) {
		call.Status = status
		s.calls = append(s.calls, call)
	}
	admitted := 0
	for _, c := range s.calls {
		if c.Account == acct && c.Status != http.StatusTooManyRequests && now.Sub(c.At) < time.Minute {
			admitted++
		}
	}
	if admitted >= s.limit {
		answer(http.StatusTooManyRequests)
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	if len(s.fail) > 0 {
		st := s.fail[0]
		s.fail = s.fail[1:]
		answer(st)
		if st == http.StatusTooManyRequests {
			w.WriteHeader(st)
			return
		}
		writeErr(w, st, "server_error", "injected failure")
		return
	}
	q := r.URL.Query()
	perPage, page := 20, 1
	if v := q.Get("perPage"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > thrivecartapi.MaxPerPage {
			answer(http.StatusBadRequest)
			writeErr(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("perPage must be between 1 and %d", thrivecartapi.MaxPerPage))
			return
		}
		perPage = n
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			answer(http.StatusBadRequest)
			writeErr(w, http.StatusBadRequest, "invalid_request", "page must be a positive number")
			return
		}
		page = n
	}
	typ := q.Get("transactionType")
	var match []thrivecartapi.Transaction
	for _, t := range s.txs[acct] {
		if typ != "" && typ != thrivecartapi.TypeAny && t.TransactionType != typ {
			continue
		}
		if c := q.Get("currency"); c != "" && !strings.EqualFold(c, t.Currency) {
			continue
		}
		if qs := q.Get("query"); qs != "" && !strings.EqualFold(qs, t.Customer.Email) &&
			qs != string(t.OrderID) && qs != string(t.InvoiceID) {
			continue
		}
		match = append(match, t)
	}
	sort.SliceStable(match, func(i, j int) bool {
		a, b := match[i], match[j]
		if !a.At().Equal(b.At()) {
			return a.At().After(b.At())
		}
		ai, _ := strconv.ParseInt(string(a.EventID), 10, 64)
		bi, _ := strconv.ParseInt(string(b.EventID), 10, 64)
		return ai > bi
	})
	lo := min((page-1)*perPage, len(match))
	hi := min(lo+perPage, len(match))
	items := make([]wireTx, 0, hi-lo)
	for _, t := range match[lo:hi] {
		items = append(items, wire(t))
	}
	answer(http.StatusOK)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"transactions": items,
		"meta":         map[string]int{"total": len(match), "results": len(items)},
	})
}

// wireTx is a transaction as ThriveCart's collection types it.
type wireTx struct {
	EventID         string                 `json:"event_id"`
	BaseProduct     string                 `json:"base_product,omitempty"`
	Date            string                 `json:"date,omitempty"`
	Time            string                 `json:"time,omitempty"`
	Timestamp       json.RawMessage        `json:"timestamp"`
	TransactionType string                 `json:"transaction_type"`
	ItemType        string                 `json:"item_type,omitempty"`
	ItemID          json.RawMessage        `json:"item_id,omitempty"`
	Amount          json.RawMessage        `json:"amount"`
	OrderID         string                 `json:"order_id"`
	InvoiceID       string                 `json:"invoice_id,omitempty"`
	Currency        string                 `json:"currency,omitempty"`
	Processor       string                 `json:"processor,omitempty"`
	Customer        thrivecartapi.Customer `json:"customer"`
	Reference       string                 `json:"reference,omitempty"`
}

func wire(t thrivecartapi.Transaction) wireTx {
	return wireTx{EventID: string(t.EventID), BaseProduct: string(t.BaseProduct), Date: t.Date, Time: t.Time,
		Timestamp: integer(t.Timestamp), TransactionType: t.TransactionType, ItemType: t.ItemType, ItemID: integer(t.ItemID),
		Amount: integer(t.Amount), OrderID: string(t.OrderID), InvoiceID: string(t.InvoiceID), Currency: t.Currency,
		Processor: t.Processor, Customer: t.Customer, Reference: t.Reference}
}

// integer writes a documented integer field as a JSON number; a value a test seeded that is
// not a whole number (to model a corrupt record) goes out as the string it is.
func integer(f thrivecartapi.Flex) json.RawMessage {
	if f == "" {
		return nil
	}
	if _, err := strconv.ParseInt(string(f), 10, 64); err == nil {
		return json.RawMessage(f)
	}
	b, _ := json.Marshal(string(f))
	return b
}
