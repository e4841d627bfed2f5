// Package sqlitedb opens the one SQLite file that holds the embedded store and the embedded
// queues, so that `cartrelay serve` and a second `cartrelay` process (the CLI) can use it at
// the same time, and gives the process one write path into it that commits the writes of
// concurrent callers together (group commit).
package sqlitedb

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// busyTimeout is how long a connection waits for another process's lock (the CLI's, serve's)
// before it fails with SQLITE_BUSY.
const busyTimeout = 15 * time.Second

// FileName is the database file inside a data directory.
const FileName = "cartrelay.db"

// DB is an open database file. Reads go through the embedded *sql.DB; writes through Write.
// Close it to stop its committer.
type DB struct {
	*sql.DB
	c *committer

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
}

// Open opens (creating if needed) the database at path.
//
// WAL lets readers in other processes work while a writer commits. synchronous=FULL makes a
// commit durable before it returns, which the webhook relies on before it answers 200.
// Transactions take the write lock up front (_txlock=immediate) so two writers queue on
// busy_timeout instead of failing with SQLITE_BUSY half-way through a read-then-write.
//
// Checkpoints (copying the WAL back into the database file, which waits for the disk too) run
// on their own connection beside the writes instead of inside whichever commit crosses the
// WAL's size threshold; see checkpointer.
func Open(ctx context.Context, path string) (*DB, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create data directory %s: %w", dir, err)
		}
	}
	q := url.Values{}
	// busy_timeout comes first: the pragmas run in order on every new connection, and switching
	// to WAL needs a lock that another connection (or process) may hold for a moment.
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "wal_autocheckpoint(0)")
	// Once the WAL starts again from its beginning (see committer.restartWAL), its file is cut
	// back to this size.
	q.Add("_pragma", "journal_size_limit(67108864)")
	// Reads of the database file through a memory map rather than a read(2) per page: every
	// write by another connection empties a connection's page cache, so under load most
	// reads go back to the file.
	q.Add("_pragma", "mmap_size(1073741824)")
	// The committer runs each write of a group in a savepoint, and a savepoint saves the
	// original of every page it changes that the group changed before it (the statement
	// journal). Kept in a file, that was two write(2)s per page on the one goroutine every
	// write of the process waits for; in memory it is a copy. A crash loses nothing by it: the
	// statement journal only serves rolling back a savepoint of a transaction still open.
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	sdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// One connection writes (the committer's); the rest serve reads, which WAL lets overlap
	// with the write and with each other.
	sdb.SetMaxOpenConns(8)
	sdb.SetMaxIdleConns(8)
	if err := ping(ctx, sdb); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("open %s: %w (is the directory writable?)", path, err)
	}
	db := &DB{DB: sdb, stmts: map[string]*sql.Stmt{}}
	c, err := startCommitter(ctx, db)
	if err != nil {
		sdb.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.c = c
	return db, nil
}

// Close stops the committer (writes already handed to it are finished first) and closes the
// database.
func (db *DB) Close() error {
	db.c.stop()
	db.stmtMu.Lock()
	for _, s := range db.stmts {
		s.Close()
	}
	db.stmts = map[string]*sql.Stmt{}
	db.stmtMu.Unlock()
	return db.DB.Close()
}

// Stmt returns query prepared once for this database. Preparing is most of the cost of a
// small statement on SQLite (its parser ran for a fifth of serve's time under load), so the
// statements run on every request are kept. A Stmt used in a transaction goes through
// tx.StmtContext, which reuses what was prepared on the transaction's connection.
func (db *DB) Stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	if s, ok := db.stmts[query]; ok {
		return s, nil
	}
	s, err := db.DB.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	db.stmts[query] = s
	return s, nil
}

// Exec runs a kept statement (see Stmt) in tx.
func (db *DB) Exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	s, err := db.Stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, s).ExecContext(ctx, args...)
}

// QueryRow runs a kept statement (see Stmt) that returns at most one row, in tx or, when tx
// is nil, on any connection.
func (db *DB) QueryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	s, err := db.Stmt(ctx, query)
	if err != nil {
		// A *sql.Row carries its error to Scan; the unprepared query fails the same way.
		if tx != nil {
			return tx.QueryRowContext(ctx, query, args...)
		}
		return db.DB.QueryRowContext(ctx, query, args...)
	}
	if tx != nil {
		s = tx.StmtContext(ctx, s)
	}
	return s.QueryRowContext(ctx, args...)
}

// Query runs a kept statement (see Stmt) in tx or, when tx is nil, on any connection.
func (db *DB) Query(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	s, err := db.Stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if tx != nil {
		s = tx.StmtContext(ctx, s)
	}
	return s.QueryContext(ctx, args...)
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
func InDir(ctx context.Context, dir string) (*DB, error) {
	return Open(ctx, filepath.Join(dir, FileName))
}
