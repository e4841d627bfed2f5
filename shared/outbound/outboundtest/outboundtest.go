// Package outboundtest sets up the redirect attack that shared/outbound defends against, for
// the tests of every API client that sends credentials.
package outboundtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Request is what the other host received.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   string
}

// Trap is an API endpoint that answers every request with a redirect to another host, which
// records whatever reaches it: what a compromised proxy or a mistyped base URL could do.
type Trap struct {
	// URL is the base URL to configure in the client under test.
	URL string

	mu  sync.Mutex
	got []Request
}

// NewTrap starts the two servers; status is the redirect's (307 and 308 re-send the body).
// The other host is "localhost" on its own port, while URL is 127.0.0.1.
func NewTrap(t testing.TB, status int) *Trap {
	t.Helper()
	tr := &Trap{}
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		tr.mu.Lock()
		tr.got = append(tr.got, Request{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: string(b)})
		tr.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	}))
	t.Cleanup(elsewhere.Close)
	other := strings.Replace(elsewhere.URL, "127.0.0.1", "localhost", 1)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other+r.URL.RequestURI(), status)
	}))
	t.Cleanup(origin.Close)
	tr.URL = origin.URL
	return tr
}

// Reached lists the requests that reached the other host.
func (tr *Trap) Reached() []Request {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]Request(nil), tr.got...)
}

// AssertUntouched fails t if anything reached the other host, showing what it received.
func (tr *Trap) AssertUntouched(t testing.TB) {
	t.Helper()
	for _, r := range tr.Reached() {
		t.Errorf("the redirect was followed to another host: %s %s with headers %v and body %q", r.Method, r.Path, r.Header, r.Body)
	}
}
