package phone

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestCacheAnswersAsE164 holds the cache to E164's answers, on a first lookup and on a
// repeated one.
func TestCacheAnswersAsE164(t *testing.T) {
	c := NewCache(4)
	inputs := [][2]string{
		{"(415) 555-0132", "US"}, {"0151 23456789", "DE"}, {"415 555 0132", ""}, {"call me maybe", "US"},
		{"+44 20 7946 0958", ""}, {"020 7946 0958", "GB"}, {strings.Repeat("9", 100), "US"}, {"", "US"},
	}
	for round := range 3 {
		for _, in := range inputs {
			if got, want := c.E164(in[0], in[1]), E164(in[0], in[1]); got != want {
				t.Errorf("round %d: Cache.E164(%q, %q) = %q, E164 gives %q", round, in[0], in[1], got, want)
			}
		}
	}
}

// TestCacheRemembersRecentNumbers: a number looked up again within the cache's size is not
// parsed again; the cache holds at most two generations; long inputs are never kept.
func TestCacheRemembersRecentNumbers(t *testing.T) {
	calls := map[string]int{}
	c := newCache(3, func(raw, country string) string {
		calls[raw+"|"+country]++
		return "+" + raw
	})
	for range 5 {
		c.E164("1", "US")
		c.E164("2", "US")
	}
	if calls["1|US"] != 1 || calls["2|US"] != 1 {
		t.Fatalf("numbers used again were parsed again: %v", calls)
	}
	if c.E164("1", "DE") != "+1" || calls["1|DE"] != 1 {
		t.Fatalf("the country is part of the key: %v", calls)
	}
	// "1" stays while it keeps being used, however many other numbers pass through.
	for i := range 20 {
		c.E164(fmt.Sprint(100+i), "US")
		c.E164("1", "US")
	}
	if calls["1|US"] != 1 {
		t.Errorf("a number used every other lookup was parsed %d times, want once", calls["1|US"])
	}
	if n := len(c.recent) + len(c.previous); n > 6 {
		t.Errorf("cache holds %d entries, want at most 2×3", n)
	}
	// A number not used for more than two generations is parsed again.
	c.E164("2", "US")
	if calls["2|US"] != 2 {
		t.Errorf("an old number was kept: parsed %d times, want 2", calls["2|US"])
	}
	long := strings.Repeat("9", 100)
	c.E164(long, "US")
	c.E164(long, "US")
	if calls[long+"|US"] != 2 {
		t.Errorf("a %d-byte input was cached", len(long))
	}
}

// TestCacheConcurrent runs lookups from several goroutines (go test -race checks the locking).
func TestCacheConcurrent(t *testing.T) {
	c := NewCache(8)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				raw := fmt.Sprintf("(415) 555-%04d", (g*7+i)%20)
				if got, want := c.E164(raw, "US"), E164(raw, "US"); got != want {
					t.Errorf("E164(%q) = %q, want %q", raw, got, want)
				}
			}
		})
	}
	wg.Wait()
}
