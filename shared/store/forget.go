package store

import (
	"context"
	"errors"
	"slices"
)

// DeleteIfExists removes the item at k and reports whether there was one.
func DeleteIfExists(ctx context.Context, s Store, k Key) (bool, error) {
	err := s.Write(ctx, DeleteKey(k, Exists))
	if errors.Is(err, ErrConditionFailed) {
		return false, nil
	}
	return err == nil, err
}

// DeletePartition removes every live item of partition pk and returns how many there were.
func DeletePartition(ctx context.Context, s Store, pk string) (int, error) {
	n := 0
	for {
		p, err := s.Query(ctx, Query{PK: pk})
		if err != nil {
			return n, err
		}
		for _, it := range p.Items {
			ok, err := DeleteIfExists(ctx, s, Key{PK: it.PK, SK: it.SK})
			if err != nil {
				return n, err
			}
			if ok {
				n++
			}
		}
		if p.Next == "" || len(p.Items) == 0 {
			return n, nil
		}
	}
}

// ClearPartition removes every item of partition pk, a page at a time, each page's items in
// transactions of up to MaxTransactWrites unconditional deletes (far fewer round trips than
// DeletePartition, for partitions nothing writes to any more, such as a retired generation's
// rollups). It returns how many items it found; running it again after a failure or a crash
// finishes the job.
func ClearPartition(ctx context.Context, s Store, pk string) (int, error) {
	n := 0
	for {
		p, err := s.Query(ctx, Query{PK: pk})
		if err != nil {
			return n, err
		}
		for batch := range slices.Chunk(p.Items, MaxTransactWrites) {
			ws := make([]Write, len(batch))
			for i, it := range batch {
				ws[i] = DeleteKey(Key{PK: it.PK, SK: it.SK}, Always)
			}
			if err := s.Transact(ctx, ws); err != nil {
				return n, err
			}
			n += len(batch)
		}
		if p.Next == "" || len(p.Items) == 0 {
			return n, nil
		}
	}
}
