// Package reviews makes and checks the links in review-request messages, and remembers which
// products a contact was already asked to review.
//
// A link is GET /review/{token} on the connect function. The token names the account, the
// order and the product, and when it expires; it is signed with HMAC-SHA256 under the account's
// review key, a random key cartrelay generates and keeps sealed (shared/accountkeys), so nobody
// can mint a link, for another order or product or at all, or stretch its life. The connect
// function checks the token and redirects to the merchant's review page for that product,
// marked as a verified purchase, and only on the merchant's own domains (allowed_domains), so a
// link can never send a shopper elsewhere.
//
// Tokens carry no email address: they end up in browser histories and server logs.
package reviews

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/url"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/sitehosts"
	"github.com/cartrelay/cartrelay/shared/store"
)

// tokenVersion prefixes every token, so a later format can be told apart.
const tokenVersion = "r1"

// macLen is the length of the truncated HMAC: 128 bits, beyond guessing, and a shorter link.
const macLen = 16

// maxTokenLen refuses absurd input before any decoding.
const maxTokenLen = 1024

// Errors of Verify, matched with errors.Is.
var (
	ErrMalformed = errors.New("review link is malformed")
	ErrSignature = errors.New("review link signature does not match")
	ErrExpired   = errors.New("review link has expired")
	// ErrNoKey: there is no key to sign or check with.
	ErrNoKey = errors.New("no review link key")
)

// MaxLinkTTL is the longest a review link may live: the longest duration a setting takes. A
// link is refused while its expiry lies further ahead than the account's link lifetime, so
// not even a link signed with a leaked key lives longer than that.
const MaxLinkTTL = 366 * 24 * time.Hour

// Claims is what a token says.
type Claims struct {
	Account string    `json:"a"`
	OrderID string    `json:"o"`
	SKU     string    `json:"s"`
	Expires time.Time `json:"-"`
	Exp     int64     `json:"x"`
}

// SigningKey is the HMAC key of an account's links: its review key (accountkeys.Review).
func SigningKey(k accountkeys.Key) []byte { return []byte(k.Value) }

// Sign makes a token for c.
func Sign(key []byte, c Claims) (string, error) {
	if len(key) == 0 {
		return "", ErrNoKey
	}
	c.Exp = c.Expires.Unix()
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode review claims: %w", err)
	}
	p := base64.RawURLEncoding.EncodeToString(payload)
	return tokenVersion + "." + p + "." + base64.RawURLEncoding.EncodeToString(mac(key, p)), nil
}

func mac(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(tokenVersion + "." + payload))
	return m.Sum(nil)[:macLen]
}

// Peek reads a token's claims without checking them, to find the account whose key checks it.
func Peek(token string) (Claims, error) {
	_, payload, _, err := split(token)
	if err != nil {
		return Claims{}, err
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: payload is not base64url", ErrMalformed)
	}
	var c Claims
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || c.Account == "" || c.SKU == "" || c.Exp == 0 {
		return Claims{}, fmt.Errorf("%w: payload is not a review claim", ErrMalformed)
	}
	c.Expires = time.Unix(c.Exp, 0).UTC()
	return c, nil
}

