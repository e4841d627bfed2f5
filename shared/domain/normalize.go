package domain

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Errors that source adapters wrap, so a caller can branch without knowing the source.
var (
	// ErrUnknownEvent marks a source event whose name cartrelay does not interpret. The caller
	// keeps it raw and counts it; it is not a failure of the sender.
	ErrUnknownEvent = errors.New("unknown event")
	// ErrInvalidEvent marks a source event that cannot be normalized (required data missing or
	// malformed). The caller quarantines it with the error's message as the reason.
	ErrInvalidEvent = errors.New("invalid event")
	// ErrInvalidMoney is wrapped by every ParseMoney error.
	ErrInvalidMoney = errors.New("invalid amount")
	// ErrInvalidEmail is wrapped by every NormalizeEmail error.
	ErrInvalidEmail = errors.New("invalid email")
)

// MoneyError says why an amount could not be read exactly.
type MoneyError struct {
	Input    string
	Currency string
	Reason   string
}

func (e *MoneyError) Error() string {
	if e.Currency == "" {
		return fmt.Sprintf("amount %q: %s", e.Input, e.Reason)
	}
	return fmt.Sprintf("amount %q %s: %s", e.Input, e.Currency, e.Reason)
}

// Unwrap lets errors.Is(err, ErrInvalidMoney) match.
func (e *MoneyError) Unwrap() error { return ErrInvalidMoney }

// EmailError says why an email address was rejected.
type EmailError struct {
	Input  string
	Reason string
}

func (e *EmailError) Error() string { return fmt.Sprintf("email %q %s", e.Input, e.Reason) }

// Unwrap lets errors.Is(err, ErrInvalidEmail) match.
func (e *EmailError) Unwrap() error { return ErrInvalidEmail }

// ParseMoney reads a decimal amount exactly. decimal is what the source sent, as a string or a
// json.Number (pass string(n)): an optional sign, digits with at most one '.', and an optional
// exponent ("1.999e1"); surrounding spaces are ignored, thousands separators are not accepted.
// currency is an ISO 4217 code in any case; the result's code is upper-case.
//
// An amount with more decimal places than the currency has is accepted only when the extra
// digits are zeros ("19.990" USD is 19.99; "19.995" USD is an error). Revenue is never rounded
// silently: an amount that does not fit the currency is a data problem to look at, not to
// guess at. Use ParseMoneyRound for values that are conversions by nature.
func ParseMoney(decimal, currency string) (Money, error) {
	return parseMoney(decimal, currency, false)
}

// ParseMoneyRound is ParseMoney for amounts that are already the result of a currency
// conversion (UltraCart's "localized" values): extra decimal places are rounded half to even
// instead of rejected.
func ParseMoneyRound(decimal, currency string) (Money, error) {
	return parseMoney(decimal, currency, true)
}

// MoneyFromMinor builds an amount from integer minor units (ThriveCart's cents).
func MoneyFromMinor(minor int64, currency string) Money {
	return Money{Minor: minor, Currency: strings.ToUpper(strings.TrimSpace(currency))}
}

// maxExponent bounds the exponent accepted in an amount; larger ones cannot fit an int64 of
// minor units anyway and would only cost time.
const maxExponent = 400

func parseMoney(decimal, currency string, round bool) (Money, error) {
	cur, err := normalizeCurrency(currency)
	if err != nil {
		return Money{}, &MoneyError{Input: decimal, Currency: currency, Reason: err.Error()}
	}
	fail := func(format string, args ...any) (Money, error) {
		return Money{}, &MoneyError{Input: decimal, Currency: cur, Reason: fmt.Sprintf(format, args...)}
	}
	s := strings.TrimSpace(decimal)
	if s == "" {
		return fail("is empty")
	}
	neg := false
	switch s[0] {
	case '-':
		neg, s = true, s[1:]
	case '+':
		s = s[1:]
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e, ok := parseExponent(s[i+1:])
		if !ok {
			return fail("has a malformed exponent")
		}
		exp = e
	}
	intPart, fracPart, hasDot := strings.Cut(mant, ".")
	if strings.Contains(fracPart, ".") {
		return fail("has more than one decimal point")
	}
	if intPart == "" && fracPart == "" {
		return fail("has no digits")
	}
	if hasDot && fracPart == "" && intPart == "" {
		return fail("has no digits")
	}
	if !allDigits(intPart) || !allDigits(fracPart) {
		return fail("is not a decimal number")
	}
	digits := intPart + fracPart
	// value = digits × 10^-(len(frac)-exp); minor = value × 10^places.
	shift := fractionDigits(cur) - (len(fracPart) - exp)
	if shift < 0 {
		drop := -shift
		var kept, dropped string
		if drop >= len(digits) {
			kept, dropped = "", digits
		} else {
			kept, dropped = digits[:len(digits)-drop], digits[len(digits)-drop:]
		}
		if strings.Trim(dropped, "0") != "" {
			if !round {
				return fail("has more decimal places than %s allows (%d)", cur, fractionDigits(cur))
			}
			if drop > len(digits) {
				// Every digit is below the first kept place's half: rounds to zero.
				return Money{Currency: cur}, nil
			}
			minor, ok := digitsToInt(kept)
			if !ok {
				return fail("is too large")
			}
			if roundUp(kept, dropped) {
				if minor == 1<<63-1 {
					return fail("is too large")
				}
				minor++
			}
			if neg {
				minor = -minor
			}
			return Money{Minor: minor, Currency: cur}, nil
		}
		digits = kept
	} else if shift > 0 {
		if len(strings.TrimLeft(digits, "0"))+shift > 19 && strings.Trim(digits, "0") != "" {
			return fail("is too large")
		}
		if strings.Trim(digits, "0") != "" {
			digits += strings.Repeat("0", shift)
		}
	}
	minor, ok := digitsToInt(digits)
	if !ok {
		return fail("is too large")
	}
	if neg {
		minor = -minor
	}
	return Money{Minor: minor, Currency: cur}, nil
}

