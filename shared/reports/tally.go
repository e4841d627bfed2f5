package reports

import (
	"cmp"
	"math"
	"slices"

	"github.com/cartrelay/cartrelay/shared/rollup"
)

// tally is a rollup.Sink that sums a rebuild's contributions, like a rollup.Delta of one shard
// (see unsharded), kept so the garbage collector has nothing to follow in it: cells and
// measures are numbered once, and each item's counters are a map keyed by those numbers. A
// Delta of a whole account is millions of strings and small maps, which the collector marked
// again on every cycle of the build, a fifth of its CPU at 100,000 orders.
type tally struct {
	cells    map[rollup.Cell]uint32
	labels   []rollup.Cell
	ids      []string // each cell's ID, once asked for
	measures map[string]uint16
	names    []string
	items    map[rollup.ItemKey]map[uint64]int64 // by cell number << 16 | measure number

	// Contributions add several measures of one cell of one item in a row.
	lastItem  rollup.ItemKey
	lastItems map[uint64]int64
	lastCell  rollup.Cell
	lastIdx   uint32
}

func newTally() *tally {
	return &tally{cells: map[rollup.Cell]uint32{}, measures: map[string]uint16{}, items: map[rollup.ItemKey]map[uint64]int64{}}
}

// Add implements rollup.Sink. Everything goes to shard 0: a build writes whole periods (see
// generationItems).
func (t *tally) Add(k rollup.ItemKey, c rollup.Cell, m string, v int64) {
	if v == 0 {
		return
	}
	k.Shard = 0
	if t.lastItems == nil || k != t.lastItem {
		t.lastItems = t.items[k]
		if t.lastItems == nil {
			t.lastItems = make(map[uint64]int64, 64)
			t.items[k] = t.lastItems
		}
		t.lastItem = k
	}
	if c != t.lastCell || len(t.labels) == 0 {
		idx, ok := t.cells[c]
		if !ok {
			idx = uint32(len(t.labels))
			t.cells[c] = idx
			t.labels = append(t.labels, c)
		}
		t.lastCell, t.lastIdx = c, idx
	}
	mi, ok := t.measures[m]
	if !ok {
		if len(t.names) > math.MaxUint16 {
			panic("rollup measures outnumber a tally's numbering") // a few hundred exist
		}
		mi = uint16(len(t.names))
		t.measures[m] = mi
		t.names = append(t.names, m)
	}
	t.lastItems[uint64(t.lastIdx)<<16|uint64(mi)] += v
}

// Keys lists the items with a non-zero counter, in key order.
func (t *tally) Keys() []rollup.ItemKey {
	keys := make([]rollup.ItemKey, 0, len(t.items))
	for k, cs := range t.items {
		for _, v := range cs {
			if v != 0 {
				keys = append(keys, k)
				break
			}
		}
	}
	slices.SortFunc(keys, func(a, b rollup.ItemKey) int {
		return cmp.Or(cmp.Compare(a.Part, b.Part), cmp.Compare(a.Period, b.Period), cmp.Compare(a.Shard, b.Shard))
	})
	return keys
}

// tallyCell is one cell of an item and its non-zero measures.
type tallyCell struct {
	label    rollup.Cell
	id       string
	measures []tallyMeasure
}

type tallyMeasure struct {
	name  string
	value int64
}

// Cells lists item k's cells that have a measure at all (zero or not, as a Delta keeps them),
// each with its non-zero measures, in the order the cells were first added to.
func (t *tally) Cells(k rollup.ItemKey) []tallyCell {
	cs := t.items[k]
	keys := make([]uint64, 0, len(cs))
	for tk := range cs {
		keys = append(keys, tk)
	}
	slices.Sort(keys) // by cell, then measure
	measures := make([]tallyMeasure, 0, len(keys))
	var out []tallyCell
	for i, tk := range keys {
		cell := uint32(tk >> 16)
		if i == 0 || cell != uint32(keys[i-1]>>16) {
			out = append(out, tallyCell{label: t.labels[cell], id: t.id(cell)})
			measures = measures[len(measures):]
		}
		if v := cs[tk]; v != 0 {
			measures = append(measures, tallyMeasure{t.names[uint16(tk)], v})
			out[len(out)-1].measures = measures
		}
	}
	return out
}

func (t *tally) id(cell uint32) string {
	for len(t.ids) < len(t.labels) {
		t.ids = append(t.ids, "")
	}
	if t.ids[cell] == "" {
		t.ids[cell] = t.labels[cell].ID()
	}
	return t.ids[cell]
}
