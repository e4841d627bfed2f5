package ucpoll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/lease"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Cursor is the stored position and progress of one (account, stream) walk. It lives at
// pk "A#<acct>", sk "CUR#ultracart#<stream>" and is only written under a version check, so a
// stale process can never move it backwards.
type Cursor struct {
	Account string `json:"account"`
	Source  string `json:"source"`
	Stream  string `json:"stream"`

	// Began is where the walk of orders or refunds started (the backfill's start date), or
	// when a "_since" stream's first walk (all of history) began. Zero while the stream has
	// never run: a cursor that holds only a stop.
	Began time.Time `json:"began,omitzero"`
	// From and To bound the current window of orders or refunds, [From, To); To is zero
	// between windows.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	// Offset is the next page's offset inside the window, or after Key in a "_since" walk.
	Offset int `json:"offset"`
	// Window is the length the next window gets; it grows over quiet periods.
	Window time.Duration `json:"window,omitzero"`

	// Since is where the next "_since" walk resumes, before the overlap: everything changed
	// before it has been walked. Zero until the first walk (all of history) has finished.
	Since time.Time `json:"since,omitzero"`
	// WalkStarted is when the current "_since" walk began; zero between walks.
	WalkStarted time.Time `json:"walk_started,omitzero"`
	// Key is the _since the current walk's next page asks with (zero: all of history).
	Key time.Time `json:"key,omitzero"`
	// WalkMax is the latest change the current walk has seen.
	WalkMax time.Time `json:"walk_max,omitzero"`
	// ByOffset is set when the current walk found the listing out of order by modification
	// time, so it pages by offset alone to its end.
	ByOffset bool `json:"by_offset,omitempty"`

	// Done counts the records of saved pages: put on the ingest queue and acknowledged. A page
	// in flight when a run died counts once, when its re-send is saved; a "_since" walk's
	// harmless re-reads count each time.
	Done int64 `json:"done"`
	// Walked counts the orders of finished windows, for the density behind Estimated.
	Walked int64 `json:"walked,omitempty"`
	// WindowTotal is result_set.total_records of the current window.
	WindowTotal int `json:"window_total,omitempty"`
	// Estimated is the expected value of Done once the walk reaches the present: for orders
	// extrapolated from the density walked so far, for a "_since" walk what UltraCart says is
	// left.
	Estimated int64 `json:"estimated"`
	Requests  int64 `json:"requests"`
	// CaughtUp is set once the walk has reached the present.
	CaughtUp bool `json:"caught_up"`

	// NextRunAt is when the schedule should start the stream again.
	NextRunAt time.Time `json:"next_run_at,omitzero"`
	LastRunAt time.Time `json:"last_run_at,omitzero"`
	// Status is empty while the stream runs, or StatusDisabled / StatusUnauthorized when it
	// needs someone to act before polling can resume.
	Status      string    `json:"status,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`

	// version is the stored item's version; 0 means not stored yet.
	version int64
}

// Statuses that stop a stream until someone acts.
const (
	StatusDisabled     = "disabled"
	StatusUnauthorized = "unauthorized"
)

// Source is the cursor and lease key segment for UltraCart.
const Source = "ultracart"

// AccountPK is the partition of an account's cursors and lease.
func AccountPK(account string) string { return "A#" + account }

// CursorSK is the sort key of a stream's cursor.
func CursorSK(stream string) string { return "CUR#" + Source + "#" + stream }

// LeaseSK is the sort key of the connection's lease; one per connection, so the streams of one
// UltraCart connection never request at once (UltraCart refuses concurrent requests).
const LeaseSK = "LEASE#" + Source

// LoadCursor reads a stream's cursor; found is false when it does not exist yet.
func LoadCursor(ctx context.Context, st store.Store, account, stream string) (c Cursor, found bool, err error) {
	it, err := st.Get(ctx, AccountPK(account), CursorSK(stream))
	if errors.Is(err, store.ErrNotFound) {
		return Cursor{Account: account, Source: Source, Stream: stream}, false, nil
	}
	if err != nil {
		return Cursor{}, false, fmt.Errorf("read cursor %s/%s: %w", account, stream, err)
	}
	if err := json.Unmarshal(it.Data, &c); err != nil {
		return Cursor{}, false, fmt.Errorf("cursor %s/%s is not readable: %w", account, stream, err)
	}
	c.version = it.Version
	return c, true, nil
}

// Version is the stored version the cursor was read at.
func (c Cursor) Version() int64 { return c.version }

// write returns the guarded write that stores c as the next version.
func (c Cursor) write() (store.Write, Cursor, error) {
	doc, err := json.Marshal(c)
	if err != nil {
		return store.Write{}, c, err
	}
	it := store.Item{PK: AccountPK(c.Account), SK: CursorSK(c.Stream), Version: c.version + 1, Data: doc}
	w := store.PutIfVersion(it, c.version)
	if c.version == 0 {
		w = store.PutItem(it, store.NotExists)
	}
	c.version++
	return w, c, nil
}

// Due reports whether the schedule should enqueue a job for the stream at now: it has never
// run, or its NextRunAt has come, it is not stopped, and no poller holds the connection's
// lease (a running poller carries on by itself).
func Due(ctx context.Context, st store.Store, account, stream string, now time.Time) (bool, error) {
	c, found, err := LoadCursor(ctx, st, account, stream)
	if err != nil {
		return false, err
	}
	if found && (c.Status != "" || c.NextRunAt.After(now)) {
		return false, nil
	}
	held, err := lease.Held(ctx, st, store.Key{PK: AccountPK(account), SK: LeaseSK})
	return !held, err
}

// ErrBusy is returned when another process holds the connection's lease.
var ErrBusy = lease.ErrBusy

// ErrLeaseLost is returned when the lease expired or was taken while this process worked; it
// stops at once, because another poller may already be requesting.
var ErrLeaseLost = lease.ErrLost
