package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/store"
)

// sizes straddle where an adapter may store content differently: a profile, an order, the
// share of a 4 KiB or 16 KiB page one row may take, a day's rollup item, and a raw event near
// the 400 KB item limit.
var sizes = []int{0, 500, 950, 1100, 2048, 3900, 4300, 9000, 40 * 1024, 350 * 1024}

// testSizes holds items of every size to the same promises, and an item whose content grows
// or shrinks across those sizes.
func testSizes(t *testing.T, open Opener) {
	t.Run("every size reads back from get, query and both indexes", func(t *testing.T) {
		h := newParallel(t, open)
		pk := h.pk("C")
		var want []store.Item
		for i, n := range sizes {
			it := store.Item{PK: pk, SK: fmt.Sprintf("O#%02d", i), GSI1PK: h.pk("G1"), GSI1SK: fmt.Sprintf("%02d", i),
				GSI2PK: h.pk("G2"), GSI2SK: fmt.Sprintf("%02d", len(sizes)-i), Version: int64(i + 1), Data: payload(n)}
			if i%2 == 1 {
				it.Counters = map[string]int64{"orders": int64(i)}
			}
			want = append(want, it)
		}
		h.put(want...)
		for _, w := range want {
			wantItem(t, h.get(w.PK, w.SK), w)
		}
		for _, q := range []store.Query{{PK: pk, Limit: 3}, {PK: pk, Descending: true}, {Index: store.GSI1, PK: h.pk("G1"), Limit: 4}, {Index: store.GSI2, PK: h.pk("G2")}} {
			got := h.queryAll(q)
			if len(got) != len(want) {
				t.Fatalf("query %s %+v: %d items, want %d", q.Index, q, len(got), len(want))
			}
			for i, g := range got {
				w := want[i]
				if q.Descending || q.Index == store.GSI2 {
					w = want[len(want)-1-i]
				}
				wantItem(t, g, w)
			}
		}
	})

	t.Run("an item grows and shrinks", func(t *testing.T) {
		h := newParallel(t, open)
		k := store.Key{PK: h.pk("C"), SK: "O#1"}
		steps := []int{100, 350 * 1024, 2048, 9000, 0, 40 * 1024, 700}
		for i, n := range steps {
			it := store.Item{PK: k.PK, SK: k.SK, GSI1PK: h.pk("G1"), GSI1SK: "1", Version: int64(i), Data: payload(n)}
			if n > 0 {
				it.Data[0] = byte(i) // each step's content differs from the last one of its size
			}
			h.put(it)
			wantItem(t, h.get(k.PK, k.SK), it)
			got := h.queryAll(store.Query{Index: store.GSI1, PK: h.pk("G1")})
			if len(got) != 1 {
				t.Fatalf("step %d (%d bytes): the index holds %d items", i, n, len(got))
			}
			wantItem(t, got[0], it)
		}
	})

	t.Run("counters added to a large item, and enough of them to make it large", func(t *testing.T) {
		h := newParallel(t, open)
		big := store.Item{PK: h.pk("R"), SK: "D#1", Version: 3, Data: payload(40 * 1024)}
		h.put(big)
		h.add(store.AddTo(store.Key{PK: big.PK, SK: big.SK}, map[string]int64{"gross": 1299}, map[string]string{"cell": "x"}))
		want := big
		want.Counters, want.Labels = map[string]int64{"gross": 1299}, map[string]string{"cell": "x"}
		wantItem(t, h.get(big.PK, big.SK), want)

		// A day's rollup item: hundreds of cells added in steps, some again.
		k := store.Key{PK: h.pk("R"), SK: "D#2"}
		counters := map[string]int64{}
		for step := range 4 {
			add := map[string]int64{}
			for c := range 150 {
				name := fmt.Sprintf("ultracart|USD|utm_source=news-%03d|gross", (step*100+c)%400)
				add[name] = int64(step*1000 + c + 1)
				counters[name] += add[name]
			}
			h.add(store.AddTo(k, add, nil))
			wantItem(t, h.get(k.PK, k.SK), store.Item{PK: k.PK, SK: k.SK, Counters: counters})
		}
	})

	t.Run("a large item deleted or expired is gone", func(t *testing.T) {
		h := newParallel(t, open)
		pk := h.pk("C")
		h.put(store.Item{PK: pk, SK: "A", Data: payload(40 * 1024)},
			store.Item{PK: pk, SK: "B", Data: payload(9000), ExpiresAt: h.clk.Now().Add(time.Hour)},
			store.Item{PK: pk, SK: "C", Data: payload(2048)})
		if err := h.s.Write(h.ctx, store.DeleteKey(store.Key{PK: pk, SK: "A"}, store.Exists)); err != nil {
			t.Fatal(err)
		}
		h.absent(pk, "A")
		h.clk.Advance(2 * time.Hour)
		h.absent(pk, "B")
		wantSKs(t, "the partition", h.queryAll(store.Query{PK: pk}), []string{"C"})
	})
}
