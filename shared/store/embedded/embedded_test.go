package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/store/embedded"
	"github.com/cartrelay/cartrelay/shared/store/storetest"
)

func openDB(t testing.TB, path string) *sqlitedb.DB {
	t.Helper()
	db, err := sqlitedb.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newStore(t testing.TB, db *sqlitedb.DB, clk clock.Clock) *embedded.Store {
	t.Helper()
	s, err := embedded.New(context.Background(), db, clk)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clk *clock.Fake) store.Store {
		return newStore(t, openDB(t, filepath.Join(t.TempDir(), sqlitedb.FileName)), clk)
	})
}

// TestContractSharedFile runs the suite with every test on one file, as `serve` runs every
// repository on one database, so tests that pass alone but interfere on a shared table show up.
func TestContractSharedFile(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), sqlitedb.FileName))
	storetest.Run(t, func(t *testing.T, clk *clock.Fake) store.Store {
		return newStore(t, db, clk)
	})
}

// TestSecondProcess stands in for the CLI reading and writing while `serve` has the file open:
// a second connection pool sees what the first committed, and their conditional writes
// exclude each other.
func TestSecondProcess(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), sqlitedb.FileName)
	clk := clock.NewFake(time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC))
	serve := newStore(t, openDB(t, path), clk)
	cli := newStore(t, openDB(t, path), clk)

	it := store.Item{PK: "A#1", SK: "CONN#ontraport", Version: 1, Data: []byte(`{"k":1}`)}
	if err := serve.Write(ctx, store.PutItem(it, store.NotExists)); err != nil {
		t.Fatal(err)
	}
	got, err := cli.Get(ctx, it.PK, it.SK)
	if err != nil {
		t.Fatalf("second pool does not see the committed item: %v", err)
	}
	if got.Version != 1 || string(got.Data) != `{"k":1}` {
		t.Fatalf("second pool read %+v", got)
	}
	if err := cli.Write(ctx, store.PutItem(it, store.NotExists)); !errors.Is(err, store.ErrConditionFailed) {
		t.Fatalf("second pool overwrote a live item: %v", err)
	}

	// Both pools increment one counter at once; every increment must land exactly once.
	key := store.Key{PK: "A#1", SK: "CUR#counter"}
	if err := serve.Write(ctx, store.PutItem(store.Item{PK: key.PK, SK: key.SK}, store.NotExists)); err != nil {
		t.Fatal(err)
	}
	const perPool, workers = 25, 4
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for _, s := range []*embedded.Store{serve, cli} {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for done := 0; done < perPool; {
					cur, err := s.Get(ctx, key.PK, key.SK)
					if err != nil {
						errs <- err
						return
					}
					next := cur
					next.Version++
					err = s.Write(ctx, store.PutIfVersion(next, cur.Version))
					if errors.Is(err, store.ErrConditionFailed) {
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					done++
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent writer: %v", err)
	}
	final, err := cli.Get(ctx, key.PK, key.SK)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(2 * workers * perPool); final.Version != want {
		t.Fatalf("counter at %d after %d increments from two pools", final.Version, want)
	}
}

func TestSweep(t *testing.T) {
	ctx := t.Context()
	db := openDB(t, filepath.Join(t.TempDir(), sqlitedb.FileName))
	clk := clock.NewFake(time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC))
	s := newStore(t, db, clk)

	// More expired rows than one sweep batch, so batching is exercised.
	const expiring, lasting = 1234, 10
	var ws []store.Write
	flush := func() {
		if len(ws) == 0 {
			return
		}
		if err := s.Transact(ctx, ws); err != nil {
			t.Fatal(err)
		}
		ws = nil
	}
	for i := range expiring + lasting {
		it := store.Item{PK: "D#1", SK: fmt.Sprintf("%05d", i), GSI1PK: "G", GSI1SK: fmt.Sprint(i)}
		if i < expiring {
			it.ExpiresAt = clk.Now().Add(time.Duration(1+i%3) * time.Hour)
		} else if i == expiring {
			it.ExpiresAt = clk.Now().Add(24 * time.Hour)
		}
		ws = append(ws, store.PutItem(it, store.Always))
		if len(ws) == store.MaxTransactWrites {
			flush()
		}
	}
	flush()

	rows := func() int {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+embedded.TableName).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	steps := []struct {
		advance     time.Duration
		swept, left int
	}{
		{0, 0, expiring + lasting},
		{time.Hour, 412, expiring + lasting - 412}, // i%3 == 0 for 412 of the 1234
		{2 * time.Hour, expiring - 412, lasting},
		{time.Hour, 0, lasting},
		{21 * time.Hour, 1, lasting - 1},
	}
	for i, st := range steps {
		clk.Advance(st.advance)
		n, err := s.Sweep(ctx)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if n != st.swept || rows() != st.left {
			t.Fatalf("step %d: swept %d leaving %d rows, want %d leaving %d", i, n, rows(), st.swept, st.left)
		}
	}
	items, err := store.QueryAll(ctx, s, store.Query{PK: "D#1"})
	if err != nil || len(items) != lasting-1 {
		t.Fatalf("after sweeping: %d items, error %v", len(items), err)
	}
}

// TestSchemaIsIdempotent covers `serve` and the CLI both starting on one file.
func TestSchemaIsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), sqlitedb.FileName)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := sqlitedb.Open(t.Context(), path)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			if _, err := embedded.New(t.Context(), db, clock.System{}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestNewRejectsMissingArguments(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), sqlitedb.FileName))
	if _, err := embedded.New(t.Context(), nil, clock.System{}); err == nil {
		t.Error("New accepted a nil database")
	}
	if _, err := embedded.New(t.Context(), db, nil); err == nil {
		t.Error("New accepted a nil clock")
	}
}

func TestKindNamesNoContent(t *testing.T) {
	for _, tc := range []struct {
		pk, sk, want string
	}{
		{"A#acct#E#jane@example.com", "DL#2026-12-07T10:00:00Z#ontraport", "E/DL"},
		{"A#acct#E#jane@example.com", "PROFILE", "E/-"},
		{"A#acct#R#3#day#2026-12-07", "00a1", "R/-"},
		{"A#acct#CN#12", "marcus reyes#jane@example.com", "CN/-"},
		{"F#acct#ontraport", "f-123", "F/-"},
		{"acct@example.com", "x", "-/-"},
	} {
		if got := embedded.Kind(store.Key{PK: tc.pk, SK: tc.sk}); got != tc.want {
			t.Errorf("Kind(%q, %q) = %q, want %q", tc.pk, tc.sk, got, tc.want)
		}
	}
}
