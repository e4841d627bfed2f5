// Package embedded implements queue.Queue in the SQLite file that `cartrelay serve` shares
// with the embedded store, with the behaviour of Amazon SQS: visibility timeouts, receive
// counts and dead-letter queues, FIFO group order and locking, and FIFO deduplication.
//
// Every decision that depends on time (visibility, the move to a DLQ, the dedup window) reads
// the injected clock, so tests drive it with a fake. Long polling waits in real time, because
// it is a wait for another goroutine or process to act.
//
// A second process (the CLI beside `serve`) may open the same file: all state is in the
// database, each change is one transaction, and a receiver in one process notices messages
// sent by another within pollInterval.
package embedded

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/opcount"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
)

// pollInterval bounds how late a long poll notices a message sent by another process or a
// message whose visibility ran out. Sends within this process wake a poll at once.
const pollInterval = 100 * time.Millisecond

// The tables are prefixed so that they cannot clash with the embedded store's, which lives in
// the same database. queue_messages_order lets a receive walk a queue in send order and stop
// at its limit; ordering by visibility instead made SQLite sort every visible message (and, on
// a FIFO queue, test each one's group lock) on every receive.
const schema = `
CREATE TABLE IF NOT EXISTS queue_messages (
	seq               INTEGER PRIMARY KEY AUTOINCREMENT,
	queue             TEXT    NOT NULL,
	message_id        TEXT    NOT NULL UNIQUE,
	body              TEXT    NOT NULL,
	group_id          TEXT    NOT NULL DEFAULT '',
	dedup_id          TEXT    NOT NULL DEFAULT '',
	attributes        TEXT    NOT NULL DEFAULT '',
	sent_at           INTEGER NOT NULL,
	visible_at        INTEGER NOT NULL,
	receive_count     INTEGER NOT NULL DEFAULT 0,
	first_received_at INTEGER NOT NULL DEFAULT 0,
	receipt           TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS queue_messages_order ON queue_messages (queue, seq, visible_at);
CREATE INDEX IF NOT EXISTS queue_messages_group ON queue_messages (queue, group_id, visible_at);
CREATE INDEX IF NOT EXISTS queue_messages_receipt ON queue_messages (receipt) WHERE receipt <> '';
CREATE TABLE IF NOT EXISTS queue_dedup (
	queue      TEXT    NOT NULL,
	dedup_id   TEXT    NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (queue, dedup_id)
);
CREATE INDEX IF NOT EXISTS queue_dedup_expiry ON queue_dedup (expires_at);
`

// Queue is the embedded adapter. It is safe for concurrent use.
type Queue struct {
	db   *sqlitedb.DB
	clk  clock.Clock
	topo queue.Topology

	// wake holds one channel per queue with room for one token, put there after every write
	// to that queue. One waiting long poll takes it and looks; if it takes a full batch it
	// puts the token back for the next one. So a write wakes one poll, not all of them (serve
	// runs many consumers per queue), and a send to one queue sends no other queue's pollers
	// looking.
	wakeMu sync.Mutex
	wake   map[string]chan struct{}

	counts *opcount.Counts
}

// CountInto makes the queue count into c (nil stops it), each per queue name: "queue.sent.Q"
// (messages), "queue.receive.Q" (calls), "queue.look.Q" (looks for messages, of which a long
// poll may make several), "queue.received.Q" (messages handed out), "queue.deleted.Q" (delete
// calls) and "queue.delete_batch.Q" (batch delete calls). Call it before the queue is in use.
func (q *Queue) CountInto(c *opcount.Counts) { q.counts = c }

var _ queue.Queue = (*Queue)(nil)
var _ queue.BatchDeleter = (*Queue)(nil)

// New creates the queue tables if needed and returns the adapter. Its writes go through
// db.Write, whose transactions take the write lock up front, which is what keeps two processes
// from handing out the same message, and whose commits are shared with the store's.
func New(ctx context.Context, db *sqlitedb.DB, clk clock.Clock, topo queue.Topology) (*Queue, error) {
	if db == nil || clk == nil {
		return nil, errors.New("embedded queue: a database and a clock are required")
	}
	err := db.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, schema)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create the queue tables: %w", err)
	}
	return &Queue{db: db, clk: clk, topo: topo, wake: map[string]chan struct{}{}}, nil
}

