package history

import (
	"errors"
	"testing"
	"unicode/utf8"
)

// A search cursor comes back in a URL: whatever it holds is refused with ErrBadCursor or read as
// text that encodes back to a cursor reading the same.
func FuzzDecodeCursor(f *testing.F) {
	for _, s := range []string{"", encodeCursor("jane@example.com"), encodeCursor("doe#jane@example.com"), "%%%", "////", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, c string) {
		s, err := decodeCursor(c)
		if err != nil {
			if !errors.Is(err, ErrBadCursor) {
				t.Fatalf("decodeCursor(%q) = %v, want ErrBadCursor", c, err)
			}
			return
		}
		if !utf8.ValidString(s) {
			t.Fatalf("decodeCursor(%q) = %q, not text", c, s)
		}
		if again, err := decodeCursor(encodeCursor(s)); err != nil || again != s {
			t.Fatalf("round trip of %q: %q %v", s, again, err)
		}
	})
}
