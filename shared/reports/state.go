package reports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/rollup"
	"github.com/cartrelay/cartrelay/shared/store"
)

// A generation is one complete set of an account's rollups, bucketed in one time zone. Reports
// read the active generation. A change of time zone (or `cartrelay reports rebuild`) builds a
// new generation beside it from the stored records (see Builder), and the new one becomes
// active once it is complete, so reports never answer from half-built rollups.
type Generation struct {
	N    int    `json:"gen"`
	Zone string `json:"zone"`
	// Since is when the generation became active.
	Since time.Time `json:"since,omitzero"`
	// Cleared, on a retired generation, is how far the deletion of its items has come.
	Cleared *ClearCursor `json:"cleared,omitempty"`
	// Layout is the rollup.Layout its items are written in; 0 is a generation written before
	// layouts were numbered (layout 1: no month items).
	Layout int `json:"layout,omitempty"`
}

// Calendar is the generation's calendar.
func (g Generation) Calendar() (rollup.Calendar, error) { return rollup.NewCalendar(g.Zone) }

// layout is the generation's rollup layout.
func (g Generation) layout() int { return max(g.Layout, 1) }

// hasMonths reports whether the generation has PartMonth items.
func (g Generation) hasMonths() bool { return g.layout() >= 2 }

// current reports whether the generation is written in this code's layout.
func (g Generation) current() bool { return g.layout() >= rollup.Layout }

// Build is a generation being built. While it is built the account's rollups are locked:
// ingest leaves its events on the queue (webhooks are still answered; nothing is lost) and
// applies them to the new generation once it is active, so the build reads a history that does
// not move under it. A build whose builder stopped sending heartbeats is abandoned, so a crash
// cannot hold ingest back.
type Build struct {
	Generation
	RequestedAt time.Time `json:"requested_at"`
	Reason      string    `json:"reason,omitempty"`
	// LockedAt is when the lock began; the builder reads nothing before LockedAt + settle, the
	// longest an ingest that started before the lock can still take.
	LockedAt time.Time `json:"locked_at"`
	Owner    string    `json:"owner,omitempty"`
	// Heartbeat is the builder's last sign of life.
	Heartbeat time.Time `json:"heartbeat,omitzero"`
	// Progress, as the builder last saved it.
	Contacts int    `json:"contacts"`
	Orders   int    `json:"orders"`
	Total    int    `json:"total_estimate,omitempty"`
	Error    string `json:"error,omitempty"`
	// Attempts counts the builds started for this request.
	Attempts int `json:"attempts,omitempty"`
}

// StaleAfter is how long a build may go without a heartbeat before ingest stops waiting for it
// and another builder may take it over.
const StaleAfter = 5 * time.Minute

// Locked reports whether the rollups are locked by a live build at now.
func (b *Build) Locked(now time.Time) bool {
	if b == nil || b.LockedAt.IsZero() {
		return false
	}
	return now.Sub(b.last()) < StaleAfter
}

// State is an account's rollup state: the active generation, the one being built, and old ones
// whose items are still to be deleted.
type State struct {
	Active   Generation   `json:"active"`
	Building *Build       `json:"building,omitempty"`
	Retired  []Generation `json:"retired,omitempty"`
	// Rebuilt is set once a build (rather than ingest from the first event on) made the active
	// generation, so it is known to hold the history from before reports existed.
	Rebuilt time.Time `json:"rebuilt,omitzero"`
	Created time.Time `json:"created"`
	// LastGen is the highest generation number ever used, so an abandoned build's items are
	// never mistaken for a new one's.
	LastGen int `json:"last_gen,omitempty"`
	// LastBuild says how the last build ended, for the status.
	LastBuild string `json:"last_build,omitempty"`
	// Span is the periods per part that the last build found items in, widened so that it
	// holds every period a retired generation (the same history in another zone, or less of
	// it) can have items in: what ClearRetired walks.
	Span []PartSpan `json:"span,omitempty"`

	// Version is the stored item's version; 0 when the state does not exist yet.
	Version int64 `json:"-"`
}

// stateKey is where an account's rollup state lives.
func stateKey(account string) store.Key { return store.Key{PK: "A#" + account + "#R", SK: "STATE"} }

// firstGeneration is the generation an account starts with.
const firstGeneration = 1

// LoadState reads an account's rollup state. An account with none yet gets the state its first
// write will create: generation 1 in zone (the account's time zone).
func LoadState(ctx context.Context, st store.Store, account, zone string) (State, error) {
	k := stateKey(account)
	it, err := st.Get(ctx, k.PK, k.SK)
	if errors.Is(err, store.ErrNotFound) {
		if zone == "" {
			zone = "UTC"
		}
		return State{Active: Generation{N: firstGeneration, Zone: zone, Layout: rollup.Layout}}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("read the reports state of %s: %w", account, err)
	}
	var s State
	if err := json.Unmarshal(it.Data, &s); err != nil {
		return State{}, fmt.Errorf("the reports state of %s is unreadable: %w", account, err)
	}
	s.Version = it.Version
	return s, nil
}

// write is the state as a write guarded by the version it was read at.
func (s State) write(account string) store.Write {
	k := stateKey(account)
	data, _ := json.Marshal(s)
	it := store.Item{PK: k.PK, SK: k.SK, Version: s.Version + 1, Data: data}
	if s.Version == 0 {
		return store.PutItem(it, store.NotExists)
	}
	return store.PutIfVersion(it, s.Version)
}

// SaveState writes s under its version; a concurrent change fails with store.ErrConditionFailed.
func SaveState(ctx context.Context, st store.Store, account string, s State) (State, error) {
	if err := st.Write(ctx, s.write(account)); err != nil {
		return s, fmt.Errorf("save the reports state of %s: %w", account, err)
	}
	s.Version++
	return s, nil
}

// ErrRebuilding is returned to a change while the account's reports are being rebuilt: the
// change waits (ingest leaves its message on the queue) and applies once the build is done.
var ErrRebuilding = errors.New("the reports of this account are being rebuilt; the change is applied once the rebuild is done")

// target is a generation a change is added to.
type target struct {
	gen Generation
	cal rollup.Calendar
}

func (s State) targets(now time.Time, zones *rollup.Zones) ([]target, error) {
	if s.Building.Locked(now) {
		return nil, ErrRebuilding
	}
	cal, err := zones.Calendar(s.Active.Zone)
	if err != nil {
		return nil, err
	}
	return []target{{gen: s.Active, cal: cal}}, nil
}

func (s State) nextGen() int {
	n := max(s.LastGen, s.Active.N)
	if s.Building != nil {
		n = max(n, s.Building.N)
	}
	for _, r := range s.Retired {
		n = max(n, r.N)
	}
	return n + 1
}
