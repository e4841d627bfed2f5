package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// Money is an exact amount in minor units (cents for USD, yen for JPY) of one ISO 4217
// currency. It is never a float. Its JSON form is {"amount":"129.90","currency":"USD"}, the
// operator-facing convention (a decimal string beside its currency code).
//
// Arithmetic is checked: mixing currencies or leaving the int64 range is an error, never a
// silently wrong total. A zero amount with no currency is the neutral element and adopts the
// other operand's currency, so a zero-valued field can start a sum.
type Money struct {
	Minor    int64
	Currency string
}

// Errors of Money arithmetic and decoding; callers branch with errors.Is.
var (
	// ErrCurrencyMismatch: the operands are in different currencies.
	ErrCurrencyMismatch = errors.New("currency mismatch")
	// ErrMoneyOverflow: the result does not fit int64 minor units.
	ErrMoneyOverflow = errors.New("money overflow")
	// ErrMoneyDivByZero: division by zero.
	ErrMoneyDivByZero = errors.New("money division by zero")
	// ErrMoneyJSON: a JSON money value is malformed or not exact in its currency.
	ErrMoneyJSON = errors.New("invalid money JSON")
)

// MinorUnits is the number of decimal places of an ISO 4217 currency: 2 unless the standard says
// otherwise (0 for JPY, KRW, ...; 3 for BHD, KWD, ...; 4 for the CLF and UYW units of account).
// An unknown or empty code gets 2, the common case, so an amount always has a decimal form.
func MinorUnits(currency string) int {
	switch strings.ToUpper(currency) {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
		"VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	case "CLF", "UYW":
		return 4
	}
	return 2
}

// ValidCurrency reports whether code has the shape of an ISO 4217 code (three upper-case ASCII
// letters), or is empty (no currency, allowed only for zero-valued defaults). It is the check for
// money cartrelay reads back from its own table; a currency arriving from outside (a setting, a
// source event) is held to the standard's list with ParseCurrency.
func ValidCurrency(code string) bool {
	if code == "" {
		return true
	}
	if len(code) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if code[i] < 'A' || code[i] > 'Z' {
			return false
		}
	}
	return true
}

// commonCurrency is the currency of a result of m and o, with the zero-adopts rule.
func (m Money) commonCurrency(o Money) (string, error) {
	switch {
	case m.Currency == o.Currency:
		return m.Currency, nil
	case m.Currency == "" && m.Minor == 0:
		return o.Currency, nil
	case o.Currency == "" && o.Minor == 0:
		return m.Currency, nil
	}
	return "", fmt.Errorf("%w: %s and %s", ErrCurrencyMismatch, m.currencyName(), o.currencyName())
}

func (m Money) currencyName() string {
	if m.Currency == "" {
		return `""`
	}
	return m.Currency
}

// Add returns m + o.
func (m Money) Add(o Money) (Money, error) {
	cur, err := m.commonCurrency(o)
	if err != nil {
		return Money{}, err
	}
	s := m.Minor + o.Minor
	// Overflow happened when both operands share a sign that the sum does not.
	if (m.Minor^s)&(o.Minor^s) < 0 {
		return Money{}, fmt.Errorf("%w: %s + %s", ErrMoneyOverflow, m, o)
	}
	return Money{Minor: s, Currency: cur}, nil
}

// Sub returns m − o.
func (m Money) Sub(o Money) (Money, error) {
	cur, err := m.commonCurrency(o)
	if err != nil {
		return Money{}, err
	}
	d := m.Minor - o.Minor
	// Overflow happened when the operands' signs differ and the result's sign is not m's.
	if (m.Minor^o.Minor)&(m.Minor^d) < 0 {
		return Money{}, fmt.Errorf("%w: %s - %s", ErrMoneyOverflow, m, o)
	}
	return Money{Minor: d, Currency: cur}, nil
}

// Cmp compares m and o: -1 if m < o, 0 if equal, +1 if m > o. Amounts in different currencies
// are not comparable.
func (m Money) Cmp(o Money) (int, error) {
	if _, err := m.commonCurrency(o); err != nil {
		return 0, err
	}
	switch {
	case m.Minor < o.Minor:
		return -1, nil
	case m.Minor > o.Minor:
		return 1, nil
	}
	return 0, nil
}

// IsZero reports whether the amount is zero, whatever the currency.
func (m Money) IsZero() bool { return m.Minor == 0 }

