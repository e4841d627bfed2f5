package lease_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/lease"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

func TestLease(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	st := testenv.EmbeddedStore(t, clk)
	key := store.Key{PK: "A#acme", SK: "LEASE#test"}
	a := lease.New(st, clk, key, time.Minute, "walk a")
	b := lease.New(st, clk, key, time.Minute, "walk b")

	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Acquire(ctx); !errors.Is(err, lease.ErrBusy) {
		t.Fatalf("second acquire: %v, want ErrBusy", err)
	}
	// Renewals keep it past the first expiry.
	clk.Advance(50 * time.Second)
	if err := a.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(50 * time.Second)
	if err := b.Acquire(ctx); !errors.Is(err, lease.ErrBusy) {
		t.Fatalf("acquire of a renewed lease: %v, want ErrBusy", err)
	}
	// Unrenewed, it expires; the next holder takes it and the old one learns it lost it, by a
	// renewal or by a transaction carrying RenewWrite.
	clk.Advance(2 * time.Minute)
	if err := b.Acquire(ctx); err != nil {
		t.Fatalf("acquire after expiry: %v", err)
	}
	if err := a.Renew(ctx); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("renew by the old holder: %v, want ErrLost", err)
	}
	w := store.PutItem(store.Item{PK: "A#acme", SK: "CUR#test", Data: []byte(`{}`)}, store.Always)
	if err := a.Commit(ctx, w); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("commit by the old holder: %v, want ErrLost", err)
	}
	if _, err := st.Get(ctx, "A#acme", "CUR#test"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the old holder's commit was written: %v", err)
	}
	// The old holder's release leaves the new holder's lease alone; the holder's own frees it.
	a.Release(ctx)
	if err := a.Acquire(ctx); !errors.Is(err, lease.ErrBusy) {
		t.Fatalf("after a stale release: %v, want ErrBusy", err)
	}
	if err := b.Commit(ctx, w); err != nil {
		t.Fatal(err)
	}
	b.Release(ctx)
	if err := a.Acquire(ctx); err != nil {
		t.Fatalf("after release: %v", err)
	}
}