// roundUp decides half-to-even rounding of kept given the dropped digits.
func roundUp(kept, dropped string) bool {
	switch {
	case dropped[0] > '5':
		return true
	case dropped[0] < '5':
		return false
	case strings.Trim(dropped[1:], "0") != "":
		return true
	}
	if kept == "" {
		return false
	}
	return (kept[len(kept)-1]-'0')%2 == 1
}

func parseExponent(s string) (int, bool) {
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg, s = s[0] == '-', s[1:]
	}
	if s == "" || !allDigits(s) {
		return 0, false
	}
	s = strings.TrimLeft(s, "0")
	if len(s) > 4 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	if n > maxExponent {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// digitsToInt reads ASCII digits into an int64, reporting overflow.
func digitsToInt(s string) (int64, bool) {
	var n int64
	for i := 0; i < len(s); i++ {
		d := int64(s[i] - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

func normalizeCurrency(c string) (string, error) {
	c = strings.ToUpper(strings.TrimSpace(c))
	if c == "" {
		return "", errors.New("has no currency code")
	}
	if len(c) != 3 || !isUpperASCII(c) {
		return "", fmt.Errorf("currency %q is not a three-letter ISO 4217 code", c)
	}
	return c, nil
}

func isUpperASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// fractionDigits is the number of decimal places of a currency's minor unit (ISO 4217).
func fractionDigits(currency string) int { return MinorUnits(currency) }

// maxEmailLen is the longest address SMTP allows in a path (RFC 5321).
const maxEmailLen = 254

// NormalizeEmail trims an email address and lower-cases it, and nothing more: no
// provider-specific rewriting (dots and +tags stay), as docs/architecture.md (Identity) requires. It rejects what
// cannot be an address: no '@' or more than one, an empty local part or domain, spaces or
// control characters inside, or more than 254 characters.
func NormalizeEmail(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", &EmailError{Input: s, Reason: "is not valid UTF-8"}
	}
	e := strings.ToLower(strings.TrimFunc(s, unicode.IsSpace))
	switch {
	case e == "":
		return "", &EmailError{Input: s, Reason: "is empty"}
	case len(e) > maxEmailLen:
		return "", &EmailError{Input: s, Reason: fmt.Sprintf("is longer than %d characters", maxEmailLen)}
	case strings.IndexFunc(e, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "", &EmailError{Input: s, Reason: "contains a space or control character"}
	}
	local, domain, ok := strings.Cut(e, "@")
	switch {
	case !ok:
		return "", &EmailError{Input: s, Reason: "has no @"}
	case strings.Contains(domain, "@"):
		return "", &EmailError{Input: s, Reason: "has more than one @"}
	case local == "":
		return "", &EmailError{Input: s, Reason: "has nothing before the @"}
	case domain == "":
		return "", &EmailError{Input: s, Reason: "has nothing after the @"}
	}
	return e, nil
}

// PhoneFunc turns a raw phone number into E.164, reading a national number as one of the ISO
// 3166 alpha-2 billing country, and returns "" when it cannot. Decoders take it as an option so
// that only the processes that normalize phones (ingest) link the phone metadata, which is most
// of a Lambda bootstrap's size otherwise.
type PhoneFunc func(raw, countryCode string) string
