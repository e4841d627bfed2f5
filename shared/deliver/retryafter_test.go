package deliver_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/deliver"
)

var now = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"30", 30 * time.Second},
		{" 7 ", 7 * time.Second},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"99999999999999999", time.Duration(9223372036) * time.Second},
	} {
		if got := deliver.RetryAfter(tc.in, now); got != tc.want {
			t.Errorf("RetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// FuzzRetryAfter: whatever a destination answers, the wait is never negative, and a number of
// seconds is read as exactly that.
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "30", "Wed, 21 Oct 2015 07:28:00 GMT", "-1", "1e9", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		got := deliver.RetryAfter(h, now)
		if got < 0 {
			t.Fatalf("RetryAfter(%q) = %v", h, got)
		}
		if n, err := strconv.Atoi(h); err == nil && n >= 0 && n < 1<<31 && got != time.Duration(n)*time.Second {
			t.Fatalf("RetryAfter(%q) = %v, want %ds", h, got, n)
		}
	})
}
