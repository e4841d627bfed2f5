package embedded

import (
	"strings"
	"testing"
)

func TestPrefixEnd(t *testing.T) {
	cases := []struct {
		prefix, end string
		ok          bool
	}{
		{"A#", "A$", true},
		{"a", "b", true},
		{"é", "\xc3\xaa", true}, // ê: the next code point, byte by byte
		{"\U0010ffff", "\xf4\x8f\xbf\xc0", true},
		{"A\xff", "B", true},
		{"\xff\xff", "", false},
	}
	for _, tc := range cases {
		end, ok := prefixEnd(tc.prefix)
		if end != tc.end || ok != tc.ok {
			t.Errorf("prefixEnd(%q) = %q, %v; want %q, %v", tc.prefix, end, ok, tc.end, tc.ok)
		}
		if !ok {
			continue
		}
		// Every extension of the prefix sorts below end, and end itself is not an extension.
		for _, ext := range []string{"", "\x00", "zzz", "\xf4\x8f\xbf\xbf"} {
			if s := tc.prefix + ext; s >= end {
				t.Errorf("%q sorts at or above the end %q of prefix %q", s, end, tc.prefix)
			}
		}
		if strings.HasPrefix(end, tc.prefix) {
			t.Errorf("end %q of prefix %q starts with the prefix", end, tc.prefix)
		}
	}
}
