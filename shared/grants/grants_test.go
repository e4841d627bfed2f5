package grants_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/grants"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

func TestLikeIsIAMStringLike(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"A#*#*", "A#acme#E#jane@example.com", true},
		{"A#*#*", "A#acme#Q", true},
		{"A#*#*", "A#acme", false}, // the account's settings and connections
		{"A#*#*", "A##", true},
		{"D#*", "D#acme#abc", true},
		{"D#*", "BLOB#x", false},
		{"BLOB#*", "BLOB#", true},
		{"T#*", "T#CURSOR", true},
		{grants.ReviewKeys, accountkeys.ItemKey("acme", accountkeys.Review).PK, true},
		{grants.ReviewKeys, accountkeys.ItemKey("acme", accountkeys.Tracking).PK, false},
		{grants.AccountData, accountkeys.ItemKey("acme", accountkeys.Tracking).PK, false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*", "", true},
		{"", "x", false},
	} {
		if got := grants.Like(tc.pattern, tc.s); got != tc.want {
			t.Errorf("Like(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestEveryFunctionHasAGrant(t *testing.T) {
	for _, fn := range grants.Functions() {
		if _, err := grants.For(fn); err != nil {
			t.Errorf("%s: %v", fn, err)
		}
	}
	if _, err := grants.For("forward-mailchimp"); err == nil || !strings.Contains(err.Error(), "webhook, ingest") {
		t.Errorf("an unknown function: %v", err)
	}
}

// TestStoreKeepsWritesToTheGrant: the webhook function cannot overwrite an account's settings
// (pk "A#<id>"), not even inside a transaction.
func TestStoreKeepsWritesToTheGrant(t *testing.T) {
	ctx := context.Background()
	g, _ := grants.For(grants.Webhook)
	st := grants.Store(testenv.EmbeddedStore(t, clock.NewFake(time.Now())), grants.Webhook, g)
	ok := store.PutItem(store.Item{PK: "A#acme#V#visitor", SK: "-", Data: []byte(`{}`)}, store.Always)
	bad := store.PutItem(store.Item{PK: "A#acme", SK: "ACCOUNT", Data: []byte(`{}`)}, store.Always)
	if err := st.Write(ctx, ok); err != nil {
		t.Fatalf("a granted write: %v", err)
	}
	err := st.Write(ctx, bad)
	var we *grants.WriteError
	if !errors.Is(err, grants.ErrNotGranted) || !errors.As(err, &we) || we.Partition != "A#acme" ||
		!strings.Contains(err.Error(), "the webhook function may not write partition A#acme (it may write A#*#*, BLOB#*)") {
		t.Fatalf("a write outside the grant: %v", err)
	}
	if err := st.Transact(ctx, []store.Write{ok, store.DeleteKey(store.Key{PK: "A#acme", SK: "ACCOUNT"}, store.Always)}); !errors.Is(err, grants.ErrNotGranted) {
		t.Fatalf("a transaction touching the account item: %v", err)
	}
	if _, err := st.Get(ctx, "A#acme", "ACCOUNT"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused writes wrote something: %v", err)
	}
}
