package ucpoll

import (
	"context"
	"time"

	"github.com/cartrelay/cartrelay/shared/poll"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Cursor is the stored position and progress of one (account, stream) walk. It lives at
// pk "A#<acct>", sk "CUR#ultracart#<stream>" and is only written under a version check, so a
// stale process can never move it backwards.
//
// Its Estimated is, for orders, extrapolated from the density walked so far, and for a "_since"
// walk what UltraCart says is left. Its Done counts a page in flight when a run died once, when
// its re-send is saved; a "_since" walk's harmless re-reads count each time.
type Cursor struct {
	// Progress holds what every source's cursor has: account, stream, counts, next run, stop.
	poll.Progress

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

	// Walked counts the orders of finished windows, for the density behind Estimated.
	Walked int64 `json:"walked,omitempty"`
	// WindowTotal is result_set.total_records of the current window.
	WindowTotal int `json:"window_total,omitempty"`
}

// Statuses that stop a stream until someone acts.
const (
	StatusDisabled     = "disabled"
	StatusUnauthorized = "unauthorized"
)

// Source is the cursor and lease key segment for UltraCart.
const Source = "ultracart"

// AccountPK is the partition of an account's cursors and lease.
func AccountPK(account string) string { return poll.AccountPK(account) }

// CursorSK is the sort key of a stream's cursor.
func CursorSK(stream string) string { return poll.CursorKey("", Source, stream).SK }

// LeaseSK is the sort key of the connection's lease; one per connection, so the streams of one
// UltraCart connection never request at once (UltraCart refuses concurrent requests).
const LeaseSK = "LEASE#" + Source

// LoadCursor reads a stream's cursor; found is false when it does not exist yet.
func LoadCursor(ctx context.Context, st store.Store, account, stream string) (Cursor, bool, error) {
	return poll.Load[Cursor](ctx, st, account, Source, stream)
}

// Due reports whether the schedule should enqueue a job for the stream at now: it has never
// run, or its NextRunAt has come, it is not stopped, and no poller holds the connection's
// lease (a running poller carries on by itself).
func Due(ctx context.Context, st store.Store, account, stream string, now time.Time) (bool, error) {
	return poll.Due[Cursor](ctx, st, account, Source, stream, store.Key{PK: AccountPK(account), SK: LeaseSK}, now,
		func(string) bool { return false })
}

// ErrBusy is returned when another process holds the connection's lease.
var ErrBusy = poll.ErrBusy

// ErrLeaseLost is returned when the lease expired or was taken while this process worked; it
// stops at once, because another poller may already be requesting.
var ErrLeaseLost = poll.ErrLeaseLost
