package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/store"
)

func testValidation(t *testing.T, open Opener) {
	t.Run("writes", func(t *testing.T) {
		h := newParallel(t, open)
		pk := h.pk("C")
		item := func(mod func(*store.Item)) store.Item {
			it := store.Item{PK: pk, SK: "S"}
			mod(&it)
			return it
		}
		cases := []struct {
			name string
			w    store.Write
		}{
			{"no pk", store.PutItem(item(func(it *store.Item) { it.PK = "" }), store.Always)},
			{"no sk", store.PutItem(item(func(it *store.Item) { it.SK = "" }), store.Always)},
			{"delete without a key", store.DeleteKey(store.Key{}, store.Always)},
			{"check without a condition", store.Check(store.Key{PK: pk, SK: "S"}, store.Always, 0)},
			{"half a gsi1 key", store.PutItem(item(func(it *store.Item) { it.GSI1PK = "G" }), store.Always)},
			{"half a gsi2 key", store.PutItem(item(func(it *store.Item) { it.GSI2SK = "G" }), store.Always)},
			{"unknown condition", store.PutItem(item(func(*store.Item) {}), store.Cond(42))},
			{"unknown operation", store.Write{Op: store.Op(42), Key: store.Key{PK: pk, SK: "S"}}},
			{"pk over 2048 bytes", store.PutItem(item(func(it *store.Item) { it.PK = pk + strings.Repeat("p", 2049) }), store.Always)},
			{"sk over 1024 bytes", store.PutItem(item(func(it *store.Item) { it.SK = strings.Repeat("s", 1025) }), store.Always)},
			{"gsi1sk over 1024 bytes", store.PutItem(item(func(it *store.Item) { it.GSI1PK, it.GSI1SK = "G", strings.Repeat("s", 1025) }), store.Always)},
			{"pk not UTF-8", store.PutItem(item(func(it *store.Item) { it.PK = pk + "\xff" }), store.Always)},
			{"item over 400 KB", store.PutItem(item(func(it *store.Item) { it.Data = payload(400 * 1024) }), store.Always)},
		}
		for _, tc := range cases {
			wantInvalid(t, tc.name, h.s.Write(h.ctx, tc.w))
			if tc.w.Cond != store.Always {
				continue
			}
			wantInvalid(t, tc.name+" in a transaction", h.s.Transact(h.ctx, []store.Write{tc.w}))
		}
		wantSKs(t, "nothing written", h.queryAll(store.Query{PK: pk}), nil)

		// Just inside the limits is fine.
		big := store.Item{PK: pk, SK: strings.Repeat("s", 1024), GSI1PK: h.pk("G"), GSI1SK: strings.Repeat("g", 1024), Data: payload(390 * 1000)}
		h.put(big)
		wantItem(t, h.get(big.PK, big.SK), big)
	})

	t.Run("reads", func(t *testing.T) {
		h := newParallel(t, open)
		pk := h.pk("C")
		for _, sk := range []string{"A", "B", "C"} {
			h.put(store.Item{PK: pk, SK: sk, GSI1PK: h.pk("G"), GSI1SK: sk})
		}
		_, err := h.s.Get(h.ctx, "", "S")
		wantInvalid(t, "get without pk", err)
		_, err = h.s.Get(h.ctx, pk, "")
		wantInvalid(t, "get without sk", err)

		tablePage, err := h.s.Query(h.ctx, store.Query{PK: pk, Limit: 1})
		if err != nil || tablePage.Next == "" {
			t.Fatalf("first page: cursor %q, error %v", tablePage.Next, err)
		}
		gsiPage, err := h.s.Query(h.ctx, store.Query{Index: store.GSI1, PK: h.pk("G"), Limit: 1})
		if err != nil || gsiPage.Next == "" {
			t.Fatalf("first gsi1 page: cursor %q, error %v", gsiPage.Next, err)
		}
		cases := []struct {
			name string
			q    store.Query
		}{
			{"no partition key", store.Query{}},
			{"prefix and range", store.Query{PK: pk, SKPrefix: "A", SKFrom: "A"}},
			{"unknown index", store.Query{Index: store.Index(7), PK: pk}},
			{"negative limit", store.Query{PK: pk, Limit: -1}},
			{"pk not UTF-8", store.Query{PK: pk + "\xff"}},
			{"garbage cursor", store.Query{PK: pk, Cursor: "not a cursor!"}},
			{"cursor of another partition", store.Query{PK: pk + "x", Cursor: tablePage.Next}},
			{"table cursor on gsi1", store.Query{Index: store.GSI1, PK: h.pk("G"), Cursor: tablePage.Next}},
			{"gsi1 cursor on the table", store.Query{PK: pk, Cursor: gsiPage.Next}},
			{"gsi1 cursor on gsi2", store.Query{Index: store.GSI2, PK: h.pk("G"), Cursor: gsiPage.Next}},
		}
		for _, tc := range cases {
			_, err := h.s.Query(h.ctx, tc.q)
			wantInvalid(t, tc.name, err)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		h := newParallel(t, open)
		ctx, cancel := context.WithCancel(h.ctx)
		cancel()
		it := store.Item{PK: h.pk("C"), SK: "S"}
		_, errGet := h.s.Get(ctx, it.PK, it.SK)
		_, errQuery := h.s.Query(ctx, store.Query{PK: it.PK})
		errWrite := h.s.Write(ctx, store.PutItem(it, store.Always))
		errTx := h.s.Transact(ctx, []store.Write{store.PutItem(it, store.Always)})
		for name, err := range map[string]error{"get": errGet, "query": errQuery, "write": errWrite, "transact": errTx} {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: got %v, want an error matching context.Canceled", name, err)
			}
		}
		h.absent(it.PK, it.SK)
	})
}
