// Package visitortoken makes and checks the identity tokens with which a storefront tells the
// page-view snippet who the shopper is. The merchant's server signs a token, on a page where
// it knows the shopper (logged in), with the account's tracking secret, which cartrelay
// generates and shows to the operator (shared/accountkeys). A browser cannot make one for an
// address of its choosing, so page views attach only to the shopper the merchant vouched for.
//
// A token is four parts joined by dots:
//
//	v1.<expires>.<email>.<signature>
//
// expires is a Unix time in seconds, email is the address in unpadded base64url, and signature
// is the lower-case hex HMAC-SHA256, keyed with the tracking secret as shown, of the first
// three parts with their dots ("v1.1767225600.YW5uQGV4YW1wbGUuY29t"). A token is refused once
// expired, and when its expiry lies more than MaxTTL ahead.
package visitortoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// version is the first part of every token.
const version = "v1"

// MaxTTL is the longest a token may have left to live when it is checked: a token sits in a
// page, so it need only outlast the page's visit.
const MaxTTL = 24 * time.Hour

// maxLen bounds a token before anything is decoded (an address is at most 254 characters).
const maxLen = 512

// Errors of Verify, matched with errors.Is.
var (
	ErrMalformed = errors.New("identity token is malformed")
	ErrSignature = errors.New("identity token signature does not match the account's tracking secret")
	ErrExpired   = errors.New("identity token has expired")
	ErrTooLong   = errors.New("identity token lives too long")
	ErrNoSecret  = errors.New("no tracking secret")
)

// Sign makes a token for email that expires at expires, as the merchant's server does.
func Sign(secret, email string, expires time.Time) (string, error) {
	if secret == "" {
		return "", ErrNoSecret
	}
	payload := version + "." + strconv.FormatInt(expires.Unix(), 10) + "." + base64.RawURLEncoding.EncodeToString([]byte(email))
	return payload + "." + hex.EncodeToString(mac(secret, payload)), nil
}

func mac(secret, payload string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// Verify checks a token's signature under secret and its expiry at now, and returns the
// address it vouches for, as written (the caller normalizes it). The signature is checked
// before the expiry, so only a genuine token is ever reported as expired.
func Verify(secret, token string, now time.Time) (string, error) {
	if secret == "" {
		return "", ErrNoSecret
	}
	if len(token) > maxLen {
		return "", fmt.Errorf("%w: longer than %d characters", ErrMalformed, maxLen)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 4 || parts[0] != version {
		return "", fmt.Errorf("%w: expected %s.<expires>.<email>.<signature>", ErrMalformed, version)
	}
	sig, err := hex.DecodeString(parts[3])
	if err != nil || len(sig) != sha256.Size {
		return "", fmt.Errorf("%w: the signature is not 64 hex digits", ErrMalformed)
	}
	if !hmac.Equal(sig, mac(secret, strings.Join(parts[:3], "."))) {
		return "", ErrSignature
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return "", fmt.Errorf("%w: the expiry is not a Unix time", ErrMalformed)
	}
	email, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", fmt.Errorf("%w: the address is not unpadded base64url", ErrMalformed)
	}
	expires := time.Unix(exp, 0)
	switch {
	case !now.Before(expires):
		return "", fmt.Errorf("%w at %s", ErrExpired, expires.UTC().Format(time.RFC3339))
	case expires.Sub(now) > MaxTTL:
		return "", fmt.Errorf("%w: it expires %s, more than %s ahead; sign tokens for the page being served, with an expiry of an hour or so", ErrTooLong, expires.UTC().Format(time.RFC3339), MaxTTL)
	}
	return string(email), nil
}
