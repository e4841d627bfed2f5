package testenv

import (
	"context"
	"testing"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
	"github.com/cartrelay/cartrelay/shared/store/embedded"
)

// EmbeddedStore opens the embedded (SQLite) store in a fresh temporary directory, closed when
// the test ends: the real table, for tests of code that runs over the store port.
func EmbeddedStore(t testing.TB, clk clock.Clock) *embedded.Store {
	t.Helper()
	ctx := context.Background()
	db, err := sqlitedb.InDir(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("open the embedded database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := embedded.New(ctx, db, clk)
	if err != nil {
		t.Fatalf("open the embedded store: %v", err)
	}
	return st
}
