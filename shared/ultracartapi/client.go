// Package ultracartapi is a small client for the parts of UltraCart's REST API v2 that cartrelay
// needs: the order query (the backstop and backfill for order webhooks) and the "_since"
// listings of auto orders, customers and items for the poller; the OAuth token endpoint and
// webhook management for the connect flow (oauth.go, webhooks.go).
//
// Records come back as raw JSON, one json.RawMessage per record, so ingest interprets a polled
// order with exactly the code that interprets a webhook's order.
package ultracartapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/outbound"
)

// DefaultBaseURL is UltraCart's API host; the client appends /rest/v2.
const DefaultBaseURL = "https://secure.ultracart.com"

// APIVersion is sent on every request; UltraCart refuses requests without it.
const APIVersion = "2017-03-01"

// MaxLimit is the largest page UltraCart documents for orders, auto orders and customers.
const MaxLimit = 200

// OrderExpansion asks for every part of an order that ingest reads (ultracart.Order), in
// UltraCart's own expansion names. Without it the query returns bare order headers.
const OrderExpansion = "affiliate,auto_order,billing,checkout,coupon,customer_profile,item,marketing,payment,shipping,summary,utms"

// timeLayout is ISO-8601 with milliseconds and an offset, as UltraCart's samples send dates.
const timeLayout = "2006-01-02T15:04:05.000-07:00"

// Credentials authenticate requests: an OAuth access token, or else a simple key.
type Credentials struct {
	BearerToken string
	SimpleKey   string
}

// Client calls one merchant's UltraCart API. It never runs two requests at once on its own,
// but UltraCart forbids concurrency per application, so callers serialise across processes
// (the poller's lease does).
type Client struct {
	base  string
	creds Credentials
	http  *http.Client
	// baseErr refuses every request when the base URL would expose the credentials.
	baseErr error
}

// New returns a client for baseURL (DefaultBaseURL when empty). hc may be nil; the default
// client times out after 60 s, which the poller's lease outlives. Whatever hc is, redirects are
// followed only within UltraCart's host (shared/outbound), and a base URL that is not https
// (other than loopback) makes every request fail with an error saying so.
func New(baseURL string, creds Credentials, hc *http.Client) *Client {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	c := &Client{base: strings.TrimRight(baseURL, "/") + "/rest/v2", creds: creds, http: outbound.Guard(hc, 60*time.Second)}
	if err := outbound.CheckBaseURL(baseURL); err != nil {
		c.baseErr = fmt.Errorf("the UltraCart base URL %w", err)
	}
	return c
}

// OrderFilter selects orders by one date range. Zero times leave that end open.
type OrderFilter struct {
	PaymentDateBegin time.Time
	PaymentDateEnd   time.Time
	RefundDateBegin  time.Time
	RefundDateEnd    time.Time
	// QueryTarget is "origin" (up to date, slower) or "cache" (may lack the last minutes).
	QueryTarget string
}

// ResultSet is UltraCart's pagination metadata.
type ResultSet struct {
	Count      int  `json:"count"`
	Limit      int  `json:"limit"`
	Offset     int  `json:"offset"`
	More       bool `json:"more"`
	NextOffset int  `json:"next_offset"`
	// TotalRecords may be absent; nil then.
	TotalRecords *int `json:"total_records"`
}

// Page is one page of records.
type Page struct {
	Records   []json.RawMessage
	ResultSet ResultSet
}

// Total is the total number of matching records when UltraCart reported it, else what is known
// so far (offset plus this page, plus one if there are more).
func (p Page) Total() int {
	if p.ResultSet.TotalRecords != nil {
		return *p.ResultSet.TotalRecords
	}
	n := p.ResultSet.Offset + len(p.Records)
	if p.ResultSet.More {
		n++
	}
	return n
}

type orderQuery struct {
	PaymentDateBegin string `json:"payment_date_begin,omitempty"`
	PaymentDateEnd   string `json:"payment_date_end,omitempty"`
	RefundDateBegin  string `json:"refund_date_begin,omitempty"`
	RefundDateEnd    string `json:"refund_date_end,omitempty"`
	QueryTarget      string `json:"query_target,omitempty"`
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(timeLayout)
}

// ParseTime reads a date as UltraCart writes it (with or without fractional seconds).
func ParseTime(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}

// QueryOrders runs POST /order/orders/query, sorted oldest payment first so that offsets stay
// stable while a window is walked.
func (c *Client) QueryOrders(ctx context.Context, f OrderFilter, limit, offset int) (Page, error) {
	q := orderQuery{
		PaymentDateBegin: formatTime(f.PaymentDateBegin), PaymentDateEnd: formatTime(f.PaymentDateEnd),
		RefundDateBegin: formatTime(f.RefundDateBegin), RefundDateEnd: formatTime(f.RefundDateEnd),
		QueryTarget: f.QueryTarget,
	}
	if q == (orderQuery{QueryTarget: q.QueryTarget}) {
		// UltraCart answers 400 to an empty query; say so before spending a request.
		return Page{}, fmt.Errorf("%w: an order query needs a date range", ErrBadRequest)
	}
	body, err := json.Marshal(q)
	if err != nil {
		return Page{}, err
	}
	sort := "+payment_dts"
	if !f.RefundDateBegin.IsZero() || !f.RefundDateEnd.IsZero() {
		sort = "+refund_dts"
	}
	params := pageParams(limit, offset, OrderExpansion)
	params.Set("_sort", sort)
	return c.page(ctx, http.MethodPost, "/order/orders/query", params, body, "orders")
}

