package store

import (
	"context"
	"errors"
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