// Send implements queue.Queue. Each chunk of queue.MaxBatch messages is one transaction.
func (q *Queue) Send(ctx context.Context, name string, msgs []queue.Message) error {
	if err := q.topo.ValidateMessages(name, msgs); err != nil {
		return err
	}
	q.counts.Add("queue.sent."+name, int64(len(msgs)))
	spec, _ := q.topo.SpecFor(name)
	var failed []queue.FailedEntry
	sent := 0
	chunks := queue.Chunks(msgs)
	for i, chunk := range chunks {
		valid, bad := queue.CheckContents(chunk)
		failed = append(failed, bad...)
		if len(valid) == 0 {
			continue
		}
		if err := q.sendChunk(ctx, spec, valid); err != nil {
			if sent == 0 {
				// Nothing is queued yet, so a plain error tells the caller all of it failed.
				return fmt.Errorf("send to queue %s: %w", name, err)
			}
			// Earlier chunks are committed: name exactly what is not queued.
			failed = append(failed, queue.NotQueued(valid, "InternalError", err.Error())...)
			for _, rest := range chunks[i+1:] {
				failed = append(failed, queue.NotQueued(rest, "NotSent", "an earlier batch failed: "+err.Error())...)
			}
			break
		}
		sent += len(valid)
	}
	if len(failed) > 0 {
		return &queue.SendError{Queue: name, Failed: failed}
	}
	return nil
}

