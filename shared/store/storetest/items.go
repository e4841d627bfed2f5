package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/store"
)

func testRoundTrip(t *testing.T, open Opener) {
	cases := []struct {
		name string
		item func(h *harness) store.Item
		// want is what Get returns, when it differs from what was written.
		want func(h *harness, written store.Item) store.Item
	}{
		{
			name: "every field",
			item: func(h *harness) store.Item {
				return store.Item{
					PK: h.pk("C"), SK: "PROFILE",
					GSI1PK: h.pk("G1"), GSI1SK: "O#thrivecart#1001",
					GSI2PK: h.pk("G2"), GSI2SK: "2040-01-02T03:04:05Z#1001",
					ExpiresAt: h.clk.Now().Add(90 * 24 * time.Hour),
					Version:   7,
					Data:      payload(1000),
				}
			},
		},
		{
			name: "keys only",
			item: func(h *harness) store.Item { return store.Item{PK: h.pk("C"), SK: "-"} },
		},
		{
			name: "empty data reads as empty",
			item: func(h *harness) store.Item { return store.Item{PK: h.pk("C"), SK: "E", Data: []byte{}} },
		},
		{
			name: "unicode keys",
			item: func(h *harness) store.Item {
				return store.Item{PK: h.pk("A#1#E#zoë@exämple.com"), SK: "O#€#𝄞", GSI1PK: h.pk("ü"), GSI1SK: "ß", Data: []byte(`{"name":"Zoë"}`)}
			},
		},
		{
			name: "negative version",
			item: func(h *harness) store.Item { return store.Item{PK: h.pk("C"), SK: "V", Version: -3} },
		},
		{
			name: "expiry is kept in whole seconds, rounded up",
			item: func(h *harness) store.Item {
				return store.Item{PK: h.pk("C"), SK: "T", ExpiresAt: h.clk.Now().Add(time.Hour + 250*time.Millisecond)}
			},
			want: func(h *harness, w store.Item) store.Item {
				w.ExpiresAt = h.clk.Now().Add(time.Hour + time.Second)
				return w
			},
		},
		{
			name: "expiry in another time zone",
			item: func(h *harness) store.Item {
				return store.Item{PK: h.pk("C"), SK: "Z", ExpiresAt: h.clk.Now().Add(time.Hour).In(time.FixedZone("X", -7*3600))}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newParallel(t, open)
			it := tc.item(h)
			h.put(it)
			want := it
			if tc.want != nil {
				want = tc.want(h, it)
			}
			wantItem(t, h.get(it.PK, it.SK), want)
		})
	}

	t.Run("overwrite replaces the whole item", func(t *testing.T) {
		h := newParallel(t, open)
		full := store.Item{
			PK: h.pk("C"), SK: "X",
			GSI1PK: h.pk("G1"), GSI1SK: "1", GSI2PK: h.pk("G2"), GSI2SK: "2",
			ExpiresAt: h.clk.Now().Add(time.Hour), Version: 1, Data: []byte("old"),
		}
		h.put(full)
		bare := store.Item{PK: full.PK, SK: full.SK, Version: 2}
		h.put(bare)
		wantItem(t, h.get(full.PK, full.SK), bare)
		wantSKs(t, "gsi1 after its key was dropped", h.queryAll(store.Query{Index: store.GSI1, PK: full.GSI1PK}), nil)
		wantSKs(t, "gsi2 after its key was dropped", h.queryAll(store.Query{Index: store.GSI2, PK: full.GSI2PK}), nil)
		// The dropped expiry must be gone too, not just hidden.
		h.clk.Advance(2 * time.Hour)
		wantItem(t, h.get(full.PK, full.SK), bare)
	})

	t.Run("missing item", func(t *testing.T) {
		h := newParallel(t, open)
		_, err := h.s.Get(h.ctx, h.pk("nobody"), "PROFILE")
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("got %v, want an error matching store.ErrNotFound", err)
		}
		if errors.Is(err, store.ErrConditionFailed) {
			t.Fatalf("not-found error %v also matches ErrConditionFailed", err)
		}
		h.put(store.Item{PK: h.pk("somebody"), SK: "PROFILE"})
		h.absent(h.pk("somebody"), "OTHER")
		h.absent(h.pk("somebody")+"x", "PROFILE")
	})

	t.Run("delete", func(t *testing.T) {
		h := newParallel(t, open)
		h.put(store.Item{PK: h.pk("C"), SK: "A"}, store.Item{PK: h.pk("C"), SK: "B"})
		if err := h.s.Write(h.ctx, store.DeleteKey(store.Key{PK: h.pk("C"), SK: "A"}, store.Always)); err != nil {
			t.Fatal(err)
		}
		h.absent(h.pk("C"), "A")
		h.get(h.pk("C"), "B")
		// Deleting what is not there is not an error without a condition, as in DynamoDB.
		if err := h.s.Write(h.ctx, store.DeleteKey(store.Key{PK: h.pk("C"), SK: "A"}, store.Always)); err != nil {
			t.Fatalf("second delete: %v", err)
		}
	})
}

