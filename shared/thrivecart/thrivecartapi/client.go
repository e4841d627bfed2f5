// Package thrivecartapi is a small client for ThriveCart's external API. It lives apart from
// package thrivecart, which only reads webhook deliveries and does no I/O.
//
// The API authenticates with "Authorization: Bearer <key>", the account's API key from
// Settings > API & webhooks, and answers errors as JSON with an "error" key.
package thrivecartapi

import (
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

// DefaultBaseURL is ThriveCart's host; the API is under /api/external.
const DefaultBaseURL = "https://thrivecart.com"

// defaultTimeout bounds a call when the caller gives no client, so a slow ThriveCart cannot
// hold a merchant's page (and its Lambda) open.
const defaultTimeout = 10 * time.Second

// ErrKeyRefused matches *KeyError: ThriveCart does not accept the key.
var ErrKeyRefused = errors.New("thrivecart: API key refused")

// KeyError is ThriveCart refusing a key (401 or 403), with what it said.
type KeyError struct {
	Status int
	// Code and Description are ThriveCart's error and error_description, when it sent them.
	Code        string
	Description string
}

func (e *KeyError) Error() string {
	msg := fmt.Sprintf("ThriveCart refused the API key (HTTP %d)", e.Status)
	if d := strings.Trim(e.Code+": "+e.Description, ": "); d != "" {
		msg += ": " + d
	}
	return msg
}

// Is lets errors.Is(err, ErrKeyRefused) find a *KeyError.
func (e *KeyError) Is(target error) bool { return target == ErrKeyRefused }

// Client calls ThriveCart's external API.
type Client struct {
	// BaseURL is ThriveCart's host (DefaultBaseURL when empty); a fake in tests. A base that
	// already ends in /api/external (ThriveCart's documented API base) is read as its host.
	BaseURL string
	// HTTP is the client used; nil means one with a 10 s timeout.
	HTTP *http.Client
	// Mode is sent as X-TC-Mode ("live" or "test"); empty sends nothing, which ThriveCart
	// treats as live.
	Mode string
}

// Account is what ThriveCart tells about the key's account.
type Account struct {
	// Name is ThriveCart's account name, from the X-ThriveCart-Account-Name header or the
	// body's account_name, when sent.
	Name string
}

// Ping checks key with GET /api/external/ping. A key ThriveCart refuses gives a *KeyError;
// any other failure (network, 5xx) is returned wrapped, so the caller can tell "wrong key"
// from "could not check".
func (c Client) Ping(ctx context.Context, key string) (Account, error) {
	var doc struct {
		AccountName string `json:"account_name"`
	}
	hdr, body, err := c.get(ctx, key, "/ping", nil)
	var ke *KeyError
	if errors.As(err, &ke) {
		// Shown to the merchant as is, so it carries no call-site prefix.
		return Account{}, ke
	}
	if err != nil {
		return Account{}, fmt.Errorf("thrivecart ping: %w", err)
	}
	// The body is informative only: the status already says the key works.
	_ = json.Unmarshal(body, &doc)
	name := hdr.Get("X-ThriveCart-Account-Name")
	if name == "" {
		name = doc.AccountName
	}
	return Account{Name: name}, nil
}

// get calls GET /api/external<path> with key and returns a 2xx answer's headers and body.
// Failures are typed: *KeyError (401/403), *RateLimitedError (429), *APIError (any other
// status), or the transport's error.
func (c Client) get(ctx context.Context, key, path string, q url.Values) (http.Header, []byte, error) {
	if strings.TrimSpace(key) == "" {
		return nil, nil, &KeyError{Status: http.StatusUnauthorized, Code: "auth.missing", Description: "the key is empty"}
	}
	base := c.apiBase()
	if err := outbound.CheckBaseURL(base); err != nil {
		return nil, nil, fmt.Errorf("the ThriveCart base URL %w", err)
	}
	u := base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", "application/json")
	if c.Mode != "" {
		req.Header.Set("X-TC-Mode", c.Mode)
	}
	resp, err := outbound.Guard(c.HTTP, defaultTimeout).Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, nil, fmt.Errorf("read answer: %w", err)
	}
	var doc struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
		Message          string `json:"message"`
	}
	// The error body is informative only; a non-JSON answer still has a meaningful status.
	_ = json.Unmarshal(body, &doc)
	desc := firstNonEmpty(doc.ErrorDescription, doc.Message)
	switch s := resp.StatusCode; {
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return nil, nil, &KeyError{Status: s, Code: doc.Error, Description: desc}
	case s == http.StatusTooManyRequests:
		return nil, nil, &RateLimitedError{RetryAfter: retryAfter(resp.Header.Get("Retry-After")), Code: doc.Error, Description: desc}
	case s < 200 || s > 299:
		return nil, nil, &APIError{Status: s, Code: doc.Error, Description: desc}
	}
	return resp.Header, body, nil
}

// apiBase is where the API's paths start. ThriveCart documents its API base as
// https://thrivecart.com/api/external, so an operator may well configure that instead of the
// host; either way the path is added once.
func (c Client) apiBase() string {
	base := strings.TrimRight(c.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	return strings.TrimSuffix(base, apiPath) + apiPath
}

// apiPath is the prefix of every API path on ThriveCart's host.
const apiPath = "/api/external"

// maxBody bounds an answer: a page of 100 transactions is far below it.
const maxBody = 8 << 20

// retryAfter reads a Retry-After of seconds or an HTTP date; 0 when absent or unreadable.
// ThriveCart documents no such header, so this only helps if it starts sending one.
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
