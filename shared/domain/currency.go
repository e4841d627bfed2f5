package domain

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownCurrency is returned by ParseCurrency for a code that is not an ISO 4217 currency.
var ErrUnknownCurrency = errors.New("not an ISO 4217 currency code")

// ParseCurrency checks a currency code arriving from outside (an account setting, a source
// event) against the ISO 4217 list as golang.org/x/text/currency knows it (isoCurrencies), and
// returns it in upper case. Surrounding spaces and lower case are forgiven; an empty code, a
// code the standard does not list, and XXX (the standard's "no currency") are errors wrapping
// ErrUnknownCurrency.
func ParseCurrency(code string) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(code))
	if c == "" {
		return "", fmt.Errorf("no currency code: %w", ErrUnknownCurrency)
	}
	if !isISOCurrency(c) {
		return "", fmt.Errorf("%q is %w (such as USD, EUR or GBP)", code, ErrUnknownCurrency)
	}
	return c, nil
}

// KnownCurrency reports whether code is an ISO 4217 currency code exactly as written: three
// upper-case letters that the standard lists.
func KnownCurrency(code string) bool {
	c, err := ParseCurrency(code)
	return err == nil && c == code
}
