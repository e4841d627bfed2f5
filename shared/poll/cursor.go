package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/lease"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Progress is the part of a stored cursor every source shares: whose walk it is, how far it
// got, and whether it is stopped. A source's cursor embeds it beside its own position, so the
// stored JSON stays one flat object.
type Progress struct {
	Account string `json:"account"`
	Source  string `json:"source"`
	Stream  string `json:"stream"`

	// Done counts the records of saved pages: put on the ingest queue and acknowledged.
	Done int64 `json:"done"`
	// Estimated is the expected value of Done once the walk reaches the present.
	Estimated int64 `json:"estimated"`
	Requests  int64 `json:"requests"`
	// CaughtUp is set once the walk has reached the present.
	CaughtUp bool `json:"caught_up"`

	// NextRunAt is when the schedule should start the stream again.
	NextRunAt time.Time `json:"next_run_at,omitzero"`
	LastRunAt time.Time `json:"last_run_at,omitzero"`
	// Status is empty while the stream runs, or a source's status when it needs someone to act
	// before polling can resume.
	Status      string    `json:"status,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`

	// version is the stored item's version; 0 means not stored yet.
	version int64
}

// Base gives the engine the shared part of a source's cursor.
func (p *Progress) Base() *Progress { return p }

// Version is the stored version the cursor was read at.
func (p Progress) Version() int64 { return p.version }

// Cursor is a source's stored cursor: a pointer to a struct embedding Progress.
type Cursor interface {
	Base() *Progress
}

// AccountPK is the partition of an account's cursors and leases.
func AccountPK(account string) string { return "A#" + account }

// CursorKey is where the cursor of one source's stream of an account is stored.
func CursorKey(account, source, stream string) store.Key {
	return store.Key{PK: AccountPK(account), SK: "CUR#" + source + "#" + stream}
}

// Load reads a stream's cursor; found is false when it does not exist yet, and the cursor then
// names its account, source and stream.
func Load[C any, P interface {
	*C
	Cursor
}](ctx context.Context, st store.Store, account, source, stream string) (c C, found bool, err error) {
	k := CursorKey(account, source, stream)
	base := P(&c).Base()
	it, err := st.Get(ctx, k.PK, k.SK)
	if errors.Is(err, store.ErrNotFound) {
		base.Account, base.Source, base.Stream = account, source, stream
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("read the %s cursor of %s/%s: %w", source, account, stream, err)
	}
	if err := json.Unmarshal(it.Data, P(&c)); err != nil {
		return c, false, fmt.Errorf("the %s cursor of %s/%s is not readable: %w", source, account, stream, err)
	}
	P(&c).Base().version = it.Version
	return c, true, nil
}

// write returns the guarded write that stores c as its next version; the caller bumps the
// version once the write is committed.
func write(c Cursor) (store.Write, error) {
	p := c.Base()
	doc, err := json.Marshal(c)
	if err != nil {
		return store.Write{}, err
	}
	k := CursorKey(p.Account, p.Source, p.Stream)
	it := store.Item{PK: k.PK, SK: k.SK, Version: p.version + 1, Data: doc}
	if p.version == 0 {
		return store.PutItem(it, store.NotExists), nil
	}
	return store.PutIfVersion(it, p.version), nil
}

// Update applies change to a stream's cursor under its version check, reading it again and
// retrying when a poller saved it meanwhile. change returns whether to delete the cursor or
// write it; neither leaves it alone.
func Update[C any, P interface {
	*C
	Cursor
}](ctx context.Context, st store.Store, account, source, stream string, change func(c P, found bool) (del, write bool)) error {
	var err error
	for range 5 {
		var c C
		var found bool
		if c, found, err = Load[C, P](ctx, st, account, source, stream); err != nil {
			return err
		}
		del, put := change(&c, found)
		var w store.Write
		switch {
		case del:
			w = store.Write{Op: store.OpDelete, Key: CursorKey(account, source, stream),
				Cond: store.VersionEquals, Expect: P(&c).Base().version}
		case put:
			if w, err = write(P(&c)); err != nil {
				return err
			}
		default:
			return nil
		}
		if err = st.Write(ctx, w); !errors.Is(err, store.ErrConditionFailed) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("update the %s cursor of %s/%s: %w", source, account, stream, err)
	}
	return nil
}

// Due reports whether the schedule should enqueue a job for a stream at now: it has never run,
// or its NextRunAt has come and it is not stopped (a status for which recheck is true is looked
// at again when due), and no poller holds its lease (a running poller carries on by itself).
func Due[C any, P interface {
	*C
	Cursor
}](ctx context.Context, st store.Store, account, source, stream string, leaseKey store.Key, now time.Time, recheck func(status string) bool) (bool, error) {
	c, found, err := Load[C, P](ctx, st, account, source, stream)
	if err != nil {
		return false, err
	}
	if p := P(&c).Base(); found && ((p.Status != "" && !recheck(p.Status)) || p.NextRunAt.After(now)) {
		return false, nil
	}
	held, err := lease.Held(ctx, st, leaseKey)
	return !held, err
}
