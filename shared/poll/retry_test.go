package poll_test

import (
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/poll"
)

func TestPlanRetry(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	o := poll.Retry{Base: 30 * time.Second, Retries: 3, Reserve: 90 * time.Second}
	for _, tc := range []struct {
		name      string
		attempt   int
		retryable bool
		hint      time.Duration
		deadline  time.Time
		wait      time.Duration
		giveUp    bool
	}{
		{"first failure", 1, true, 0, now.Add(time.Hour), 30 * time.Second, false},
		{"doubles", 3, true, 0, now.Add(time.Hour), 2 * time.Minute, false},
		{"capped at 15 minutes", 12, true, 0, now.Add(24 * time.Hour), 15 * time.Minute, true},
		{"retry-after lengthens", 1, true, 5 * time.Minute, now.Add(time.Hour), 5 * time.Minute, false},
		{"past the retries", 4, true, 0, now.Add(time.Hour), 4 * time.Minute, true},
		{"wait runs past the deadline", 2, true, 0, now.Add(2 * time.Minute), time.Minute, true},
		{"not curable by repeating", 1, false, 0, now.Add(time.Hour), time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wait, giveUp := poll.PlanRetry(o, tc.attempt, tc.retryable, tc.hint, now, tc.deadline)
			if wait != tc.wait || giveUp != tc.giveUp {
				t.Errorf("got %s, give up %v; want %s, %v", wait, giveUp, tc.wait, tc.giveUp)
			}
		})
	}
}
