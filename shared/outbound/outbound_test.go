package outbound_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/outbound"
	"github.com/cartrelay/cartrelay/shared/outbound/outboundtest"
)

func TestCheckBaseURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		ok   bool
		want string // part of the message
	}{
		{"https://api.ontraport.com/1", true, ""},
		{"https://api.eu.iterable.com", true, ""},
		{"http://127.0.0.1:8080", true, ""},
		{"http://127.5.6.7", true, ""},
		{"http://localhost:9000/api", true, ""},
		{"http://fake.localhost:9000", true, ""},
		{"http://[::1]:9000", true, ""},
		{"http://api.ontraport.com/1", false, "use https://api.ontraport.com/1"},
		{"http://10.0.0.5:8080", false, "unencrypted"},
		{"http://localhost.example.com", false, "unencrypted"},
		{"http://127.0.0.1.nip.io", false, "unencrypted"},
		{"ftp://api.example.com", false, "absolute https URL"},
		{"api.example.com", false, "absolute https URL"},
		{"https://user:pw@api.example.com", false, "user name or password"},
		{"", false, "absolute https URL"},
	} {
		err := outbound.CheckBaseURL(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("CheckBaseURL(%q) = %v, want ok=%v", tc.url, err, tc.ok)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckBaseURL(%q) = %q, want it to say %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("CheckBaseURL(%q) repeats the password: %q", tc.url, err)
		}
	}
}

// TestClientRefusesRedirectToAnotherHost is the attack: an endpoint redirects a request that
// carries an API key header (which Go keeps across hosts) and a body (which 307/308 re-send).
func TestClientRefusesRedirectToAnotherHost(t *testing.T) {
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		trap := outboundtest.NewTrap(t, status)
		for name, c := range map[string]*http.Client{
			"Client":            outbound.Client(5 * time.Second),
			"Guard(injected)":   outbound.Guard(&http.Client{Timeout: 5 * time.Second}, time.Second),
			"Guard(nil client)": outbound.Guard(nil, 5*time.Second),
		} {
			req, _ := http.NewRequest(http.MethodPost, trap.URL+"/api/users/update", strings.NewReader(`{"email":"a@example.com"}`))
			req.Header.Set("Api-Key", "key-that-must-not-leave")
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("%s, %d: the redirect was followed (status %d)", name, status, resp.StatusCode)
			}
			if !errors.Is(err, outbound.ErrRedirectRefused) {
				t.Errorf("%s, %d: error %v does not match ErrRedirectRefused", name, status, err)
			}
			if msg := err.Error(); !strings.Contains(msg, "check the configured base URL") {
				t.Errorf("%s, %d: message %q should say what to check", name, status, msg)
			}
		}
		trap.AssertUntouched(t)
	}
}

func TestClientFollowsRedirectOnTheSameHost(t *testing.T) {
	var seen string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusTemporaryRedirect)
			return
		}
		seen = r.Header.Get("Api-Key")
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/old", nil)
	req.Header.Set("Api-Key", "k")
	resp, err := outbound.Client(5 * time.Second).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || seen != "k" {
		t.Errorf("same-host redirect: status %d, key %q; want 200 with the key", resp.StatusCode, seen)
	}
}

func TestGuardKeepsTheInjectedClient(t *testing.T) {
	tr := &http.Transport{}
	in := &http.Client{Transport: tr, Timeout: 3 * time.Second}
	g := outbound.Guard(in, time.Minute)
	if g == in || g.Transport != tr || g.Timeout != 3*time.Second || g.CheckRedirect == nil {
		t.Errorf("Guard: %+v; want a copy with the same transport and timeout and the redirect policy", g)
	}
	if in.CheckRedirect != nil {
		t.Error("Guard changed the client it was given")
	}
}
