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
// read the active generation. A change of time zone builds a new generation beside it; ingest
// keeps both up to date while it is built, and the new one becomes active once it is complete,
// so reports never answer from half-built rollups.
type Generation struct {
	N    int    `json:"gen"`
	Zone string `json:"zone"`
	// Since is when the generation became active.
	Since time.Time `json:"since,omitzero"`
}

// Calendar is the generation's calendar.
func (g Generation) Calendar() (rollup.Calendar, error) { return rollup.NewCalendar(g.Zone) }

// Build phases.
const (
	// PhaseSettle: the build is announced; it waits until every ingest that started before it
	// knows of it.
	PhaseSettle = "settle"
	// PhaseScan: ingest records the new generation's changes in a ledger while the build reads
	// every contact.
	PhaseScan = "scan"
	// PhaseDirect: the contacts are read and written; ingest adds to the new generation directly
	// and the build applies what the ledger holds.
	PhaseDirect = "direct"
)

// Build is a generation being built.
type Build struct {
	Generation
	Phase       string    `json:"phase"`
	RequestedAt time.Time `json:"requested_at"`
	// PhaseAt is when the phase began.
	PhaseAt time.Time `json:"phase_at"`
	Reason  string    `json:"reason,omitempty"`
	// Progress, as the build last saved it.
	Contacts int       `json:"contacts"`
	Orders   int       `json:"orders"`
	Total    int       `json:"total_estimate,omitempty"`
	Owner    string    `json:"owner,omitempty"`
	Updated  time.Time `json:"updated,omitzero"`
	Error    string    `json:"error,omitempty"`
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
		return State{Active: Generation{N: firstGeneration, Zone: zone}}, nil
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

// Targets are the generations a change must be added to, each with the way it is added.
type target struct {
	gen    Generation
	cal    rollup.Calendar
	ledger bool // recorded in the build's ledger rather than added to the items
}

func (s State) targets() ([]target, error) {
	cal, err := s.Active.Calendar()
	if err != nil {
		return nil, err
	}
	out := []target{{gen: s.Active, cal: cal}}
	if b := s.Building; b != nil && b.Phase != PhaseSettle {
		bc, err := b.Calendar()
		if err != nil {
			return nil, err
		}
		out = append(out, target{gen: b.Generation, cal: bc, ledger: b.Phase == PhaseScan})
	}
	return out, nil
}
