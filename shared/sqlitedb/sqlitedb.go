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
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(15000)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// One writer at a time is SQLite's model; a small pool still lets reads overlap.
	db.SetMaxOpenConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w (is the directory writable?)", path, err)
	}
	return db, nil
}

// InDir opens the database file inside the data directory dir.
func InDir(ctx context.Context, dir string) (*sql.DB, error) {
	return Open(ctx, filepath.Join(dir, FileName))
}
