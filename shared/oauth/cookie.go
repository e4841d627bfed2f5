package oauth

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// CookieName names the cookie carrying the browser's nonce. A "__Host-" prefix would need
// Path=/, and the cookie is deliberately kept to the OAuth routes.
const CookieName = "cartrelay_oauth"

// CookieSettings say how the nonce cookie is scoped, derived from the public base URL.
type CookieSettings struct {
	// Path is the base URL's path plus /oauth/, so the cookie goes only to the callback.
	Path string
	// Secure is false only for a plain-http loopback base URL (`cartrelay serve` on
	// http://127.0.0.1), where a browser would drop a Secure cookie set over http. Anywhere
	// else the cookie is Secure, so an http deployment fails closed (no cookie, no connect).
	Secure bool
}

// CookieSettingsFor derives the cookie's scope from PUBLIC_BASE_URL.
func CookieSettingsFor(publicBaseURL string) CookieSettings {
	cs := CookieSettings{Path: "/oauth/", Secure: true}
	u, err := url.Parse(publicBaseURL)
	if err != nil {
		return cs
	}
	cs.Path = strings.TrimRight(u.Path, "/") + "/oauth/"
	if u.Scheme == "http" {
		host := u.Hostname()
		if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
			cs.Secure = false
		}
	}
	return cs
}

// SetCookie is the Set-Cookie value that hands the browser nonce for StateTTL. SameSite=Lax
// still sends it on the top-level GET redirect back from UltraCart.
func (cs CookieSettings) SetCookie(nonce string) string {
	return cs.cookie(nonce, int(StateTTL/time.Second))
}

// ClearCookie is the Set-Cookie value that removes the nonce once the flow is over.
func (cs CookieSettings) ClearCookie() string { return cs.cookie("", -1) }

func (cs CookieSettings) cookie(value string, maxAge int) string {
	c := http.Cookie{Name: CookieName, Value: value, Path: cs.Path, MaxAge: maxAge, HttpOnly: true,
		Secure: cs.Secure, SameSite: http.SameSiteLaxMode}
	return c.String()
}

// NonceFrom finds the nonce among a request's cookies: API Gateway's payload 2.0 lists them
// apart ("name=value" each); a "cookie" header is read as well for other front ends. The cookie
// has one name and one path, so a browser holds at most one; the first non-empty one is taken.
func NonceFrom(cookies []string, cookieHeader string) string {
	all := append([]string(nil), cookies...)
	if cookieHeader != "" {
		all = append(all, strings.Split(cookieHeader, ";")...)
	}
	for _, c := range all {
		name, value, ok := strings.Cut(strings.TrimSpace(c), "=")
		if ok && name == CookieName && value != "" {
			return value
		}
	}
	return ""
}
