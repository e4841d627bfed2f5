// Package sqlitedb opens the one SQLite file that holds the embedded store and the embedded
// queues, so that `cartrelay serve` and a second `cartrelay` process (the CLI) can use it at
// the same time.
package sqlitedb

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the database file inside a data directory.
const FileName = "cartrelay.db"

// Open opens (creating if needed) the database at path.
//
// WAL lets readers in other processes work while a writer commits. synchronous=FULL makes a
// commit durable before it returns, which the webhook relies on before it answers 200.
// Transactions take the write lock up front (_txlock=immediate) so two writers queue on
// busy_timeout instead of failing with SQLITE_BUSY half-way through a read-then-write.
func Open(ctx context.Context, path string) (*sql.DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create data directory %s: %w", dir, err)
		}
	}
	q := url.Values{}
	// busy_timeout comes first: the pragmas run in order on every new connection, and switching
	// to WAL needs a lock that another connection (or process) may hold for a moment.
	q.Add("_pragma", "busy_timeout(15000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// One writer at a time is SQLite's model; a small pool still lets reads overlap.
	db.SetMaxOpenConns(4)
	if err := ping(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w (is the directory writable?)", path, err)
	}
	return db, nil
}

// ping opens the first connection. Turning a new file into WAL mode needs an exclusive lock, and
// SQLite reports a clash there as busy at once, without waiting on busy_timeout; two processes
// (serve and the CLI) opening a fresh data directory together would otherwise fail. Once the
// file is in WAL mode the pragma is a no-op and later connections never clash on it.
func ping(ctx context.Context, db *sql.DB) error {
	var err error
	for range 200 {
		if err = db.PingContext(ctx); err == nil || !strings.Contains(err.Error(), "SQLITE_BUSY") {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
	return err
}

// InDir opens the database file inside the data directory dir.
func InDir(ctx context.Context, dir string) (*sql.DB, error) {
	return Open(ctx, filepath.Join(dir, FileName))
}
