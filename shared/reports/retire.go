package reports

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cartrelay/cartrelay/shared/rollup"
	"github.com/cartrelay/cartrelay/shared/store"
)

// PartSpan is the periods of one part that an account's history has rollup items in, as the
// last build found them (Period as rollup.ItemKey counts it: a date, a month or a year).
type PartSpan struct {
	Part string `json:"part"`
	From int32  `json:"from"`
	To   int32  `json:"to"`
}

// ClearCursor is how far the deletion of a retired generation's items has come: every
// partition before Period of the Part-th part of the state's span is gone.
type ClearCursor struct {
	Part   int   `json:"part"`
	Period int32 `json:"period"`
}

// spanMargin widens the span a build found: the same history bucketed in another time zone
// falls at most a day either side of its UTC date, so two zones' local dates differ by at most
// two days, and their months and years by at most one.
func spanMargin(p rollup.Part) int32 {
	switch p {
	case rollup.PartDay, rollup.PartSubDay:
		return 2
	}
	return 1
}

// spanOf lists the periods per part a build has items in (keys), widened by spanMargin.
func spanOf(keys []rollup.ItemKey) []PartSpan {
	byPart := map[rollup.Part]*PartSpan{}
	var parts []rollup.Part
	for _, k := range keys {
		if k.Part == rollup.PartView {
			continue // page view items belong to no generation
		}
		s := byPart[k.Part]
		if s == nil {
			s = &PartSpan{Part: string(k.Part), From: k.Period, To: k.Period}
			byPart[k.Part] = s
			parts = append(parts, k.Part)
		}
		s.From, s.To = min(s.From, k.Period), max(s.To, k.Period)
	}
	slices.Sort(parts)
	out := make([]PartSpan, 0, len(parts))
	for _, p := range parts {
		s := *byPart[p]
		s.From, s.To = s.From-spanMargin(p), s.To+spanMargin(p)
		out = append(out, s)
	}
	return out
}

// clearSaveEvery is how many partitions a clear deletes between two saves of its cursor.
const clearSaveEvery = 256

// ClearProgress is how far ClearRetired is: partitions looked at of those the retired
// generations span, and items deleted.
type ClearProgress struct {
	Generation int
	Partitions int
	Total      int
	Items      int
}

// ClearRetired deletes the rollup items of the account's retired generations (those a rebuild
// replaced, or an abandoned attempt wrote), partition by partition over the span of periods
// the last build found, and takes each generation off the state's list once its last partition
// is gone. It saves how far it came every few hundred partitions, so a run cut short (by until,
// a crash or a failure) is carried on by the next one; deleting is idempotent, so two runs at
// once only repeat each other's work. It stops once until has passed (zero: when done) and
// returns how many items it deleted. Reports never read a retired generation, so they answer
// the same throughout.
func ClearRetired(ctx context.Context, st store.Store, account string, now func() time.Time, until time.Time, progress func(ClearProgress)) (int, error) {
	deleted := 0
	for {
		s, err := LoadState(ctx, st, account, "")
		if err != nil {
			return deleted, err
		}
		if len(s.Retired) == 0 || len(s.Span) == 0 {
			return deleted, nil // nothing retired, or no build has yet found the history's span
		}
		g := s.Retired[0]
		if g.N == s.Active.N || (s.Building != nil && g.N == s.Building.N) {
			return deleted, fmt.Errorf("the reports state of %s lists generation %d as retired and in use; it is left alone", account, g.N)
		}
		total := 0
		for _, p := range s.Span {
			total += int(p.To-p.From) + 1
		}
		cur := ClearCursor{Period: s.Span[0].From}
		if g.Cleared != nil {
			cur = *g.Cleared
		}
		pr := ClearProgress{Generation: g.N, Total: total}
		for i := range cur.Part {
			pr.Partitions += int(s.Span[i].To-s.Span[i].From) + 1
		}
		if cur.Part < len(s.Span) {
			pr.Partitions += int(max(cur.Period-s.Span[cur.Part].From, 0))
		}
		done, sinceSave := true, 0
	walk:
		for ; cur.Part < len(s.Span); cur.Part++ {
			sp := s.Span[cur.Part]
			part := rollup.Part(sp.Part[0])
			for ; cur.Period <= sp.To; cur.Period++ {
				if sinceSave == clearSaveEvery {
					if err := saveCursor(ctx, st, account, g.N, cur); err != nil {
						return deleted, err
					}
					sinceSave = 0
					if !until.IsZero() && !now().Before(until) {
						done = false
						break walk
					}
				}
				pk := rollup.PartitionKey(account, g.N, part, rollup.ItemKey{Part: part, Period: cur.Period}.PeriodString())
				n, err := store.ClearPartition(ctx, st, pk)
				deleted += n
				if err != nil {
					return deleted, fmt.Errorf("delete the rollups of retired generation %d of %s: %w", g.N, account, err)
				}
				sinceSave++
				pr.Partitions++
				pr.Items += n
				if progress != nil {
					progress(pr)
				}
			}
			if cur.Part+1 < len(s.Span) {
				cur.Period = s.Span[cur.Part+1].From
			}
		}
		if !done {
			return deleted, nil
		}
		if err := dropRetired(ctx, st, account, g.N); err != nil {
			return deleted, err
		}
		if !until.IsZero() && !now().Before(until) {
			return deleted, nil
		}
	}
}

// saveCursor records how far the clearing of retired generation n has come.
func saveCursor(ctx context.Context, st store.Store, account string, n int, cur ClearCursor) error {
	return updateRetired(ctx, st, account, n, func(s *State, i int) {
		c := cur
		s.Retired[i].Cleared = &c
	})
}

// dropRetired takes retired generation n, all of whose items are gone, off the state's list.
func dropRetired(ctx context.Context, st store.Store, account string, n int) error {
	return updateRetired(ctx, st, account, n, func(s *State, i int) {
		s.Retired = slices.Delete(s.Retired, i, i+1)
	})
}

func updateRetired(ctx context.Context, st store.Store, account string, n int, fn func(s *State, i int)) error {
	for attempt := 0; ; attempt++ {
		s, err := LoadState(ctx, st, account, "")
		if err != nil {
			return err
		}
		i := slices.IndexFunc(s.Retired, func(g Generation) bool { return g.N == n })
		if i < 0 {
			return nil // another run finished it
		}
		fn(&s, i)
		_, err = SaveState(ctx, st, account, s)
		if errors.Is(err, store.ErrConditionFailed) && attempt < 8 {
			continue
		}
		return err
	}
}
