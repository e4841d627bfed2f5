package ucpoll

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/ultracart"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

// Streams.
const (
	// Orders walks payment dates: every paid order.
	Orders = "orders"
	// Refunds walks refund dates: orders refunded after they were walked as paid.
	Refunds = "refunds"
	// AutoOrders walks auto orders created or modified since the last walk.
	AutoOrders = "auto_orders"
	// Customers walks customer profiles created or modified since the last walk.
	Customers = "customers"
	// Items walks catalogue items created or modified since the last walk.
	Items = "items"
	// Affiliates reads the whole affiliate list every AffiliateInterval (affiliates.go).
	Affiliates = "affiliates"
)

// The event names polled records are ingested as: the webhook events whose payload is the full
// record, as the listing returns it.
const (
	EventOrder     = "order_update"
	EventAutoOrder = "auto_order_update"
	EventCustomer  = "customer_update"
	EventItem      = "item_update"
)

// stream is what one stream adds to the shared run loop.
type stream struct {
	name  string
	event string
	walk  walker
}

// walker is the stream-specific part of a walk: where the next page is, how to ask for it, and
// how the cursor moves past it. Everything around it (lease, rate buckets, retries, saving the
// cursor, the time budget) is the run loop's, the same for every stream.
type walker interface {
	// begin sets up a cursor that was never stored.
	begin(c *Cursor)
	// open makes sure a window or walk is open; false when there is nothing to ask about yet.
	open(c *Cursor, now time.Time) bool
	fetch(ctx context.Context, api API, c *Cursor) (ultracartapi.Page, error)
	// page names the page c points at; a page re-sent after a crash gets the same name.
	page(c *Cursor) string
	// advance moves c past p and reports whether the walk reached the present, which ends the
	// run. The loop has already counted p's records into c.Done.
	advance(c *Cursor, p ultracartapi.Page, now time.Time) (atHead bool)
}

// streams lists every stream in the order the schedule and backfill take them: orders first,
// since they carry the money, then what refers to them.
func streams(o Options) []stream {
	return []stream{
		{Orders, EventOrder, &windowed{o: o, filter: func(from, end time.Time) ultracartapi.OrderFilter {
			return ultracartapi.OrderFilter{PaymentDateBegin: from, PaymentDateEnd: end}
		}}},
		{Refunds, EventOrder, &windowed{o: o, filter: func(from, end time.Time) ultracartapi.OrderFilter {
			return ultracartapi.OrderFilter{RefundDateBegin: from, RefundDateEnd: end}
		}}},
		{AutoOrders, EventAutoOrder, &sinceWalk{o: o, list: API.AutoOrdersSince}},
		{Customers, EventCustomer, &sinceWalk{o: o, list: API.CustomersSince, modified: lastModified}},
		{Items, EventItem, &sinceWalk{o: o, list: API.ItemsSince, modified: lastModified}},
		{Affiliates, ultracart.EventAffiliate, &snapshotWalk{o: o, list: API.Affiliates}},
	}
}

// Streams lists the streams the schedule keeps polling for an UltraCart connection.
func Streams() []string {
	var out []string
	for _, s := range streams(Options{}) {
		out = append(out, s.name)
	}
	return out
}

func lookup(name string, o Options) (stream, bool) {
	for _, s := range streams(o) {
		if s.name == name {
			return s, true
		}
	}
	return stream{}, false
}

// windowed walks a date range of the order query in windows [From, To), each paged by offset;
// the dates it filters on (payment, refund) never change, so offsets inside a window are stable.
type windowed struct {
	o      Options
	filter func(from, end time.Time) ultracartapi.OrderFilter
}

func (w *windowed) begin(c *Cursor) {
	c.Began, c.From, c.Window = w.o.Start, w.o.Start, w.o.Window
}

// head is the latest time the walk may ask about.
func (w *windowed) head(now time.Time) time.Time { return now.Add(-w.o.Lag) }

