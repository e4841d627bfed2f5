package reports

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/rollup"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Settle is how long a build waits after locking an account's rollups before it reads the
// history: the longest an ingest that read the rollup state just before the lock can still take
// to commit (the ingest function's 30-second timeout, and a margin).
const Settle = 35 * time.Second

// lockMargin is how much earlier than ingest a builder gives its lock up for lost, so that no
// ingest writes to the old generation between the builder's last check and its flip.
const lockMargin = time.Minute

// MaxAutoAttempts is how many times the schedule starts a build by itself; after that the
// status asks for `cartrelay reports rebuild`.
const MaxAutoAttempts = 3

// Build reasons.
const (
	ReasonTimezone = "timezone"
	ReasonOperator = "rebuild"
	// ReasonLayout rebuilds, in its own zone, an active generation written in an earlier
	// rollup.Layout.
	ReasonLayout = "layout"
)

// ErrBuildBusy is returned when another builder holds the account's build.
var ErrBuildBusy = errors.New("another process is rebuilding the reports of this account")

// errLockLost is returned when a builder finds its build taken over or cancelled.
var errLockLost = errors.New("the rebuild was cancelled or taken over (the time zone changed again, or the build stalled)")

// RequestBuild records that the account's rollups must be built again in zone. A time zone
// change (reason ReasonTimezone) back to the active zone cancels a pending build; one to the zone
// already being built changes nothing. An operator's rebuild (ReasonOperator) rebuilds even in
// the active zone. A layout upgrade (ReasonLayout) rebuilds the active generation in its zone if
// it is written in an earlier rollup.Layout and nothing is being built already. The build itself
// is run by a Builder (the schedule's, or the CLI's).
func RequestBuild(ctx context.Context, st store.Store, account, zone, reason string, now time.Time) (State, error) {
	if _, err := rollup.NewCalendar(zone); err != nil {
		return State{}, err
	}
	for attempt := 0; ; attempt++ {
		s, err := LoadState(ctx, st, account, zone)
		if err != nil {
			return s, err
		}
		b := s.Building
		if reason == ReasonLayout {
			if b != nil || s.Version == 0 || s.Active.current() {
				return s, nil // a build (which writes this layout) is due already, or none is needed
			}
			zone = s.Active.Zone
		}
		switch {
		case b != nil && b.Zone == zone:
			if reason != ReasonOperator || b.Attempts < MaxAutoAttempts {
				return s, nil
			}
			b.Attempts, b.Error = 0, "" // the operator asks for another try
		case reason == ReasonTimezone && s.Active.Zone == zone && b == nil:
			return s, nil
		case reason == ReasonTimezone && s.Active.Zone == zone:
			s.retire(b.Generation)
			s.Building = nil
			s.LastBuild = fmt.Sprintf("the rebuild in %s was cancelled at %s: the time zone changed back to %s", b.Zone, now.Format(time.RFC3339), zone)
		default:
			if b != nil {
				s.retire(b.Generation)
			}
			s.Building = &Build{Generation: Generation{Zone: zone}, RequestedAt: now, Reason: reason}
		}
		if s.Version == 0 {
			s.Created = now
		}
		saved, err := SaveState(ctx, st, account, s)
		if errors.Is(err, store.ErrConditionFailed) && attempt < 8 {
			continue
		}
		return saved, err
	}
}

// retire lists g's items for deletion (a generation that never got a number has none).
func (s *State) retire(g Generation) {
	if g.N == 0 {
		return
	}
	for _, r := range s.Retired {
		if r.N == g.N {
			return
		}
	}
	s.Retired = append(s.Retired, g)
}

// Progress is how far a build is.
type Progress struct {
	// Phase is "settle" (waiting for ingests that started before the lock), "count", "read" or
	// "write".
	Phase    string
	Contacts int
	Total    int // contacts to read, once counted
	Orders   int
	Items    int // rollup items written
}

