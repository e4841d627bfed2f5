// Package sitehosts reads an account's allowed_domains, the merchant's own web hosts, and
// tells whether a URL is on one of them. Page views are accepted only from pages on them and
// review links redirect only to them, so nobody can use cartrelay to record visits to, or send
// shoppers to, somebody else's site.
//
// An entry is a host ("shop.example.com") or a domain ("example.com"), which also covers every
// subdomain ("www.example.com"). "*" allows any host: a deliberate choice, never a default. An
// empty list allows nothing.
package sitehosts

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Key is the account-file key the list is read from.
const Key = "allowed_domains"

// Any is the entry that allows every host.
const Any = "*"

// ErrNotAllowed matches every *NotAllowedError.
var ErrNotAllowed = errors.New("host is not among the account's allowed_domains")

// NotAllowedError says which URL a list refused and why.
type NotAllowedError struct {
	URL string
	// Host is the URL's host, "" when the URL is not an absolute http(s) URL.
	Host string
	// Unset is true when the account lists no domains at all.
	Unset bool
}

func (e *NotAllowedError) Error() string {
	switch {
	case e.Host == "":
		return fmt.Sprintf("%q is not an absolute http(s) URL", clip(e.URL))
	case e.Unset:
		return fmt.Sprintf("%s is not allowed: the account lists no %s yet; add the store's own domains, such as \"%s\"", e.Host, Key, suggest(e.Host))
	}
	return fmt.Sprintf("%s is not among the account's %s; add it (or its domain) if it is the store's own", e.Host, Key)
}

// Is makes errors.Is(err, ErrNotAllowed) true.
func (e *NotAllowedError) Is(target error) bool { return target == ErrNotAllowed }

// List is a parsed allowed_domains.
type List struct {
	any   bool
	hosts []string
}

// Parse reads allowed_domains: entries separated by commas or spaces. It refuses an entry that
// is not a host name (a URL, a path, a port, a wildcard other than "*"), naming it, so that a
// typo does not silently allow nothing.
func Parse(s string) (List, error) {
	var l List
	var bad []string
	for _, e := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		e = strings.TrimSuffix(strings.ToLower(e), ".")
		switch {
		case e == Any:
			l.any = true
		case validHost(e):
			l.hosts = append(l.hosts, e)
		default:
			bad = append(bad, e)
		}
	}
	if len(bad) > 0 {
		return List{}, fmt.Errorf("%s: %q is not a host name; list hosts or domains such as \"shop.example.com, example.com\" (no scheme, path or port), or \"*\" for any", Key, strings.Join(bad, ", "))
	}
	return l, nil
}

// Empty reports whether the list allows nothing.
func (l List) Empty() bool { return !l.any && len(l.hosts) == 0 }

// Host reports whether host (without a port) is allowed.
func (l List) Host(host string) bool {
	if l.any {
		return true
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, h := range l.hosts {
		if host == h || strings.HasSuffix(host, "."+h) {
			return true
		}
	}
	return false
}

// URL checks that raw is an absolute http(s) URL on an allowed host; the error is a
// *NotAllowedError.
func (l List) URL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || u.User != nil {
		return &NotAllowedError{URL: raw}
	}
	if !l.Host(u.Hostname()) {
		return &NotAllowedError{URL: raw, Host: u.Hostname(), Unset: l.Empty()}
	}
	return nil
}

// validHost accepts DNS names (letters, digits, dashes, dots; labels of 1-63 characters) and
// IP addresses.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}

// suggest is the registrable-looking part of host, for an example in a message.
func suggest(host string) string {
	parts := strings.Split(host, ".")
	if len(parts) > 2 {
		return strings.Join(parts[len(parts)-2:], ".")
	}
	return host
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
