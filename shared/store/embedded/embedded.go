// Package embedded implements store.Store on SQLite, for `cartrelay serve` and for tests that
// need no server. It keeps DynamoDB's semantics (conditions, all-or-nothing transactions,
// sparse GSIs, TTL that hides items before they are deleted, byte-ordered sort keys) so that
// repositories behave the same on both adapters; the contract suite in store/storetest checks it.
//
// The store shares its database with the embedded queues, so it only ever touches its own table
// and indexes, all prefixed with TableName.
package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/opcount"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
	"github.com/cartrelay/cartrelay/shared/store"
)

// TableName is the SQLite table holding the items. The name is prefixed so it cannot collide
// with the queue tables in the same file.
const TableName = "store_items"

// schema is created idempotently on every start, so `serve` and a CLI process opening the same
// file at the same moment both succeed.
//
// The GSI indexes are partial: a row without a GSI key is not in that index, which is what makes
// the GSIs sparse like DynamoDB's. pk and sk are part of each GSI index so that ties on the GSI
// sort key are broken in a stable order a cursor can resume from. expires_at is indexed so Sweep
// does not scan the whole table.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS ` + TableName + ` (
		pk         TEXT    NOT NULL,
		sk         TEXT    NOT NULL,
		gsi1pk     TEXT,
		gsi1sk     TEXT,
		gsi2pk     TEXT,
		gsi2sk     TEXT,
		expires_at INTEGER,
		version    INTEGER NOT NULL DEFAULT 0,
		data       BLOB,
		attrs      BLOB,
		PRIMARY KEY (pk, sk)
	)`,
	`CREATE INDEX IF NOT EXISTS ` + TableName + `_gsi1 ON ` + TableName + ` (gsi1pk, gsi1sk, pk, sk) WHERE gsi1pk IS NOT NULL`,
	`CREATE INDEX IF NOT EXISTS ` + TableName + `_gsi2 ON ` + TableName + ` (gsi2pk, gsi2sk, pk, sk) WHERE gsi2pk IS NOT NULL`,
	`CREATE INDEX IF NOT EXISTS ` + TableName + `_expires ON ` + TableName + ` (expires_at) WHERE expires_at IS NOT NULL`,
}

// Store is the SQLite adapter. It is safe for concurrent use, and other processes may use the
// same database file at the same time.
type Store struct {
	db     *sqlitedb.DB
	clk    clock.Clock
	counts *opcount.Counts
}

// CountInto makes the store count its reads and writes into c (nil stops it): "store.get",
// "store.query", "store.write" (items written, checked or deleted), and "store.write." with
// the item's kind (see Kind). Call it before the store is in use.
func (s *Store) CountInto(c *opcount.Counts) { s.counts = c }

// Kind names the kind of item a key holds for the counts, from the first parts of its keys and
// nothing else: the part of the partition key after the account ("A#acct#E#..." is "E") and the
// sort key's leading capitals before a "#" ("DL#..." is "DL"; any other sort key counts as "-",
// so that no email, name or id gets into the counts).
func Kind(k store.Key) string {
	parts := strings.SplitN(k.PK, "#", 4)
	pk := parts[0]
	if pk == "A" && len(parts) > 2 {
		pk = parts[2]
	}
	if !isCapitals(pk) {
		pk = "-"
	}
	sk, _, found := strings.Cut(k.SK, "#")
	if !found || !isCapitals(sk) {
		sk = "-"
	}
	return pk + "/" + sk
}

func isCapitals(s string) bool {
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return s != "" && len(s) <= 12
}

var _ store.Store = (*Store)(nil)

// New creates the table and indexes if needed and returns a store on db.
//
// Every write goes through db.Write: its transactions take the write lock when they begin,
// which is what makes a condition and the write it guards atomic against other processes, and
// the writes of concurrent callers share one commit.
func New(ctx context.Context, db *sqlitedb.DB, clk clock.Clock) (*Store, error) {
	if db == nil {
		return nil, errors.New("embedded store: no database given")
	}
	if clk == nil {
		return nil, errors.New("embedded store: no clock given")
	}
	err := db.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, stmt := range schema {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		return addAttrsColumn(ctx, tx)
	})
	if err != nil {
		return nil, fmt.Errorf("create store schema: %w", err)
	}
	return &Store{db: db, clk: clk}, nil
}

// addAttrsColumn adds the counters-and-labels column to a table created before it existed. The
// schema transaction holds the write lock, so two processes cannot both add it.
func addAttrsColumn(ctx context.Context, tx *sql.Tx) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('`+TableName+`') WHERE name = 'attrs'`).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `ALTER TABLE `+TableName+` ADD COLUMN attrs BLOB`)
	return err
}

