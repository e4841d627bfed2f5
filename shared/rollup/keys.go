package rollup

import (
	"fmt"
	"strconv"
)

// Part is the kind of rollup item: which period one item covers and which cells it holds.
type Part byte

// Parts. Day, cohort and subscription items belong to a generation (they are bucketed in its
// time zone); page view items do not (they are kept per UTC quarter hour, which any zone's day
// is made of).
const (
	PartDay      Part = 'D' // one local day: order, product, refund, excluded and conversion cells
	PartMonth    Part = 'M' // PartDay's order, refund and excluded cells summed over a local month, in the measures MonthMeasure keeps
	PartSubDay   Part = 'S' // one local day of subscription starts, ends and pauses
	PartSubMonth Part = 'T' // the same summed over a local month
	PartSubYear  Part = 'U' // the same summed over a local year
	PartCohort   Part = 'C' // one local month of first orders (or first sightings): cohort cells
	PartView     Part = 'V' // one UTC day of page views
)

// Layout numbers the parts and cells a generation's items are written in. A generation written
// in an earlier layout is rebuilt in this one (in the background; reports answer from the old
// generation, read as its layout was, until the new one is complete). Layout 2 added PartMonth.
const Layout = 2

// ItemKey names one rollup item: its part, its period (a Date for day parts, a Month for month
// parts, a year for PartSubYear) and its shard. Shards spread one period's writes over several
// items so that a busy day does not make every ingest wait for one row; a report adds the shards
// of a period together, so a contribution may land in any shard of its period.
type ItemKey struct {
	Part   Part
	Period int32
	Shard  uint16
}

// Shards is how many shards ingest spreads one period over. A month report reads at most
// 31 × Shards day items.
const Shards = 16

// BaseShard is the first shard number a rebuild writes its items to; ingest never uses them.
const BaseShard = 0x8000

// PeriodString is the period as the key shows it: YYYY-MM-DD, YYYY-MM or YYYY.
func (k ItemKey) PeriodString() string {
	switch k.Part {
	case PartDay, PartSubDay, PartView:
		return Date(k.Period).String()
	case PartMonth, PartSubMonth, PartCohort:
		return Month(k.Period).String()
	}
	return fmt.Sprintf("%04d", k.Period)
}

// PartitionKey is the item's pk: A#<account>#R#<generation>#<part>#<period>, or for page views,
// which belong to no generation, A#<account>#PVR#<UTC date>.
func PartitionKey(account string, gen int, part Part, period string) string {
	if part == PartView {
		return "A#" + account + "#PVR#" + period
	}
	return "A#" + account + "#R#" + strconv.Itoa(gen) + "#" + string(part) + "#" + period
}

// SortKey is the item's sk: its shard in hex.
func (k ItemKey) SortKey() string { return fmt.Sprintf("%04x", k.Shard) }

// ParseShard reads a sort key back.
func ParseShard(sk string) (uint16, bool) {
	n, err := strconv.ParseUint(sk, 16, 16)
	return uint16(n), err == nil && len(sk) == 4
}
