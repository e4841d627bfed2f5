package loadgen

import (
	"context"
	"sync"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/ultracart"
)

// records reads what serve stored about a followed order. The times it returns are the ones
// serve wrote, so a lag does not depend on when the follower got round to looking: under a
// backlog it may look at an order long after ingest stored it.
type records interface {
	// ingestedAt is when ingest stored the event with this content hash (ok false while it
	// has not).
	ingestedAt(ctx context.Context, hash string) (at time.Time, ok bool, err error)
	// deliveredAt is when dest answered the delivery of the fact that reached it (ok false
	// while it has not).
	deliveredAt(ctx context.Context, email, dest, factID string) (at time.Time, ok bool, err error)
}

// repoRecords reads serve's table: the ingest marker, written in the transaction that stores
// the order, and the delivery log, written once a destination has answered.
type repoRecords struct{ repo *history.Repo }

func (r repoRecords) ingestedAt(ctx context.Context, hash string) (time.Time, bool, error) {
	return r.repo.IngestedAt(ctx, Account, hash)
}

func (r repoRecords) deliveredAt(ctx context.Context, email, dest, factID string) (time.Time, bool, error) {
	ds, err := r.repo.ContactDeliveries(ctx, Account, email, dest, factID)
	if err != nil {
		return time.Time{}, false, err
	}
	for _, d := range ds {
		switch d.Status {
		case history.DeliverySent, history.DeliveryDryRun, history.DeliverySkipped:
			return d.At.Add(time.Duration(d.LatencyMS) * time.Millisecond), true, nil
		}
	}
	return time.Time{}, false, nil
}

// ContentHash is the hash ingest files a delivery of one UltraCart event under (its dedupe
// marker), computed the way the webhook splits the delivery; "" when body is not one event.
func ContentHash(body []byte) string {
	raws, err := ultracart.DecodeDelivery(body)
	if err != nil || len(raws) != 1 {
		return ""
	}
	return source.ID(Account, domain.UltraCart, raws[0].Name, raws[0].Payload)
}

// follower watches sampled orders in serve's table, through a connection of its own (SQLite's
// WAL lets a reader in another process look while serve writes), and takes from serve's own
// records when each was ingested and when every destination had it.
type follower struct {
	recs  records
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
	email     string
	hash      string
	factID    string
	accepted  time.Time
	ingested  time.Time
	delivered time.Time
	reached   map[string]time.Time
}

// add follows the order of an accepted delivery: orderID for email, whose delivery had the
// content hash, answered 200 at accepted.
func (f *follower) add(n uint64, orderID, email, hash string, accepted time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = append(f.pending, &sample{n: n, key: OrderKey(orderID), email: email, hash: hash,
		factID: domain.OrderPlacedID(Account, OrderKey(orderID)), accepted: accepted, reached: map[string]time.Time{}})
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
		f.look(ctx, maxLooksPerRound)
	}
}

// maxLooksPerRound bounds the reads of one round, so that a backlog of samples (ingest far
// behind) does not turn the follower into a load of its own. It delays only when a sample is
// seen, not the times it reports.
const maxLooksPerRound = 200

// look reads the records of the pending samples, at most budget reads (no bound when budget
// is 0).
func (f *follower) look(ctx context.Context, budget int) {
	f.mu.Lock()
	todo := append([]*sample(nil), f.pending...)
	f.mu.Unlock()
	looks := 0
	var finished []*sample
	for _, s := range todo {
		if (budget > 0 && looks >= budget) || ctx.Err() != nil {
			break
		}
		if s.ingested.IsZero() {
			looks++
			at, ok, err := f.recs.ingestedAt(ctx, s.hash)
			if err != nil || !ok {
				// Ingest goes roughly in order: a later order is unlikely to be in yet.
				continue
			}
			s.ingested = at
		}
		for _, d := range f.dests {
			if !s.reached[d].IsZero() {
				continue
			}
			looks++
			if at, ok, err := f.recs.deliveredAt(ctx, s.email, d, s.factID); err == nil && ok {
				s.reached[d] = at
			}
		}
		if len(s.reached) == len(f.dests) {
			for _, at := range s.reached {
				if at.After(s.delivered) {
					s.delivered = at
				}
			}
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

// unmarked counts the followed orders the follower has no ingest time for that stored reports
// stored and whose ingest marker is still not found under their hash. The order is read
// before the marker: the marker commits with the order, so an order ingested since the last
// look (serve goes on ingesting) has its marker by the time it is seen stored, and only a hash
// that differs from the one ingest files leaves one out.
func (f *follower) unmarked(ctx context.Context, stored func(key string) bool) int {
	f.mu.Lock()
	var todo []*sample
	for _, s := range f.pending {
		if s.ingested.IsZero() {
			todo = append(todo, s)
		}
	}
	f.mu.Unlock()
	n := 0
	for _, s := range todo {
		if !stored(s.key) {
			continue
		}
		if _, ok, err := f.recs.ingestedAt(ctx, s.hash); err == nil && !ok {
			n++
		}
	}
	return n
}

// counts returns how many samples are followed and how many are delivered.
func (f *follower) counts() (all, delivered int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending) + len(f.done), len(f.done)
}

// lags returns the ingest and delivery lags of the samples seen so far (some ingested maybe
// not yet delivered).
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
