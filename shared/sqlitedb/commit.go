package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("the database is closed")

// maxGroup bounds the writes one commit takes, so that a long queue of them cannot hold the
// write lock for long against another process (the CLI beside serve).
const maxGroup = 256

// checkpointEvery is how often the WAL is copied back into the database file while writes come.
const checkpointEvery = 200 * time.Millisecond

// restartFrames is the size of the WAL (in pages) past which the committer finishes a
// checkpoint itself, between two groups, so that the WAL starts again from its beginning.
// 8,192 pages of 4 KiB are 32 MiB: a few seconds of writes under load.
const restartFrames = 8192

// restartWait bounds how long the committer waits for readers on older snapshots when it
// restarts the WAL.
const restartWait = 20 * time.Millisecond

// Write runs fn in a write transaction and returns once that transaction is durable (or
// failed). Writes that arrive while a commit waits for the disk go into the next transaction
// together, each in its own savepoint: one fsync then makes all of them durable (group commit),
// instead of one fsync each, and no write waits for SQLite's busy handler behind another of
// this process. If fn returns an error, its changes are rolled back and the error returned;
// the others' are kept. fn must only use tx (it runs on the committer's goroutine: a nested
// Write would wait for itself) and the context it is given, which is ctx without its
// cancellation: SQLite rolls back the whole transaction when a statement in it is interrupted,
// so one caller giving up must not cancel the statements of the group. ctx still decides
// whether fn runs at all.
//
// Another process's writes (the CLI beside serve) still queue on SQLite's write lock and its
// busy timeout.
func (db *DB) Write(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	return db.c.write(ctx, fn)
}

// WriteStats are the committer's counts since the database was opened.
type WriteStats struct {
	Writes  int64 // calls to Write that ran
	Commits int64 // transactions committed (each one fsync)
	// WALRestarts counts the checkpoints the committer finished so that the WAL could start
	// again from its beginning.
	WALRestarts int64
}

// WriteStats returns how many writes and commits there were: their ratio is the size of the
// average group.
func (db *DB) WriteStats() WriteStats {
	return WriteStats{Writes: db.c.writes.Load(), Commits: db.c.commits.Load(), WALRestarts: db.c.restarts.Load()}
}

type writeReq struct {
	ctx  context.Context
	fn   func(context.Context, *sql.Tx) error
	done chan error
}

// committer owns the connection that writes, and runs every write of the process on it.
type committer struct {
	db   *DB
	conn *sql.Conn
	reqs chan *writeReq
	quit chan struct{}
	wg   sync.WaitGroup

	closeOnce sync.Once
	mu        sync.RWMutex // held for reading while a request is being handed over
	closed    bool

	writes, commits atomic.Int64
	dirty           atomic.Bool
	// restart asks the committer to finish a checkpoint between two groups (see restartWAL);
	// restartAt is the WAL size, in pages, past which the background checkpoints ask.
	restart   atomic.Bool
	restartAt atomic.Int64
	restarts  atomic.Int64
}

func startCommitter(ctx context.Context, db *DB) (*committer, error) {
	conn, err := db.DB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	c := &committer{db: db, conn: conn, reqs: make(chan *writeReq, maxGroup), quit: make(chan struct{})}
	c.restartAt.Store(restartFrames)
	c.wg.Add(2)
	go c.loop()
	go c.checkpoints()
	return c, nil
}

func (c *committer) write(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return ErrClosed
	}
	select {
	case c.reqs <- r:
		c.mu.RUnlock()
	case <-ctx.Done():
		c.mu.RUnlock()
		return ctx.Err()
	}
	// Once handed over, the write runs or is refused as a whole; the caller waits for which,
	// so that a nil error always means durable.
	return <-r.done
}

func (c *committer) stop() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		close(c.reqs)
		c.mu.Unlock()
		close(c.quit)
		c.wg.Wait()
		c.conn.Close()
	})
}

func (c *committer) loop() {
	defer c.wg.Done()
	for first := range c.reqs {
		c.group(first)
		if c.restart.Swap(false) {
			c.restartWAL()
		}
	}
}

