// Package phone normalizes phone numbers to E.164 with the libphonenumber metadata
// (github.com/nyaruka/phonenumbers).
package phone

import (
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// E164 returns raw in E.164 ("+14155550123"), reading a national number as one of
// countryCode (the ISO 3166 alpha-2 billing country; a number written with a leading + needs
// none). It returns "" when the number cannot be parsed or is not a valid number for its
// country, so callers never forward a guess.
func E164(raw, countryCode string) (e164 string) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > 64 {
		return ""
	}
	region := strings.ToUpper(strings.TrimSpace(countryCode))
	if len(region) != 2 || !isUpperASCII(region) {
		region = "ZZ" // unknown region: only international (+...) numbers parse
	}
	defer func() {
		// The phone library is third-party; a panic on odd input must not take an event down.
		if recover() != nil {
			e164 = ""
		}
	}()
	num, err := phonenumbers.Parse(raw, region)
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return ""
	}
	return phonenumbers.Format(num, phonenumbers.E164)
}

func isUpperASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