// itemColumns is what every read selects, in scanItem's order.
const itemColumns = `pk, sk, gsi1pk, gsi1sk, gsi2pk, gsi2sk, expires_at, version, data, attrs`

// Get returns the live item at pk/sk.
func (s *Store) Get(ctx context.Context, pk, sk string) (store.Item, error) {
	key := store.Key{PK: pk, SK: sk}
	if s.counts != nil {
		s.counts.Add("store.get", 1)
		s.counts.Add("store.get."+Kind(key), 1)
	}
	if pk == "" || sk == "" {
		return store.Item{}, fmt.Errorf("get %s: %w: pk and sk must both be set", key, store.ErrInvalid)
	}
	row := s.db.QueryRow(ctx, nil,
		`SELECT `+itemColumns+` FROM `+TableName+
			` WHERE pk = ? AND sk = ? AND (expires_at IS NULL OR expires_at > ?)`,
		pk, sk, s.clk.Now().Unix())
	it, err := scanItem(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Item{}, fmt.Errorf("get %s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return store.Item{}, fmt.Errorf("get %s: %w", key, err)
	}
	return it, nil
}

// GetMany reads the live items at keys in one statement: one read transaction and one pass
// over the primary key's index, where a Get each would start a read transaction each (and,
// under load, each on a page cache that the latest commit emptied).
func (s *Store) GetMany(ctx context.Context, keys []store.Key) (map[store.Key]store.Item, error) {
	keys, err := store.ValidateKeys(keys)
	if err != nil {
		return nil, err
	}
	if s.counts != nil {
		s.counts.Add("store.get_many", 1)
		s.counts.Add("store.get_many.keys", int64(len(keys)))
		for _, k := range keys {
			s.counts.Add("store.get_many."+Kind(k), 1)
		}
	}
	out := make(map[store.Key]store.Item, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	args := make([]any, 0, 2*len(keys)+1)
	for _, k := range keys {
		args = append(args, k.PK, k.SK)
	}
	args = append(args, s.clk.Now().Unix())
	rows, err := s.db.Query(ctx, nil, getManyQuery(len(keys)), args...)
	if err != nil {
		return nil, fmt.Errorf("get %d items: %w", len(keys), err)
	}
	defer rows.Close()
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, fmt.Errorf("get %d items: %w", len(keys), err)
		}
		out[store.Key{PK: it.PK, SK: it.SK}] = it
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get %d items: %w", len(keys), err)
	}
	return out, nil
}