func (q *Queue) sendChunk(ctx context.Context, spec queue.Spec, msgs []queue.Message) error {
	now := q.clk.Now().UnixNano()
	return q.write(ctx, spec.Name, func(ctx context.Context, tx *sql.Tx) error {
		if spec.FIFO {
			if _, err := q.db.Exec(ctx, tx, `DELETE FROM queue_dedup WHERE expires_at <= ?`, now); err != nil {
				return fmt.Errorf("expire deduplication ids: %w", err)
			}
		}
		for _, m := range msgs {
			group, dedup := "", ""
			if spec.FIFO {
				group, dedup = m.GroupID, m.DedupID
				// SQS accepts a duplicate within the window and drops it; the window runs from
				// the first send, so a duplicate does not extend it.
				res, err := q.db.Exec(ctx, tx,
					`INSERT INTO queue_dedup (queue, dedup_id, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
					spec.Name, dedup, now+int64(queue.DedupWindow))
				if err != nil {
					return fmt.Errorf("record deduplication id: %w", err)
				}
				if n, err := res.RowsAffected(); err != nil {
					return fmt.Errorf("record deduplication id: %w", err)
				} else if n == 0 {
					continue
				}
			}
			attrs, err := encodeAttributes(m.Attributes)
			if err != nil {
				return err
			}
			if _, err := q.db.Exec(ctx, tx,
				`INSERT INTO queue_messages (queue, message_id, body, group_id, dedup_id, attributes, sent_at, visible_at)
				 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				spec.Name, newID(), m.Body, group, dedup, attrs, now, now); err != nil {
				return fmt.Errorf("insert message: %w", err)
			}
		}
		return nil
	})
}

// Receive implements queue.Queue.
func (q *Queue) Receive(ctx context.Context, name string, opt queue.ReceiveOptions) ([]queue.Received, error) {
	spec, err := q.lookup(name)
	if err != nil {
		return nil, err
	}
	max, err := queue.CheckReceive(name, opt)
	if err != nil {
		return nil, err
	}
	visibility := spec.VisibilityTimeout
	if opt.Visibility > 0 {
		visibility = opt.Visibility
	}
	deadline := time.Now().Add(opt.Wait)
	wake := q.wakeup(spec.Name)
	q.counts.Add("queue.receive."+name, 1)
	for {
		q.counts.Add("queue.look."+name, 1)
		got, err := q.receiveOnce(ctx, spec, max, visibility)
		if err != nil {
			return nil, fmt.Errorf("receive from queue %s: %w", name, err)
		}
		if len(got) == max {
			// There may be more: wake the next poll.
			q.notify(spec.Name)
		}
		q.counts.Add("queue.received."+name, int64(len(got)))
		left := time.Until(deadline)
		if len(got) > 0 || left <= 0 {
			return got, nil
		}
		timer := time.NewTimer(min(left, pollInterval))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("receive from queue %s: %w", name, ctx.Err())
		case <-wake:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// candidates selects the oldest visible messages that may be handed out. On a FIFO queue a
// group with a message in flight is locked: none of its messages may go out until that one is
// deleted or visible again.
const candidatesSQL = `
SELECT seq, message_id, body, group_id, dedup_id, attributes, sent_at, receive_count, first_received_at
FROM queue_messages m
WHERE m.queue = ? AND m.visible_at <= ?`

const fifoLockSQL = `
  AND NOT EXISTS (
	SELECT 1 FROM queue_messages f
	WHERE f.queue = m.queue AND f.group_id = m.group_id AND f.visible_at > ? AND f.receive_count > 0)`

func candidateQuery(spec queue.Spec, now int64, limit int) (string, []any) {
	query, args := candidatesSQL, []any{spec.Name, now}
	if spec.FIFO {
		query += fifoLockSQL
		args = append(args, now)
	}
	return query + ` ORDER BY m.seq LIMIT ?`, append(args, limit)
}

type row struct {
	seq           int64
	messageID     string
	body          string
	groupID       string
	dedupID       string
	attributes    string
	sentAt        int64
	receiveCount  int
	firstReceived int64
}

func (q *Queue) receiveOnce(ctx context.Context, spec queue.Spec, max int, visibility time.Duration) ([]queue.Received, error) {
	// Look without the write lock first: an idle long poll then costs a read, not a write
	// transaction that would hold up the store's writers.
	probe, args := candidateQuery(spec, q.clk.Now().UnixNano(), 1)
	var seq int64
	switch err := q.db.QueryRow(ctx, nil, `SELECT seq FROM (`+probe+`)`, args...).Scan(&seq); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("look for messages: %w", err)
	}

	var out []queue.Received
	err := q.write(ctx, spec.Name, func(ctx context.Context, tx *sql.Tx) error {
		out = nil
		now := q.clk.Now().UnixNano()
		for len(out) < max {
			rows, err := q.candidates(ctx, tx, spec, now, max-len(out))
			if err != nil {
				return err
			}
			moved := 0
			for _, r := range rows {
				if spec.MaxReceiveCount > 0 && r.receiveCount >= spec.MaxReceiveCount {
					if err := q.moveToDLQ(ctx, tx, spec, r, now); err != nil {
						return err
					}
					moved++
					continue
				}
				got, err := q.receiveRow(ctx, tx, r, now, visibility)
				if err != nil {
					return err
				}
				out = append(out, got)
			}
			// Only a move to the DLQ can leave room that another look would fill.
			if moved == 0 {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (q *Queue) candidates(ctx context.Context, tx *sql.Tx, spec queue.Spec, now int64, limit int) ([]row, error) {
	query, args := candidateQuery(spec, now, limit)
	rs, err := q.db.Query(ctx, tx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("select messages: %w", err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.seq, &r.messageID, &r.body, &r.groupID, &r.dedupID, &r.attributes, &r.sentAt, &r.receiveCount, &r.firstReceived); err != nil {
			return nil, fmt.Errorf("read message: %w", err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("select messages: %w", err)
	}
	return out, nil
}

// moveToDLQ re-inserts the message at the DLQ's tail, keeping its id, sent time and receive
// count, as SQS does.
func (q *Queue) moveToDLQ(ctx context.Context, tx *sql.Tx, spec queue.Spec, r row, now int64) error {
	if _, err := q.db.Exec(ctx, tx, `DELETE FROM queue_messages WHERE seq = ?`, r.seq); err != nil {
		return fmt.Errorf("move message %s to %s: %w", r.messageID, spec.DLQ(), err)
	}
	if _, err := q.db.Exec(ctx, tx,
		`INSERT INTO queue_messages (queue, message_id, body, group_id, dedup_id, attributes, sent_at, visible_at, receive_count, first_received_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		spec.DLQ(), r.messageID, r.body, r.groupID, r.dedupID, r.attributes, r.sentAt, now, r.receiveCount, r.firstReceived); err != nil {
		return fmt.Errorf("move message %s to %s: %w", r.messageID, spec.DLQ(), err)
	}
	return nil
}

func (q *Queue) receiveRow(ctx context.Context, tx *sql.Tx, r row, now int64, visibility time.Duration) (queue.Received, error) {
	receipt := newReceipt()
	first := r.firstReceived
	if first == 0 {
		first = now
	}
	count := r.receiveCount + 1
	if _, err := q.db.Exec(ctx, tx,
		`UPDATE queue_messages SET visible_at = ?, receive_count = ?, first_received_at = ?, receipt = ? WHERE seq = ?`,
		now+int64(visibility), count, first, receipt, r.seq); err != nil {
		return queue.Received{}, fmt.Errorf("hide message %s: %w", r.messageID, err)
	}
	attrs, err := decodeAttributes(r.attributes)
	if err != nil {
		return queue.Received{}, fmt.Errorf("message %s: %w", r.messageID, err)
	}
	return queue.Received{
		MessageID:       r.messageID,
		ReceiptHandle:   receipt,
		Body:            r.body,
		GroupID:         r.groupID,
		DedupID:         r.dedupID,
		Attributes:      attrs,
		ReceiveCount:    count,
		SentAt:          fromNanos(r.sentAt),
		FirstReceivedAt: fromNanos(first),
	}, nil
}

// deleteSQL deletes a message by its receipt handle. Its test that the receipt is not empty
// repeats the partial index's condition so SQLite can use it with a bound handle; without it
// every delete scans the table.
const deleteSQL = `DELETE FROM queue_messages WHERE queue = ? AND receipt = ? AND receipt <> ''`

// Delete implements queue.Queue. A handle that no longer matches its message (deleted, moved
// to the DLQ, received again) is ignored, as SQS ignores it on standard queues.
func (q *Queue) Delete(ctx context.Context, name string, receiptHandle string) error {
	if _, err := q.lookup(name); err != nil {
		return err
	}
	if receiptHandle == "" {
		return fmt.Errorf("delete from queue %s: the receipt handle is empty", name)
	}
	q.counts.Add("queue.deleted."+name, 1)
	err := q.write(ctx, name, func(ctx context.Context, tx *sql.Tx) error {
		_, err := q.db.Exec(ctx, tx, deleteSQL, name, receiptHandle)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete from queue %s: %w", name, err)
	}
	return nil
}

// DeleteBatch implements queue.BatchDeleter: the deletes are one write.
func (q *Queue) DeleteBatch(ctx context.Context, name string, receiptHandles []string) error {
	if _, err := q.lookup(name); err != nil {
		return err
	}
	if len(receiptHandles) > queue.MaxBatch {
		return fmt.Errorf("delete from queue %s: %d receipt handles; at most %d go in one batch", name, len(receiptHandles), queue.MaxBatch)
	}
	for i, h := range receiptHandles {
		if h == "" {
			return fmt.Errorf("delete from queue %s: receipt handle %d is empty", name, i)
		}
	}
	if len(receiptHandles) == 0 {
		return nil
	}
	q.counts.Add("queue.delete_batch."+name, 1)
	err := q.write(ctx, name, func(ctx context.Context, tx *sql.Tx) error {
		for _, h := range receiptHandles {
			if _, err := q.db.Exec(ctx, tx, deleteSQL, name, h); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete %d messages from queue %s: %w", len(receiptHandles), name, err)
	}
	return nil
}

// ChangeVisibility implements queue.Queue. Like SQS, it works only on a message still in
// flight under this handle; anything else wraps queue.ErrStaleReceipt.
func (q *Queue) ChangeVisibility(ctx context.Context, name string, receiptHandle string, visibility time.Duration) error {
	if _, err := q.lookup(name); err != nil {
		return err
	}
	if err := queue.CheckChangeVisibility(name, receiptHandle, visibility); err != nil {
		return err
	}
	err := q.write(ctx, name, func(ctx context.Context, tx *sql.Tx) error {
		now := q.clk.Now().UnixNano()
		var seq, visibleAt int64
		err := q.db.QueryRow(ctx, tx, `SELECT seq, visible_at FROM queue_messages WHERE queue = ? AND receipt = ? AND receipt <> ''`, name, receiptHandle).Scan(&seq, &visibleAt)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: the message was deleted, moved to the DLQ or received again since", queue.ErrStaleReceipt)
		}
		if err != nil {
			return err
		}
		if visibleAt <= now {
			return fmt.Errorf("%w: the message is no longer in flight (its visibility timeout ran out)", queue.ErrStaleReceipt)
		}
		_, err = q.db.Exec(ctx, tx, `UPDATE queue_messages SET visible_at = ? WHERE seq = ?`, now+int64(visibility), seq)
		return err
	})
	if err != nil {
		return fmt.Errorf("change visibility on queue %s: %w", name, err)
	}
	return nil
}

// ReleaseInFlight makes every message of the named queues that is in flight visible at once,
// and returns how many there were. It is for a runtime starting on a database whose previous
// runtime died (a crash, a kill -9): the messages that one had received would otherwise stay
// hidden until their visibility timeouts ran out, minutes later. Only the caller can know that
// no other process is working on them (serve holds a lock on its data directory). Messages
// waiting out a retry delay are released too: their retry comes early, which idempotent
// handlers absorb.
func (q *Queue) ReleaseInFlight(ctx context.Context, names []string) (int, error) {
	total := 0
	for _, name := range names {
		if _, err := q.lookup(name); err != nil {
			return total, err
		}
		var n int64
		err := q.write(ctx, name, func(ctx context.Context, tx *sql.Tx) error {
			now := q.clk.Now().UnixNano()
			res, err := tx.ExecContext(ctx, `UPDATE queue_messages SET visible_at = ?, receipt = ''
				WHERE queue = ? AND receive_count > 0 AND visible_at > ?`, now, name, now)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("release the messages in flight on queue %s: %w", name, err)
		}
		total += int(n)
	}
	return total, nil
}

// Stats implements queue.Queue. A message moved to a DLQ counts there as visible.
func (q *Queue) Stats(ctx context.Context, name string) (queue.Stats, error) {
	if _, err := q.lookup(name); err != nil {
		return queue.Stats{}, err
	}
	now := q.clk.Now().UnixNano()
	st := queue.Stats{Queue: name}
	err := q.db.QueryRow(ctx, nil, `
		SELECT
			COALESCE(SUM(visible_at <= ?), 0),
			COALESCE(SUM(visible_at > ? AND receive_count > 0), 0),
			COALESCE(SUM(visible_at > ? AND receive_count = 0), 0)
		FROM queue_messages WHERE queue = ?`, now, now, now, name).Scan(&st.Visible, &st.InFlight, &st.Delayed)
	if err != nil {
		return queue.Stats{}, fmt.Errorf("count messages of queue %s: %w", name, err)
	}
	return st, nil
}

// OldestWaiting is when the oldest visible or delayed message of name was sent (queue.Ager).
func (q *Queue) OldestWaiting(ctx context.Context, name string) (time.Time, bool, error) {
	if _, err := q.lookup(name); err != nil {
		return time.Time{}, false, err
	}
	now := q.clk.Now().UnixNano()
	var sent sql.NullInt64
	err := q.db.QueryRowContext(ctx, `SELECT MIN(sent_at) FROM queue_messages WHERE queue = ? AND (visible_at <= ? OR receive_count = 0)`,
		name, now).Scan(&sent)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("oldest message of queue %s: %w", name, err)
	}
	if !sent.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(0, sent.Int64).UTC(), true, nil
}

// write runs fn as one transaction (committed together with other writers', see
// sqlitedb.DB.Write) and wakes this process's long polls on the queue name after it commits.
func (q *Queue) write(ctx context.Context, name string, fn func(context.Context, *sql.Tx) error) error {
	if err := q.db.Write(ctx, fn); err != nil {
		return err
	}
	q.notify(name)
	return nil
}

func (q *Queue) wakeup(name string) chan struct{} {
	q.wakeMu.Lock()
	defer q.wakeMu.Unlock()
	c, ok := q.wake[name]
	if !ok {
		c = make(chan struct{}, 1)
		q.wake[name] = c
	}
	return c
}

// notify leaves a token for one long poll on the queue; a token already there stands for this
// write too.
func (q *Queue) notify(name string) {
	select {
	case q.wakeup(name) <- struct{}{}:
	default:
	}
}

func (q *Queue) lookup(name string) (queue.Spec, error) {
	spec, ok := q.topo.SpecFor(name)
	if !ok {
		// ValidateMessages words the error the same way for every adapter.
		return queue.Spec{}, q.topo.ValidateMessages(name, nil)
	}
	return spec, nil
}

func encodeAttributes(a map[string]string) (string, error) {
	if len(a) == 0 {
		return "", nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return "", fmt.Errorf("encode message attributes: %w", err)
	}
	return string(b), nil
}

func decodeAttributes(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	var a map[string]string
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return nil, fmt.Errorf("decode message attributes: %w", err)
	}
	return a, nil
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// newID returns a random version 4 UUID, the form of SQS message ids.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func newReceipt() string {
	return rand.Text() + rand.Text()
}