// Builder builds requested generations: it locks the account's rollups (ingest leaves its events
// on the queue meanwhile), waits Settle, reads every contact's stored records, writes the new
// generation's items and makes it active. Reports answer from the old generation until then.
type Builder struct {
	Store store.Store
	Clock clock.Clock
	// Sleep waits (tests pass one that advances a fake clock); nil sleeps.
	Sleep func(ctx context.Context, d time.Duration) error
	// SkipSettle skips the wait for ingests in flight. Only for an account nothing ingests into
	// yet (one that `cartrelay demo` is generating).
	SkipSettle bool
	// Progress, when set, is called as the build goes.
	Progress func(Progress)
	// Heartbeat is how often the build saves its progress (default 10 s).
	Heartbeat time.Duration

	owner string
}

func (b *Builder) now() time.Time {
	if b.Clock == nil {
		return time.Now().UTC()
	}
	return b.Clock.Now()
}

func (b *Builder) sleep(ctx context.Context, d time.Duration) error {
	if b.Sleep != nil {
		return b.Sleep(ctx, d)
	}
	return clock.Sleep(ctx, d)
}

func (b *Builder) report(p Progress) {
	if b.Progress != nil {
		b.Progress(p)
	}
}

// Run builds the account's requested generation, if any, and returns the state it left.
func (b *Builder) Run(ctx context.Context, account string) (State, error) {
	if b.owner == "" {
		host, _ := os.Hostname()
		var r [4]byte
		_, _ = rand.Read(r[:])
		b.owner = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(r[:]))
	}
	s, err := b.lock(ctx, account)
	if err != nil || s.Building == nil {
		return s, err
	}
	s, err = b.build(ctx, account, s)
	if err != nil && !errors.Is(err, errLockLost) {
		// Give the lock back at once, so ingest does not wait for it to go stale.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if rs, rerr := b.release(rctx, account, s.Building.N, err); rerr == nil {
			s = rs
		}
	}
	if err != nil {
		return s, fmt.Errorf("rebuild the reports of %s: %w", account, err)
	}
	return s, nil
}

// update applies fn to the account's state while this builder still holds the build of
// generation n, under the state's version.
func (b *Builder) update(ctx context.Context, account string, n int, fn func(s *State, now time.Time)) (State, error) {
	for attempt := 0; ; attempt++ {
		s, err := LoadState(ctx, b.Store, account, "")
		if err != nil {
			return s, err
		}
		now := b.now()
		bd := s.Building
		if bd == nil || bd.N != n || bd.Owner != b.owner || now.Sub(bd.last()) >= StaleAfter-lockMargin {
			return s, errLockLost
		}
		fn(&s, now)
		saved, err := SaveState(ctx, b.Store, account, s)
		if errors.Is(err, store.ErrConditionFailed) && attempt < 8 {
			continue
		}
		return saved, err
	}
}

func (bd *Build) last() time.Time {
	if bd.Heartbeat.Before(bd.LockedAt) {
		return bd.LockedAt
	}
	return bd.Heartbeat
}

// lock takes the account's requested build under a new generation number.
func (b *Builder) lock(ctx context.Context, account string) (State, error) {
	for attempt := 0; ; attempt++ {
		s, err := LoadState(ctx, b.Store, account, "")
		if err != nil {
			return s, err
		}
		bd := s.Building
		if bd == nil {
			return s, nil
		}
		now := b.now()
		if bd.Locked(now) && bd.Owner != b.owner {
			return s, fmt.Errorf("%w (%s, since %s)", ErrBuildBusy, bd.Owner, bd.LockedAt.Format(time.RFC3339))
		}
		// A new number for every attempt: items an abandoned attempt wrote are never counted.
		s.retire(bd.Generation)
		bd.N = s.nextGen()
		s.LastGen = bd.N
		bd.LockedAt, bd.Heartbeat, bd.Owner = now, now, b.owner
		bd.Contacts, bd.Orders, bd.Total, bd.Error = 0, 0, 0, ""
		bd.Attempts++
		saved, err := SaveState(ctx, b.Store, account, s)
		if errors.Is(err, store.ErrConditionFailed) && attempt < 8 {
			continue
		}
		return saved, err
	}
}