// getManyQuery selects the live items at n keys given as pk, sk pairs, then the time. Its
// text depends only on n (at most store.MaxGetMany), so each is prepared once.
func getManyQuery(n int) string {
	var b strings.Builder
	b.WriteString(`SELECT ` + itemColumns + ` FROM ` + TableName + ` WHERE (pk, sk) IN (VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?)")
	}
	b.WriteString(`) AND (expires_at IS NULL OR expires_at > ?)`)
	return b.String()
}

// Write applies one conditional write.
func (s *Store) Write(ctx context.Context, w store.Write) error {
	if err := store.CheckWrite(w); err != nil {
		return err
	}
	failed, err := s.apply(ctx, []store.Write{w})
	if err != nil {
		return fmt.Errorf("write %s: %w", w.Target(), err)
	}
	if len(failed) > 0 {
		return &failed[0].ConditionError
	}
	return nil
}

// Transact applies ws all or nothing in one SQLite transaction.
func (s *Store) Transact(ctx context.Context, ws []store.Write) error {
	if err := store.Validate(ws); err != nil {
		return err
	}
	for i, w := range ws {
		if err := store.CheckWrite(w); err != nil {
			return fmt.Errorf("write %d: %w", i, err)
		}
	}
	failed, err := s.apply(ctx, ws)
	if err != nil {
		return fmt.Errorf("transaction of %d writes: %w", len(ws), err)
	}
	if len(failed) > 0 {
		return &store.TransactionError{Failed: failed}
	}
	return nil
}

// apply checks every condition and, only if all hold, performs every write, inside one
// transaction (a savepoint of the group the committer commits together). Like DynamoDB it
// reports every failed condition, not just the first.
func (s *Store) apply(ctx context.Context, ws []store.Write) (failed []store.FailedWrite, err error) {
	if s.counts != nil {
		s.counts.Add("store.write", int64(len(ws)))
		for _, w := range ws {
			s.counts.Add("store.write."+Kind(w.Target()), 1)
		}
	}
	err = s.db.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		failed = nil
		// The clock is read once the write lock is held, so every condition in the transaction
		// sees the same "now" and no writer can slip in between the check and the write.
		now := s.clk.Now().Unix()
		for i, w := range ws {
			ok, err := s.holds(ctx, tx, w, now)
			if err != nil {
				return err
			}
			if !ok {
				failed = append(failed, store.FailedWrite{
					Index:          i,
					ConditionError: store.ConditionError{Key: w.Target(), Cond: w.Cond, Expect: w.Expect},
				})
			}
		}
		if len(failed) > 0 {
			return nil
		}
		for _, w := range ws {
			if err := s.perform(ctx, tx, w); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return failed, nil
}

// holds evaluates w's condition against the stored row at now (unix seconds).
func (s *Store) holds(ctx context.Context, tx *sql.Tx, w store.Write, now int64) (bool, error) {
	if w.Cond == store.Always {
		return true, nil
	}
	k := w.Target()
	var (
		version int64
		expires sql.NullInt64
	)
	err := s.db.QueryRow(ctx, tx,
		`SELECT version, expires_at FROM `+TableName+` WHERE pk = ? AND sk = ?`, k.PK, k.SK,
	).Scan(&version, &expires)
	found := true
	if errors.Is(err, sql.ErrNoRows) {
		found = false
	} else if err != nil {
		return false, fmt.Errorf("read %s: %w", k, err)
	}
	live := found && (!expires.Valid || expires.Int64 > now)
	switch w.Cond {
	case store.NotExists:
		return !live, nil
	case store.Exists:
		return live, nil
	case store.VersionEquals:
		return live && version == w.Expect, nil
	}
	return false, fmt.Errorf("%w: unknown condition %s", store.ErrInvalid, w.Cond)
}

func (s *Store) perform(ctx context.Context, tx *sql.Tx, w store.Write) error {
	switch w.Op {
	case store.OpPut:
		if err := s.put(ctx, tx, w.Item); err != nil {
			return fmt.Errorf("put %s: %w", w.Target(), err)
		}
	case store.OpAdd:
		if err := s.add(ctx, tx, w); err != nil {
			return fmt.Errorf("add to %s: %w", w.Target(), err)
		}
	case store.OpDelete:
		if _, err := s.db.Exec(ctx, tx, `DELETE FROM `+TableName+` WHERE pk = ? AND sk = ?`, w.Key.PK, w.Key.SK); err != nil {
			return fmt.Errorf("delete %s: %w", w.Key, err)
		}
	case store.OpCheck:
	default:
		return fmt.Errorf("%w: unknown operation %d on %s", store.ErrInvalid, int(w.Op), w.Target())
	}
	return nil
}

func (s *Store) put(ctx context.Context, tx *sql.Tx, it store.Item) error {
	_, err := s.db.Exec(ctx, tx,
		`INSERT INTO `+TableName+` (pk, sk, gsi1pk, gsi1sk, gsi2pk, gsi2sk, expires_at, version, data, attrs)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT (pk, sk) DO UPDATE SET
			gsi1pk = excluded.gsi1pk, gsi1sk = excluded.gsi1sk,
			gsi2pk = excluded.gsi2pk, gsi2sk = excluded.gsi2sk,
			expires_at = excluded.expires_at, version = excluded.version, data = excluded.data,
			attrs = excluded.attrs`,
		it.PK, it.SK,
		nullString(it.GSI1PK), nullString(it.GSI1SK), nullString(it.GSI2PK), nullString(it.GSI2SK),
		expiresColumn(it.ExpiresAt), it.Version, nullBytes(it.Data), nullBytes(encodeAttrs(it.Counters, it.Labels)))
	return err
}

// add applies an OpAdd like DynamoDB's UpdateItem: on the stored row whether or not it has
// expired (the row stays hidden if it has), or on a new row holding only the key. The item it
// would leave must still fit DynamoDB's size limit.
func (s *Store) add(ctx context.Context, tx *sql.Tx, w store.Write) error {
	row := s.db.QueryRow(ctx, tx, `SELECT `+itemColumns+` FROM `+TableName+` WHERE pk = ? AND sk = ?`, w.Key.PK, w.Key.SK)
	it, err := scanItem(row)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		it = store.Item{PK: w.Key.PK, SK: w.Key.SK}
	case err != nil:
		return err
	}
	if it.Counters, it.Labels, err = addAttrs(it.Counters, it.Labels, w.Add, w.Set); err != nil {
		return err
	}
	if err := store.CheckSize(it); err != nil {
		return err
	}
	return s.put(ctx, tx, it)
}

// sweepBatch bounds how long one Sweep statement holds the write lock that the queues in the
// same file also need.
const sweepBatch = 500

// Sweep deletes expired items and returns how many it removed. Expired items are already
// invisible, so this only reclaims space; `cartrelay serve` calls it periodically, as DynamoDB's
// TTL process does in AWS.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := s.sweepOnce(ctx)
		total += n
		if err != nil {
			return total, fmt.Errorf("sweep expired items: %w", err)
		}
		if n < sweepBatch {
			return total, nil
		}
	}
}

func (s *Store) sweepOnce(ctx context.Context) (int, error) {
	var n int64
	err := s.db.Write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM `+TableName+` WHERE rowid IN (
				SELECT rowid FROM `+TableName+` WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)`,
			s.clk.Now().Unix(), sweepBatch)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

