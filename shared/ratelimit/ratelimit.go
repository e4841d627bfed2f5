// Package ratelimit enforces request limits that many processes share (several forwarder
// Lambdas, a poller and its continuation) by counting in the table. An in-process limiter such
// as golang.org/x/time/rate only limits one process, so it cannot keep a fleet under a
// destination's "180 requests per minute per account".
//
// Counting is in buckets of Window/Buckets. A request is admitted only if the buckets that any
// rolling window ending now can overlap hold fewer than Limit requests. That over-counts by at
// most one bucket, never under-counts, so no rolling window ever sees more than Limit.
package ratelimit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Limit is a number of requests per rolling window.
type Limit struct {
	Requests int
	Window   time.Duration
	// Buckets splits the window; more buckets waste less of the limit at the cost of a larger
	// read per admission. 0 means 6.
	Buckets int
}

func (l Limit) bucket() time.Duration {
	n := l.Buckets
	if n <= 0 {
		n = 6
	}
	return l.Window / time.Duration(n)
}

// Valid reports whether the limit can be enforced.
func (l Limit) Valid() error {
	if l.Requests <= 0 || l.Window <= 0 {
		return fmt.Errorf("a rate limit needs a positive number of requests and a positive window, got %d per %s", l.Requests, l.Window)
	}
	if l.bucket() <= 0 {
		return fmt.Errorf("a %s window cannot be split into %d buckets", l.Window, l.Buckets)
	}
	return nil
}

// Shared is a table-backed limiter for one key (for example one ONTRAPORT account).
type Shared struct {
	st    store.Store
	clk   clock.Clock
	pk    string
	limit Limit
	// sleep waits between admission attempts; tests replace it to advance a fake clock.
	sleep func(ctx context.Context, d time.Duration) error
}

// NewShared returns a limiter whose counts live in the table under pk.
func NewShared(st store.Store, clk clock.Clock, pk string, limit Limit) (*Shared, error) {
	if err := limit.Valid(); err != nil {
		return nil, err
	}
	return &Shared{st: st, clk: clk, pk: pk, limit: limit, sleep: clock.Sleep}, nil
}

// WithSleep replaces how the limiter waits (for tests on a fake clock).
func (s *Shared) WithSleep(f func(ctx context.Context, d time.Duration) error) *Shared {
	s.sleep = f
	return s
}

type bucketDoc struct {
	N int `json:"n"`
}

// Reserve tries to admit one request now. It returns 0 when admitted, or how long to wait
// before trying again.
func (s *Shared) Reserve(ctx context.Context) (time.Duration, error) {
	for {
		wait, err := s.reserveOnce(ctx)
		if !errors.Is(err, errRace) {
			return wait, err
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
}

func (s *Shared) reserveOnce(ctx context.Context) (time.Duration, error) {
	b := s.limit.bucket()
	now := s.clk.Now()
	cur := now.UnixNano() / int64(b)
	// A rolling window ending now starts in bucket first; it can overlap every bucket up to cur.
	first := (now.Add(-s.limit.Window).UnixNano()) / int64(b)
	// skBlock sorts after every bucket, so one query reads the buckets and any pause.
	items, err := store.QueryAll(ctx, s.st, store.Query{PK: s.pk, SKFrom: bucketSK(first), SKTo: skBlock})
	if err != nil {
		return 0, fmt.Errorf("read the shared rate window %s: %w", s.pk, err)
	}
	total := 0
	var curItem *store.Item
	curN := 0
	for i := range items {
		if items[i].SK == skBlock {
			var blk blockDoc
			if json.Unmarshal(items[i].Data, &blk) == nil && blk.Until.After(now) {
				return blk.Until.Sub(now), nil
			}
			continue
		}
		if items[i].SK > bucketSK(cur) {
			continue
		}
		var d bucketDoc
		if err := json.Unmarshal(items[i].Data, &d); err != nil {
			continue
		}
		total += d.N
		if items[i].SK == bucketSK(cur) {
			curItem, curN = &items[i], d.N
		}
	}
	if total >= s.limit.Requests {
		// The oldest counted bucket leaves the window at the end of bucket `first`'s span plus
		// the window; waiting one bucket is the conservative step.
		next := time.Unix(0, (cur+1)*int64(b))
		return max(next.Sub(now), time.Millisecond), nil
	}
	doc, _ := json.Marshal(bucketDoc{N: curN + 1})
	it := store.Item{PK: s.pk, SK: bucketSK(cur), Data: doc,
		ExpiresAt: time.Unix(0, (cur+1)*int64(b)).Add(s.limit.Window + b)}
	var w store.Write
	if curItem == nil {
		it.Version = 1
		w = store.PutItem(it, store.NotExists)
	} else {
		it.Version = curItem.Version + 1
		w = store.PutIfVersion(it, curItem.Version)
	}
	if err := s.st.Write(ctx, w); err != nil {
		if errors.Is(err, store.ErrConditionFailed) {
			// Another process counted a request first; look again at once.
			return 0, errRace
		}
		return 0, fmt.Errorf("count a request in the shared rate window %s: %w", s.pk, err)
	}
	return 0, nil
}

var errRace = errors.New("ratelimit: lost a race")

// Wait blocks until one request is admitted or ctx ends.
func (s *Shared) Wait(ctx context.Context) error {
	for {
		wait, err := s.Reserve(ctx)
		if err != nil {
			return err
		}
		if wait == 0 {
			return nil
		}
		if err := s.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// skBlock holds a pause the destination asked for.
const skBlock = "BLOCK"

type blockDoc struct {
	Until time.Time `json:"until"`
}

// Block records that the destination itself asked for a pause (a 429 with Retry-After, or a
// rate-limit reset header) until `until`: every process sharing the limiter waits until then.
// A pause never shortens one already recorded.
func (s *Shared) Block(ctx context.Context, until time.Time) error {
	for {
		cur, err := s.st.Get(ctx, s.pk, skBlock)
		var w store.Write
		doc, _ := json.Marshal(blockDoc{Until: until.UTC()})
		it := store.Item{PK: s.pk, SK: skBlock, Data: doc, ExpiresAt: until.Add(time.Minute)}
		switch {
		case errors.Is(err, store.ErrNotFound):
			it.Version = 1
			w = store.PutItem(it, store.NotExists)
		case err != nil:
			return fmt.Errorf("read the pause of %s: %w", s.pk, err)
		default:
			var old blockDoc
			if json.Unmarshal(cur.Data, &old) == nil && !old.Until.Before(until) {
				return nil
			}
			it.Version = cur.Version + 1
			w = store.PutIfVersion(it, cur.Version)
		}
		err = s.st.Write(ctx, w)
		if errors.Is(err, store.ErrConditionFailed) {
			continue
		}
		if err != nil {
			return fmt.Errorf("pause the shared rate window %s: %w", s.pk, err)
		}
		return nil
	}
}

// bucketSK is zero-padded so sort keys order as numbers.
func bucketSK(i int64) string {
	s := strconv.FormatInt(i, 10)
	const width = 20
	for len(s) < width {
		s = "0" + s
	}
	return s
}
