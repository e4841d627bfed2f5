package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/store"
)

// testForget covers the helpers an erasure deletes with: DeleteIfExists says whether there was
// an item, and DeletePartition removes every live item of a partition, across pages, and no
// other partition's; and ClearPartition, which retired rollups are deleted with, does the same
// in transactions, across pages and transactions, and again once nothing is left.
func testForget(t *testing.T, open Opener) {
	t.Run("delete if exists", func(t *testing.T) {
		h := newParallel(t, open)
		h.put(store.Item{PK: h.pk("p"), SK: "a", Data: []byte(`{}`)})
		k := store.Key{PK: h.pk("p"), SK: "a"}
		for i, want := range []bool{true, false} {
			got, err := store.DeleteIfExists(h.ctx, h.s, k)
			if err != nil || got != want {
				h.t.Fatalf("call %d: %v %v, want %v", i+1, got, err, want)
			}
		}
		h.absent(k.PK, k.SK)
	})
	t.Run("delete a partition", func(t *testing.T) {
		h := newParallel(t, open)
		const n = 120
		for i := range n {
			h.put(store.Item{PK: h.pk("p"), SK: fmt.Sprintf("%04d", i), Data: make([]byte, 20<<10)})
		}
		h.put(store.Item{PK: h.pk("other"), SK: "a", Data: []byte(`{}`)})
		h.put(store.Item{PK: h.pk("p"), SK: "expired", Data: []byte(`{}`), ExpiresAt: h.clk.Now().Add(time.Minute)})
		h.clk.Advance(2 * time.Minute)
		got, err := store.DeletePartition(h.ctx, h.s, h.pk("p"))
		if err != nil || got != n {
			h.t.Fatalf("deleted %d, %v; want the %d live items", got, err, n)
		}
		if left := h.queryAll(store.Query{PK: h.pk("p")}); len(left) != 0 {
			h.t.Fatalf("%d items left", len(left))
		}
		h.get(h.pk("other"), "a")
	})
	t.Run("clear a partition", func(t *testing.T) {
		h := newParallel(t, open)
		// More items than one transaction takes, and than one page holds of items this size.
		const n = 2*store.MaxTransactWrites + 30
		for i := range n {
			h.put(store.Item{PK: h.pk("p"), SK: fmt.Sprintf("%04d", i), Data: make([]byte, 10<<10),
				Counters: map[string]int64{"c": int64(i + 1)}, Labels: map[string]string{"c": "label"}})
		}
		h.put(store.Item{PK: h.pk("other"), SK: "a", Data: []byte(`{}`)})
		h.put(store.Item{PK: h.pk("pp"), SK: "a", Data: []byte(`{}`)}) // a longer key with the same start
		got, err := store.ClearPartition(h.ctx, h.s, h.pk("p"))
		if err != nil || got != n {
			h.t.Fatalf("cleared %d, %v; want the %d items", got, err, n)
		}
		if left := h.queryAll(store.Query{PK: h.pk("p")}); len(left) != 0 {
			h.t.Fatalf("%d items left", len(left))
		}
		h.get(h.pk("other"), "a")
		h.get(h.pk("pp"), "a")
		if got, err := store.ClearPartition(h.ctx, h.s, h.pk("p")); err != nil || got != 0 {
			h.t.Fatalf("clearing an empty partition: %d, %v", got, err)
		}
	})
}
