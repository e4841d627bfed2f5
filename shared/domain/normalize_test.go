package domain

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseMoney(t *testing.T) {
	tests := []struct {
		in, cur string
		minor   int64
		wantCur string
		err     string // part of the error; "" for success
	}{
		{"19.99", "USD", 1999, "USD", ""},
		{"19.9", "usd", 1990, "USD", ""},
		{"19", " USD ", 1900, "USD", ""},
		{"19.990", "USD", 1999, "USD", ""},
		{"19.99000000", "USD", 1999, "USD", ""},
		{"0.01", "USD", 1, "USD", ""},
		{".5", "USD", 50, "USD", ""},
		{"5.", "USD", 500, "USD", ""},
		{"-12.50", "USD", -1250, "USD", ""},
		{"+3", "USD", 300, "USD", ""},
		{"-0.00", "USD", 0, "USD", ""},
		{" 7.25 ", "EUR", 725, "EUR", ""},
		{"1.999e1", "USD", 1999, "USD", ""},
		{"1999E-2", "USD", 1999, "USD", ""},
		{"1.5e+2", "USD", 15000, "USD", ""},
		{"0e5", "USD", 0, "USD", ""},
		{"1299", "JPY", 1299, "JPY", ""},
		{"1299.0", "JPY", 1299, "JPY", ""},
		{"1.250", "KWD", 1250, "KWD", ""},
		{"92233720368547758.07", "USD", 1<<63 - 1, "USD", ""},
		{"19.995", "USD", 0, "", "more decimal places than USD allows (2)"},
		{"1299.5", "JPY", 0, "", "more decimal places than JPY allows (0)"},
		{"1.2505", "KWD", 0, "", "more decimal places than KWD allows (3)"},
		{"92233720368547758.08", "USD", 0, "", "too large"},
		{"1e30", "USD", 0, "", "too large"},
		{"1e999", "USD", 0, "", "malformed exponent"},
		{"1e", "USD", 0, "", "malformed exponent"},
		{"", "USD", 0, "", "is empty"},
		{"  ", "USD", 0, "", "is empty"},
		{".", "USD", 0, "", "no digits"},
		{"-", "USD", 0, "", "no digits"},
		{"1,299.00", "USD", 0, "", "not a decimal number"},
		{"$5", "USD", 0, "", "not a decimal number"},
		{"1.2.3", "USD", 0, "", "more than one decimal point"},
		{"NaN", "USD", 0, "", "not a decimal number"},
		{"0x10", "USD", 0, "", "not a decimal number"},
		{"5", "", 0, "", "has no currency code"},
		{"5", "US", 0, "", "not a three-letter ISO 4217 code"},
		{"5", "U$D", 0, "", "not a three-letter ISO 4217 code"},
	}
	for _, tt := range tests {
		t.Run(tt.in+"_"+tt.cur, func(t *testing.T) {
			m, err := ParseMoney(tt.in, tt.cur)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				var me *MoneyError
				if !errors.As(err, &me) || !errors.Is(err, ErrInvalidMoney) {
					t.Errorf("err %T is not a *MoneyError wrapping ErrInvalidMoney", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if m.Minor != tt.minor || m.Currency != tt.wantCur {
				t.Errorf("got %d %s, want %d %s", m.Minor, m.Currency, tt.minor, tt.wantCur)
			}
		})
	}
}

func TestParseMoneyJSONNumber(t *testing.T) {
	var v struct{ N json.Number }
	if err := json.Unmarshal([]byte(`{"N": 129.90}`), &v); err != nil {
		t.Fatal(err)
	}
	m, err := ParseMoney(string(v.N), "USD")
	if err != nil || m != (Money{Minor: 12990, Currency: "USD"}) {
		t.Errorf("got %v, %v", m, err)
	}
}

func TestParseMoneyRound(t *testing.T) {
	tests := []struct {
		in    string
		cur   string
		minor int64
	}{
		{"9.205", "EUR", 920},  // half to even: down
		{"9.215", "EUR", 922},  // half to even: up
		{"9.2051", "EUR", 921}, // above half
		{"9.2049", "EUR", 920},
		{"-9.215", "EUR", -922},
		{"0.005", "EUR", 0},
		{"0.0051", "EUR", 1},
		{"5e-5", "EUR", 0},
		{"1299.5", "JPY", 1300},
		{"1298.5", "JPY", 1298},
		{"9.20", "EUR", 920},
	}
	for _, tt := range tests {
		m, err := ParseMoneyRound(tt.in, tt.cur)
		if err != nil || m.Minor != tt.minor || m.Currency != tt.cur {
			t.Errorf("ParseMoneyRound(%q, %s) = %v, %v; want %d", tt.in, tt.cur, m, err, tt.minor)
		}
	}
	if _, err := ParseMoneyRound("abc", "EUR"); !errors.Is(err, ErrInvalidMoney) {
		t.Errorf("rounding does not excuse a malformed amount: %v", err)
	}
}

func TestMoneyFromMinor(t *testing.T) {
	if m := MoneyFromMinor(1499, " usd"); m != (Money{Minor: 1499, Currency: "USD"}) {
		t.Errorf("got %+v", m)
	}
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"Jane.Doe@Example.COM", "jane.doe@example.com", ""},
		{"  jane@example.com\t\n", "jane@example.com", ""},
		{"Jane.Doe+Tag@GMail.com", "jane.doe+tag@gmail.com", ""}, // no provider rewriting
		{"ÉLODIE@exemple.fr", "élodie@exemple.fr", ""},
		{"a@b", "a@b", ""},
		{"", "", "is empty"},
		{"   ", "", "is empty"},
		{"jane.example.com", "", "has no @"},
		{"jane@@example.com", "", "more than one @"},
		{"a@b@c.com", "", "more than one @"},
		{"@example.com", "", "nothing before the @"},
		{"jane@", "", "nothing after the @"},
		{"jane doe@example.com", "", "space or control character"},
		{"Jane <jane@example.com>", "", "space or control character"},
		{"jane@exa\x00mple.com", "", "space or control character"},
		{"jane@ex\xffample.com", "", "not valid UTF-8"},
		{strings.Repeat("a", 250) + "@example.com", "", "longer than 254"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeEmail(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrInvalidEmail) {
					t.Fatalf("err = %v, want ErrInvalidEmail containing %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func FuzzParseMoney(f *testing.F) {
	for _, s := range []string{"19.99", "-0.5", "1e3", "1.999e1", "92233720368547758.07", "0.0051", "1e-400"} {
		f.Add(s, "USD")
	}
	f.Add("1299", "JPY")
	f.Fuzz(func(t *testing.T, s, cur string) {
		m, err := ParseMoney(s, cur)
		r, rerr := ParseMoneyRound(s, cur)
		if err != nil {
			if !errors.Is(err, ErrInvalidMoney) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		// An exact amount is its own rounding, and its decimal form reads back the same.
		if rerr != nil || r != m {
			t.Fatalf("ParseMoney %v but ParseMoneyRound %v, %v", m, r, rerr)
		}
		back, err := ParseMoney(m.Decimal(), m.Currency)
		if err != nil || back != m {
			t.Fatalf("%q → %v → %q → %v, %v", s, m, m.Decimal(), back, err)
		}
	})
}
