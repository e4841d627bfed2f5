// Package outbound holds the policy for cartrelay's own HTTP requests to vendor APIs (ONTRAPORT,
// Iterable, ThriveCart, UltraCart), which carry the merchant's credentials: an API key in a
// header, a bearer token, a client secret.
//
// Two rules keep those credentials from going anywhere but the vendor:
//
//   - A base URL must be https. Plain http is accepted only for a loopback host (a fake or a
//     proxy on the same machine), where nothing travels over a network.
//   - A redirect is followed only to the same scheme and host. Go's client drops the
//     Authorization header on a redirect to another host but keeps every other header (Api-Key,
//     x-ultracart-simple-key) and, for 307 and 308, re-sends the body; so a compromised or
//     misconfigured endpoint could otherwise hand the key to any host it names.
package outbound

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrRedirectRefused matches every *RedirectError.
var ErrRedirectRefused = errors.New("redirect refused")

// RedirectError is a redirect the client would not follow.
type RedirectError struct {
	From, To string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("the API answered with a redirect from %s to %s, which cartrelay does not follow because the request carries credentials "+
		"(only redirects within the same host and scheme are followed); check the configured base URL and use the vendor's API address itself",
		hostOf(e.From), hostOf(e.To))
}

// Is makes errors.Is(err, ErrRedirectRefused) true.
func (e *RedirectError) Is(target error) bool { return target == ErrRedirectRefused }

// hostOf shows where a URL points without its path and query, which may hold ids or keys.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "another address"
	}
	return u.Scheme + "://" + u.Host
}

// maxRedirects matches net/http's own limit.
const maxRedirects = 10

// CheckRedirect is an http.Client CheckRedirect that follows a redirect only to the scheme and
// host (port included) of the original request.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) == 0 {
		return nil
	}
	first := via[0].URL
	if req.URL.Scheme != first.Scheme || !strings.EqualFold(req.URL.Host, first.Host) {
		return &RedirectError{From: first.String(), To: req.URL.String()}
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	return nil
}

// Client returns a client for requests that carry credentials: it times out after timeout and
// follows redirects only within the same host.
func Client(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, CheckRedirect: CheckRedirect}
}

// Guard returns c with the redirect policy applied: a copy of c (sharing its transport), or
// Client(timeout) when c is nil. API clients call it on whatever client they were given, so an
// injected client cannot bring back cross-host redirects.
func Guard(c *http.Client, timeout time.Duration) *http.Client {
	if c == nil {
		return Client(timeout)
	}
	g := *c
	g.CheckRedirect = CheckRedirect
	return &g
}

// ErrInsecureURL matches the errors of CheckBaseURL.
var ErrInsecureURL = errors.New("the URL is not https")

// CheckBaseURL accepts an absolute https URL, or an http URL whose host is loopback (localhost,
// 127.0.0.0/8, ::1). The error says what to do; callers prefix the setting's name.
func CheckBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("must be an absolute https URL such as https://api.example.com, got %q", raw)
	}
	if u.User != nil {
		return fmt.Errorf("must not carry a user name or password (%s://…@%s); credentials go in their own settings", u.Scheme, u.Hostname())
	}
	if u.Scheme == "http" && !Loopback(u.Hostname()) {
		return fmt.Errorf("%w: %q would send the API key unencrypted; use https://%s (plain http is accepted only for a test server on localhost or 127.0.0.1)",
			ErrInsecureURL, raw, u.Host+u.EscapedPath())
	}
	return nil
}

// Loopback reports whether host names this machine: "localhost" (and names under it), or a
// loopback IP address.
func Loopback(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
