package phone

import (
	"strings"
	"testing"
)

func TestE164(t *testing.T) {
	tests := []struct {
		raw, country, want string
	}{
		{"(415) 555-0132", "US", "+14155550132"},
		{"415.555.0132", "us", "+14155550132"},
		{"+1 415 555 0132", "", "+14155550132"},
		{"+14155550132", "DE", "+14155550132"}, // an international number ignores the region
		{"0151 23456789", "DE", "+4915123456789"},
		{"030 901820", "DE", "+4930901820"},
		{"+44 20 7946 0958", "", "+442079460958"},
		{"020 7946 0958", "GB", "+442079460958"},
		{"415 555 0132", "", ""},    // national number without a country
		{"415 555 0132", "USA", ""}, // not an ISO 3166 alpha-2 code
		{"555-1234", "US", ""},      // too short to be valid
		{"call me maybe", "US", ""}, // not a number
		{"", "US", ""},              //
		{"+1 415 555 0132 ext 5", "US", "+14155550132"},
		{strings.Repeat("9", 100), "US", ""},
	}
	for _, tt := range tests {
		if got := E164(tt.raw, tt.country); got != tt.want {
			t.Errorf("E164(%q, %q) = %q, want %q", tt.raw, tt.country, got, tt.want)
		}
	}
}