// restartWAL checkpoints the whole WAL while no write of this process is under way, and makes
// the next write start the WAL again from its beginning.
//
// The background checkpoints alone never get there under a steady load: a PASSIVE checkpoint
// copies the pages of the commits made before it started, the commits made meanwhile stay
// in the WAL, and SQLite rewinds the WAL only when a write begins with every page of it
// copied and no reader on an older snapshot. Under load it then grew without end (1.4 GB in
// three minutes), and a read of a page whose latest copy is in the WAL costs a read(2) and a
// look-up in the WAL's index where the database file is read through the memory map.
//
// A RESTART checkpoint copies what is left (little: the background checkpoints copied all but
// the last moments' pages) and waits for the readers on older snapshots, which serve's are
// for a moment. It waits at most restartWait, so that a long read (a report the CLI runs
// beside serve) holds the writes up no longer than that; the next background checkpoint then
// asks again.
func (c *committer) restartWAL() {
	ctx := context.Background()
	if _, err := c.conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout(%d)", restartWait.Milliseconds())); err != nil {
		return
	}
	var busy, frames, copied int64
	err := c.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(RESTART)").Scan(&busy, &frames, &copied)
	if err == nil && busy == 0 {
		c.restarts.Add(1)
	}
	// Writes wait as long as ever for another process's write lock.
	_, _ = c.conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout(%d)", busyTimeout.Milliseconds()))
}

// group runs first and every write queued behind it (up to maxGroup, taking more as they
// come while the group runs) in one transaction, then commits.
func (c *committer) group(first *writeReq) {
	ctx := context.Background()
	tx, err := c.conn.BeginTx(ctx, nil)
	if err != nil {
		err = fmt.Errorf("begin a write transaction: %w", err)
		first.done <- err
		c.refuseQueued(err)
		return
	}
	var ran []*writeReq
	next := first
	for next != nil {
		r := next
		next = nil
		if r.ctx.Err() != nil {
			r.done <- r.ctx.Err()
		} else if ok, err := c.run(ctx, tx, r); !ok {
			// The transaction itself is broken (the savepoint could not be rolled back):
			// nothing in it can be kept.
			_ = tx.Rollback()
			for _, w := range append(ran, r) {
				w.done <- err
			}
			return
		} else if err != nil {
			r.done <- err
		} else {
			ran = append(ran, r)
		}
		if len(ran) < maxGroup {
			select {
			case next = <-c.reqs:
			default:
			}
		}
	}
	if len(ran) == 0 {
		_ = tx.Rollback()
		return
	}
	err = tx.Commit()
	if err != nil {
		err = fmt.Errorf("commit: %w", err)
	} else {
		c.writes.Add(int64(len(ran)))
		c.commits.Add(1)
		c.dirty.Store(true)
	}
	for _, r := range ran {
		r.done <- err
	}
}

// run runs one write inside a savepoint. ok is false when the transaction cannot go on.
func (c *committer) run(ctx context.Context, tx *sql.Tx, r *writeReq) (ok bool, err error) {
	if _, err := c.db.Exec(ctx, tx, "SAVEPOINT w"); err != nil {
		return false, fmt.Errorf("start a savepoint: %w", err)
	}
	err = call(r.ctx, tx, r.fn)
	if err == nil {
		if _, err := c.db.Exec(ctx, tx, "RELEASE w"); err != nil {
			return false, fmt.Errorf("release a savepoint: %w", err)
		}
		return true, nil
	}
	if _, rerr := c.db.Exec(ctx, tx, "ROLLBACK TO w"); rerr != nil {
		return false, errors.Join(err, fmt.Errorf("roll back a failed write: %w", rerr))
	}
	if _, rerr := c.db.Exec(ctx, tx, "RELEASE w"); rerr != nil {
		return false, errors.Join(err, fmt.Errorf("release a savepoint: %w", rerr))
	}
	return true, err
}

// call runs fn, turning a panic into an error so that one bad write cannot take every other
// writer of the process down with the committer.
func call(ctx context.Context, tx *sql.Tx, fn func(context.Context, *sql.Tx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write panicked: %v", p)
		}
	}()
	return fn(context.WithoutCancel(ctx), tx)
}

// refuseQueued fails the writes already queued behind a transaction that could not begin:
// they would meet the same failure, and their callers may retry.
func (c *committer) refuseQueued(err error) {
	for {
		select {
		case r, ok := <-c.reqs:
			if !ok {
				return
			}
			r.done <- err
		default:
			return
		}
	}
}

// checkpoint copies what it can of the WAL into the database file, and asks the committer to
// finish the job once the WAL has grown past restartAt pages.
func (c *committer) checkpoint() {
	// A failed checkpoint (another process's at the same moment) is retried next time.
	var busy, frames, copied int64
	err := c.db.DB.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
	if err == nil && frames > c.restartAt.Load() {
		c.restart.Store(true)
	}
}

// checkpoints copies the WAL back into the database file beside the writes (a PASSIVE
// checkpoint waits for no reader or writer), so that no commit pays for it. Automatic
// checkpoints are off (wal_autocheckpoint(0)); without this the WAL would only grow.
func (c *committer) checkpoints() {
	defer c.wg.Done()
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.quit:
			return
		case <-t.C:
		}
		if c.dirty.Swap(false) {
			c.checkpoint()
		}
	}
}
