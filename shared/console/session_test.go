package console

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
)

func TestSessionKeyTooShort(t *testing.T) {
	for _, key := range []string{"", strings.Repeat("x", MinKeyBytes-1)} {
		var ke *KeyError
		if _, err := NewSessions(key, "https://hub.example.com"); !errors.As(err, &ke) {
			t.Errorf("key of %d bytes: %v", len(key), err)
		}
	}
}

func TestSessionCookieScope(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	cases := []struct{ base, path, secure string }{
		{"https://hub.example.com/prod/", "Path=/prod/console/", "Secure"},
		{"http://127.0.0.1:8080", "Path=/console/", ""},
		{"http://hub.example.com", "Path=/console/", "Secure"},
	}
	for _, c := range cases {
		s, err := NewSessions(strings.Repeat("k", 32), c.base)
		if err != nil {
			t.Fatal(err)
		}
		sess, err := s.Issue("acme", now)
		if err != nil {
			t.Fatal(err)
		}
		set := s.SetCookie(sess, now)
		if !strings.Contains(set, c.path) || strings.Contains(set, "Secure") != (c.secure != "") {
			t.Errorf("%s: %s", c.base, set)
		}
		nv, _, _ := strings.Cut(set, ";")
		got, err := s.FromRequest(nil, "other=1; "+nv, now.Add(SessionTTL-time.Second))
		if err != nil || got.Account != "acme" {
			t.Errorf("%s: read back %+v, %v", c.base, got, err)
		}
		if _, err := s.FromRequest([]string{nv}, "", now.Add(SessionTTL)); !errors.Is(err, ErrNoSession) {
			t.Errorf("%s: expired session accepted", c.base)
		}
		if !s.CheckCSRF(got, s.CSRFToken(sess)) || s.CheckCSRF(got, "") || s.CheckCSRF(Session{}, s.CSRFToken(Session{})) {
			t.Errorf("%s: CSRF check", c.base)
		}
	}
}

func TestParseFormOnlyTouchesConsoleFields(t *testing.T) {
	form := url.Values{"ontraport.base_url": {"https://evil.example"}, "ultracart.webhook_password": {"x"},
		"iterable.enabled": {"on"}, "thrivecart.api_key": {" k "}, "clear:thrivecart.secret": {"on"}}
	sub, err := parseForm(accounts.Account{}, form)
	if err != nil {
		t.Fatal(err)
	}
	p := string(sub.Patch)
	if strings.Contains(p, "evil") || strings.Contains(p, "ultracart") || !strings.Contains(p, `"enabled":true`) ||
		!strings.Contains(p, `"secret":null`) || !strings.Contains(p, `"api_key":"k"`) || sub.NewThriveCartKey != "k" {
		t.Errorf("patch %s, key %q", p, sub.NewThriveCartKey)
	}
	if strings.Contains(p, `"ontraport":{"api_key"`) {
		t.Errorf("an empty secret input was sent: %s", p)
	}
}

// A session cookie is read from whatever a browser (or anyone) sends: no input may panic the
// reader, and whatever verifies is exactly a token the key signed, for a valid account, not
// yet expired, issued no later than it expires.
func FuzzFromRequest(f *testing.F) {
	s, err := NewSessions(strings.Repeat("k", 32), "https://hub.example.com")
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	sess, err := s.Issue("acme", now)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(CookieName + "=" + sess.token)
	f.Add(CookieName + "=eyJhIjoiYWNtZSIsImUiOjk5OTk5OTk5OTksIm4iOiJ4IiwiaSI6MX0.sig")
	f.Add("a=1; " + CookieName + "=x.y; " + CookieName + "=")
	f.Fuzz(func(t *testing.T, header string) {
		got, err := s.FromRequest(nil, header, now)
		if err != nil {
			return
		}
		p, sig, ok := strings.Cut(got.token, ".")
		if !ok || sig != s.mac(sessionLabel, p) || !strings.Contains(header, got.token) ||
			accounts.ValidateID(got.Account) != nil || !now.Before(got.Expires) || got.Issued.After(got.Expires) {
			t.Fatalf("%q verified as %+v", header, got)
		}
	})
}
