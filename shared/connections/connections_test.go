package connections_test

import (
	"bytes"
	"context"
	"encoding/json"
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

// A refresh token sealed by the previous release (format v1), with the fixed test key.
const v1RefreshToken = "v1.local-3ecf24992363.ZTTIFcbMldBubHrKUDj2K4LuJFMrfp0uH8aBghB-XvvT0J39FK7Z8wRxsp4FdS1A3emoWEC7IC7lUks0.Nod3PV0ce2ApOWk9-vrv2Uth-hKUknY1BaQd4E-eRcaWIC7vkcMgSJComvA"

// TestCredentialsOfTheLastReleaseOpenAndReseal: a stored token of the previous format still
// opens (a deployment is not stranded by the upgrade), and Reseal moves it to the current one.
func TestCredentialsOfTheLastReleaseOpenAndReseal(t *testing.T) {
	ctx := context.Background()
	repo, st := newRepo(t)
	doc := `{"provider":"ultracart","kind":"oauth","refresh_token":"` + v1RefreshToken + `","connected_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z"}`
	if err := st.Write(ctx, store.PutItem(store.Item{PK: "A#acme", SK: "CONN#ultracart", GSI1PK: "CONN#ultracart", GSI1SK: "acme", Version: 1, Data: []byte(doc)}, store.Always)); err != nil {
		t.Fatal(err)
	}
	c, err := repo.Get(ctx, "acme", connections.UltraCart)
	if err != nil || c.RefreshToken != "v1-value-of-2025" {
		t.Fatalf("open the v1 token: %q, %v", c.RefreshToken, err)
	}
	done, err := repo.Reseal(ctx, "acme", connections.UltraCart)
	if err != nil || len(done) != 1 || done[0] != connections.FieldRefreshToken {
		t.Fatalf("reseal: %v, %v", done, err)
	}
	it, _ := st.Get(ctx, "A#acme", "CONN#ultracart")
	if bytes.Contains(it.Data, []byte(`"v1.`)) || !bytes.Contains(it.Data, []byte(`"v2.`)) {
		t.Fatalf("stored after reseal: %s", it.Data)
	}
	if c, err := repo.Get(ctx, "acme", connections.UltraCart); err != nil || c.RefreshToken != "v1-value-of-2025" {
		t.Fatalf("after reseal: %q, %v", c.RefreshToken, err)
	}
	if done, err := repo.Reseal(ctx, "acme", connections.UltraCart); err != nil || len(done) != 0 {
		t.Fatalf("a second reseal: %v, %v", done, err)
	}
}

// TestPeekKeepsCredentialsUnopened: a status update through Peek opens nothing and keeps the
// stored tokens as they were.
func TestPeekKeepsCredentialsUnopened(t *testing.T) {
	ctx := context.Background()
	repo, st := newRepo(t)
	if _, err := repo.Put(ctx, connections.Connection{Account: "acme", Provider: connections.UltraCart, Kind: connections.KindOAuth,
		AccessToken: "at-secret-1", RefreshToken: "rt-secret-1"}); err != nil {
		t.Fatal(err)
	}
	before, _ := st.Get(ctx, "A#acme", "CONN#ultracart")
	c, err := repo.Peek(ctx, "acme", connections.UltraCart)
	if err != nil || c.AccessToken != "" || c.RefreshToken != "" || !c.HasCredentials() {
		t.Fatalf("peek: %+v, %v", c, err)
	}
	if err := repo.MarkProblem(ctx, "acme", connections.UltraCart, connections.StatusBroken, "refused"); err != nil {
		t.Fatal(err)
	}
	after, _ := st.Get(ctx, "A#acme", "CONN#ultracart")
	var b, a map[string]any
	_ = json.Unmarshal(before.Data, &b)
	_ = json.Unmarshal(after.Data, &a)
	if a["access_token"] != b["access_token"] || a["refresh_token"] != b["refresh_token"] || a["status"] != connections.StatusBroken {
		t.Fatalf("a status update changed the sealed tokens or lost the status:\n%s\n%s", before.Data, after.Data)
	}
	c, _ = repo.Peek(ctx, "acme", connections.UltraCart)
	c.ClearCredentials()
	c.SimpleKey, c.Kind = "sk-new-1", connections.KindSimpleKey
	if _, err := repo.Put(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, _ := repo.Get(ctx, "acme", connections.UltraCart); got.AccessToken != "" || got.RefreshToken != "" || got.SimpleKey != "sk-new-1" {
		t.Fatalf("after replacing the credentials: %+v", got)
	}
}
