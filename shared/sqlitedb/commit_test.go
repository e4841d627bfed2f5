package sqlitedb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/cartrelay/cartrelay/shared/sqlitedb"
)

func open(t *testing.T, path string) *sqlitedb.DB {
	t.Helper()
	db, err := sqlitedb.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func createTable(t *testing.T, db *sqlitedb.DB) {
	t.Helper()
	err := db.Write(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func put(k, v string) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES (?, ?)`, k, v)
		return err
	}
}

func keys(t *testing.T, db *sqlitedb.DB) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT k FROM kv ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	return out
}

// Writes that queue up while one is running share its transaction: one commit makes all of
// them durable, and a write that fails is rolled back alone.
func TestConcurrentWritesShareOneCommitAndFailAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), sqlitedb.FileName)
	db := open(t, path)
	createTable(t, db)
	before := db.WriteStats()

	release := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 50)
	wg.Go(func() {
		errs[0] = db.Write(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
			close(started)
			<-release // the others queue behind this one meanwhile
			return put("k00", "first")(ctx, tx)
		})
	})
	<-started
	queued := make(chan struct{}, 49)
	for i := 1; i < 50; i++ {
		wg.Go(func() {
			queued <- struct{}{}
			fn := put(fmt.Sprintf("k%02d", i), "v")
			switch i {
			case 7:
				// Writes a row, then fails: its row must not survive.
				fn = func(ctx context.Context, tx *sql.Tx) error {
					if err := put("k07", "v")(ctx, tx); err != nil {
						return err
					}
					return errors.New("refused")
				}
			case 9:
				fn = func(context.Context, *sql.Tx) error { panic("boom") }
			case 11:
				fn = put("k00", "duplicate key") // a constraint failure inside the group
			}
			errs[i] = db.Write(t.Context(), fn)
		})
	}
	for range 49 {
		<-queued
	}
	// Every other writer waits in the committer's queue before the first one finishes.
	for db.Queued() < 49 {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()

	for i, err := range errs {
		switch i {
		case 7:
			if err == nil || err.Error() != "refused" {
				t.Errorf("write 7: %v, want its own error", err)
			}
		case 9:
			if err == nil || !strings.Contains(err.Error(), "panicked: boom") {
				t.Errorf("write 9: %v, want the panic as an error", err)
			}
		case 11:
			if err == nil || !strings.Contains(err.Error(), "UNIQUE") {
				t.Errorf("write 11: %v, want the constraint failure", err)
			}
		default:
			if err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		}
	}
	st := db.WriteStats()
	if w, c := st.Writes-before.Writes, st.Commits-before.Commits; w != 47 || c != 1 {
		t.Errorf("%d writes in %d commits, want 47 in 1", w, c)
	}

	// Durable: a fresh handle on the file sees exactly the writes that succeeded.
	db.Close()
	got := keys(t, open(t, path))
	if len(got) != 47 {
		t.Fatalf("%d rows after reopening, want 47: %v", len(got), got)
	}
	for _, k := range got {
		if k == "k07" || k == "k09" || k == "k11" {
			t.Errorf("row %s of a failed write survived", k)
		}
	}
}

// A write whose caller gave up before it ran is not run.
func TestAWriteCancelledBeforeItsTurnDoesNotRun(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), sqlitedb.FileName))
	createTable(t, db)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := db.Write(ctx, put("k", "v")); !errors.Is(err, context.Canceled) {
		t.Fatalf("write with a cancelled context: %v", err)
	}
	if got := keys(t, db); len(got) != 0 {
		t.Fatalf("rows %v, want none", got)
	}
}

// Two processes (here two handles) writing to one file both succeed: each committer queues on
// SQLite's write lock for the other's.
func TestTwoHandlesWriteTheSameFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), sqlitedb.FileName)
	a, b := open(t, path), open(t, path)
	createTable(t, a)
	var wg sync.WaitGroup
	for i := range 40 {
		db := a
		if i%2 == 1 {
			db = b
		}
		wg.Go(func() {
			if err := db.Write(t.Context(), put(fmt.Sprintf("k%02d", i), "v")); err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if got := keys(t, b); len(got) != 40 {
		t.Fatalf("%d rows, want 40", len(got))
	}
}

// After Close, writes are refused with a clear error rather than hanging.
func TestWriteAfterClose(t *testing.T) {
	db, err := sqlitedb.Open(t.Context(), filepath.Join(t.TempDir(), sqlitedb.FileName))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := db.Write(t.Context(), put("k", "v")); !errors.Is(err, sqlitedb.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

// Under a steady load of writes and reads, the WAL starts again from its beginning instead of
// growing without end: the background checkpoints never copy the commits made while they run,
// so the committer finishes one between two groups once the WAL is past its limit.
func TestWALStartsAgainUnderSteadyWritesAndReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), sqlitedb.FileName)
	db := open(t, path)
	createTable(t, db)
	const limit = 32 // pages
	db.RestartWALAt(limit)

	stop := make(chan struct{})
	var bg sync.WaitGroup
	// Readers always under way, as serve's consumers and the CLI beside it are.
	for range 2 {
		bg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var n int
				if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM kv WHERE k = 'w0-0000'`).Scan(&n); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// The background checkpoints, often, so that many of them run while writes commit.
	bg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			db.Checkpoint()
		}
	})
	value := strings.Repeat("v", 3000)
	var writers sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 3 {
		writers.Go(func() {
			for i := range 200 {
				if err := db.Write(t.Context(), put(fmt.Sprintf("w%d-%04d", w, i), value)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	bg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// 600 rows of 3 KB each take a page or more: a WAL that never started again would hold
	// well over 600 pages (900 rows made 1,160 here).
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if max := int64(300 * 4096); fi.Size() > max {
		t.Errorf("the WAL is %d bytes after 600 writes with a limit of %d pages; want at most %d (it should have started again)", fi.Size(), limit, max)
	}
	if st := db.WriteStats(); st.WALRestarts == 0 {
		t.Errorf("WriteStats().WALRestarts = 0; want the committer to have restarted the WAL")
	}
	if got := len(keys(t, db)); got != 600 {
		t.Errorf("%d rows after the writes; want 600", got)
	}
}
