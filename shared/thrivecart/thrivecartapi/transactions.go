package thrivecartapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MaxPerPage is the largest perPage GET /transactions accepts.
const MaxPerPage = 100

// Transaction types, the values of transactionType and of a transaction's transaction_type.
const (
	TypeAny    = "any"
	TypeCharge = "charge"
	TypeRebill = "rebill"
	TypeRefund = "refund"
	TypeCancel = "cancel"
)

// TransactionsQuery selects a page of GET /transactions. Zero values are left out, so
// ThriveCart applies its defaults.
type TransactionsQuery struct {
	// Type is transactionType: TypeAny, TypeCharge, TypeRebill, TypeRefund or TypeCancel.
	Type string
	// Page is 1-based.
	Page int
	// PerPage is at most MaxPerPage.
	PerPage  int
	Currency string
	// Query matches an email, an order id, an invoice id and the like.
	Query string
}

func (q TransactionsQuery) values() url.Values {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("transactionType", q.Type)
	if q.Page > 0 {
		v.Set("page", strconv.Itoa(q.Page))
	}
	if q.PerPage > 0 {
		v.Set("perPage", strconv.Itoa(q.PerPage))
	}
	set("currency", q.Currency)
	set("query", q.Query)
	return v
}

// Customer is a transaction's customer.
type Customer struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// Transaction is one item of GET /transactions.
type Transaction struct {
	EventID         Flex     `json:"event_id"`
	BaseProduct     Flex     `json:"base_product,omitempty"`
	Date            string   `json:"date,omitempty"`
	Time            string   `json:"time,omitempty"`
	Timestamp       Flex     `json:"timestamp"`
	TransactionType string   `json:"transaction_type"`
	ItemType        string   `json:"item_type,omitempty"`
	ItemID          Flex     `json:"item_id,omitempty"`
	Amount          Flex     `json:"amount"`
	OrderID         Flex     `json:"order_id"`
	InvoiceID       Flex     `json:"invoice_id,omitempty"`
	Currency        string   `json:"currency,omitempty"`
	Processor       string   `json:"processor,omitempty"`
	Customer        Customer `json:"customer"`
	Reference       string   `json:"reference,omitempty"`
}

// At is the transaction's time (zero when its timestamp is unreadable).
func (t Transaction) At() time.Time {
	n, err := strconv.ParseInt(string(t.Timestamp), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

// Flex is a scalar ThriveCart sends sometimes as a JSON string and sometimes as a number; it
// keeps the text, so an id or an amount in cents is never rounded through a float.
type Flex string

// UnmarshalJSON accepts a string, a number, a boolean or null.
func (f *Flex) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*f = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = Flex(s)
	case b[0] == '{' || b[0] == '[':
		return fmt.Errorf("expected a scalar, got %s", b)
	default:
		*f = Flex(b)
	}
	return nil
}

// MarshalJSON writes a number when the text is a whole number, a string otherwise, the way
// ThriveCart writes ids and amounts.
func (f Flex) MarshalJSON() ([]byte, error) {
	if s := string(f); s != "" && strings.Trim(s, "0123456789") == "" && (s == "0" || s[0] != '0') && len(s) < 18 {
		return []byte(s), nil
	}
	return json.Marshal(string(f))
}

// Meta is the page's meta object.
type Meta struct {
	// Total is every transaction the query matches, over all pages.
	Total int `json:"-"`
	// Results is the number on this page.
	Results int `json:"-"`
}

// TransactionsPage is one page of GET /transactions.
type TransactionsPage struct {
	Transactions []Transaction
	// Raw holds each transaction as ThriveCart sent it, in the same order, for the ingest
	// queue: the record is kept whole, so fields this client does not model survive.
	Raw  []json.RawMessage
	Meta Meta
}