// release gives up generation n's build after a failure and says why.
func (b *Builder) release(ctx context.Context, account string, n int, cause error) (State, error) {
	return b.update(ctx, account, n, func(s *State, now time.Time) {
		s.retire(s.Building.Generation)
		s.Building.N = 0
		s.Building.LockedAt, s.Building.Heartbeat, s.Building.Owner = time.Time{}, time.Time{}, ""
		s.Building.Error = cause.Error()
	})
}

func (b *Builder) build(ctx context.Context, account string, s State) (State, error) {
	bd := *s.Building
	n := bd.N
	every := b.Heartbeat
	if every <= 0 {
		every = 10 * time.Second
	}
	cal, err := bd.Calendar()
	if err != nil {
		return s, err
	}
	p := Progress{Phase: "settle"}
	if !b.SkipSettle {
		b.report(p)
		if err := b.sleep(ctx, Settle); err != nil {
			return s, err
		}
	}
	beat := b.now()
	heartbeat := func(force bool) error {
		now := b.now()
		if !force && now.Sub(beat) < every {
			return ctx.Err()
		}
		beat = now
		var err error
		s, err = b.update(ctx, account, n, func(s *State, now time.Time) {
			s.Building.Heartbeat = now
			s.Building.Contacts, s.Building.Orders, s.Building.Total = p.Contacts, p.Orders, p.Total
		})
		return err
	}
	if err := heartbeat(true); err != nil {
		return s, err
	}

	repo := history.New(b.Store)
	p.Phase = "count"
	b.report(p)
	// The emails are listed once and kept (a few tens of bytes each), so the count that the
	// progress needs does not cost a second pass over the index.
	var emails []string
	if err := repo.EachContact(ctx, account, func(email string) error {
		emails = append(emails, email)
		p.Total++
		return nil
	}); err != nil {
		return s, err
	}
	p.Phase = "read"
	b.report(p)
	sum := newTally()
	for len(emails) > 0 {
		batch := emails[:min(len(emails), history.MaxLoadRecords)]
		emails = emails[len(batch):]
		if err := b.readBatch(ctx, repo, account, cal, batch, sum, &p, heartbeat); err != nil {
			return s, err
		}
	}
	emails = nil

	p.Phase = "write"
	b.report(p)
	keys := sum.Keys()
	span := spanOf(keys)
	items := generationItems(account, n, sum, keys)
	for len(items) > 0 {
		batch := items[:min(len(items), buildBatch(items))]
		items = items[len(batch):]
		ws := make([]store.Write, len(batch))
		for i, it := range batch {
			ws[i] = store.PutItem(it, store.Always)
		}
		if err := b.Store.Transact(ctx, ws); err != nil {
			return s, fmt.Errorf("write the rebuilt rollups: %w", err)
		}
		p.Items += len(batch)
		b.report(p)
		if err := heartbeat(false); err != nil {
			return s, err
		}
	}

	// The last heartbeat renews the lock, so no ingest can take it for stale before the flip.
	if err := heartbeat(true); err != nil {
		return s, err
	}
	return b.update(ctx, account, n, func(s *State, now time.Time) {
		s.retire(s.Active)
		s.Active = Generation{N: n, Zone: bd.Zone, Since: now, Layout: rollup.Layout}
		s.Building = nil
		s.Rebuilt = now
		s.Span = span
		s.LastBuild = fmt.Sprintf("generation %d in %s built at %s from %d contacts and %d orders (%d rollup items)",
			n, bd.Zone, now.Format(time.RFC3339), p.Contacts, p.Orders, p.Items)
	})
}