func (w *windowed) open(c *Cursor, now time.Time) bool {
	if !c.To.IsZero() {
		return true
	}
	head := w.head(now)
	if !c.From.Before(head) {
		return false
	}
	if c.Window <= 0 {
		c.Window = w.o.Window
	}
	to := c.From.Add(c.Window)
	if to.After(head) {
		to = head
	}
	c.To, c.Offset, c.WindowTotal = to, 0, 0
	return true
}

func (w *windowed) fetch(ctx context.Context, api API, c *Cursor) (ultracartapi.Page, error) {
	// To is exclusive; UltraCart's end is inclusive, and its times have whole seconds.
	f := w.filter(c.From, c.To.Add(-time.Millisecond))
	f.QueryTarget = w.queryTarget(c)
	return api.QueryOrders(ctx, f, w.o.PageSize, c.Offset)
}

// queryTarget is Options.QueryTarget when set. Otherwise a window that ended more than
// CacheAfter before the run began is read from UltraCart's cache, which is much faster, and the
// newest ones from the origin, since the cache may lack the last few minutes of orders.
func (w *windowed) queryTarget(c *Cursor) string {
	if w.o.QueryTarget != "" {
		return w.o.QueryTarget
	}
	if !c.LastRunAt.IsZero() && c.To.Before(c.LastRunAt.Add(-CacheAfter)) {
		return "cache"
	}
	return "origin"
}

// CacheAfter is how old a window's end must be before it is read from UltraCart's cache.
const CacheAfter = time.Hour

func (w *windowed) page(c *Cursor) string {
	return fmt.Sprintf("poll:%s:%s:%d:%d", Source, c.Stream, c.From.Unix(), c.Offset)
}

func (w *windowed) advance(c *Cursor, p ultracartapi.Page, now time.Time) (atHead bool) {
	n := len(p.Records)
	c.WindowTotal = p.Total()
	if p.ResultSet.More && n > 0 {
		c.Offset = max(p.ResultSet.NextOffset, c.Offset+n)
		w.estimate(c, now)
		return false
	}
	total := c.Offset + n
	c.Walked += int64(total)
	next := c.To
	if !next.Before(w.head(now).Add(-w.o.Overlap)) {
		// At the head: start the next window Overlap back, to pick up orders that became
		// visible after their payment time had already been walked past.
		next = c.To.Add(-w.o.Overlap)
		if next.Before(c.From) {
			next = c.From
		}
		atHead = true
		c.CaughtUp = true
		c.NextRunAt = now.Add(w.o.Interval)
	}
	switch {
	case total < w.o.PageSize:
		c.Window = min(c.Window*2, w.o.MaxWindow)
	case total > 10*w.o.PageSize:
		c.Window = max(c.Window/2, time.Minute)
	}
	c.From, c.To, c.Offset, c.WindowTotal = next, time.Time{}, 0, 0
	w.estimate(c, now)
	return atHead
}

// estimate extrapolates the density of the walked span to what is left up to now.
func (w *windowed) estimate(c *Cursor, now time.Time) {
	walked := c.From.Sub(c.Began)
	left := w.head(now).Sub(c.From)
	est := c.Walked + int64(c.WindowTotal)
	if walked > 0 && left > 0 {
		if !c.To.IsZero() {
			left = w.head(now).Sub(c.To)
		}
		est += int64(float64(c.Walked) * float64(left) / float64(walked))
	}
	c.Estimated = est
}

// sinceWalk walks a "_since" listing: each walk asks for what changed since the last one (all of
// history the first time), and the next walk starts from the newest change this one saw, or from
// when this one began, whichever is later, less the overlap.
//
// When the listing is sorted oldest change first (modified is set and the pages bear it out),
// the walk moves its _since up to each page's last change instead of paging by offset: a record
// changed during the walk then moves behind the position rather than shifting unread records
// in front of it, where an offset would skip them. A run of more than a page of records changed
// in the same second is paged by offset; so is a listing with no usable modification time.
type sinceWalk struct {
	o    Options
	list func(api API, ctx context.Context, since time.Time, limit, offset int) (ultracartapi.Page, error)
	// modified reads a record's last change; nil when the records carry none.
	modified func(json.RawMessage) (time.Time, bool)
}

