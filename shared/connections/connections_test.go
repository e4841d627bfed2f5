package connections_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/store/embedded"
)

func newRepo(t *testing.T) (*connections.Repo, store.Store) {
	t.Helper()
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	db, err := sqlitedb.InDir(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := embedded.New(ctx, db, clk)
	if err != nil {
		t.Fatal(err)
	}
	key, err := secrets.NewLocalKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return connections.NewRepo(st, secrets.NewSealer(key, clk), clk), st
}

func TestRoundTripSealed(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		c    connections.Connection
	}{
		{"oauth", connections.Connection{Account: "acme", Provider: connections.UltraCart, Kind: connections.KindOAuth,
			AccessToken: "at-secret", RefreshToken: "rt-secret", ExpiresAt: time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC)}},
		{"simple key", connections.Connection{Account: "bolt", Provider: connections.UltraCart, Kind: connections.KindSimpleKey,
			SimpleKey: "sk-secret", BaseURL: "http://127.0.0.1:9"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo, st := newRepo(t)
			saved, err := repo.Put(ctx, tc.c)
			if err != nil {
				t.Fatal(err)
			}
			it, err := st.Get(ctx, "A#"+tc.c.Account, "CONN#"+tc.c.Provider)
			if err != nil {
				t.Fatal(err)
			}
			for _, plain := range []string{"at-secret", "rt-secret", "sk-secret"} {
				if bytes.Contains(it.Data, []byte(plain)) {
					t.Fatalf("%q stored in the clear: %s", plain, it.Data)
				}
			}
			got, err := repo.Get(ctx, tc.c.Account, tc.c.Provider)
			if err != nil {
				t.Fatal(err)
			}
			if got.AccessToken != tc.c.AccessToken || got.RefreshToken != tc.c.RefreshToken || got.SimpleKey != tc.c.SimpleKey ||
				got.BaseURL != tc.c.BaseURL || !got.ExpiresAt.Equal(tc.c.ExpiresAt) || got.Version() != saved.Version() {
				t.Fatalf("got %+v, want %+v", got, tc.c)
			}
			refs, err := repo.List(ctx, connections.UltraCart)
			if err != nil || len(refs) != 1 || refs[0].Account != tc.c.Account {
				t.Fatalf("list: %v %v", refs, err)
			}
		})
	}
}

func TestVersionGuard(t *testing.T) {
	ctx := context.Background()
	repo, _ := newRepo(t)
	c := connections.Connection{Account: "acme", Provider: connections.UltraCart, Kind: connections.KindSimpleKey, SimpleKey: "k1"}
	if _, err := repo.Put(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Put(ctx, c); !errors.Is(err, connections.ErrConflict) {
		t.Fatalf("second insert: %v", err)
	}
	a, _ := repo.Get(ctx, "acme", connections.UltraCart)
	b, _ := repo.Get(ctx, "acme", connections.UltraCart)
	a.SimpleKey = "k2"
	if _, err := repo.Put(ctx, a); err != nil {
		t.Fatal(err)
	}
	b.SimpleKey = "k3"
	if _, err := repo.Put(ctx, b); !errors.Is(err, connections.ErrConflict) {
		t.Fatalf("stale update: %v", err)
	}
	if _, err := repo.Get(ctx, "nobody", connections.UltraCart); !errors.Is(err, connections.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if err := repo.Delete(ctx, "acme", connections.UltraCart); err != nil {
		t.Fatal(err)
	}
	if refs, _ := repo.List(ctx, connections.UltraCart); len(refs) != 0 {
		t.Fatalf("after delete: %v", refs)
	}
}

func TestMarkProblemKeepsCredentialsAndFirstTime(t *testing.T) {
	ctx := context.Background()
	repo, _ := newRepo(t)
	c := connections.Connection{Account: "acme", Provider: connections.UltraCart, Kind: connections.KindOAuth,
		AccessToken: "at", RefreshToken: "rt"}
	if _, err := repo.Put(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := repo.MarkProblem(ctx, "acme", connections.UltraCart, connections.StatusBroken, "refused"); err != nil {
		t.Fatal(err)
	}
	first, err := repo.Get(ctx, "acme", connections.UltraCart)
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != connections.StatusBroken || first.Problem != "refused" || first.ProblemAt.IsZero() ||
		first.AccessToken != "at" || first.RefreshToken != "rt" {
		t.Fatalf("after MarkProblem: %+v", first)
	}
	// The same problem again changes nothing, not even the version.
	if err := repo.MarkProblem(ctx, "acme", connections.UltraCart, connections.StatusBroken, "refused"); err != nil {
		t.Fatal(err)
	}
	again, _ := repo.Get(ctx, "acme", connections.UltraCart)
	if again.Version() != first.Version() {
		t.Fatalf("an unchanged problem was written again: version %d -> %d", first.Version(), again.Version())
	}
	// Another reason under the same status keeps the first time; another status restarts it.
	if err := repo.MarkProblem(ctx, "acme", connections.UltraCart, connections.StatusBroken, "refused again"); err != nil {
		t.Fatal(err)
	}
	if got, _ := repo.Get(ctx, "acme", connections.UltraCart); !got.ProblemAt.Equal(first.ProblemAt) || got.Problem != "refused again" {
		t.Fatalf("same status, new reason: %+v", got)
	}
	if err := repo.MarkProblem(ctx, "nobody", connections.UltraCart, connections.StatusBroken, "x"); !errors.Is(err, connections.ErrNotFound) {
		t.Fatalf("missing connection: %v", err)
	}
}
