package sitehosts

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestList(t *testing.T) {
	l, err := Parse(" Shop.Example.com, example.org. \n 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://shop.example.com/p/1?x=y", true},
		{"http://SHOP.example.com:8443/", true},
		{"https://www.example.org/", true},
		{"https://example.org./", true},
		{"https://a.b.example.org/", true},
		{"http://127.0.0.1:8080/x", true},
		{"https://example.com/", false},          // the parent of a listed host
		{"https://evilexample.org/", false},      // not a subdomain
		{"https://example.org.evil.com/", false}, // the listed name as a prefix
		{"https://shop.example.com@evil.com/", false},
		{"https://user@shop.example.com/", false}, // credentials in a page URL
		{"javascript:alert(1)", false},
		{"//shop.example.com/x", false},
		{"/relative", false},
		{"ftp://shop.example.com/", false},
	} {
		err := l.URL(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("URL(%q) = %v, want allowed=%v", tc.url, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrNotAllowed) {
			t.Errorf("URL(%q): untyped %v", tc.url, err)
		}
	}
}

func TestUnsetAllowsNothingAndSaysWhatToDo(t *testing.T) {
	l, err := Parse("")
	if err != nil || !l.Empty() {
		t.Fatalf("empty list: %v %v", l, err)
	}
	err = l.URL("https://www.shop.example.com/")
	if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "lists no allowed_domains yet") || !strings.Contains(err.Error(), `"example.com"`) {
		t.Fatalf("unset: %v", err)
	}
	all, _ := Parse("*")
	if all.URL("https://anything.example/") != nil {
		t.Fatal(`"*" refused a URL`)
	}
}

func TestParseRefusesWhatIsNotAHost(t *testing.T) {
	for _, bad := range []string{"https://example.com", "example.com/shop", "example.com:443", "*.example.com", "exa_mple.com", "-x.com", "a..b"} {
		if _, err := Parse("ok.example.com, " + bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("Parse(%q) = %v, want an error naming it", bad, err)
		}
	}
}

func FuzzURL(f *testing.F) {
	f.Add("example.com, *.x", "https://www.example.com/a")
	f.Add("*", "http://[::1]:80/")
	f.Add("xn--bcher-kva.example", "https://XN--BCHER-KVA.example./%zz")
	f.Fuzz(func(t *testing.T, list, raw string) {
		l, err := Parse(list)
		if err != nil {
			return
		}
		if err := l.URL(raw); err != nil {
			var ne *NotAllowedError
			if !errors.As(err, &ne) {
				t.Fatalf("untyped %v", err)
			}
			return
		}
		u, err := url.Parse(raw)
		if err != nil || !l.Host(u.Hostname()) {
			t.Fatalf("%q allowed by %q but its host %q is not", raw, list, u.Hostname())
		}
	})
}
