package domain

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
)

func usd(minor int64) Money { return Money{Minor: minor, Currency: "USD"} }

func TestMinorUnits(t *testing.T) {
	cases := map[string]int{
		"USD": 2, "EUR": 2, "GBP": 2, "": 2, "XYZ": 2, "usd": 2,
		"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0, "XAF": 0, "XOF": 0, "jpy": 0,
		"BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "IQD": 3, "LYD": 3,
		"CLF": 4,
	}
	for code, want := range cases {
		if got := MinorUnits(code); got != want {
			t.Errorf("MinorUnits(%q) = %d, want %d", code, got, want)
		}
	}
}

func TestMoneyArithmetic(t *testing.T) {
	eur := func(minor int64) Money { return Money{Minor: minor, Currency: "EUR"} }
	type op func(a, b Money) (Money, error)
	add := func(a, b Money) (Money, error) { return a.Add(b) }
	sub := func(a, b Money) (Money, error) { return a.Sub(b) }
	cases := []struct {
		name    string
		op      op
		a, b    Money
		want    Money
		wantErr error
	}{
		{"add", add, usd(12990), usd(10), usd(13000), nil},
		{"add negative", add, usd(100), usd(-250), usd(-150), nil},
		{"zero without currency adopts", add, Money{}, usd(5), usd(5), nil},
		{"adopts on the right too", add, eur(5), Money{}, eur(5), nil},
		{"both without currency", add, Money{}, Money{}, Money{}, nil},
		{"mismatch", add, usd(1), eur(1), Money{}, ErrCurrencyMismatch},
		{"non-zero without currency does not adopt", add, Money{Minor: 1}, usd(1), Money{}, ErrCurrencyMismatch},
		{"overflow", add, usd(math.MaxInt64), usd(1), Money{}, ErrMoneyOverflow},
		{"negative overflow", add, usd(math.MinInt64), usd(-1), Money{}, ErrMoneyOverflow},
		{"max plus min", add, usd(math.MaxInt64), usd(math.MinInt64), usd(-1), nil},
		{"sub", sub, usd(12990), usd(990), usd(12000), nil},
		{"sub below zero", sub, usd(1), usd(2), usd(-1), nil},
		{"sub from zero without currency", sub, Money{}, usd(2), usd(-2), nil},
		{"sub overflow", sub, usd(math.MinInt64), usd(1), Money{}, ErrMoneyOverflow},
		{"sub overflow up", sub, usd(math.MaxInt64), usd(-1), Money{}, ErrMoneyOverflow},
		{"sub mismatch", sub, usd(1), eur(1), Money{}, ErrCurrencyMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.op(c.a, c.b)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if got != c.want {
				t.Fatalf("got %#v, want %#v", got, c.want)
			}
		})
	}
}

func TestMoneyMulDivNeg(t *testing.T) {
	cases := []struct {
		name    string
		f       func() (Money, error)
		want    Money
		wantErr error
	}{
		{"mul", func() (Money, error) { return usd(1299).Mul(3) }, usd(3897), nil},
		{"mul negative", func() (Money, error) { return usd(1299).Mul(-2) }, usd(-2598), nil},
		{"mul zero", func() (Money, error) { return usd(math.MaxInt64).Mul(0) }, usd(0), nil},
		{"mul overflow", func() (Money, error) { return usd(math.MaxInt64 / 2).Mul(3) }, Money{}, ErrMoneyOverflow},
		{"mul to min", func() (Money, error) { return usd(math.MinInt64 / 2).Mul(2) }, usd(math.MinInt64), nil},
		{"mul min by -1", func() (Money, error) { return usd(math.MinInt64).Mul(-1) }, Money{}, ErrMoneyOverflow},
		{"mul -1 by min", func() (Money, error) { return usd(-1).Mul(math.MinInt64) }, Money{}, ErrMoneyOverflow},
		{"div exact", func() (Money, error) { return usd(300).Div(3) }, usd(100), nil},
		{"div rounds down", func() (Money, error) { return usd(1001).Div(3) }, usd(334), nil}, // 333.67 → 334
		{"div rounds up", func() (Money, error) { return usd(1000).Div(3) }, usd(333), nil},   // 333.33 → 333
		{"half to even down", func() (Money, error) { return usd(5).Div(2) }, usd(2), nil},    // 2.5 → 2
		{"half to even up", func() (Money, error) { return usd(7).Div(2) }, usd(4), nil},      // 3.5 → 4
		{"negative half to even", func() (Money, error) { return usd(-5).Div(2) }, usd(-2), nil},
		{"negative half up", func() (Money, error) { return usd(-7).Div(2) }, usd(-4), nil},
		{"negative divisor", func() (Money, error) { return usd(7).Div(-2) }, usd(-4), nil},
		{"div min by 1", func() (Money, error) { return usd(math.MinInt64).Div(1) }, usd(math.MinInt64), nil},
		{"div min by -1", func() (Money, error) { return usd(math.MinInt64).Div(-1) }, Money{}, ErrMoneyOverflow},
		{"div by min", func() (Money, error) { return usd(math.MaxInt64).Div(math.MinInt64) }, usd(-1), nil},
		{"div by zero", func() (Money, error) { return usd(1).Div(0) }, Money{}, ErrMoneyDivByZero},
		{"neg", func() (Money, error) { return usd(5).Neg() }, usd(-5), nil},
		{"neg min", func() (Money, error) { return usd(math.MinInt64).Neg() }, Money{}, ErrMoneyOverflow},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.f()
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if got != c.want {
				t.Fatalf("got %#v, want %#v", got, c.want)
			}
		})
	}
}