// Neg returns −m. Only the most negative int64 has no negation.
func (m Money) Neg() (Money, error) {
	if m.Minor == math.MinInt64 {
		return Money{}, fmt.Errorf("%w: -(%s)", ErrMoneyOverflow, m)
	}
	return Money{Minor: -m.Minor, Currency: m.Currency}, nil
}

// Mul returns m × n (a quantity times a unit price, for example).
func (m Money) Mul(n int64) (Money, error) {
	neg := (m.Minor < 0) != (n < 0)
	hi, lo := bits.Mul64(abs64(m.Minor), abs64(n))
	if r, ok := signed(hi, lo, neg); ok {
		return Money{Minor: r, Currency: m.Currency}, nil
	}
	return Money{}, fmt.Errorf("%w: %s × %d", ErrMoneyOverflow, m, n)
}

// Div returns m ÷ n rounded to the nearest minor unit, ties to even (banker's rounding), so that
// averages such as AOV carry no upward bias when many of them are summed or compared.
func (m Money) Div(n int64) (Money, error) {
	if n == 0 {
		return Money{}, fmt.Errorf("%w: %s ÷ 0", ErrMoneyDivByZero, m)
	}
	neg := (m.Minor < 0) != (n < 0)
	a, b := abs64(m.Minor), abs64(n)
	q, r := a/b, a%b
	// r < b ≤ 2^63, so 2r fits in uint64.
	if twice := 2 * r; twice > b || (twice == b && q%2 == 1) {
		q++
	}
	if res, ok := signed(0, q, neg); ok {
		return Money{Minor: res, Currency: m.Currency}, nil
	}
	return Money{}, fmt.Errorf("%w: %s ÷ %d", ErrMoneyOverflow, m, n)
}

// abs64 is |x| as uint64; it is exact for math.MinInt64 too.
func abs64(x int64) uint64 {
	if x < 0 {
		return uint64(-x) // wraps to 2^63 for MinInt64, which is the right magnitude
	}
	return uint64(x)
}

// signed turns a 128-bit magnitude and a sign back into int64, reporting whether it fits.
func signed(hi, lo uint64, neg bool) (int64, bool) {
	if hi != 0 {
		return 0, false
	}
	if neg {
		if lo > 1<<63 {
			return 0, false
		}
		return -int64(lo), true // lo == 2^63 converts to MinInt64, whose negation is itself
	}
	if lo > math.MaxInt64 {
		return 0, false
	}
	return int64(lo), true
}

// Decimal is the amount as an exact decimal string in the currency's minor units: "129.90",
// "-0.05", "1299" for JPY, "1.250" for KWD.
func (m Money) Decimal() string {
	return string(m.appendDecimal(make([]byte, 0, 24)))
}

func (m Money) appendDecimal(b []byte) []byte {
	if m.Minor < 0 {
		b = append(b, '-')
	}
	exp := MinorUnits(m.Currency)
	digits := strconv.AppendUint(nil, abs64(m.Minor), 10)
	if exp == 0 {
		return append(b, digits...)
	}
	if len(digits) <= exp {
		b = append(b, '0', '.')
		for i := len(digits); i < exp; i++ {
			b = append(b, '0')
		}
		return append(b, digits...)
	}
	cut := len(digits) - exp
	b = append(b, digits[:cut]...)
	b = append(b, '.')
	return append(b, digits[cut:]...)
}

// String is the amount with its currency, "129.90 USD" (or just "129.90" with no currency).
func (m Money) String() string {
	if m.Currency == "" {
		return m.Decimal()
	}
	return m.Decimal() + " " + m.Currency
}

// MarshalJSON writes {"amount":"129.90","currency":"USD"}. A currency that is not an ISO 4217
// shape is refused rather than written, because it could not be read back.
func (m Money) MarshalJSON() ([]byte, error) {
	if !ValidCurrency(m.Currency) {
		return nil, fmt.Errorf("%w: currency %q is not an ISO 4217 code", ErrMoneyJSON, m.Currency)
	}
	b := make([]byte, 0, 48)
	b = append(b, `{"amount":"`...)
	b = m.appendDecimal(b)
	b = append(b, `","currency":"`...)
	b = append(b, m.Currency...)
	return append(b, `"}`...), nil
}

