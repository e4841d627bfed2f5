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
	"strings"
	"time"
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
	// BaseURL is ThriveCart's host (DefaultBaseURL when empty); a fake in tests.
	BaseURL string
	// HTTP is the client used; nil means one with a 10 s timeout.
	HTTP *http.Client
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
	if strings.TrimSpace(key) == "" {
		return Account{}, &KeyError{Status: http.StatusUnauthorized, Code: "auth.missing", Description: "the key is empty"}
	}
	base := strings.TrimRight(c.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/external/ping", nil)
	if err != nil {
		return Account{}, fmt.Errorf("thrivecart ping: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: defaultTimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Account{}, fmt.Errorf("thrivecart ping: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Account{}, fmt.Errorf("thrivecart ping: read answer: %w", err)
	}
	var doc struct {
		AccountName      string `json:"account_name"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	// The body is informative only; a non-JSON answer still has a meaningful status.
	_ = json.Unmarshal(body, &doc)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return Account{}, &KeyError{Status: resp.StatusCode, Code: doc.Error, Description: doc.ErrorDescription}
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return Account{}, fmt.Errorf("thrivecart ping: HTTP %d %s", resp.StatusCode, strings.TrimSpace(doc.Error+" "+doc.ErrorDescription))
	}
	name := resp.Header.Get("X-ThriveCart-Account-Name")
	if name == "" {
		name = doc.AccountName
	}
	return Account{Name: name}, nil
}