// testConditions runs every condition against every state of the target, for each kind of write.
func testConditions(t *testing.T, open Opener) {
	const stored = 3
	type state int
	const (
		absent state = iota
		live
		expired
	)
	states := []struct {
		name string
		s    state
	}{{"absent", absent}, {"live", live}, {"expired", expired}}
	conds := []struct {
		name   string
		cond   store.Cond
		expect int64
		// holds says whether the condition holds in each state.
		holds map[state]bool
	}{
		{"always", store.Always, 0, map[state]bool{absent: true, live: true, expired: true}},
		{"not-exists", store.NotExists, 0, map[state]bool{absent: true, live: false, expired: true}},
		{"exists", store.Exists, 0, map[state]bool{absent: false, live: true, expired: false}},
		{"version-equals-stored", store.VersionEquals, stored, map[state]bool{absent: false, live: true, expired: false}},
		{"version-equals-other", store.VersionEquals, stored + 1, map[state]bool{}},
		{"version-equals-zero", store.VersionEquals, 0, map[state]bool{}},
	}
	ops := []string{"put", "delete", "check", "check-in-transaction"}

	for _, st := range states {
		for _, c := range conds {
			for _, op := range ops {
				if c.cond == store.Always && (op == "check" || op == "check-in-transaction") {
					continue // rejected as invalid; see testValidation
				}
				t.Run(fmt.Sprintf("%s/%s/%s", st.name, c.name, op), func(t *testing.T) {
					h := newParallel(t, open)
					key := store.Key{PK: h.pk("C"), SK: "ITEM"}
					before := store.Item{PK: key.PK, SK: key.SK, GSI1PK: h.pk("G"), GSI1SK: "old", Version: stored, Data: []byte("before")}
					switch st.s {
					case live:
						h.put(before)
					case expired:
						before.ExpiresAt = h.clk.Now().Add(time.Minute)
						h.put(before)
						h.clk.Advance(time.Minute)
					}
					after := store.Item{PK: key.PK, SK: key.SK, GSI1PK: h.pk("G"), GSI1SK: "new", Version: 9, Data: []byte("after")}

					var err error
					switch op {
					case "put":
						err = h.s.Write(h.ctx, store.Write{Op: store.OpPut, Item: after, Cond: c.cond, Expect: c.expect})
					case "delete":
						err = h.s.Write(h.ctx, store.Write{Op: store.OpDelete, Key: key, Cond: c.cond, Expect: c.expect})
					case "check":
						err = h.s.Write(h.ctx, store.Check(key, c.cond, c.expect))
					case "check-in-transaction":
						err = h.s.Transact(h.ctx, []store.Write{store.Check(key, c.cond, c.expect)})
					}

					ok := c.holds[st.s]
					switch {
					case ok && err != nil:
						t.Fatalf("%s under %s on a %s item: %v", op, c.name, st.name, err)
					case !ok && op == "check-in-transaction":
						wantTxErr(t, err, []store.FailedWrite{{Index: 0, ConditionError: store.ConditionError{Key: key, Cond: c.cond, Expect: c.expect}}})
					case !ok:
						wantCondErr(t, err, key, c.cond, c.expect)
					}

					// What a reader sees afterwards.
					var want *store.Item
					if st.s == live {
						want = &before
					}
					if ok && op == "put" {
						want = &after
					}
					if ok && op == "delete" {
						want = nil
					}
					if want == nil {
						h.absent(key.PK, key.SK)
						wantSKs(t, "gsi1", h.queryAll(store.Query{Index: store.GSI1, PK: h.pk("G")}), nil)
					} else {
						wantItem(t, h.get(key.PK, key.SK), *want)
						wantSKs(t, "gsi1", h.queryAll(store.Query{Index: store.GSI1, PK: h.pk("G")}), []string{key.SK})
					}
				})
			}
		}
	}
}