// UnmarshalJSON reads {"amount":"129.90","currency":"USD"}. The amount may also be a bare JSON
// number; either way its text is parsed as an exact decimal, never through a float. Fewer
// decimals than the currency has are fine ("129.9"); more are accepted only when they are zeros,
// because anything else is not a whole number of minor units. null leaves m unchanged.
func (m *Money) UnmarshalJSON(data []byte) error {
	// The stored form (MarshalJSON's) is read without the general decoder: a report rebuild
	// reads every amount of every order, and this is most of its time.
	if amount, currency, ok := canonicalMoney(data); ok && ValidCurrency(currency) {
		if minor, err := parseMinor(amount, MinorUnits(currency)); err == nil {
			*m = Money{Minor: minor, Currency: currency}
			return nil
		}
	}
	return m.unmarshalAny(data)
}

// canonicalMoney splits {"amount":"<decimal>","currency":"<code>"} exactly as MarshalJSON
// writes it; ok is false for any other text, which the general decoder then reads.
func canonicalMoney(data []byte) (amount []byte, currency string, ok bool) {
	const head, mid = `{"amount":"`, `","currency":"`
	rest, found := bytes.CutPrefix(data, []byte(head))
	if !found {
		return nil, "", false
	}
	i := 0
	for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '-' || rest[i] == '.') {
		i++
	}
	amount, rest = rest[:i], rest[i:]
	if rest, found = bytes.CutPrefix(rest, []byte(mid)); !found || len(amount) == 0 {
		return nil, "", false
	}
	if len(rest) != 5 || rest[3] != '"' || rest[4] != '}' {
		return nil, "", false
	}
	for _, c := range rest[:3] {
		if c < 'A' || c > 'Z' {
			return nil, "", false
		}
	}
	return amount, string(rest[:3]), true
}

// unmarshalAny is UnmarshalJSON for any spelling of the document.
func (m *Money) unmarshalAny(data []byte) error {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil
	}
	var raw struct {
		Amount   json.RawMessage `json:"amount"`
		Currency string          `json:"currency"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("%w: %w", ErrMoneyJSON, err)
	}
	if !ValidCurrency(raw.Currency) {
		return fmt.Errorf("%w: currency %q is not an ISO 4217 code", ErrMoneyJSON, raw.Currency)
	}
	text := bytes.TrimSpace(raw.Amount)
	switch {
	case len(text) == 0 || bytes.Equal(text, []byte("null")):
		text = nil
	case text[0] == '"':
		var s string
		if err := json.Unmarshal(text, &s); err != nil {
			return fmt.Errorf("%w: amount: %w", ErrMoneyJSON, err)
		}
		text = []byte(s)
	}
	minor, err := parseMinor(text, MinorUnits(raw.Currency))
	if err != nil {
		return fmt.Errorf("%w: amount %q in %q: %w", ErrMoneyJSON, text, raw.Currency, err)
	}
	*m = Money{Minor: minor, Currency: raw.Currency}
	return nil
}

// parseMinor reads an exact decimal ("-129.90") as a count of minor units with exp decimals.
// Empty text is zero.
func parseMinor(s []byte, exp int) (int64, error) {
	if len(s) == 0 {
		return 0, nil
	}
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	intPart, frac, hasDot := bytes.Cut(s, []byte("."))
	if len(intPart) == 0 || (hasDot && len(frac) == 0) {
		return 0, errors.New("not a decimal number")
	}
	var mag uint64
	const limit = 1 << 63 // the magnitude of MinInt64; positive values stop one below
	push := func(d byte) error {
		if d < '0' || d > '9' {
			return errors.New("not a decimal number")
		}
		hi, lo := bits.Mul64(mag, 10)
		lo, carry := bits.Add64(lo, uint64(d-'0'), 0)
		if hi != 0 || carry != 0 || lo > limit {
			return ErrMoneyOverflow
		}
		mag = lo
		return nil
	}
	for _, d := range intPart {
		if err := push(d); err != nil {
			return 0, err
		}
	}
	for i, d := range frac {
		if i >= exp {
			if d != '0' {
				return 0, fmt.Errorf("more than %d decimals", exp)
			}
			continue
		}
		if err := push(d); err != nil {
			return 0, err
		}
	}
	for i := len(frac); i < exp; i++ {
		if err := push('0'); err != nil {
			return 0, err
		}
	}
	if v, ok := signed(0, mag, neg); ok {
		return v, nil
	}
	return 0, ErrMoneyOverflow
}
