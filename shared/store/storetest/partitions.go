package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/store"
)

func testPartitions(t *testing.T, open Opener) {
	t.Run("each partition as its own query", func(t *testing.T) {
		h := newParallel(t, open)
		// Partitions whose keys extend one another, so a neighbour leaking in would show.
		names := []string{"C", "C#", "Cx", "D", "empty"}
		want := map[string][]string{}
		for n, name := range names[:4] {
			pk := h.pk(name)
			for i := range 3 + n {
				sk := fmt.Sprintf("O#%02d", 9-i) // written out of order on purpose
				h.put(store.Item{PK: pk, SK: sk, Version: int64(i), Data: payload(40 + i)})
				want[name] = append(want[name], sk)
			}
			h.put(store.Item{PK: pk, SK: "A", Data: payload(3)}, store.Item{PK: pk, SK: "Z"}) // out of range
			slices.Sort(want[name])
		}
		// An expired item is left out, as Query leaves it out.
		h.put(store.Item{PK: h.pk("D"), SK: "O#50", ExpiresAt: h.clk.Now().Add(time.Minute)})
		h.clk.Advance(2 * time.Minute)

		pks := []string{h.pk("D"), h.pk("empty"), h.pk("C"), h.pk("Cx"), h.pk("C#"), h.pk("C")}
		for _, desc := range []bool{false, true} {
			q := store.Query{SKFrom: "O#", SKTo: "O#~", Descending: desc}
			got, err := h.s.QueryPartitions(h.ctx, q, pks)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(pks) {
				t.Fatalf("descending %v: %d results for %d partitions", desc, len(got), len(pks))
			}
			for i, pk := range pks {
				q.PK = pk
				single := h.queryAll(q)
				w := want[pk[len(h.ns):]]
				if desc {
					w = reversed(w)
				}
				wantSKs(t, fmt.Sprintf("partition %d (%s), descending %v", i, pk, desc), got[i], w)
				if len(single) != len(got[i]) {
					t.Fatalf("partition %s: %d items, Query gives %d", pk, len(got[i]), len(single))
				}
				for j := range single {
					wantItem(t, got[i][j], single[j])
				}
			}
			// A partition named twice gets items of its own.
			if len(got[2]) > 0 {
				got[2][0].SK = "changed"
				if got[5][0].SK == "changed" {
					t.Fatal("a partition named twice shares its items with the other")
				}
			}
		}
	})

	t.Run("prefix and index", func(t *testing.T) {
		h := newParallel(t, open)
		for i := range 4 {
			h.put(store.Item{PK: h.pk(fmt.Sprintf("T%d", i)), SK: "S#1", GSI1PK: h.pk("G" + fmt.Sprint(i%2)), GSI1SK: fmt.Sprintf("k%d", 9-i)})
			h.put(store.Item{PK: h.pk(fmt.Sprintf("T%d", i)), SK: "R#1", GSI1PK: h.pk("G" + fmt.Sprint(i%2)), GSI1SK: "j"})
		}
		got, err := h.s.QueryPartitions(h.ctx, store.Query{Index: store.GSI1, SKPrefix: "k"}, []string{h.pk("G1"), h.pk("G0"), h.pk("G2")})
		if err != nil {
			t.Fatal(err)
		}
		gsk := func(items []store.Item) []string {
			var out []string
			for _, it := range items {
				out = append(out, it.GSI1SK+"@"+it.PK[len(h.ns):])
			}
			return out
		}
		for i, w := range [][]string{{"k6@T3", "k8@T1"}, {"k7@T2", "k9@T0"}, nil} {
			if g := gsk(got[i]); !slices.Equal(g, w) {
				t.Fatalf("index partition %d: got %q, want %q", i, g, w)
			}
		}
	})

	t.Run("requests it refuses", func(t *testing.T) {
		h := newParallel(t, open)
		many := make([]string, store.MaxQueryPartitions+1)
		for i := range many {
			many[i] = h.pk(fmt.Sprint(i))
		}
		if _, err := h.s.QueryPartitions(h.ctx, store.Query{}, many[:store.MaxQueryPartitions]); err != nil {
			t.Fatalf("%d partitions: %v", store.MaxQueryPartitions, err)
		}
		for name, tc := range map[string]struct {
			q   store.Query
			pks []string
		}{
			"too many partitions":   {store.Query{}, many},
			"a partition key":       {store.Query{PK: h.pk("x")}, many[:2]},
			"a limit":               {store.Query{Limit: 5}, many[:2]},
			"an empty partition":    {store.Query{}, []string{h.pk("x"), ""}},
			"a prefix and a range":  {store.Query{SKPrefix: "a", SKFrom: "b"}, many[:2]},
			"a key that is not UTF": {store.Query{}, []string{h.pk("\xff")}},
		} {
			if _, err := h.s.QueryPartitions(h.ctx, tc.q, tc.pks); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%s: error %v, want store.ErrInvalid", name, err)
			}
		}
	})
}