func split(token string) (version, payload, sig string, err error) {
	if len(token) > maxTokenLen {
		return "", "", "", fmt.Errorf("%w: too long", ErrMalformed)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != tokenVersion || parts[1] == "" || parts[2] == "" {
		return "", "", "", fmt.Errorf("%w: not a %s token", ErrMalformed, tokenVersion)
	}
	return parts[0], parts[1], parts[2], nil
}

// Verify checks a token's signature under key and its expiry at now, and returns its claims.
// The signature is checked before the expiry, so an expired answer is only ever given for a
// genuine link.
func Verify(key []byte, token string, now time.Time) (Claims, error) {
	if len(key) == 0 {
		return Claims{}, ErrNoKey
	}
	_, payload, sig, err := split(token)
	if err != nil {
		return Claims{}, err
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: signature is not base64url", ErrMalformed)
	}
	if !hmac.Equal(got, mac(key, payload)) {
		return Claims{}, ErrSignature
	}
	c, err := Peek(token)
	if err != nil {
		return Claims{}, err
	}
	if !now.Before(c.Expires) {
		return c, ErrExpired
	}
	return c, nil
}

// ErrTemplate is wrapped by RedirectURL for a template that does not give an absolute http(s)
// URL on the merchant's allowed domains.
var ErrTemplate = errors.New("review URL template is not usable")

// RedirectURL fills the merchant's review URL template for c: {sku}, {order_id} and {verified}
// ("true") are replaced, query-escaped. A template without {verified} gets verified_buyer=true
// added to its query, so the review page can mark the review as from a verified purchase. The
// result must be on one of hosts (the account's allowed_domains).
func RedirectURL(template string, c Claims, hosts sitehosts.List) (string, error) {
	if template == "" {
		return "", fmt.Errorf("%w: it is not set", ErrTemplate)
	}
	r := strings.NewReplacer("{sku}", url.QueryEscape(c.SKU), "{order_id}", url.QueryEscape(c.OrderID), "{verified}", "true")
	out := r.Replace(template)
	u, err := url.Parse(out)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("%w: %q does not give an absolute http(s) URL", ErrTemplate, template)
	}
	if err := hosts.URL(out); err != nil {
		return "", fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	if !strings.Contains(template, "{verified}") {
		q := u.Query()
		q.Set("verified_buyer", "true")
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// CheckTemplate reports whether a review URL template gives usable links on hosts, so a bad
// one is refused when it is set rather than when a shopper clicks.
func CheckTemplate(template string, hosts sitehosts.List) error {
	_, err := RedirectURL(template, Claims{SKU: "SKU-1", OrderID: "ORDER-1"}, hosts)
	return err
}

// Page is the connect function's answer to GET /review/{token}: a redirect when Location is
// set, an HTML page otherwise.
type Page struct {
	Status   int
	Location string
	Title    string
	// Body is HTML, already escaped.
	Body string
	// Account and Reason are for the log.
	Account string
	Reason  string
}

// Accounts finds an account by id (accounts.Repo does).
type Accounts interface {
	Get(ctx context.Context, id string, open ...accounts.Field) (accounts.Account, error)
}

// Keys finds an account's review key (accountkeys.Repo does).
type Keys interface {
	Get(ctx context.Context, account string, name accountkeys.Name) (accountkeys.Key, error)
}

// Checker answers GET /review/{token}.
type Checker struct {
	Accounts Accounts
	Keys     Keys
	// LinkTTL is the account's link lifetime (its review_link_ttl); nil or a longer one than
	// MaxLinkTTL means MaxLinkTTL.
	LinkTTL func(accounts.Account) time.Duration
	// Template is the account's review page URL template, which links redirect to; nil or ""
	// means the account takes no reviews.
	Template func(accounts.Account) string
}

// Handle answers GET /review/{token}. Every failure gets a page a customer can understand;
// which check failed goes to the log only (Reason). Only a temporary failure to read the
// account or its key answers 503.
func (ch Checker) Handle(ctx context.Context, now time.Time, token string) Page {
	invalid := func(account, reason string) Page {
		return Page{Status: 404, Title: "This review link is not valid", Account: account, Reason: reason,
			Body: `<p>This review link is not valid. Please use the link from your email exactly as it was sent, or contact the store.</p>`}
	}
	unavailable := func(account, reason string) Page {
		return Page{Status: 503, Title: "Please try again", Account: account, Reason: reason,
			Body: `<p>We could not open this review link just now. Please try again in a minute.</p>`}
	}
	token, _ = url.PathUnescape(token)
	c, err := Peek(token)
	if err != nil {
		return invalid("", err.Error())
	}
	acct, err := ch.Accounts.Get(ctx, c.Account)
	if errors.Is(err, accounts.ErrNotFound) {
		return invalid("", "unknown account")
	}
	if err != nil {
		return unavailable(c.Account, "read account: "+err.Error())
	}
	k, err := ch.Keys.Get(ctx, c.Account, accountkeys.Review)
	if errors.Is(err, accountkeys.ErrNotFound) {
		return invalid(c.Account, "the account has no review key, so it never signed a link")
	}
	if err != nil {
		return unavailable(c.Account, "read the review key: "+err.Error())
	}
	c, err = Verify(SigningKey(k), token, now)
	switch {
	case errors.Is(err, ErrExpired):
		return Page{Status: 410, Title: "This review link has expired", Account: c.Account, Reason: "expired",
			Body: `<p>This review link expired on ` + html.EscapeString(c.Expires.Format("2 January 2006")) +
				`. Thank you for wanting to share your opinion; please visit the store to leave a review.</p>`}
	case err != nil:
		return invalid(c.Account, err.Error())
	}
	ttl := MaxLinkTTL
	if ch.LinkTTL != nil {
		ttl = min(ch.LinkTTL(acct), MaxLinkTTL)
	}
	if c.Expires.After(now.Add(ttl)) {
		return invalid(c.Account, fmt.Sprintf("expires %s, further ahead than the account's link lifetime (%s) allows", c.Expires.Format(time.RFC3339), ttl))
	}
	hosts, err := sitehosts.Parse(acct.AllowedDomains)
	var dest string
	if err == nil {
		tmpl := ""
		if ch.Template != nil {
			tmpl = ch.Template(acct)
		}
		dest, err = RedirectURL(tmpl, c, hosts)
	}
	if err != nil {
		return Page{Status: 404, Title: "Reviews are not available", Account: c.Account, Reason: err.Error(),
			Body: `<p>This store is not taking reviews through this link at the moment.</p>`}
	}
	return Page{Status: 302, Location: dest, Account: c.Account, Reason: "redirected"}
}

// Asked remembers, per contact, the products a review was requested for: item pk
// "A#<acct>#RV#<email>", sk the SKU. A review request names only products not asked about before.
type Asked struct {
	st store.Store
}

// NewAsked returns the record over st.
func NewAsked(st store.Store) Asked { return Asked{st: st} }

func askedPK(account, email string) string { return "A#" + account + "#RV#" + email }

// AskedPK is the partition of the products email was asked to review (an erasure deletes it).
func AskedPK(account, email string) string { return askedPK(account, email) }

type askedDoc struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// Claim records that request `by` (an idempotency key, such as the fact id of the request) asks
// about sku. It reports true when sku is new for the contact, or was claimed by the same request
// before (a retry of that request must still name it), and false when another request asked.
func (a Asked) Claim(ctx context.Context, account, email, sku, by string, at time.Time) (bool, error) {
	data, _ := json.Marshal(askedDoc{By: by, At: at.UTC()})
	err := a.st.Write(ctx, store.PutItem(store.Item{PK: askedPK(account, email), SK: sku, Version: 1, Data: data}, store.NotExists))
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, store.ErrConditionFailed) {
		return false, fmt.Errorf("record review request for %s: %w", sku, err)
	}
	it, err := a.st.Get(ctx, askedPK(account, email), sku)
	if err != nil {
		return false, fmt.Errorf("read review request for %s: %w", sku, err)
	}
	var d askedDoc
	if err := json.Unmarshal(it.Data, &d); err != nil {
		return false, nil
	}
	return d.By == by, nil
}

// WasAsked reports whether any request asked about sku (without claiming it).
func (a Asked) WasAsked(ctx context.Context, account, email, sku string) (bool, error) {
	_, err := a.st.Get(ctx, askedPK(account, email), sku)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read review request for %s: %w", sku, err)
	}
	return true, nil
}
