package ucpoll

import (
	"context"
	"errors"
	"fmt"
	"time"

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
		*c = Cursor{Account: c.Account, Source: c.Source, Stream: c.Stream, Began: since, From: since,
			Requests: c.Requests, Status: c.Status, LastError: c.LastError, LastErrorAt: c.LastErrorAt, version: c.version}
		return false, true
	})
	return moved, err
}

// updateCursor applies change to a stream's cursor under its version check, re-reading and
// trying again when a poller saved it meanwhile.
func updateCursor(ctx context.Context, st store.Store, account, stream string, change func(c *Cursor, found bool) (del, write bool)) error {
	var err error
	for range 5 {
		var c Cursor
		var found bool
		c, found, err = LoadCursor(ctx, st, account, stream)
		if err != nil {
			return err
		}
		del, write := change(&c, found)
		var w store.Write
		switch {
		case del:
			w = store.Write{Op: store.OpDelete, Key: store.Key{PK: AccountPK(account), SK: CursorSK(stream)},
				Cond: store.VersionEquals, Expect: c.version}
		case write:
			if w, _, err = c.write(); err != nil {
				return err
			}
		default:
			return nil
		}
		err = st.Write(ctx, w)
		if !errors.Is(err, store.ErrConditionFailed) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("update cursor %s/%s: %w", account, stream, err)
	}
	return nil
}
