package onetime_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/onetime"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

func TestLinkIsSingleUseAndExpires(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	st := testenv.EmbeddedStore(t, clk)
	tk := onetime.New(st, clk)
	ctx := context.Background()

	token, issued, err := tk.Issue(ctx, onetime.ConsoleLink, "acme", 10*time.Minute)
	if err != nil || issued.Account != "acme" || !issued.ExpiresAt.Equal(clk.Now().Add(10*time.Minute)) {
		t.Fatalf("issue: %+v, %v", issued, err)
	}
	if _, err := tk.Check(ctx, onetime.Invite, token); !errors.Is(err, onetime.ErrUnknown) {
		t.Errorf("a console link used as an invite: %v", err)
	}
	if _, err := tk.Check(ctx, onetime.ConsoleLink, token+"x"); !errors.Is(err, onetime.ErrUnknown) {
		t.Errorf("another token: %v", err)
	}
	// Checking does not use it up.
	for range 2 {
		if got, err := tk.Check(ctx, onetime.ConsoleLink, token); err != nil || got.Account != "acme" {
			t.Fatalf("check: %+v, %v", got, err)
		}
	}
	// Two uses at once: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { _, errs[i] = tk.Use(ctx, onetime.ConsoleLink, token) })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs...), onetime.ErrUsed) {
		t.Fatalf("concurrent uses: %v", errs)
	}
	if _, err := tk.Use(ctx, onetime.ConsoleLink, token); !errors.Is(err, onetime.ErrUsed) {
		t.Errorf("third use: %v", err)
	}

	late, _, err := tk.Issue(ctx, onetime.ConsoleLink, "acme", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Minute)
	if _, err := tk.Use(ctx, onetime.ConsoleLink, late); !errors.Is(err, onetime.ErrExpired) {
		t.Errorf("expired link: %v", err)
	}
	// A used link is still told apart from an unknown one days later, and then forgotten.
	clk.Advance(6 * 24 * time.Hour)
	if _, err := tk.Check(ctx, onetime.ConsoleLink, token); !errors.Is(err, onetime.ErrUsed) {
		t.Errorf("used link after six days: %v", err)
	}
	clk.Advance(2 * 24 * time.Hour)
	if _, err := tk.Check(ctx, onetime.ConsoleLink, token); !errors.Is(err, onetime.ErrUnknown) {
		t.Errorf("used link after eight days: %v", err)
	}
}

// UseWrite marks a link used inside another transaction, and fails it when the link was used
// since it was checked.
func TestUseWriteInATransaction(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	st := testenv.EmbeddedStore(t, clk)
	tk := onetime.New(st, clk)
	ctx := context.Background()
	token, _, err := tk.Issue(ctx, onetime.Invite, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	checked, err := tk.Check(ctx, onetime.Invite, token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Use(ctx, onetime.Invite, token); err != nil {
		t.Fatal(err)
	}
	w, _ := tk.UseWrite(checked)
	other := store.PutItem(store.Item{PK: "TEST#x", SK: "-", Version: 1, Data: []byte(`{}`)}, store.NotExists)
	if err := st.Transact(ctx, []store.Write{other, w}); !errors.Is(err, store.ErrConditionFailed) {
		t.Fatalf("transaction with a link used meanwhile: %v", err)
	}
	if _, err := st.Get(ctx, "TEST#x", "-"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the other write happened: %v", err)
	}
}