func TestMoneyCmp(t *testing.T) {
	cases := []struct {
		a, b    Money
		want    int
		wantErr error
	}{
		{usd(1), usd(2), -1, nil},
		{usd(2), usd(2), 0, nil},
		{usd(3), usd(2), 1, nil},
		{Money{}, usd(-1), 1, nil},
		{usd(1), Money{Minor: 1, Currency: "EUR"}, 0, ErrCurrencyMismatch},
	}
	for _, c := range cases {
		got, err := c.a.Cmp(c.b)
		if !errors.Is(err, c.wantErr) || got != c.want {
			t.Errorf("%v.Cmp(%v) = %d, %v; want %d, %v", c.a, c.b, got, err, c.want, c.wantErr)
		}
	}
	if !usd(0).IsZero() || usd(1).IsZero() || !(Money{}).IsZero() {
		t.Error("IsZero")
	}
}

func TestMoneyFormat(t *testing.T) {
	cases := []struct {
		m       Money
		decimal string
		str     string
	}{
		{usd(12990), "129.90", "129.90 USD"},
		{usd(5), "0.05", "0.05 USD"},
		{usd(-5), "-0.05", "-0.05 USD"},
		{usd(0), "0.00", "0.00 USD"},
		{usd(-12990), "-129.90", "-129.90 USD"},
		{Money{}, "0.00", "0.00"},
		{Money{Minor: 1299, Currency: "JPY"}, "1299", "1299 JPY"},
		{Money{Minor: -7, Currency: "JPY"}, "-7", "-7 JPY"},
		{Money{Minor: 1250, Currency: "KWD"}, "1.250", "1.250 KWD"},
		{Money{Minor: 1, Currency: "KWD"}, "0.001", "0.001 KWD"},
		{usd(math.MinInt64), "-92233720368547758.08", "-92233720368547758.08 USD"},
		{usd(math.MaxInt64), "92233720368547758.07", "92233720368547758.07 USD"},
	}
	for _, c := range cases {
		if got := c.m.Decimal(); got != c.decimal {
			t.Errorf("%#v.Decimal() = %q, want %q", c.m, got, c.decimal)
		}
		if got := c.m.String(); got != c.str {
			t.Errorf("%#v.String() = %q, want %q", c.m, got, c.str)
		}
	}
}

func TestMoneyJSON(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    Money
		wantErr bool
		out     string // canonical form written back; "" when in already is
	}{
		{name: "string amount", in: `{"amount":"129.90","currency":"USD"}`, want: usd(12990)},
		{name: "fewer decimals", in: `{"amount":"129.9","currency":"USD"}`, want: usd(12990), out: `{"amount":"129.90","currency":"USD"}`},
		{name: "integer", in: `{"amount":"129","currency":"USD"}`, want: usd(12900), out: `{"amount":"129.00","currency":"USD"}`},
		{name: "number amount", in: `{"amount":129.90,"currency":"USD"}`, want: usd(12990), out: `{"amount":"129.90","currency":"USD"}`},
		{name: "negative", in: `{"amount":"-0.05","currency":"USD"}`, want: usd(-5)},
		{name: "jpy", in: `{"amount":"1299","currency":"JPY"}`, want: Money{Minor: 1299, Currency: "JPY"}},
		{name: "jpy trailing zeros", in: `{"amount":"1299.00","currency":"JPY"}`, want: Money{Minor: 1299, Currency: "JPY"}, out: `{"amount":"1299","currency":"JPY"}`},
		{name: "kwd", in: `{"amount":"1.25","currency":"KWD"}`, want: Money{Minor: 1250, Currency: "KWD"}, out: `{"amount":"1.250","currency":"KWD"}`},
		{name: "zero default", in: `{"amount":"0.00","currency":""}`, want: Money{}},
		{name: "empty object", in: `{}`, want: Money{}, out: `{"amount":"0.00","currency":""}`},
		{name: "extremes", in: `{"amount":"-92233720368547758.08","currency":"USD"}`, want: usd(math.MinInt64)},
		{name: "more decimals than the currency has", in: `{"amount":"1.005","currency":"USD"}`, wantErr: true},
		{name: "jpy decimals", in: `{"amount":"1.5","currency":"JPY"}`, wantErr: true},
		{name: "overflow", in: `{"amount":"92233720368547758.08","currency":"USD"}`, wantErr: true},
		{name: "huge", in: `{"amount":"1e30","currency":"USD"}`, wantErr: true},
		{name: "exponent", in: `{"amount":1e2,"currency":"USD"}`, wantErr: true},
		{name: "bad currency", in: `{"amount":"1.00","currency":"usd"}`, wantErr: true},
		{name: "long currency", in: `{"amount":"1.00","currency":"USDT"}`, wantErr: true},
		{name: "garbage", in: `{"amount":"12,90","currency":"USD"}`, wantErr: true},
		{name: "dot only", in: `{"amount":".5","currency":"USD"}`, wantErr: true},
		{name: "trailing dot", in: `{"amount":"5.","currency":"USD"}`, wantErr: true},
		{name: "plus", in: `{"amount":"+5","currency":"USD"}`, wantErr: true},
		{name: "bool amount", in: `{"amount":true,"currency":"USD"}`, wantErr: true},
		{name: "not an object", in: `"129.90"`, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got Money
			err := json.Unmarshal([]byte(c.in), &got)
			if c.wantErr {
				if err == nil {
					t.Fatalf("decoded %#v, want an error", got)
				}
				if !errors.Is(err, ErrMoneyJSON) {
					t.Fatalf("err = %v, want ErrMoneyJSON", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got %#v, want %#v", got, c.want)
			}
			out, err := json.Marshal(got)
			if err != nil {
				t.Fatal(err)
			}
			want := c.out
			if want == "" {
				want = c.in
			}
			if string(out) != want {
				t.Fatalf("marshal = %s, want %s", out, want)
			}
		})
	}
}

