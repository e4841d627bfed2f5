package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/store"
)

// testAdd covers OpAdd: counters added where they are stored, labels set beside them, and the
// rest of the item left alone.
func testAdd(t *testing.T, open Opener) {
	t.Run("creates the item", func(t *testing.T) {
		h := newParallel(t, open)
		k := store.Key{PK: h.pk("R"), SK: "D#01"}
		h.add(store.AddTo(k, map[string]int64{"orders": 2, "gross": 12990, "refunds": -5}, map[string]string{"cell": "ultracart|USD"}))
		wantItem(t, h.get(k.PK, k.SK), store.Item{PK: k.PK, SK: k.SK,
			Counters: map[string]int64{"orders": 2, "gross": 12990, "refunds": -5}, Labels: map[string]string{"cell": "ultracart|USD"}})
	})

	t.Run("accumulates, and a counter at zero reads as absent", func(t *testing.T) {
		h := newParallel(t, open)
		k := store.Key{PK: h.pk("R"), SK: "D#01"}
		h.add(store.AddTo(k, map[string]int64{"a": 5, "b": 2}, nil))
		h.add(store.AddTo(k, map[string]int64{"a": 3, "b": -2, "c": -7}, nil))
		wantItem(t, h.get(k.PK, k.SK), store.Item{PK: k.PK, SK: k.SK, Counters: map[string]int64{"a": 8, "c": -7}})
		h.add(store.AddTo(k, map[string]int64{"b": 1 << 40}, map[string]string{"l": "x"}))
		h.add(store.AddTo(k, nil, map[string]string{"l": "y", "m": "z"}))
		wantItem(t, h.get(k.PK, k.SK), store.Item{PK: k.PK, SK: k.SK,
			Counters: map[string]int64{"a": 8, "b": 1 << 40, "c": -7}, Labels: map[string]string{"l": "y", "m": "z"}})
	})

	t.Run("leaves the rest of the item as it is", func(t *testing.T) {
		h := newParallel(t, open)
		it := store.Item{PK: h.pk("R"), SK: "X", GSI1PK: h.pk("G1"), GSI1SK: "1", GSI2PK: h.pk("G2"), GSI2SK: "2",
			ExpiresAt: h.clk.Now().Add(time.Hour), Version: 7, Data: []byte(`{"kept":true}`),
			Counters: map[string]int64{"x": 1}, Labels: map[string]string{"lx": "a"}}
		h.put(it)
		h.add(store.AddTo(store.Key{PK: it.PK, SK: it.SK}, map[string]int64{"x": 4, "y": 1}, map[string]string{"ly": "b"}))
		want := it
		want.Counters = map[string]int64{"x": 5, "y": 1}
		want.Labels = map[string]string{"lx": "a", "ly": "b"}
		wantItem(t, h.get(it.PK, it.SK), want)
		// Queries on the table and on both indexes return the counters too.
		for _, q := range []store.Query{{PK: it.PK}, {Index: store.GSI1, PK: it.GSI1PK}, {Index: store.GSI2, PK: it.GSI2PK}} {
			got := h.queryAll(q)
			if len(got) != 1 {
				t.Fatalf("query %s: %d items", q.Index, len(got))
			}
			wantItem(t, got[0], want)
		}
	})

	t.Run("a put replaces counters and labels", func(t *testing.T) {
		h := newParallel(t, open)
		k := store.Key{PK: h.pk("R"), SK: "X"}
		h.add(store.AddTo(k, map[string]int64{"a": 1}, map[string]string{"l": "x"}))
		h.put(store.Item{PK: k.PK, SK: k.SK, Version: 2, Counters: map[string]int64{"b": 9}})
		wantItem(t, h.get(k.PK, k.SK), store.Item{PK: k.PK, SK: k.SK, Version: 2, Counters: map[string]int64{"b": 9}})
		h.put(store.Item{PK: k.PK, SK: k.SK, Version: 3})
		wantItem(t, h.get(k.PK, k.SK), store.Item{PK: k.PK, SK: k.SK, Version: 3})
	})

	t.Run("conditions", func(t *testing.T) {
		h := newParallel(t, open)
		k := store.Key{PK: h.pk("R"), SK: "X"}
		missing := store.Key{PK: h.pk("R"), SK: "MISSING"}
		h.put(store.Item{PK: k.PK, SK: k.SK, Version: 4, Counters: map[string]int64{"a": 1}})
		adds := func(cond store.Cond, expect int64, key store.Key) store.Write {
			w := store.AddTo(key, map[string]int64{"a": 10}, nil)
			w.Cond, w.Expect = cond, expect
			return w
		}
		if err := h.s.Write(h.ctx, adds(store.VersionEquals, 4, k)); err != nil {
			t.Fatalf("add under the stored version: %v", err)
		}
		wantCondErr(t, h.s.Write(h.ctx, adds(store.VersionEquals, 5, k)), k, store.VersionEquals, 5)
		wantCondErr(t, h.s.Write(h.ctx, adds(store.NotExists, 0, k)), k, store.NotExists, 0)
		wantCondErr(t, h.s.Write(h.ctx, adds(store.Exists, 0, missing)), missing, store.Exists, 0)
		wantItem(t, h.get(k.PK, k.SK), store.Item{PK: k.PK, SK: k.SK, Version: 4, Counters: map[string]int64{"a": 11}})
		h.absent(missing.PK, missing.SK)
	})

	t.Run("all or nothing in a transaction", func(t *testing.T) {
		h := newParallel(t, open)
		a := store.Key{PK: h.pk("R"), SK: "A"}
		b := store.Key{PK: h.pk("R"), SK: "B"}
		taken := store.Item{PK: h.pk("R"), SK: "TAKEN"}
		h.put(taken)
		err := h.s.Transact(h.ctx, []store.Write{
			store.AddTo(a, map[string]int64{"n": 1}, nil),
			store.PutItem(taken, store.NotExists),
		})
		wantTxErr(t, err, []store.FailedWrite{{Index: 1, ConditionError: store.ConditionError{Key: store.Key{PK: taken.PK, SK: taken.SK}, Cond: store.NotExists}}})
		h.absent(a.PK, a.SK)
		if err := h.s.Transact(h.ctx, []store.Write{
			store.AddTo(a, map[string]int64{"n": 1}, nil),
			store.AddTo(b, map[string]int64{"n": -1}, map[string]string{"l": "b"}),
			store.PutItem(store.Item{PK: h.pk("R"), SK: "C", Data: []byte("c")}, store.NotExists),
		}); err != nil {
			t.Fatal(err)
		}
		wantItem(t, h.get(a.PK, a.SK), store.Item{PK: a.PK, SK: a.SK, Counters: map[string]int64{"n": 1}})
		wantItem(t, h.get(b.PK, b.SK), store.Item{PK: b.PK, SK: b.SK, Counters: map[string]int64{"n": -1}, Labels: map[string]string{"l": "b"}})
	})

	t.Run("concurrent adds lose nothing", func(t *testing.T) {
		h := newParallel(t, open)
		k := store.Key{PK: h.pk("R"), SK: "HOT"}
		const writers, each = 8, 20
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					add := map[string]int64{"total": 1, fmt.Sprintf("w%d", w): int64(i + 1)}
					if err := h.s.Write(h.ctx, store.AddTo(k, add, nil)); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		want := map[string]int64{"total": writers * each}
		for w := range writers {
			want[fmt.Sprintf("w%d", w)] = each * (each + 1) / 2
		}
		wantItem(t, h.get(k.PK, k.SK), store.Item{PK: k.PK, SK: k.SK, Counters: want})
	})

	t.Run("an add past the item size limit changes nothing", func(t *testing.T) {
		h := newParallel(t, open)
		k := store.Key{PK: h.pk("R"), SK: "BIG"}
		labels := func(prefix string, n, size int) map[string]string {
			m := map[string]string{}
			for i := range n {
				m[fmt.Sprintf("%s%02d", prefix, i)] = strings.Repeat("v", size)
			}
			return m
		}
		first := labels("a", 45, 8000) // about 360 KB
		h.add(store.AddTo(k, map[string]int64{"n": 1}, first))
		for _, name := range []string{"write", "transaction"} {
			w := store.AddTo(k, map[string]int64{"n": 1}, labels("b", 10, 8000))
			var err error
			if name == "write" {
				err = h.s.Write(h.ctx, w)
			} else {
				err = h.s.Transact(h.ctx, []store.Write{w, store.AddTo(store.Key{PK: k.PK, SK: "OTHER"}, map[string]int64{"n": 1}, nil)})
			}
			if !errors.Is(err, store.ErrTooLarge) {
				t.Fatalf("%s: got %v, want an error matching store.ErrTooLarge", name, err)
			}
			if !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("%s: %v does not match store.ErrInvalid", name, err)
			}
		}
		wantItem(t, h.get(k.PK, k.SK), store.Item{PK: k.PK, SK: k.SK, Counters: map[string]int64{"n": 1}, Labels: first})
		h.absent(k.PK, "OTHER")
	})

	t.Run("validation", func(t *testing.T) {
		h := newParallel(t, open)
		k := store.Key{PK: h.pk("R"), SK: "V"}
		many := func(n int) map[string]int64 {
			m := map[string]int64{}
			for i := range n {
				m[fmt.Sprintf("c%d", i)] = 1
			}
			return m
		}
		cases := []struct {
			name string
			w    store.Write
		}{
			{"nothing to add", store.AddTo(k, nil, nil)},
			{"too many counters", store.AddTo(k, many(store.MaxAddCounters+1), nil)},
			{"too many labels", store.AddTo(k, nil, someLabels(store.MaxAddLabels+1))},
			{"empty counter name", store.AddTo(k, map[string]int64{"": 1}, nil)},
			{"counter name too long", store.AddTo(k, map[string]int64{strings.Repeat("n", store.MaxNameBytes+1): 1}, nil)},
			{"label not UTF-8", store.AddTo(k, nil, map[string]string{"l": "\xff"})},
			{"no key", store.AddTo(store.Key{}, map[string]int64{"a": 1}, nil)},
			{"put with an empty counter name", store.PutItem(store.Item{PK: k.PK, SK: k.SK, Counters: map[string]int64{"": 1}}, store.Always)},
		}
		for _, tc := range cases {
			wantInvalid(t, tc.name, h.s.Write(h.ctx, tc.w))
			wantInvalid(t, tc.name+" in a transaction", h.s.Transact(h.ctx, []store.Write{tc.w}))
		}
		h.absent(k.PK, k.SK)
		// The limits themselves are fine.
		h.add(store.AddTo(k, many(store.MaxAddCounters), someLabels(store.MaxAddLabels)))
		if got := len(h.get(k.PK, k.SK).Counters); got != store.MaxAddCounters {
			t.Fatalf("%d counters stored, want %d", got, store.MaxAddCounters)
		}
	})
}

func someLabels(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("l%d", i)] = "x"
	}
	return m
}

func (h *harness) add(w store.Write) {
	h.t.Helper()
	if err := h.s.Write(h.ctx, w); err != nil {
		h.t.Fatalf("add to %s: %v", w.Key, err)
	}
}
