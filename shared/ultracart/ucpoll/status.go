package ucpoll

import (
	"context"
	"errors"
	"time"

	"github.com/cartrelay/cartrelay/shared/poll"
	"github.com/cartrelay/cartrelay/shared/store"
)

// StatusBroken stops a stream whose connection UltraCart no longer accepts (a refused refresh
// token, or a 401 that a renewed token did not cure); the merchant must connect again.
const StatusBroken = "broken"

// Stop marks account's streams as stopped with status (StatusDisabled, StatusUnauthorized or
// StatusBroken) and reason, so the schedule stops enqueueing them until Resume. A stream that
// never ran gets a cursor that holds only the stop.
func Stop(ctx context.Context, st store.Store, account, status, reason string, streams ...string) error {
	var errs []error
	for _, stream := range streams {
		errs = append(errs, updateCursor(ctx, st, account, stream, func(c *Cursor, found bool) (del, write bool) {
			if c.Status == status && c.LastError == reason {
				return false, false
			}
			c.Status, c.LastError = status, reason
			return false, true
		}))
	}
	return errors.Join(errs...)
}

// Resume clears the stop of account's streams, after the merchant connected again: each is due
// at once and carries on from its saved position. A cursor that only ever held a stop is
// removed, so its stream starts its backfill as if new.
func Resume(ctx context.Context, st store.Store, account string, streams ...string) error {
	var errs []error
	for _, stream := range streams {
		errs = append(errs, updateCursor(ctx, st, account, stream, func(c *Cursor, found bool) (del, write bool) {
			if !found || c.Status == "" {
				return false, false
			}
			if c.Requests == 0 {
				// Only ever stopped, never walked: start as a new stream would.
				return true, false
			}
			c.Status, c.NextRunAt = "", time.Time{}
			return false, true
		}))
	}
	return errors.Join(errs...)
}

// Rewind makes a walk of orders or refunds that began after since start again at since, so a
// backfill asked to reach further back does. The pages walked already are sent again; ingest
// recognises the records it has, so nothing counts twice. Other streams read all of history
// and are left alone. It reports whether the walk was moved.
func Rewind(ctx context.Context, st store.Store, account, stream string, since time.Time) (bool, error) {
	if stream != Orders && stream != Refunds {
		return false, nil
	}
	moved := false
	err := updateCursor(ctx, st, account, stream, func(c *Cursor, found bool) (del, write bool) {
		moved = found && !c.Began.IsZero() && since.Before(c.Began)
		if !moved {
			return false, false
		}
		// A new walk from since: only who it is, its request count, its stop and the stored
		// version stay.
		p := c.Progress
		p.Done, p.Estimated, p.CaughtUp, p.NextRunAt, p.LastRunAt = 0, 0, false, time.Time{}, time.Time{}
		*c = Cursor{Progress: p, Began: since, From: since}
		return false, true
	})
	return moved, err
}

// updateCursor applies change to a stream's cursor under its version check, re-reading and
// trying again when a poller saved it meanwhile.
func updateCursor(ctx context.Context, st store.Store, account, stream string, change func(c *Cursor, found bool) (del, write bool)) error {
	return poll.Update(ctx, st, account, Source, stream, change)
}
