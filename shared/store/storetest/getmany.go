package storetest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/store"
)

func testGetMany(t *testing.T, open Opener) {
	t.Run("returns each live item as Get does, and no other", func(t *testing.T) {
		h := newParallel(t, open)
		full := store.Item{
			PK: h.pk("C"), SK: "PROFILE",
			GSI1PK: h.pk("G1"), GSI1SK: "O#1",
			GSI2PK: h.pk("G2"), GSI2SK: "2040#1",
			ExpiresAt: h.clk.Now().Add(24 * time.Hour),
			Version:   4,
			Data:      payload(700),
			Counters:  map[string]int64{"orders": 3},
			Labels:    map[string]string{"orders": "Orders"},
		}
		bare := store.Item{PK: h.pk("C"), SK: "-"}
		other := store.Item{PK: h.pk("D#zoë"), SK: "O#€", Data: []byte(`{"a":1}`)}
		expiring := store.Item{PK: h.pk("C"), SK: "SOON", ExpiresAt: h.clk.Now().Add(time.Minute)}
		h.put(full, bare, other, expiring)
		h.clk.Advance(2 * time.Minute)

		key := func(it store.Item) store.Key { return store.Key{PK: it.PK, SK: it.SK} }
		missing := store.Key{PK: h.pk("C"), SK: "NONE"}
		// A key twice, a missing key, an expired item, and the sort key of one item under
		// another's partition.
		keys := []store.Key{key(full), missing, key(bare), key(expiring), key(other), key(full), {PK: h.pk("C"), SK: "O#€"}}
		got, err := h.s.GetMany(h.ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		want := []store.Item{full, bare, other}
		if len(got) != len(want) {
			t.Errorf("got %d items, want %d: %v", len(got), len(want), slices.Collect(maps.Keys(got)))
		}
		for _, w := range want {
			g, ok := got[key(w)]
			if !ok {
				t.Errorf("%s is missing", key(w))
				continue
			}
			wantItem(t, g, h.get(w.PK, w.SK))
		}
	})

	t.Run("sees the latest write", func(t *testing.T) {
		h := newParallel(t, open)
		it := store.Item{PK: h.pk("C"), SK: "M", Version: 1, Data: []byte("one")}
		h.put(it)
		k := store.Key{PK: it.PK, SK: it.SK}
		for v := int64(2); v <= 3; v++ {
			next := it
			next.Version, next.Data = v, []byte(fmt.Sprint(v))
			if err := h.s.Write(h.ctx, store.PutIfVersion(next, v-1)); err != nil {
				t.Fatal(err)
			}
			got, err := h.s.GetMany(h.ctx, []store.Key{k})
			if err != nil {
				t.Fatal(err)
			}
			if got[k].Version != v {
				t.Fatalf("after writing version %d, read version %d", v, got[k].Version)
			}
		}
		if err := h.s.Write(h.ctx, store.DeleteKey(k, store.Always)); err != nil {
			t.Fatal(err)
		}
		if got, err := h.s.GetMany(h.ctx, []store.Key{k}); err != nil || len(got) != 0 {
			t.Fatalf("after the delete: %d items (%v)", len(got), err)
		}
	})

	t.Run("the most keys at once", func(t *testing.T) {
		h := newParallel(t, open)
		var keys []store.Key
		for i := range store.MaxGetMany {
			k := store.Key{PK: h.pk(fmt.Sprintf("P%03d", i)), SK: "-"}
			keys = append(keys, k)
			if i%2 == 0 {
				h.put(store.Item{PK: k.PK, SK: k.SK, Version: int64(i)})
			}
		}
		got, err := h.s.GetMany(h.ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != store.MaxGetMany/2 {
			t.Errorf("got %d items, want %d", len(got), store.MaxGetMany/2)
		}
		for i, k := range keys {
			if it, ok := got[k]; ok != (i%2 == 0) || (ok && it.Version != int64(i)) {
				t.Errorf("%s: found %v, version %d", k, ok, it.Version)
			}
		}
	})

	t.Run("no keys", func(t *testing.T) {
		h := newParallel(t, open)
		got, err := h.s.GetMany(h.ctx, nil)
		if err != nil || len(got) != 0 {
			t.Fatalf("got %v, %v; want no items and no error", got, err)
		}
	})

	t.Run("refuses what DynamoDB refuses", func(t *testing.T) {
		h := newParallel(t, open)
		tooMany := make([]store.Key, store.MaxGetMany+1)
		for i := range tooMany {
			tooMany[i] = store.Key{PK: h.pk(fmt.Sprint(i)), SK: "-"}
		}
		for name, keys := range map[string][]store.Key{
			"too many keys": tooMany,
			"no sort key":   {{PK: h.pk("C"), SK: ""}},
			"no partition":  {{PK: "", SK: "-"}},
		} {
			if _, err := h.s.GetMany(h.ctx, keys); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%s: error %v, want one matching store.ErrInvalid", name, err)
			}
		}
	})
}
