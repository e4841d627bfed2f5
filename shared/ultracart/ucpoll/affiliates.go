package ucpoll

import (
	"context"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

// AffiliateInterval is how soon the affiliate list is read again after a walk: a signup waits
// for the merchant's approval anyway, and every walk reads the whole list.
const AffiliateInterval = time.Hour

// snapshotWalk reads a whole listing that has no modification filter (UltraCart's affiliates),
// by offset from the start, and again every AffiliateInterval. A record that moves while a walk
// pages past it (one before it deleted) may be missed by that walk; the next walk reads it, so
// what is missed is late, never lost. Ingest keeps each record's state and makes a fact only of
// a change, so reading unchanged records again changes nothing.
type snapshotWalk struct {
	o    Options
	list func(api API, ctx context.Context, limit, offset int) (ultracartapi.Page, error)
}

func (w *snapshotWalk) begin(*Cursor) {}

func (w *snapshotWalk) open(c *Cursor, now time.Time) bool {
	if c.Began.IsZero() {
		c.Began = now
	}
	if c.WalkStarted.IsZero() {
		c.WalkStarted, c.Offset = now, 0
	}
	return true
}

func (w *snapshotWalk) fetch(ctx context.Context, api API, c *Cursor) (ultracartapi.Page, error) {
	return w.list(api, ctx, w.o.PageSize, c.Offset)
}

func (w *snapshotWalk) page(c *Cursor) string {
	return fmt.Sprintf("poll:%s:%s:%d:%d", Source, c.Stream, c.WalkStarted.Unix(), c.Offset)
}

func (w *snapshotWalk) advance(c *Cursor, p ultracartapi.Page, now time.Time) (atHead bool) {
	n := len(p.Records)
	// An empty page ends the walk whatever "more" says: asking again from the same offset would
	// get the same page.
	if p.ResultSet.More && n > 0 {
		c.Offset = max(p.ResultSet.NextOffset, c.Offset+n)
		c.Estimated = c.Done + int64(max(p.Total()-c.Offset, 0))
		return false
	}
	c.WalkStarted, c.Offset = time.Time{}, 0
	c.Estimated = c.Done
	c.CaughtUp = true
	c.NextRunAt = now.Add(max(w.o.Interval, AffiliateInterval))
	return true
}
