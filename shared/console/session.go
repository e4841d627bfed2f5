package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/oauth"
)

// CookieName names the session cookie. A "__Host-" prefix would need Path=/, and the cookie
// is deliberately kept to the console's pages.
const CookieName = "cartrelay_console"

// SessionTTL is how long a sign-in lasts: a working day, after which the merchant signs in
// through UltraCart again (which is quick while UltraCart's own session lasts).
const SessionTTL = 12 * time.Hour

// MinKeyBytes is the shortest CONSOLE_SESSION_KEY accepted: HMAC-SHA256 wants a key of at
// least its output size to keep its full strength.
const MinKeyBytes = 32

// Domain separation: the same key signs sessions and derives CSRF tokens, and neither may
// ever stand in for the other.
const (
	sessionLabel = "cartrelay console session v1\n"
	csrfLabel    = "cartrelay console csrf v1\n"
)

// ErrNoSession means the request carries no valid session: none, tampered, signed with
// another key, or expired. The cases are not told apart to the browser.
var ErrNoSession = errors.New("console: no valid session")

// KeyError says why a session key is not usable.
type KeyError struct{ Len int }

func (e *KeyError) Error() string {
	if e.Len == 0 {
		return "CONSOLE_SESSION_KEY is not set"
	}
	return fmt.Sprintf("CONSOLE_SESSION_KEY is %d bytes, it needs at least %d", e.Len, MinKeyBytes)
}

// Sessions issues and checks signed session cookies. The cookie carries the account id and
// the expiry, signed with HMAC-SHA256, so no session store is needed and a Lambda cold start
// keeps everyone signed in.
type Sessions struct {
	key    []byte
	path   string
	secure bool
}

// Session is a verified sign-in. The account in it is the only one its holder may see.
type Session struct {
	Account string
	// Issued is when the sign-in happened; a session issued before the account's "sessions
	// valid after" time (EndSessions) is over.
	Issued  time.Time
	Expires time.Time
	// Via says how the session was signed in (ViaUltraCart, ViaLink; empty for a cookie issued
	// before it was recorded), for the audit log.
	Via string
	// token is the cookie value, from which the CSRF token is derived.
	token string
}

// How a session was signed in.
const (
	ViaUltraCart = "ultracart"
	ViaLink      = "link"
)

// ShortID names the session in the audit log without revealing anything that would let
// someone else use it: a hash of the cookie, not the cookie.
func (s Session) ShortID() string {
	if s.token == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("cartrelay console session id\n" + s.token))
	return base64.RawURLEncoding.EncodeToString(sum[:6])
}

type claims struct {
	Account string `json:"a"`
	Expires int64  `json:"e"`
	// Nonce makes every sign-in's cookie, and so its CSRF token, different.
	Nonce string `json:"n"`
	// Issued is the sign-in's time in Unix nanoseconds; a cookie without it was issued
	// SessionTTL before it expires.
	Issued int64 `json:"i,omitempty"`
	// Via is how the session was signed in.
	Via string `json:"m,omitempty"`
}

// NewSessions checks key and scopes the cookie to the console under publicBaseURL, Secure
// unless the base URL is plain-http loopback (as the OAuth cookie).
func NewSessions(key, publicBaseURL string) (*Sessions, error) {
	if len(key) < MinKeyBytes {
		return nil, &KeyError{Len: len(key)}
	}
	s := &Sessions{key: []byte(key), path: "/console/", secure: oauth.CookieSettingsFor(publicBaseURL).Secure}
	if u, err := url.Parse(publicBaseURL); err == nil {
		s.path = strings.TrimRight(u.Path, "/") + "/console/"
	}
	return s, nil
}

// Issue starts a session for account, valid for SessionTTL from now.
func (s *Sessions) Issue(account string, now time.Time) (Session, error) {
	return s.IssueVia(account, "", now)
}

// IssueVia is Issue for a session signed in by via (ViaUltraCart, ViaLink).
func (s *Sessions) IssueVia(account, via string, now time.Time) (Session, error) {
	nonce, err := oauth.RandomToken(16)
	if err != nil {
		return Session{}, err
	}
	exp := now.Add(SessionTTL).Truncate(time.Second)
	payload, err := json.Marshal(claims{Account: account, Expires: exp.Unix(), Nonce: nonce, Issued: now.UnixNano(), Via: via})
	if err != nil {
		return Session{}, fmt.Errorf("encode session: %w", err)
	}
	p := base64.RawURLEncoding.EncodeToString(payload)
	return Session{Account: account, Issued: time.Unix(0, now.UnixNano()).UTC(), Expires: exp, Via: via, token: p + "." + s.mac(sessionLabel, p)}, nil
}

// SetCookie is the Set-Cookie value handing sess to the browser until it expires.
func (s *Sessions) SetCookie(sess Session, now time.Time) string {
	return s.cookie(sess.token, max(int(sess.Expires.Sub(now)/time.Second), 1))
}

// ClearCookie is the Set-Cookie value removing the session.
func (s *Sessions) ClearCookie() string { return s.cookie("", -1) }

func (s *Sessions) cookie(value string, maxAge int) string {
	c := http.Cookie{Name: CookieName, Value: value, Path: s.path, MaxAge: maxAge, HttpOnly: true,
		Secure: s.secure, SameSite: http.SameSiteLaxMode}
	return c.String()
}

// FromRequest finds a valid session among a request's cookies (API Gateway's list, and a
// cookie header for other front ends). A browser may hold stale ones too, so every cookie of
// the name is tried.
func (s *Sessions) FromRequest(cookies []string, cookieHeader string, now time.Time) (Session, error) {
	all := append([]string(nil), cookies...)
	if cookieHeader != "" {
		all = append(all, strings.Split(cookieHeader, ";")...)
	}
	for _, c := range all {
		name, value, ok := strings.Cut(strings.TrimSpace(c), "=")
		if !ok || name != CookieName || value == "" {
			continue
		}
		if sess, err := s.verify(value, now); err == nil {
			return sess, nil
		}
	}
	return Session{}, ErrNoSession
}

func (s *Sessions) verify(token string, now time.Time) (Session, error) {
	p, sig, ok := strings.Cut(token, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(s.mac(sessionLabel, p))) {
		return Session{}, ErrNoSession
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return Session{}, ErrNoSession
	}
	var c claims
	if err := json.Unmarshal(raw, &c); err != nil || accounts.ValidateID(c.Account) != nil {
		return Session{}, ErrNoSession
	}
	exp := time.Unix(c.Expires, 0).UTC()
	if !now.Before(exp) {
		return Session{}, ErrNoSession
	}
	issued := exp.Add(-SessionTTL)
	if c.Issued != 0 {
		issued = time.Unix(0, c.Issued).UTC()
	}
	return Session{Account: c.Account, Issued: issued, Expires: exp, Via: c.Via, token: token}, nil
}

// CSRFToken is the token a form of sess must post back: an HMAC of the session cookie, so
// another site, which can make the browser post but cannot read the page, cannot supply it.
func (s *Sessions) CSRFToken(sess Session) string { return s.mac(csrfLabel, sess.token) }

// CheckCSRF reports whether token is sess's CSRF token.
func (s *Sessions) CheckCSRF(sess Session, token string) bool {
	return sess.token != "" && token != "" && hmac.Equal([]byte(token), []byte(s.CSRFToken(sess)))
}

func (s *Sessions) mac(label, msg string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(label))
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
