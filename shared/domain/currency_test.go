package domain

import (
	"errors"
	"testing"
)

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
		if err != nil {
			return
		}
		if !ValidCurrency(c) || !KnownCurrency(c) {
			t.Fatalf("ParseCurrency(%q) accepted %q, which is not a well-formed known code", s, c)
		}
	})
}