func TestMoneyJSONNullAndNesting(t *testing.T) {
	m := usd(5)
	if err := json.Unmarshal([]byte(`null`), &m); err != nil || m != usd(5) {
		t.Fatalf("null changed the value: %v %v", m, err)
	}
	var li LineItem
	if err := json.Unmarshal([]byte(`{"sku":"A","unit_price":{"amount":"1.50","currency":"EUR"}}`), &li); err != nil {
		t.Fatal(err)
	}
	if li.UnitPrice != (Money{Minor: 150, Currency: "EUR"}) {
		t.Fatalf("nested: %#v", li.UnitPrice)
	}
	if _, err := json.Marshal(Money{Minor: 1, Currency: "us dollars"}); !errors.Is(err, ErrMoneyJSON) {
		t.Fatalf("marshal of an invalid currency: %v", err)
	}
}

// FuzzMoneyJSONRoundTrip checks that every representable amount in every currency shape comes
// back from its JSON form exactly.
func FuzzMoneyJSONRoundTrip(f *testing.F) {
	for _, s := range []struct {
		minor int64
		cur   string
	}{{0, ""}, {12990, "USD"}, {-5, "USD"}, {1299, "JPY"}, {1, "KWD"}, {math.MaxInt64, "USD"},
		{math.MinInt64, "BHD"}, {math.MinInt64, "VND"}, {42, "CLF"}} {
		f.Add(s.minor, s.cur)
	}
	f.Fuzz(func(t *testing.T, minor int64, cur string) {
		if !ValidCurrency(cur) {
			t.Skip()
		}
		in := Money{Minor: minor, Currency: cur}
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out Money
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if out != in {
			t.Fatalf("%#v → %s → %#v", in, b, out)
		}
	})
}

// FuzzMoneyUnmarshal feeds arbitrary documents: whatever decodes must re-encode to a canonical
// form that decodes to the same value.
func FuzzMoneyUnmarshal(f *testing.F) {
	for _, s := range []string{`{"amount":"129.90","currency":"USD"}`, `{"amount":1.5,"currency":"JPY"}`,
		`{"amount":"-0.001","currency":"KWD"}`, `{}`, `{"amount":"0009.10"}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Money
		if err := json.Unmarshal(data, &m); err != nil {
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("decoded %#v from %q but cannot encode it: %v", m, data, err)
		}
		var again Money
		if err := json.Unmarshal(b, &again); err != nil || again != m {
			t.Fatalf("%q → %#v → %s → %#v, %v", data, m, b, again, err)
		}
	})
}

// FuzzMoneyCanonicalFastPath: the stored form's fast path reads what the general decoder reads,
// and refuses what it refuses.
func FuzzMoneyCanonicalFastPath(f *testing.F) {
	for _, s := range []string{`{"amount":"129.90","currency":"USD"}`, `{"amount":"-0.001","currency":"KWD"}`,
		`{"amount":"12.345","currency":"USD"}`, `{"amount":"1-2","currency":"USD"}`, `{"amount":"","currency":"USD"}`,
		`{"amount":"5","currency":"ZZZ"}`, `{"amount":"5","currency":"usd"}`, `{"amount":"1.2.3","currency":"EUR"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, general Money
		errFast := fast.UnmarshalJSON(data)
		errGeneral := general.unmarshalAny(data)
		if (errFast == nil) != (errGeneral == nil) || fast != general {
			t.Fatalf("%q: fast %#v, %v; general %#v, %v", data, fast, errFast, general, errGeneral)
		}
	})
}