// keyStep is how far below a page's last change the next page's _since goes. UltraCart's times
// have whole seconds, and whether _since includes its own second is not documented, so the
// records of that second are asked for again.
const keyStep = time.Second

func (w *sinceWalk) begin(*Cursor) {}

func (w *sinceWalk) open(c *Cursor, now time.Time) bool {
	if c.Began.IsZero() {
		c.Began = now
	}
	if !c.WalkStarted.IsZero() {
		return true
	}
	c.WalkStarted, c.WalkMax, c.Offset, c.ByOffset = now, time.Time{}, 0, false
	c.Key = time.Time{}
	if !c.Since.IsZero() {
		c.Key = c.Since.Add(-w.o.Overlap)
	}
	return true
}

func (w *sinceWalk) fetch(ctx context.Context, api API, c *Cursor) (ultracartapi.Page, error) {
	return w.list(api, ctx, c.Key, w.o.PageSize, c.Offset)
}

func (w *sinceWalk) page(c *Cursor) string {
	var key int64
	if !c.Key.IsZero() {
		key = c.Key.Unix()
	}
	return fmt.Sprintf("poll:%s:%s:%d:%d:%d", Source, c.Stream, c.WalkStarted.Unix(), key, c.Offset)
}

func (w *sinceWalk) advance(c *Cursor, p ultracartapi.Page, now time.Time) (atHead bool) {
	n := len(p.Records)
	// A time past now (plus the overlap, for UltraCart's clock running ahead) is bad data; moving
	// the position there would skip everything up to it.
	ceiling := now.Add(w.o.Overlap)
	sorted := w.modified != nil && !c.ByOffset
	var last time.Time
	atLast := 0 // records of this page changed in the same second as its last one
	for _, rec := range p.Records {
		var t time.Time
		ok := false
		if w.modified != nil {
			t, ok = w.modified(rec)
		}
		if !ok || t.After(ceiling) {
			sorted = false
			continue
		}
		if t.Before(last) {
			sorted = false
		}
		if t.Equal(last) {
			atLast++
		} else {
			atLast = 1
		}
		last = t
		if t.After(c.WalkMax) {
			c.WalkMax = t
		}
	}
	if p.ResultSet.More && n > 0 {
		c.Estimated = c.Done + int64(max(p.Total()-c.Offset-n, 0))
		if w.modified != nil && !sorted {
			// Once a page is out of order, positions by time cannot be trusted for this walk.
			c.ByOffset = true
		}
		if next := last.Add(-keyStep); sorted && next.After(c.Key) {
			// The listing from next starts with what this page ended on: the records of its
			// last second (all read, whichever way _since treats its own second), after those
			// of the second before if _since includes it. Skipping the former is safe either
			// way; the latter, if any, are read again.
			c.Key, c.Offset = next, atLast
			return false
		}
		c.Offset = max(p.ResultSet.NextOffset, c.Offset+n)
		return false
	}
	// The end of the listing. Whatever changes from here on is stamped after WalkStarted (give or
	// take the lag) and after WalkMax (give or take the overlap).
	next := c.WalkStarted.Add(-w.o.Lag)
	if c.WalkMax.After(next) {
		next = c.WalkMax
	}
	if next.After(c.Since) {
		c.Since = next
	}
	c.WalkStarted, c.WalkMax, c.Key, c.Offset, c.ByOffset = time.Time{}, time.Time{}, time.Time{}, 0, false
	c.Estimated = c.Done
	c.CaughtUp = true
	c.NextRunAt = now.Add(w.o.Interval)
	return true
}

// lastModified reads last_modified_dts, the modification time of customers and items.
func lastModified(rec json.RawMessage) (time.Time, bool) {
	var doc struct {
		LastModified string `json:"last_modified_dts"`
	}
	if json.Unmarshal(rec, &doc) != nil || doc.LastModified == "" {
		return time.Time{}, false
	}
	t, err := ultracartapi.ParseTime(doc.LastModified)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}
