package accountkeys_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

func newRepo(t *testing.T) (*accountkeys.Repo, store.Store) {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	st := testenv.EmbeddedStore(t, clk)
	key, err := secrets.NewLocalKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return accountkeys.New(st, secrets.NewSealer(key, clk), clk), st
}

func TestEnsureMakesOneKeyEvenWhenRaced(t *testing.T) {
	r, st := newRepo(t)
	ctx := context.Background()
	if _, err := r.Get(ctx, "acme", accountkeys.Review); !errors.Is(err, accountkeys.ErrNotFound) {
		t.Fatalf("Get before any key: %v", err)
	}
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Go(func() {
			k, err := r.Ensure(ctx, "acme", accountkeys.Review)
			if err != nil {
				t.Error(err)
			}
			got[i] = k.Value
		})
	}
	wg.Wait()
	for _, v := range got {
		if v != got[0] || len(v) != 64 {
			t.Fatalf("racing Ensure calls returned %v", got)
		}
	}
	k, err := r.Get(ctx, "acme", accountkeys.Review)
	if err != nil || k.Value != got[0] {
		t.Fatalf("Get = %v, %v; want the ensured key", k, err)
	}
	ik := accountkeys.ItemKey("acme", accountkeys.Review)
	it, err := st.Get(ctx, ik.PK, ik.SK)
	if err != nil || bytes.Contains(it.Data, []byte(k.Value)) {
		t.Fatalf("the key is stored in clear (or not at all): %v", err)
	}
	// Keys are per account and per name.
	other, _ := r.Ensure(ctx, "other", accountkeys.Review)
	tracking, _ := r.Ensure(ctx, "acme", accountkeys.Tracking)
	if other.Value == k.Value || tracking.Value == k.Value {
		t.Fatal("two keys are the same")
	}
	rotated, err := r.Rotate(ctx, "acme", accountkeys.Review)
	if err != nil || rotated.Value == k.Value {
		t.Fatalf("Rotate = %v, %v", rotated, err)
	}
	if now, _ := r.Get(ctx, "acme", accountkeys.Review); now.Value != rotated.Value {
		t.Fatal("Get after Rotate does not return the new key")
	}
}

// TestASealedKeyDoesNotMoveToAnotherAccount: a key item copied under another account does
// not open there, so nobody with table access alone can give an account a key they know.
func TestASealedKeyDoesNotMoveToAnotherAccount(t *testing.T) {
	r, st := newRepo(t)
	ctx := context.Background()
	if _, err := r.Ensure(ctx, "acme", accountkeys.Tracking); err != nil {
		t.Fatal(err)
	}
	ik := accountkeys.ItemKey("acme", accountkeys.Tracking)
	it, _ := st.Get(ctx, ik.PK, ik.SK)
	it.PK = accountkeys.ItemKey("victim", accountkeys.Tracking).PK
	it.Version = 0
	if err := st.Write(ctx, store.PutItem(it, store.Always)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(ctx, "victim", accountkeys.Tracking); !errors.Is(err, secrets.ErrTampered) {
		t.Fatalf("a moved key opened: %v", err)
	}
}