// Transactions fetches one page of GET /api/external/transactions. Errors: *KeyError
// (errors.Is ErrKeyRefused) when the key is refused; *RateLimitedError (ErrRateLimited) on
// 429; *APIError otherwise, retryable (Retryable) for 5xx.
func (c Client) Transactions(ctx context.Context, key string, q TransactionsQuery) (TransactionsPage, error) {
	if q.PerPage > MaxPerPage {
		return TransactionsPage{}, fmt.Errorf("thrivecart transactions: perPage %d is over %d", q.PerPage, MaxPerPage)
	}
	_, body, err := c.get(ctx, key, "/transactions", q.values())
	if err != nil {
		return TransactionsPage{}, fmt.Errorf("thrivecart transactions page %d: %w", q.Page, err)
	}
	page, err := DecodeTransactionsPage(body)
	if err != nil {
		return TransactionsPage{}, fmt.Errorf("thrivecart transactions page %d: %w", q.Page, err)
	}
	return page, nil
}

// DecodeTransactionsPage reads a GET /transactions answer. A transaction this client cannot
// read (a field of an unexpected type) does not fail the page, which would stop the walk on
// it for good: it keeps its raw record, for ingest to keep with the reason it cannot be read,
// and a zero Transaction.
func DecodeTransactionsPage(body []byte) (TransactionsPage, error) {
	var doc struct {
		Transactions []json.RawMessage `json:"transactions"`
		Meta         struct {
			Total   Flex `json:"total"`
			Results Flex `json:"results"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return TransactionsPage{}, fmt.Errorf("answer is not the expected JSON: %w", err)
	}
	page := TransactionsPage{Raw: doc.Transactions, Transactions: make([]Transaction, len(doc.Transactions))}
	for i, raw := range doc.Transactions {
		if err := json.Unmarshal(raw, &page.Transactions[i]); err != nil {
			page.Transactions[i] = Transaction{}
		}
	}
	page.Meta.Total, _ = strconv.Atoi(string(doc.Meta.Total))
	page.Meta.Results, _ = strconv.Atoi(string(doc.Meta.Results))
	if doc.Meta.Results == "" {
		page.Meta.Results = len(doc.Transactions)
	}
	return page, nil
}

// ErrRateLimited matches *RateLimitedError.
var ErrRateLimited = errors.New("thrivecart: rate limited")

// RateLimitedError is a 429. ThriveCart documents neither the status nor a Retry-After, so
// RetryAfter is 0 unless the answer carried one; the caller picks its own backoff then.
type RateLimitedError struct {
	RetryAfter  time.Duration
	Code        string
	Description string
}

// RetryHint is what the server asked to wait (poll.RateLimit).
func (e *RateLimitedError) RetryHint() time.Duration { return e.RetryAfter }

func (e *RateLimitedError) Error() string {
	msg := "ThriveCart rate limit reached (HTTP 429)"
	if d := strings.Trim(e.Code+": "+e.Description, ": "); d != "" {
		msg += ": " + d
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf("; retry after %s", e.RetryAfter)
	}
	return msg
}

// Is lets errors.Is(err, ErrRateLimited) find a *RateLimitedError.
func (e *RateLimitedError) Is(target error) bool { return target == ErrRateLimited }

// ErrServer matches an *APIError with a 5xx status.
var ErrServer = errors.New("thrivecart: server error")

// APIError is any other non-2xx answer, with ThriveCart's error and error_description.
type APIError struct {
	Status      int
	Code        string
	Description string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("HTTP %d", e.Status)
	if d := strings.Trim(e.Code+": "+e.Description, ": "); d != "" {
		msg += " " + d
	}
	return msg
}

// Is lets errors.Is(err, ErrServer) find a 5xx *APIError.
func (e *APIError) Is(target error) bool { return target == ErrServer && e.Status >= 500 }

// Retryable reports whether repeating the request may succeed: a 429, a 5xx, or a failure
// that never reached an answer (network, timeout). A refused key or another 4xx will not
// change by itself, and neither will an answer this client cannot read.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ke *KeyError
	var ae *APIError
	var rl *RateLimitedError
	switch {
	case errors.As(err, &ke):
		return false
	case errors.As(err, &rl):
		return true
	case errors.As(err, &ae):
		return ae.Status >= 500 || ae.Status == http.StatusRequestTimeout
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	if errors.As(err, &se) || errors.As(err, &te) {
		return false
	}
	return true
}