func pageParams(limit, offset int, expand string) url.Values {
	if limit <= 0 || limit > MaxLimit {
		limit = MaxLimit
	}
	v := url.Values{}
	v.Set("_limit", strconv.Itoa(limit))
	v.Set("_offset", strconv.Itoa(max(offset, 0)))
	if expand != "" {
		v.Set("_expand", expand)
	}
	return v
}

// maxResponseBytes bounds one page; 200 fully expanded orders stay far below it.
const maxResponseBytes = 64 << 20

func (c *Client) page(ctx context.Context, method, path string, params url.Values, body []byte, field string) (Page, error) {
	raw, err := c.call(ctx, method, path, params, body)
	if err != nil {
		return Page{}, err
	}
	p, err := DecodePage(raw, field, atoi(params.Get("_offset")))
	if err != nil {
		return Page{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return p, nil
}

// DecodePage reads a listing or query answer: the records under field, kept raw, and
// metadata.result_set (made up from the records and offset when UltraCart sends none).
func DecodePage(raw []byte, field string, offset int) (Page, error) {
	var env struct {
		Metadata struct {
			ResultSet *ResultSet `json:"result_set"`
		} `json:"metadata"`
	}
	var records map[string]json.RawMessage
	if err := json.Unmarshal(raw, &records); err != nil {
		return Page{}, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return Page{}, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	var p Page
	if list, ok := records[field]; ok && string(list) != "null" {
		if err := json.Unmarshal(list, &p.Records); err != nil {
			return Page{}, fmt.Errorf("%w: %q is not a list: %v", ErrBadResponse, field, err)
		}
	}
	if env.Metadata.ResultSet != nil {
		p.ResultSet = *env.Metadata.ResultSet
	} else {
		p.ResultSet = ResultSet{Count: len(p.Records), Offset: offset}
	}
	return p, nil
}

// call sends one authenticated API request and returns the body of a 2xx answer; any other
// answer becomes one of the package's errors, prefixed with the method and path.
func (c *Client) call(ctx context.Context, method, path string, params url.Values, body []byte) ([]byte, error) {
	if c.baseErr != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, c.baseErr)
	}
	u := c.base + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-UltraCart-Api-Version", APIVersion)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	}
	switch {
	case c.creds.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+c.creds.BearerToken)
	case c.creds.SimpleKey != "":
		req.Header.Set("x-ultracart-simple-key", c.creds.SimpleKey)
	default:
		return nil, fmt.Errorf("%s %s: %w: no access token or simple key", method, path, ErrUnauthorized)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &TransportError{Op: method + " " + path, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, &TransportError{Op: method + " " + path, Err: err}
	}
	if err := statusError(resp, raw); err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return raw, nil
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func statusError(resp *http.Response, raw []byte) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := resp.Header.Get("UC-REST-ERROR")
	if msg == "" {
		var e struct {
			Error struct {
				DeveloperMessage string `json:"developer_message"`
				UserMessage      string `json:"user_message"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil {
			msg = cmpOr(e.Error.DeveloperMessage, e.Error.UserMessage)
		}
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: %s", ErrUnauthorized, msg)
	case http.StatusGone:
		return fmt.Errorf("%w: %s", ErrAppDisabled, msg)
	case http.StatusTooManyRequests:
		return &RateLimitedError{RetryAfter: retryAfter(resp.Header.Get("Retry-After")), Message: msg}
	case http.StatusBadRequest:
		return fmt.Errorf("%w: %s", ErrBadRequest, msg)
	}
	return &StatusError{Status: resp.StatusCode, Message: msg}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// retryAfter reads a Retry-After in seconds. UltraCart documents none, so usually 0.
func retryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// Errors, matched with errors.Is / errors.As.
var (
	// ErrUnauthorized: the token or key was refused (401/403). Retrying cannot help until the
	// credentials are refreshed or replaced.
	ErrUnauthorized = errors.New("ultracart: credentials refused")
	// ErrAppDisabled: UltraCart disabled the authorised application (410). Never retry.
	ErrAppDisabled = errors.New("ultracart: application disabled by UltraCart")
	// ErrBadRequest: UltraCart refused the request as malformed (400).
	ErrBadRequest = errors.New("ultracart: bad request")
	// ErrBadResponse: the answer was not the JSON UltraCart documents.
	ErrBadResponse = errors.New("ultracart: unreadable response")
)

// RateLimitedError is a 429: over the hourly or daily budget, or two requests at once.
type RateLimitedError struct {
	// RetryAfter is what the server asked for, or 0 when it said nothing (UltraCart's norm).
	RetryAfter time.Duration
	Message    string
}

// RetryHint is what the server asked to wait (poll.RateLimit).
func (e *RateLimitedError) RetryHint() time.Duration { return e.RetryAfter }

func (e *RateLimitedError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("ultracart: rate limited (retry after %s): %s", e.RetryAfter, e.Message)
	}
	return "ultracart: rate limited: " + e.Message
}

// StatusError is any other non-2xx answer.
type StatusError struct {
	Status  int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("ultracart: HTTP %d: %s", e.Status, e.Message)
}

// TransportError is a request that got no HTTP answer (network, timeout, cancellation).
type TransportError struct {
	Op  string
	Err error
}

func (e *TransportError) Error() string { return "ultracart: " + e.Op + ": " + e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// Retryable reports whether the same request may succeed later without anyone's help: a 5xx,
// a 429 or a transport failure (unless the caller's context ended).
func Retryable(err error) bool {
	var rl *RateLimitedError
	var se *StatusError
	var te *TransportError
	switch {
	case errors.As(err, &rl):
		return true
	case errors.As(err, &se):
		return se.Status >= 500
	case errors.As(err, &te):
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, outbound.ErrRedirectRefused)
	}
	return false
}
