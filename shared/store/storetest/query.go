package storetest

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/store"
)

func testQuery(t *testing.T, open Opener) {
	// Sort keys chosen so that byte order, prefix edges and multi-byte characters matter:
	// "A$" sorts right after every "A#..." key, "a" after "Z", and "é" (0xC3 0xA9) after ASCII.
	all := []string{"A", "A#1", "A#10", "A#2", "A$", "AB", "B#1", "Z", "a#1", "é#1", "é#2", "ê"}
	sorted := slices.Clone(all)
	sort.Strings(sorted) // Go compares strings bytewise, as DynamoDB does
	if !slices.Equal(all, sorted) {
		t.Fatalf("fixture is not in byte order: %q", all)
	}

	t.Run("prefix", func(t *testing.T) {
		h := newParallel(t, open)
		pk := h.pk("C")
		for _, sk := range reversed(all) { // written out of order on purpose
			h.put(store.Item{PK: pk, SK: sk})
		}
		// A neighbouring partition whose key extends this one must never leak in.
		h.put(store.Item{PK: pk + "#", SK: "A#1"}, store.Item{PK: pk + "x", SK: "A#1"})
		cases := []struct {
			prefix string
			want   []string
		}{
			{"", all},
			{"A", []string{"A", "A#1", "A#10", "A#2", "A$", "AB"}},
			{"A#", []string{"A#1", "A#10", "A#2"}},
			{"A#1", []string{"A#1", "A#10"}},
			{"A#10", []string{"A#10"}},
			{"A#100", nil},
			{"é", []string{"é#1", "é#2"}},
			{"ê", []string{"ê"}},
			{"b", nil},
			{"\U0010ffff", nil},
		}
		for _, tc := range cases {
			q := store.Query{PK: pk, SKPrefix: tc.prefix}
			wantSKs(t, fmt.Sprintf("prefix %q", tc.prefix), h.queryAll(q), tc.want)
			q.Descending = true
			wantSKs(t, fmt.Sprintf("prefix %q descending", tc.prefix), h.queryAll(q), reversed(tc.want))
		}
	})

	t.Run("range", func(t *testing.T) {
		h := newParallel(t, open)
		pk := h.pk("C")
		var sk []string
		for i := 1; i <= 20; i++ {
			sk = append(sk, fmt.Sprintf("%02d", i))
			h.put(store.Item{PK: pk, SK: sk[i-1]})
		}
		cases := []struct {
			from, to string
			want     []string
		}{
			{"05", "08", sk[4:8]},  // both ends inclusive
			{"05", "", sk[4:]},     // open end
			{"", "03", sk[:3]},     // open start
			{"055", "07", sk[5:7]}, // bounds that are not stored keys
			{"10", "10", sk[9:10]}, // a single key
			{"00", "99", sk},       // wider than the data
			{"08", "05", nil},      // reversed range is empty
			{"21", "", nil},        // past the end
			{"", "0", nil},         // before the start
			{"1", "2", sk[9:19]},   // "1" < "10" ... "19" < "2"
		}
		for _, tc := range cases {
			q := store.Query{PK: pk, SKFrom: tc.from, SKTo: tc.to}
			wantSKs(t, fmt.Sprintf("range [%q, %q]", tc.from, tc.to), h.queryAll(q), tc.want)
			q.Descending = true
			wantSKs(t, fmt.Sprintf("range [%q, %q] descending", tc.from, tc.to), h.queryAll(q), reversed(tc.want))
		}
	})

	t.Run("empty partition", func(t *testing.T) {
		h := newParallel(t, open)
		p, err := h.s.Query(h.ctx, store.Query{PK: h.pk("nothing")})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) != 0 || p.Next != "" {
			t.Fatalf("empty partition gave %d items and cursor %q", len(p.Items), p.Next)
		}
	})

	t.Run("items come back whole", func(t *testing.T) {
		h := newParallel(t, open)
		it := store.Item{
			PK: h.pk("C"), SK: "S",
			GSI1PK: h.pk("G1"), GSI1SK: "1", GSI2PK: h.pk("G2"), GSI2SK: "2",
			ExpiresAt: h.clk.Now().Add(time.Hour), Version: 4, Data: payload(300),
		}
		h.put(it)
		for _, q := range []store.Query{
			{PK: it.PK},
			{Index: store.GSI1, PK: it.GSI1PK},
			{Index: store.GSI2, PK: it.GSI2PK},
		} {
			got := h.queryAll(q)
			if len(got) != 1 {
				t.Fatalf("query on %s: %d items, want 1", q.Index, len(got))
			}
			wantItem(t, got[0], it)
		}
	})
}

