package ultracartapi

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

// Scope lists the permissions cartrelay needs: reading orders, auto orders, customers, items and
// affiliates for ingest and polling, and managing its own webhook. UltraCart fixes an application's scopes
// when the Developer Application is registered, so these must be ticked there; they are also
// sent on the authorize URL as the standard OAuth "scope" parameter, which documents the request
// and is ignored where scopes are fixed.
const Scope = "order_read auto_order_read customer_read item_read affiliate_read webhook_read webhook_write"

// ClientAuth says how the client secret reaches the token endpoint. UltraCart's spec defines
// no client_secret field and no public source says how the secret is sent, so both standard
// ways of RFC 6749 §2.3.1 are offered.
type ClientAuth string

// Client authentication methods.
const (
	// ClientAuthBasic sends client_id:client_secret as HTTP Basic credentials (the method
	// every OAuth server must support).
	ClientAuthBasic ClientAuth = "basic"
	// ClientAuthPost sends client_secret as a form field beside client_id.
	ClientAuthPost ClientAuth = "post"
)

// OAuth is a Developer Application's side of UltraCart's authorization-code flow.
type OAuth struct {
	// BaseURL is UltraCart's host (DefaultBaseURL when empty); /rest/v2 is appended.
	BaseURL      string
	ClientID     string
	ClientSecret string
	// Auth is how ClientSecret is sent; empty means ClientAuthBasic.
	Auth ClientAuth
	// HTTP is the client for the token endpoint; nil uses a 30 s timeout.
	HTTP *http.Client
}

// Token is the token endpoint's answer.
type Token struct {
	AccessToken  string
	RefreshToken string
	TokenType    string
	Scope        string
	// ExpiresIn is the access token's lifetime; 0 when UltraCart did not say.
	ExpiresIn time.Duration
	// MerchantID is the merchant who authorized, if the token response ever names one.
	// UltraCart's OauthTokenResponse documents no such field, so it is normally empty and the
	// connect flow learns the store from its webhooks (see shared/ultracart/ucsource).
	MerchantID string
}

// TokenError is a refusal from the token endpoint (for example an expired or reused code).
type TokenError struct {
	Status int
	// Code is the OAuth error code ("invalid_grant"), or empty.
	Code string
	// Description is UltraCart's text, from error_description or its UC-REST-ERROR header.
	Description string
}

func (e *TokenError) Error() string {
	msg := strings.TrimSpace(e.Code + ": " + e.Description)
	msg = strings.Trim(msg, ": ")
	if msg == "" {
		msg = "no reason given"
	}
	return fmt.Sprintf("ultracart: token endpoint answered HTTP %d: %s", e.Status, msg)
}

// ErrInvalidGrant matches a TokenError whose code is invalid_grant: the code or refresh token
// is expired, unknown or already used.
var ErrInvalidGrant = errors.New("ultracart: invalid grant")

// Is makes errors.Is(err, ErrInvalidGrant) true for an invalid_grant refusal.
func (e *TokenError) Is(target error) bool {
	return target == ErrInvalidGrant && e.Code == "invalid_grant"
}

// CheckBaseURL refuses a base URL that would send the client secret and tokens in clear: it
// must be https, or http on a loopback host.
func (o OAuth) CheckBaseURL() error {
	if o.BaseURL == "" {
		return nil
	}
	if err := outbound.CheckBaseURL(o.BaseURL); err != nil {
		return fmt.Errorf("the UltraCart base URL %w", err)
	}
	return nil
}

func (o OAuth) base() string {
	b := o.BaseURL
	if b == "" {
		b = DefaultBaseURL
	}
	return strings.TrimRight(b, "/") + "/rest/v2"
}

// AuthorizeURL is where the merchant's browser is sent to grant access.
func (o OAuth) AuthorizeURL(redirectURI, state string) string {
	v := url.Values{}
	v.Set("response_type", "code")
	v.Set("client_id", o.ClientID)
	v.Set("redirect_uri", redirectURI)
	v.Set("state", state)
	v.Set("scope", Scope)
	return o.base() + "/oauth/authorize?" + v.Encode()
}