func testExpiry(t *testing.T, open Opener) {
	t.Run("hidden from the expiry second on", func(t *testing.T) {
		h := newParallel(t, open)
		pk := h.pk("C")
		ttl := h.clk.Now().Add(time.Hour)
		h.put(
			store.Item{PK: pk, SK: "A", GSI1PK: h.pk("G1"), GSI1SK: "a", GSI2PK: h.pk("G2"), GSI2SK: "a", ExpiresAt: ttl},
			store.Item{PK: pk, SK: "B", GSI1PK: h.pk("G1"), GSI1SK: "b", GSI2PK: h.pk("G2"), GSI2SK: "b"},
		)
		visible := func(want ...string) {
			t.Helper()
			var withA []string
			if want[0] == "A" {
				withA = want[:1]
			}
			wantSKs(t, "table", h.queryAll(store.Query{PK: pk}), want)
			wantSKs(t, "table by prefix", h.queryAll(store.Query{PK: pk, SKPrefix: "A"}), withA)
			wantSKs(t, "table by range", h.queryAll(store.Query{PK: pk, SKFrom: "A", SKTo: "B"}), want)
			wantSKs(t, "table descending", h.queryAll(store.Query{PK: pk, Descending: true}), reversed(want))
			wantSKs(t, "gsi1", h.queryAll(store.Query{Index: store.GSI1, PK: h.pk("G1")}), want)
			wantSKs(t, "gsi2", h.queryAll(store.Query{Index: store.GSI2, PK: h.pk("G2")}), want)
		}

		h.clk.Set(ttl.Add(-time.Second))
		h.get(pk, "A")
		visible("A", "B")

		h.clk.Set(ttl) // "at or before the store's clock" is expired
		h.absent(pk, "A")
		h.get(pk, "B")
		visible("B")

		h.clk.Advance(365 * 24 * time.Hour)
		h.absent(pk, "A")
		visible("B")
	})

	t.Run("already expired when written", func(t *testing.T) {
		h := newParallel(t, open)
		h.put(store.Item{PK: h.pk("C"), SK: "A", ExpiresAt: h.clk.Now()})
		h.put(store.Item{PK: h.pk("C"), SK: "B", ExpiresAt: h.clk.Now().Add(-24 * time.Hour)})
		h.absent(h.pk("C"), "A")
		h.absent(h.pk("C"), "B")
		wantSKs(t, "table", h.queryAll(store.Query{PK: h.pk("C")}), nil)
	})

	t.Run("recreated after expiry shows only the new item", func(t *testing.T) {
		h := newParallel(t, open)
		key := store.Key{PK: h.pk("D#hash"), SK: "-"}
		old := store.Item{PK: key.PK, SK: key.SK, GSI1PK: h.pk("G"), GSI1SK: "old", ExpiresAt: h.clk.Now().Add(30 * 24 * time.Hour), Version: 1, Data: []byte("old")}
		if err := h.s.Write(h.ctx, store.PutItem(old, store.NotExists)); err != nil {
			t.Fatal(err)
		}
		if err := h.s.Write(h.ctx, store.PutItem(old, store.NotExists)); err == nil {
			t.Fatal("second NotExists put on a live item succeeded")
		}
		h.clk.Advance(30 * 24 * time.Hour)
		fresh := store.Item{PK: key.PK, SK: key.SK, Version: 1, Data: []byte("new")}
		if err := h.s.Write(h.ctx, store.PutItem(fresh, store.NotExists)); err != nil {
			t.Fatalf("NotExists put over an expired item: %v", err)
		}
		wantItem(t, h.get(key.PK, key.SK), fresh)
		wantSKs(t, "gsi1 of the expired version", h.queryAll(store.Query{Index: store.GSI1, PK: h.pk("G")}), nil)
	})
}

func reversed(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}