func testPagination(t *testing.T, open Opener) {
	const liveN, expiredN = 57, 19
	h := newHarness(t, open)
	pk := h.pk("C")
	var want []string
	for i := range liveN + expiredN {
		it := store.Item{PK: pk, SK: fmt.Sprintf("DL#%04d", i), Data: []byte(fmt.Sprint(i))}
		if i%4 == 1 && i/4 < expiredN {
			// Expired items interleaved with live ones: DynamoDB filters them after reading,
			// which makes short (even empty) pages that must still chain correctly.
			it.ExpiresAt = h.clk.Now().Add(time.Minute)
		} else {
			want = append(want, it.SK)
		}
		h.put(it)
	}
	h.clk.Advance(time.Minute)
	if len(want) != liveN {
		t.Fatalf("fixture has %d live items, want %d", len(want), liveN)
	}

	queries := []struct {
		name string
		q    store.Query
		want []string
	}{
		{"whole partition", store.Query{PK: pk}, want},
		{"prefix", store.Query{PK: pk, SKPrefix: "DL#00"}, want[:countBelow(want, "DL#0100")]},
		{"range", store.Query{PK: pk, SKFrom: "DL#0010", SKTo: "DL#0060"}, between(want, "DL#0010", "DL#0060")},
	}
	for _, qc := range queries {
		for _, limit := range []int{1, 2, 5, 10, liveN - 1, liveN, liveN + expiredN, 1000} {
			for _, desc := range []bool{false, true} {
				q := qc.q
				q.Limit, q.Descending = limit, desc
				exp := qc.want
				if desc {
					exp = reversed(exp)
				}
				got := h.queryAll(q)
				wantSKs(t, fmt.Sprintf("%s, limit %d, descending %v", qc.name, limit, desc), got, exp)
			}
		}
	}

	// A cursor is a position, so it must not depend on the limit of the page that made it, and
	// it can be replayed.
	first, err := h.s.Query(h.ctx, store.Query{PK: pk, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if first.Next == "" {
		t.Fatal("first page of many has no cursor")
	}
	rest := h.queryAll(store.Query{PK: pk, Limit: 7, Cursor: first.Next})
	wantSKs(t, "continuation with another limit", append(slices.Clone(first.Items), rest...), want)
	again := h.queryAll(store.Query{PK: pk, Limit: 7, Cursor: first.Next})
	wantSKs(t, "replayed cursor", again, sks(rest))

	// Like DynamoDB's LastEvaluatedKey, a cursor stays valid after the item it ends on is deleted.
	third, err := h.s.Query(h.ctx, store.Query{PK: pk, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	last := store.Key{PK: pk, SK: third.Items[len(third.Items)-1].SK}
	if err := h.s.Write(h.ctx, store.DeleteKey(last, store.Always)); err != nil {
		t.Fatal(err)
	}
	rest = h.queryAll(store.Query{PK: pk, Limit: 3, Cursor: third.Next})
	wantSKs(t, "continuation after deleting the cursor's item", append(slices.Clone(third.Items), rest...), want)
}

func countBelow(s []string, bound string) int {
	n := 0
	for _, v := range s {
		if v < bound {
			n++
		}
	}
	return n
}

func between(s []string, from, to string) []string {
	var out []string
	for _, v := range s {
		if v >= from && v <= to {
			out = append(out, v)
		}
	}
	return out
}

func testGSI(t *testing.T, open Opener) {
	for _, idx := range []store.Index{store.GSI1, store.GSI2} {
		t.Run(idx.String(), func(t *testing.T) {
			h := newParallel(t, open)
			g := h.pk("G")
			// set puts an item whose key on idx is gpk/gsk, and whose key on the other GSI
			// is somewhere else entirely.
			set := func(pk, sk, gpk, gsk string) store.Item {
				it := store.Item{PK: pk, SK: sk, Data: []byte(pk + sk)}
				other := h.pk("OTHER")
				if idx == store.GSI1 {
					it.GSI1PK, it.GSI1SK = gpk, gsk
					it.GSI2PK, it.GSI2SK = other, "x"
				} else {
					it.GSI2PK, it.GSI2SK = gpk, gsk
					it.GSI1PK, it.GSI1SK = other, "x"
				}
				h.put(it)
				return it
			}
			gsk := func(it store.Item) string {
				if idx == store.GSI1 {
					return it.GSI1SK
				}
				return it.GSI2SK
			}
			// Items from several table partitions, with ties on the GSI sort key.
			set(h.pk("E1"), "O#1", g, "2040-02#b")
			set(h.pk("E2"), "O#2", g, "2040-01#a")
			set(h.pk("E1"), "O#3", g, "2040-02#b")
			set(h.pk("E3"), "O#4", g, "2040-02#b")
			set(h.pk("E3"), "O#5", g, "2040-03#c")
			set(h.pk("E2"), "O#6", g, "2040-03#c")
			set(h.pk("E4"), "O#7", g, "2040-04#d")
			// Not in g: another GSI partition, and items with no key on idx at all.
			set(h.pk("E1"), "O#8", h.pk("H"), "2040-02#b")
			h.put(store.Item{PK: h.pk("E1"), SK: "PROFILE"})
			h.put(store.Item{PK: h.pk("E5"), SK: "O#9", GSI1PK: "", GSI2PK: ""})

			wantGSKs := []string{"2040-01#a", "2040-02#b", "2040-02#b", "2040-02#b", "2040-03#c", "2040-03#c", "2040-04#d"}
			wantSet := []string{"O#1", "O#2", "O#3", "O#4", "O#5", "O#6", "O#7"}
			check := func(what string, q store.Query, wantG []string, wantS []string) {
				t.Helper()
				got := h.queryAll(q)
				var gotG, gotS []string
				for _, it := range got {
					gotG = append(gotG, gsk(it))
					gotS = append(gotS, it.SK)
				}
				expG := wantG
				if q.Descending {
					expG = reversed(wantG)
				}
				if !slices.Equal(gotG, expG) {
					t.Fatalf("%s: got index sort keys %q, want %q", what, gotG, expG)
				}
				// Ties may come in any order (DynamoDB does not promise one), but every item
				// must come exactly once across pages.
				slices.Sort(gotS)
				if !slices.Equal(gotS, wantS) {
					t.Fatalf("%s: got items %q, want each of %q once", what, gotS, wantS)
				}
			}
			for _, limit := range []int{0, 1, 2, 3, 100} {
				for _, desc := range []bool{false, true} {
					name := fmt.Sprintf("limit %d descending %v", limit, desc)
					check(name, store.Query{Index: idx, PK: g, Limit: limit, Descending: desc}, wantGSKs, wantSet)
					check(name+" prefix", store.Query{Index: idx, PK: g, SKPrefix: "2040-02", Limit: limit, Descending: desc},
						wantGSKs[1:4], []string{"O#1", "O#3", "O#4"})
					check(name+" range", store.Query{Index: idx, PK: g, SKFrom: "2040-02#b", SKTo: "2040-03#c", Limit: limit, Descending: desc},
						wantGSKs[1:6], []string{"O#1", "O#3", "O#4", "O#5", "O#6"})
				}
			}
			check("other partition", store.Query{Index: idx, PK: h.pk("H")}, []string{"2040-02#b"}, []string{"O#8"})

			// Moving an item to another index key moves it in the index; dropping the key
			// takes it out (the index is sparse).
			moved := set(h.pk("E1"), "O#1", h.pk("H"), "2040-09#z")
			check("after a move, old partition", store.Query{Index: idx, PK: g}, slices.Delete(slices.Clone(wantGSKs), 1, 2), []string{"O#2", "O#3", "O#4", "O#5", "O#6", "O#7"})
			check("after a move, new partition", store.Query{Index: idx, PK: h.pk("H")}, []string{"2040-02#b", "2040-09#z"}, []string{"O#1", "O#8"})
			moved.GSI1PK, moved.GSI1SK, moved.GSI2PK, moved.GSI2SK = "", "", "", ""
			h.put(moved)
			check("after dropping the key", store.Query{Index: idx, PK: h.pk("H")}, []string{"2040-02#b"}, []string{"O#8"})
			wantItem(t, h.get(moved.PK, moved.SK), moved)
		})
	}
}
