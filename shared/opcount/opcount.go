// Package opcount counts what a process did to its database, by name: the embedded store's
// reads and writes (by kind of item), the embedded queues' sends, receives and deletes, the
// commits. `cartrelay serve` logs the totals when it stops, and the load generator divides
// them by the orders it posted, so that a change to the serve path is seen in operations per
// order, not only in a noisy time.
package opcount

import (
	"maps"
	"sync"
)

// LogMessage is the message of the line serve logs when it stops, with the totals as "counts".
const LogMessage = "serve totals"

// Counts is a set of named counters, safe for concurrent use. A nil *Counts counts nothing.
type Counts struct {
	mu sync.Mutex
	m  map[string]int64
}

// Add adds n to the counter name.
func (c *Counts) Add(name string, n int64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[name] += n
}

// Snapshot returns a copy of the counters.
func (c *Counts) Snapshot() map[string]int64 {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.m)
}
