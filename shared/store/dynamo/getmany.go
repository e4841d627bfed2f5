package dynamo

import (
	"context"
	"errors"
	"sync"

	"github.com/cartrelay/cartrelay/shared/store"
)

// getManyAtOnce bounds the GetItem calls one GetMany has in flight.
const getManyAtOnce = 8

// GetMany reads the keys with concurrent GetItem calls, each strongly consistent as Get's is,
// so a caller waits about as long as for its slowest read. BatchGetItem would take fewer
// requests for the same capacity (it charges each item as its GetItem would); these calls need
// no IAM action beyond Get's.
func (s *Store) GetMany(ctx context.Context, keys []store.Key) (map[store.Key]store.Item, error) {
	keys, err := store.ValidateKeys(keys)
	if err != nil {
		return nil, err
	}
	out := make(map[store.Key]store.Item, len(keys))
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, getManyAtOnce)
	)
	for _, k := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			it, err := s.Get(ctx, k.PK, k.SK)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				out[k] = it
			case !errors.Is(err, store.ErrNotFound):
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
