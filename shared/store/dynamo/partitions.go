package dynamo

import (
	"context"

	"github.com/cartrelay/cartrelay/shared/store"
)

// QueryPartitions queries each partition in turn: DynamoDB reads one partition per Query, so
// there is no fewer requests to make, and each costs what a query of that partition alone would.
func (s *Store) QueryPartitions(ctx context.Context, q store.Query, pks []string) ([][]store.Item, error) {
	if err := store.CheckPartitions(q, pks); err != nil {
		return nil, err
	}
	out := make([][]store.Item, len(pks))
	for i, pk := range pks {
		q.PK = pk
		items, err := store.QueryAll(ctx, s, q)
		if err != nil {
			return nil, err
		}
		out[i] = items
	}
	return out, nil
}
