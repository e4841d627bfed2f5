package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/store"
)

// Cursor is the stored position and progress of one (account, stream) walk. It lives at
// pk "A#<acct>", sk "CUR#ultracart#<stream>" and is only written under a version check, so a
// stale process can never move it backwards.
type Cursor struct {
	Account string `json:"account"`
	Source  string `json:"source"`
	Stream  string `json:"stream"`

	// Began is where the walk started (the backfill's start date).
	Began time.Time `json:"began"`
	// From and To bound the current window, [From, To); To is zero between windows.
	From time.Time `json:"from"`
	To   time.Time `json:"to,omitzero"`
	// Offset is the next page's offset inside the window.
	Offset int `json:"offset"`
	// Window is the length the next window gets; it grows over quiet periods.
	Window time.Duration `json:"window"`

	// Done counts the orders of saved pages: put on the ingest queue and acknowledged. A page
	// in flight when a run died counts once, when its re-send is saved.
	Done int64 `json:"done"`
	// Walked counts the orders of finished windows, for the density behind Estimated.
	Walked int64 `json:"walked"`
	// WindowTotal is result_set.total_records of the current window.
	WindowTotal int `json:"window_total"`
	// Estimated is the expected number of orders from Began to now.
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
	_, err = st.Get(ctx, AccountPK(account), LeaseSK)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, store.ErrNotFound):
		return true, nil
	}
	return false, fmt.Errorf("read lease of %s: %w", account, err)
}

// Streams lists the streams the schedule keeps polling for an UltraCart connection.
func Streams() []string { return []string{Orders, Refunds} }
