package reports

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/rollup"
	"github.com/cartrelay/cartrelay/shared/store"
)

// AccountGetter finds an account (accounts.Repo does).
type AccountGetter interface {
	Get(ctx context.Context, id string, open ...accounts.Field) (accounts.Account, error)
}

// Engine answers reports, drill-downs and checks for accounts. It only reads; ingest keeps the
// rollups it reads.
type Engine struct {
	Store    store.Store
	Accounts AccountGetter
	Clock    clock.Clock
	// Concurrency bounds the partition queries one report runs at once (default 8).
	Concurrency int
}

// Meta describes an answer: what was asked, in which zone it was bucketed, and how.
type Meta struct {
	Account    string  `json:"account"`
	Report     string  `json:"report"`
	From       string  `json:"from"`
	To         string  `json:"to"`
	Grain      Grain   `json:"grain,omitempty"`
	Zone       string  `json:"timezone"`
	Generation int     `json:"generation"`
	Filter     Filter  `json:"filter"`
	Model      Model   `json:"model,omitempty"`
	Rebuilding *Status `json:"rebuilding,omitempty"`
	// ItemsRead is how many rollup items the answer read.
	ItemsRead   int       `json:"items_read"`
	GeneratedAt time.Time `json:"generated_at"`
}

// Status is a generation being built, as reports show it.
type Status struct {
	Zone string `json:"timezone"`
	// Phase is "requested" (no builder has started, or the last attempt failed: see Error),
	// "building", or "stalled" (its builder stopped; the next one starts it again).
	Phase    string    `json:"phase"`
	Contacts int       `json:"contacts_done"`
	Orders   int       `json:"orders_done"`
	Total    int       `json:"contacts_estimate,omitempty"`
	Since    time.Time `json:"requested_at,omitzero"`
	Error    string    `json:"error,omitempty"`
	Attempts int       `json:"attempts,omitempty"`
}

// buildStatus describes the state's build; zone is the account's time zone, which the schedule
// has not turned into a build yet when it differs from the active one.
func buildStatus(s State, zone string, now time.Time) *Status {
	b := s.Building
	if b == nil {
		if zone != "" && zone != s.Active.Zone {
			return &Status{Zone: zone, Phase: "requested"}
		}
		return nil
	}
	st := &Status{Zone: b.Zone, Phase: "requested", Contacts: b.Contacts, Orders: b.Orders, Total: b.Total, Since: b.RequestedAt,
		Error: b.Error, Attempts: b.Attempts}
	switch {
	case b.Locked(now):
		st.Phase = "building"
	case !b.LockedAt.IsZero():
		st.Phase = "stalled"
	}
	return st
}

// view is the active generation of an account, ready to read.
type view struct {
	account string
	zone    string // the account's time zone setting
	state   State
	gen     Generation
	cal     rollup.Calendar
	items   int
	mu      sync.Mutex
}

func (e *Engine) open(ctx context.Context, account string) (*view, error) {
	acct, err := e.Accounts.Get(ctx, account)
	if errors.Is(err, accounts.ErrNotFound) {
		return nil, fmt.Errorf("account %q does not exist (cartrelay accounts list shows the accounts)", account)
	}
	if err != nil {
		return nil, err
	}
	s, err := LoadState(ctx, e.Store, account, acct.Timezone)
	if err != nil {
		return nil, err
	}
	cal, err := s.Active.Calendar()
	if err != nil {
		return nil, err
	}
	return &view{account: account, zone: acct.Timezone, state: s, gen: s.Active, cal: cal}, nil
}

func (e *Engine) meta(v *view, report string, q Query) Meta {
	m := Meta{Account: v.account, Report: report, From: q.From.String(), To: q.To.String(), Grain: q.Grain,
		Zone: v.gen.Zone, Generation: v.gen.N, Filter: q.Filter, ItemsRead: v.items, GeneratedAt: e.now()}
	m.Rebuilding = buildStatus(v.state, v.zone, e.now())
	return m
}

func (e *Engine) now() time.Time {
	if e.Clock == nil {
		return time.Now().UTC()
	}
	return e.Clock.Now()
}

// load reads the rollup items of part for every period in [from, to] (dates, months or years,
// as the part counts them) and sums their shards.
func (e *Engine) load(ctx context.Context, v *view, part rollup.Part, from, to int32) (*rollup.Delta, error) {
	out := rollup.NewDelta()
	err := e.scan(ctx, v, part, from, to, func(period int32, it store.Item) error {
		return out.AddStored(rollup.ItemKey{Part: part, Period: period}, it)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// scan reads the rollup items of part for every period in [from, to], at most Concurrency
// partitions at once, and hands each item to fn with its period, one at a time on the calling
// goroutine. A report that sums counters straight from the items (see Revenue) skips building a
// Delta, which costs more than the reads on a year of days.
func (e *Engine) scan(ctx context.Context, v *view, part rollup.Part, from, to int32, fn func(period int32, it store.Item) error) error {
	if from > to {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conc := e.Concurrency
	if conc <= 0 {
		conc = 8
	}
	type result struct {
		period int32
		items  []store.Item
		err    error
	}
	periods := make(chan int32)
	results := make(chan result)
	var wg sync.WaitGroup
	for range min(conc, int(to-from)+1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range periods {
				k := rollup.ItemKey{Part: part, Period: p}
				pk := rollup.PartitionKey(v.account, v.gen.N, part, k.PeriodString())
				items, err := store.QueryAll(ctx, e.Store, store.Query{PK: pk})
				results <- result{p, items, err}
			}
		}()
	}
	go func() {
		defer close(periods)
		for p := from; p <= to; p++ {
			select {
			case periods <- p:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	var firstErr error
	n := 0
	for r := range results {
		if r.err != nil {
			if firstErr == nil {
				firstErr = r.err
				cancel()
			}
			continue
		}
		for _, it := range r.items {
			n++
			if firstErr != nil {
				continue
			}
			if err := fn(r.period, it); err != nil {
				firstErr = err
				cancel()
			}
		}
	}
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return fmt.Errorf("read the %s rollups of %s: %w", partName(part), v.account, firstErr)
	}
	v.mu.Lock()
	v.items += n
	v.mu.Unlock()
	return nil
}

func partName(p rollup.Part) string {
	switch p {
	case rollup.PartDay:
		return "daily"
	case rollup.PartMonth:
		return "monthly"
	case rollup.PartCohort:
		return "cohort"
	case rollup.PartSubDay, rollup.PartSubMonth, rollup.PartSubYear:
		return "subscription"
	case rollup.PartView:
		return "page view"
	}
	return string(p)
}

// Today is the current local date of an account (in its active generation's time zone).
func (e *Engine) Today(ctx context.Context, account string) (rollup.Date, error) {
	v, err := e.open(ctx, account)
	if err != nil {
		return 0, err
	}
	return v.cal.Today(e.now()), nil
}
