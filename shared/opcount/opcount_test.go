package opcount_test

import (
	"sync"
	"testing"

	"github.com/cartrelay/cartrelay/shared/opcount"
)

func TestCountsAddUpAcrossGoroutines(t *testing.T) {
	var c opcount.Counts
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				c.Add("a", 1)
				c.Add("b", 2)
			}
		})
	}
	wg.Wait()
	got := c.Snapshot()
	if got["a"] != 8000 || got["b"] != 16000 || len(got) != 2 {
		t.Errorf("Snapshot() = %v, want a 8000 and b 16000", got)
	}
	got["a"] = 0
	if c.Snapshot()["a"] != 8000 {
		t.Error("changing a snapshot changed the counters")
	}
}

func TestNilCountsCountNothing(t *testing.T) {
	var c *opcount.Counts
	c.Add("a", 1)
	if got := c.Snapshot(); got != nil {
		t.Errorf("nil Counts Snapshot() = %v, want nil", got)
	}
}
