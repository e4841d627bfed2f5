package domain

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/text/currency"
)

// TestParseCurrencyAsXText checks isoCurrencies against golang.org/x/text/currency, which
// ParseCurrency used to call: every three-letter code, and every case of a few.
func TestParseCurrencyAsXText(t *testing.T) {
	var codes []string
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			for c := 'A'; c <= 'Z'; c++ {
				codes = append(codes, string([]rune{a, b, c}))
			}
		}
	}
	codes = append(codes, "usd", "Eur", "gbP", " chf", "x", "ſek", "USDX", "")
	known := 0
	for _, code := range codes {
		got, err := ParseCurrency(code)
		if want := xtextParseCurrency(code); got != want {
			t.Errorf("ParseCurrency(%q) = %q, %v; x/text gives %q", code, got, err, want)
		}
		if err == nil {
			known++
		}
	}
	if known < 290 {
		t.Errorf("%d codes known, want the whole ISO 4217 list", known)
	}
}

// xtextParseCurrency is ParseCurrency as it was with x/text.
func xtextParseCurrency(code string) string {
	c := strings.ToUpper(strings.TrimSpace(code))
	if u, err := currency.ParseISO(c); err != nil || u == (currency.Unit{}) {
		return ""
	}
	return c
}

func TestParseCurrency(t *testing.T) {
	for _, c := range []struct {
		in, want string
		known    bool
	}{
		{"USD", "USD", true},
		{"EUR", "EUR", true},
		{"JPY", "JPY", true},
		{"CLF", "CLF", true},
		{" gbp ", "GBP", false}, // forgiven by ParseCurrency, not by KnownCurrency
		{"XYZ", "", false},
		{"ABC", "", false},
		{"XXX", "", false}, // the standard's "no currency"
		{"US", "", false},
		{"USDD", "", false},
		{"", "", false},
		{"12€", "", false},
	} {
		got, err := ParseCurrency(c.in)
		if got != c.want || (err == nil) != (c.want != "") {
			t.Errorf("ParseCurrency(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
		if err != nil && !errors.Is(err, ErrUnknownCurrency) {
			t.Errorf("ParseCurrency(%q): %v does not wrap ErrUnknownCurrency", c.in, err)
		}
		if KnownCurrency(c.in) != c.known {
			t.Errorf("KnownCurrency(%q) = %v, want %v", c.in, !c.known, c.known)
		}
	}
}

func FuzzParseCurrency(f *testing.F) {
	for _, s := range []string{"USD", "xyz", "", "XXX", "\x00\x00\x00", "ÉUR"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCurrency(s)
		if want := xtextParseCurrency(s); c != want {
			t.Fatalf("ParseCurrency(%q) = %q, %v; x/text gives %q", s, c, err, want)
		}
		if err != nil {
			return
		}
		if !ValidCurrency(c) || !KnownCurrency(c) {
			t.Fatalf("ParseCurrency(%q) accepted %q, which is not a well-formed known code", s, c)
		}
	})
}