type scanner interface {
	Scan(dest ...any) error
}

func scanItem(r scanner) (store.Item, error) {
	var (
		it                             store.Item
		gsi1pk, gsi1sk, gsi2pk, gsi2sk sql.NullString
		expires                        sql.NullInt64
		attrs                          []byte
	)
	if err := r.Scan(&it.PK, &it.SK, &gsi1pk, &gsi1sk, &gsi2pk, &gsi2sk, &expires, &it.Version, &it.Data, &attrs); err != nil {
		return store.Item{}, err
	}
	var err error
	if it.Counters, it.Labels, err = decodeAttrs(attrs); err != nil {
		return store.Item{}, fmt.Errorf("item %s / %s: %w", it.PK, it.SK, err)
	}
	it.GSI1PK, it.GSI1SK = gsi1pk.String, gsi1sk.String
	it.GSI2PK, it.GSI2SK = gsi2pk.String, gsi2sk.String
	if expires.Valid {
		it.ExpiresAt = time.Unix(expires.Int64, 0).UTC()
	}
	if len(it.Data) == 0 {
		it.Data = nil
	}
	return it, nil
}

// nullString stores an empty GSI key as NULL so the row stays out of that partial index.
func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func expiresColumn(t time.Time) sql.NullInt64 {
	s, ok := expirySeconds(t)
	return sql.NullInt64{Int64: s, Valid: ok}
}

// expirySeconds converts an expiry to the unix seconds both adapters store (DynamoDB's TTL
// attribute is whole seconds). It rounds up, so an item never disappears before the time its
// writer asked for. ok is false for the zero time, which means "never expires".
func expirySeconds(t time.Time) (secs int64, ok bool) {
	if t.IsZero() {
		return 0, false
	}
	secs = t.Unix()
	if t.Nanosecond() > 0 {
		secs++
	}
	return secs, true
}