// Exchange trades an authorization code for tokens. redirectURI must be the one the code was
// issued for.
func (o OAuth) Exchange(ctx context.Context, code, redirectURI string) (Token, error) {
	v := url.Values{}
	v.Set("grant_type", "authorization_code")
	v.Set("code", code)
	v.Set("redirect_uri", redirectURI)
	return o.token(ctx, v)
}

// Refresh trades a refresh token for a new token pair. UltraCart may rotate the refresh token,
// so the caller stores both tokens of the answer.
func (o OAuth) Refresh(ctx context.Context, refreshToken string) (Token, error) {
	v := url.Values{}
	v.Set("grant_type", "refresh_token")
	v.Set("refresh_token", refreshToken)
	return o.token(ctx, v)
}

func (o OAuth) token(ctx context.Context, form url.Values) (Token, error) {
	const op = "POST /oauth/token"
	form.Set("client_id", o.ClientID)
	if o.Auth == ClientAuthPost && o.ClientSecret != "" {
		form.Set("client_secret", o.ClientSecret)
	}
	if err := o.CheckBaseURL(); err != nil {
		return Token{}, fmt.Errorf("%s: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.base()+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return Token{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-UltraCart-Api-Version", APIVersion)
	if o.Auth != ClientAuthPost && o.ClientSecret != "" {
		// RFC 6749 §2.3.1 form-encodes both parts before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(o.ClientID), url.QueryEscape(o.ClientSecret))
	}
	// The form carries the code or refresh token, which a 307 to another host would re-send.
	resp, err := outbound.Guard(o.HTTP, 30*time.Second).Do(req)
	if err != nil {
		return Token{}, &TransportError{Op: op, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Token{}, &TransportError{Op: op, Err: err}
	}
	var body struct {
		AccessToken      string          `json:"access_token"`
		RefreshToken     string          `json:"refresh_token"`
		TokenType        string          `json:"token_type"`
		Scope            string          `json:"scope"`
		ExpiresIn        json.RawMessage `json:"expires_in"`
		MerchantID       string          `json:"merchant_id"`
		Error            json.RawMessage `json:"error"`
		ErrorDescription string          `json:"error_description"`
	}
	decodeErr := json.Unmarshal(raw, &body)
	code, desc := oauthError(body.Error, body.ErrorDescription)
	if resp.StatusCode < 200 || resp.StatusCode > 299 || code != "" {
		if desc == "" {
			desc = resp.Header.Get("UC-REST-ERROR")
		}
		if desc == "" && decodeErr != nil {
			desc = strings.TrimSpace(string(raw[:min(len(raw), 300)]))
		}
		return Token{}, &TokenError{Status: resp.StatusCode, Code: code, Description: desc}
	}
	if decodeErr != nil || body.AccessToken == "" {
		return Token{}, fmt.Errorf("%s: %w: no access_token in the answer", op, ErrBadResponse)
	}
	t := Token{AccessToken: body.AccessToken, RefreshToken: body.RefreshToken, TokenType: body.TokenType,
		Scope: body.Scope, MerchantID: body.MerchantID}
	// expires_in is a string in UltraCart's spec; a number is accepted too.
	if s := strings.Trim(string(body.ExpiresIn), `"`); s != "" && s != "null" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return Token{}, fmt.Errorf("%s: %w: expires_in %q is not a number of seconds", op, ErrBadResponse, s)
		}
		t.ExpiresIn = time.Duration(n) * time.Second
	}
	return t, nil
}

// oauthError reads the error of a token answer: an OAuth error code (a string), or UltraCart's
// usual error object.
func oauthError(raw json.RawMessage, desc string) (code, description string) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", desc
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, desc
	}
	var e struct {
		DeveloperMessage string `json:"developer_message"`
		UserMessage      string `json:"user_message"`
	}
	if json.Unmarshal(raw, &e) == nil {
		return "error", cmpOr(desc, cmpOr(e.UserMessage, e.DeveloperMessage))
	}
	return "error", desc
}
