package loadgen

import (
	"context"
	"sync"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
)

// follower watches sampled orders in serve's table, through a connection of its own (SQLite's
// WAL lets a reader in another process look while serve writes), and notes when each is
// ingested and when every destination has it.
type follower struct {
	repo  *history.Repo
	dests []string
	// every is how often the pending samples are looked at.
	every time.Duration

	mu      sync.Mutex
	pending []*sample
	done    []*sample
}

type sample struct {
	n         uint64
	key       string
	accepted  time.Time
	ingested  time.Time
	delivered time.Time
	reached   map[string]bool
}

// add follows the order of an accepted delivery.
func (f *follower) add(n uint64, orderID string, accepted time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = append(f.pending, &sample{n: n, key: OrderKey(orderID), accepted: accepted, reached: map[string]bool{}})
}

// run looks at the pending samples every f.every until ctx ends.
func (f *follower) run(ctx context.Context) {
	t := time.NewTicker(f.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.look(ctx)
	}
}

// maxLooksPerRound bounds the reads of one round, so that a backlog of samples (ingest far
// behind) does not turn the follower into a load of its own.
const maxLooksPerRound = 200

func (f *follower) look(ctx context.Context) {
	f.mu.Lock()
	todo := append([]*sample(nil), f.pending...)
	f.mu.Unlock()
	looks := 0
	var finished []*sample
	for _, s := range todo {
		if looks >= maxLooksPerRound || ctx.Err() != nil {
			break
		}
		if s.ingested.IsZero() {
			looks++
			email, err := f.repo.FindOrder(ctx, Account, s.key)
			if err != nil || email == "" {
				// Ingest goes roughly in order: a later order is unlikely to be in yet.
				continue
			}
			s.ingested = time.Now()
		}
		for _, d := range f.dests {
			if s.reached[d] {
				continue
			}
			looks++
			rec, err := f.repo.FactDone(ctx, Account, d, domain.OrderPlacedID(Account, s.key))
			if err == nil && rec != nil {
				s.reached[d] = true
			}
		}
		if len(s.reached) == len(f.dests) {
			s.delivered = time.Now()
			finished = append(finished, s)
		}
	}
	if len(finished) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	gone := map[*sample]bool{}
	for _, s := range finished {
		gone[s] = true
	}
	kept := f.pending[:0]
	for _, s := range f.pending {
		if !gone[s] {
			kept = append(kept, s)
		}
	}
	f.pending = kept
	f.done = append(f.done, finished...)
}

// counts returns how many samples are followed and how many are delivered.
func (f *follower) counts() (all, delivered int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending) + len(f.done), len(f.done)
}

// lags returns the ingest and delivery lags of the samples seen so far, and how many were
// ingested (some of them maybe not yet delivered).
func (f *follower) lags() (ingest, deliver []time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range append(append([]*sample(nil), f.done...), f.pending...) {
		if !s.ingested.IsZero() {
			ingest = append(ingest, s.ingested.Sub(s.accepted))
		}
		if !s.delivered.IsZero() {
			deliver = append(deliver, s.delivered.Sub(s.accepted))
		}
	}
	return ingest, deliver
}
