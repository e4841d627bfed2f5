package rollup

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/cartrelay/cartrelay/shared/store"
)

// Delta is a Sink that sums what it receives by item, cell and measure. Ingest fills one with
// the change of a contact's contributions and writes it as adds; a rebuild or a check fills one
// with everything.
type Delta struct {
	items map[ItemKey]map[Cell]map[string]int64

	// The measures of the cell last added to: a contribution adds several measures of one cell
	// in a row, and this spares the two lookups (one hashing the whole label) for all but the
	// first. Entries are never removed, so the map stays valid.
	lastItem ItemKey
	lastCell Cell
	last     map[string]int64
}

// NewDelta returns an empty Delta.
func NewDelta() *Delta { return &Delta{items: map[ItemKey]map[Cell]map[string]int64{}} }

// Add implements Sink.
func (d *Delta) Add(k ItemKey, c Cell, m string, v int64) {
	if v == 0 {
		return
	}
	if d.last != nil && k == d.lastItem && c == d.lastCell {
		d.last[m] += v
		return
	}
	cells := d.items[k]
	if cells == nil {
		cells = map[Cell]map[string]int64{}
		d.items[k] = cells
	}
	ms := cells[c]
	if ms == nil {
		ms = map[string]int64{}
		cells[c] = ms
	}
	ms[m] += v
	d.lastItem, d.lastCell, d.last = k, c, ms
}

// Merge adds o into d.
func (d *Delta) Merge(o *Delta) {
	for k, cells := range o.items {
		for c, ms := range cells {
			for m, v := range ms {
				d.Add(k, c, m, v)
			}
		}
	}
}

// Empty reports whether nothing is left once opposite contributions cancel out.
func (d *Delta) Empty() bool {
	for _, cells := range d.items {
		for _, ms := range cells {
			for _, v := range ms {
				if v != 0 {
					return false
				}
			}
		}
	}
	return true
}

// Each calls fn for every non-zero counter, items in key order.
func (d *Delta) Each(fn func(k ItemKey, c Cell, m string, v int64)) {
	for _, k := range d.Keys() {
		for c, ms := range d.items[k] {
			for m, v := range ms {
				if v != 0 {
					fn(k, c, m, v)
				}
			}
		}
	}
}

// Keys lists the items with a non-zero counter, in key order.
func (d *Delta) Keys() []ItemKey {
	keys := make([]ItemKey, 0, len(d.items))
	for k, cells := range d.items {
		if nonZero(cells) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, cmpItemKey)
	return keys
}

func nonZero(cells map[Cell]map[string]int64) bool {
	for _, ms := range cells {
		for _, v := range ms {
			if v != 0 {
				return true
			}
		}
	}
	return false
}

func cmpItemKey(a, b ItemKey) int {
	return cmp.Or(cmp.Compare(a.Part, b.Part), cmp.Compare(a.Period, b.Period), cmp.Compare(a.Shard, b.Shard))
}

// Add is one store add rendered from a Delta: the counters and labels of some cells of one item.
// An item whose change needs more counters or labels than one add takes gets several, which must
// go into separate transactions.
type Add struct {
	Item ItemKey
	Key  store.Key
	Add  map[string]int64
	Set  map[string]string
}

// Write is the add as a store write.
func (a Add) Write() store.Write { return store.AddTo(a.Key, a.Add, a.Set) }

// Adds renders the delta as store adds for generation gen of account. shardBase is added to
// every shard (ingest moves to other shards when an item grows too large). Each cell's label is
// set with its counters, so an item always names the cells it counts.
func (d *Delta) Adds(account string, gen int, shardBase uint16) []Add {
	var out []Add
	for _, k := range d.Keys() {
		k2 := k
		if k.Part != PartView {
			k2.Shard += shardBase
		}
		key := store.Key{PK: PartitionKey(account, gen, k.Part, k.PeriodString()), SK: k2.SortKey()}
		cells := d.items[k]
		order := make([]Cell, 0, len(cells))
		for c := range cells {
			order = append(order, c)
		}
		slices.Sort(order)
		cur := Add{Item: k2, Key: key, Add: map[string]int64{}, Set: map[string]string{}}
		for _, c := range order {
			ms := cells[c]
			id := c.ID()
			for _, m := range sortedMeasures(ms) {
				if len(cur.Add) == store.MaxAddCounters || (cur.Set[id] == "" && len(cur.Set) == store.MaxAddLabels) {
					out = append(out, cur)
					cur = Add{Item: k2, Key: key, Add: map[string]int64{}, Set: map[string]string{}}
				}
				cur.Set[id] = string(c)
				cur.Add[CounterName(id, m)] = ms[m]
			}
		}
		if len(cur.Add) > 0 {
			out = append(out, cur)
		}
	}
	return out
}

// sortedMeasures lists a cell's non-zero measures in name order.
func sortedMeasures(ms map[string]int64) []string {
	out := make([]string, 0, len(ms))
	for m, v := range ms {
		if v != 0 {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

// AddStored adds a stored rollup item's counters into d under k. Every counter names its cell by
// id, and the item holds each id's label; a counter without one is a damaged item.
func (d *Delta) AddStored(k ItemKey, it store.Item) error {
	for name, v := range it.Counters {
		id, m, ok := SplitCounter(name)
		label, found := it.Labels[id]
		if !ok || !found {
			return fmt.Errorf("rollup item %s / %s: counter %q names no cell", it.PK, it.SK, name)
		}
		d.Add(k, Cell(label), m, v)
	}
	return nil
}

// WithoutShards is d with every item's shard set to zero: what a period holds, however it was
// spread.
func (d *Delta) WithoutShards() *Delta {
	out := NewDelta()
	for k, cells := range d.items {
		k.Shard = 0
		for c, ms := range cells {
			for m, v := range ms {
				out.Add(k, c, m, v)
			}
		}
	}
	return out
}

// Cells returns the cells of item k with their measures (shared with d; do not change them).
func (d *Delta) Cells(k ItemKey) map[Cell]map[string]int64 { return d.items[k] }

// Difference is one counter on which two deltas disagree.
type Difference struct {
	Item    ItemKey
	Cell    Cell
	Measure string
	Want    int64 // in the reference (the recomputation)
	Got     int64 // in the one checked (the stored rollups)
}

// Compare lists where got differs from want, in a stable order.
func Compare(want, got *Delta) []Difference {
	var out []Difference
	seen := map[ItemKey]bool{}
	walk := func(k ItemKey) {
		if seen[k] {
			return
		}
		seen[k] = true
		wc, gc := want.items[k], got.items[k]
		cells := map[Cell]bool{}
		for c := range wc {
			cells[c] = true
		}
		for c := range gc {
			cells[c] = true
		}
		for c := range cells {
			ms := map[string]bool{}
			for m := range wc[c] {
				ms[m] = true
			}
			for m := range gc[c] {
				ms[m] = true
			}
			for m := range ms {
				if w, g := wc[c][m], gc[c][m]; w != g {
					out = append(out, Difference{Item: k, Cell: c, Measure: m, Want: w, Got: g})
				}
			}
		}
	}
	for k := range want.items {
		walk(k)
	}
	for k := range got.items {
		walk(k)
	}
	slices.SortFunc(out, func(a, b Difference) int {
		return cmp.Or(cmpItemKey(a.Item, b.Item), cmp.Compare(a.Cell, b.Cell), cmp.Compare(a.Measure, b.Measure))
	})
	return out
}