// readBatch adds the contributions of a batch of contacts (listed by email) to sum. Their
// partitions are read together; a contact whose records are still moving in from other emails
// reads those as well, and one that moved to another email is counted there.
func (b *Builder) readBatch(ctx context.Context, repo *history.Repo, account string, cal rollup.Calendar, emails []string,
	sum *tally, p *Progress, heartbeat func(bool) error) error {
	states, err := repo.LoadRecordsOf(ctx, account, emails)
	if err != nil {
		return err
	}
	cache := make(map[string]*history.ContactState, len(emails))
	for i, st := range states {
		cache[emails[i]] = st
	}
	load := cachedRecords(repo, account, cache)
	for i, email := range emails {
		g, err := groupOf(ctx, load, states[i], false)
		if err != nil {
			return err
		}
		if g.root.Email == email { // a contact that moved to another email is counted there
			rc := g.contact(false)
			rollup.Contribute(cal, rc, sum)
			p.Orders += len(rc.Orders)
		}
		p.Contacts++
		b.report(*p)
		if err := heartbeat(false); err != nil {
			return err
		}
	}
	return nil
}

// maxBuildItemBytes bounds one rebuilt rollup item, under DynamoDB's 400 KB.
const maxBuildItemBytes = 200_000

// generationItems renders a built tally as whole items of generation n: each period's cells in
// shards from rollup.BaseShard up (ingest never writes those), split so no item grows too
// large. Page view items belong to no generation and are left alone.
//
// A rebuild writes every counter of an account here, so each cell's counter names are made in
// one allocation, and each item's maps are made at their final size.
func generationItems(account string, n int, t *tally, keys []rollup.ItemKey) []store.Item {
	var out []store.Item
	for _, k := range keys {
		if k.Part == rollup.PartView {
			continue
		}
		cells := t.Cells(k)
		pk := rollup.PartitionKey(account, n, k.Part, k.PeriodString())
		shard := uint16(rollup.BaseShard)
		for len(cells) > 0 {
			// As many cells as fit one item.
			size, counters, i := len(pk)+64, 0, 0
			for ; i < len(cells); i++ {
				c := cells[i]
				add := len(c.id) + len(c.label)
				for _, m := range c.measures {
					add += len(c.id) + len(m.name) + 12
				}
				if i > 0 && size+add > maxBuildItemBytes {
					break
				}
				size += add
				counters += len(c.measures)
			}
			it := store.Item{PK: pk, SK: rollup.ItemKey{Part: k.Part, Period: k.Period, Shard: shard}.SortKey(),
				Counters: make(map[string]int64, counters), Labels: make(map[string]string, i)}
			for _, c := range cells[:i] {
				addCounters(it.Counters, c)
				it.Labels[c.id] = string(c.label)
			}
			if counters > 0 {
				out = append(out, it)
			}
			cells, shard = cells[i:], shard+1
		}
	}
	return out
}

// addCounters adds a cell's measures to counters under their names (rollup.CounterName), all
// cut from one string.
func addCounters(counters map[string]int64, c tallyCell) {
	sep := len(rollup.CounterName("", "")) // what a name adds to the id and the measure
	n := 0
	for _, m := range c.measures {
		n += len(c.id) + sep + len(m.name)
	}
	var b strings.Builder
	b.Grow(n)
	for _, m := range c.measures {
		b.WriteString(rollup.CounterName(c.id, m.name))
	}
	all, off := b.String(), 0
	for _, m := range c.measures {
		l := len(c.id) + sep + len(m.name)
		counters[all[off:off+l]] = m.value
		off += l
	}
}

// buildBatch is how many of items (from the first) go in one transaction: at most
// store.MaxTransactWrites, and about 2 MB (DynamoDB takes 4 MB a transaction).
func buildBatch(items []store.Item) int {
	size := 0
	for i, it := range items {
		if i == store.MaxTransactWrites {
			return i
		}
		s := len(it.PK) + 8
		for k := range it.Counters {
			s += len(k) + 12
		}
		for k, v := range it.Labels {
			s += len(k) + len(v)
		}
		if i > 0 && size+s > 2_000_000 {
			return i
		}
		size += s
	}
	return len(items)
}
