package tcpoll

import (
	"context"
	"slices"
	"time"

	"github.com/cartrelay/cartrelay/shared/poll"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Cursor is the stored position and progress of an account's transaction walk. It lives at
// pk "A#<acct>", sk "CUR#thrivecart#transactions" and is only written under a version check,
// so a stale process can never move it backwards.
//
// GET /transactions has no date filter and pages by number, so the position is a high-water
// mark rather than a window: High is the newest transaction time already put on the ingest
// queue and Seen the event ids sent within Overlap of it, so a walk that re-reads that stretch
// (for transactions that became visible late) sends only what is new.
//
// Its Estimated is the expected number of records of the backfill (meta.total when it began).
type Cursor struct {
	// Progress holds what every source's cursor has: account, stream, counts, next run, stop.
	poll.Progress

	// High is the newest transaction time sent; zero until the backfill has finished.
	High time.Time `json:"high,omitzero"`
	// Seen are the event ids sent at or after High-Overlap (the ids at High among them).
	Seen []Seen `json:"seen,omitempty"`
	// Order is how ThriveCart sorts the list: OrderNewestFirst, OrderOldestFirst, or "" until
	// a page has shown it.
	Order string `json:"order,omitempty"`
	// ResumePage is where an oldest-first walk starts: the last page that held records, since
	// new transactions are appended after it.
	ResumePage int `json:"resume_page,omitempty"`
	// Backfilled is set once a walk has covered every page.
	Backfilled bool `json:"backfilled"`
	// Walk is the walk in progress, nil between walks.
	Walk *Walk `json:"walk,omitempty"`
}

// Seen is one transaction already sent.
type Seen struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

// Walk is a pass over the list from its first page (or ResumePage) to where nothing is new.
type Walk struct {
	// Page is the next page to read (1-based).
	Page int `json:"page"`
	// Floor ends a newest-first walk at the first page holding a transaction older than it:
	// High-Overlap; zero during the backfill, which reads every page.
	Floor time.Time `json:"floor,omitzero"`
	// Top is the newest transaction time seen in this walk.
	Top time.Time `json:"top,omitzero"`
	// Edge is the time of the last transaction sent in list order and EdgeIDs the ids sent at
	// it. A transaction listed before the edge was sent on an earlier page, or is new since the
	// walk began (the next walk picks it up); either way it is skipped, so a page shifted by new
	// transactions re-sends nothing.
	Edge    time.Time `json:"edge,omitzero"`
	EdgeIDs []string  `json:"edge_ids,omitempty"`
	// Sent are the ids sent in this walk within Overlap of Top; they join Cursor.Seen at the end.
	Sent []Seen `json:"sent,omitempty"`
	// Unordered is set when a page contradicted the list order: the edge is then not trusted
	// and every transaction not yet in Seen is sent (ingest's content dedupe absorbs repeats).
	Unordered bool `json:"unordered,omitempty"`
	// Total is meta.total at the walk's first page.
	Total int `json:"total"`
}

// List orders.
const (
	OrderNewestFirst = "newest-first"
	OrderOldestFirst = "oldest-first"
)

// Statuses that stop polling until the merchant acts.
const (
	// StatusUnauthorized: ThriveCart refused the API key (it was regenerated or revoked).
	StatusUnauthorized = "unauthorized"
	// StatusNoKey: the account has no ThriveCart API key.
	StatusNoKey = "no_api_key"
)

// StatusMessage is what the merchant is shown for a status.
func StatusMessage(status string) string {
	switch status {
	case StatusUnauthorized:
		return "ThriveCart refused the API key. Paste a current key from ThriveCart's Settings > API & webhooks to resume polling."
	case StatusNoKey:
		return "No ThriveCart API key is saved. Paste one from ThriveCart's Settings > API & webhooks to start polling."
	}
	return ""
}

// Source is the cursor and lease key segment for ThriveCart.
const Source = "thrivecart"

// Stream is the one stream: every transaction type in one list.
const Stream = "transactions"

// AccountPK is the partition of an account's cursors and lease.
func AccountPK(account string) string { return poll.AccountPK(account) }

// CursorSK is the sort key of the cursor.
const CursorSK = "CUR#" + Source + "#" + Stream

// LeaseSK is the sort key of the account's ThriveCart lease.
const LeaseSK = "LEASE#" + Source

// RateLimitKey is the partition of the account's shared ThriveCart bucket.
func RateLimitKey(account string) string { return "A#" + account + "#R#thrivecart:minute" }

// LoadCursor reads the account's cursor; found is false when it does not exist yet.
func LoadCursor(ctx context.Context, st store.Store, account string) (Cursor, bool, error) {
	return poll.Load[Cursor](ctx, st, account, Source, Stream)
}

// NoKeyRecheck is how often an account without a ThriveCart API key is looked at again; every
// account gets a ThriveCart job, since the schedule cannot read secrets to tell which have one.
const NoKeyRecheck = time.Hour

// Due reports whether the schedule should enqueue a job for account at now: it has never run,
// or its NextRunAt has come, it is not stopped (a missing key is checked again every
// NoKeyRecheck), and no poller holds the lease.
func Due(ctx context.Context, st store.Store, account string, now time.Time) (bool, error) {
	return poll.Due[Cursor](ctx, st, account, Source, Stream, store.Key{PK: AccountPK(account), SK: LeaseSK}, now,
		func(status string) bool { return status == StatusNoKey })
}

// Resume clears a stop (after the merchant saved a new key): the walk is due at once and
// carries on from its saved position.
func Resume(ctx context.Context, st store.Store, account string) error {
	return poll.Update(ctx, st, account, Source, Stream, func(c *Cursor, found bool) (del, write bool) {
		if !found || c.Status == "" {
			return false, false
		}
		c.Status, c.NextRunAt = "", time.Time{}
		return false, true
	})
}

// maxSeen caps the ids kept, so the cursor stays a small item however busy the overlap is;
// an id dropped only costs a re-send, which ingest's content dedupe absorbs.
const maxSeen = 2000

// pruneSeen keeps the ids at or after floor, newest first, at most maxSeen, without
// duplicates.
func pruneSeen(s []Seen, floor time.Time) []Seen {
	out := make([]Seen, 0, len(s))
	have := map[string]bool{}
	for _, x := range s {
		if x.At.Before(floor) || have[x.ID] {
			continue
		}
		have[x.ID] = true
		out = append(out, x)
	}
	slices.SortStableFunc(out, func(a, b Seen) int { return b.At.Compare(a.At) })
	if len(out) > maxSeen {
		out = out[:maxSeen]
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func hasID(s []Seen, id string) bool {
	return slices.ContainsFunc(s, func(x Seen) bool { return x.ID == id })
}

// ErrBusy is returned when another process holds the account's lease.
var ErrBusy = poll.ErrBusy

// ErrLeaseLost is returned when the lease expired or was taken while this process worked.
var ErrLeaseLost = poll.ErrLeaseLost
