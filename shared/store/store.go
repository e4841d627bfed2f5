// Package store is cartrelay's item-level port onto its one table (single-table design).
//
// Every repository (contacts, orders, cursors, connections, dedupe markers, deliveries) is
// written once on top of this port, and two adapters implement it: store/dynamo (DynamoDB, in
// AWS) and store/embedded (SQLite, for `cartrelay serve` and tests). The contract suite in
// store/storetest holds both adapters to the same behaviour.
//
// An item is its keys, two optional GSI key pairs, an optional expiry, a version for
// optimistic concurrency, and an opaque document (JSON written by the repositories). Keeping
// the document opaque is what lets both adapters store the same thing without a schema.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MaxTransactWrites is DynamoDB's limit on writes in one TransactWriteItems call.
const MaxTransactWrites = 100

// MaxGetMany bounds the keys of one GetMany: DynamoDB's limit on keys in one BatchGetItem call.
const MaxGetMany = 100

// Item is one row of the table.
type Item struct {
	PK string
	SK string

	// GSI1 finds an item by another identity (for example an order by its id).
	GSI1PK string
	GSI1SK string
	// GSI2 serves time-ordered scans (for example a month of orders for reports).
	GSI2PK string
	GSI2SK string

	// ExpiresAt is the TTL. The zero time means the item never expires. An item whose
	// ExpiresAt is at or before the store's clock is treated as absent everywhere, even
	// before the backend deletes it (DynamoDB deletes expired items only eventually).
	ExpiresAt time.Time

	// Version is written as given; conditions compare against the stored value.
	// Repositories bump it on every update they guard with VersionEquals.
	Version int64

	// Data is the repository's document, usually JSON.
	Data []byte

	// Counters are named whole numbers that OpAdd changes where they are stored, without
	// reading the item first: writers that only add never conflict on a version, which is what
	// lets many processes keep one total (a report's rollup) at once. A counter at zero reads
	// as absent. A Put stores exactly the counters it is given.
	Counters map[string]int64
	// Labels are named strings kept beside the counters (what a counter's name stands for).
	// OpAdd sets them; a Put stores exactly the labels it is given.
	Labels map[string]string
}

// Index names where a Query looks.
type Index int

const (
	// Table queries on pk/sk.
	Table Index = iota
	// GSI1 queries on gsi1pk/gsi1sk.
	GSI1
	// GSI2 queries on gsi2pk/gsi2sk.
	GSI2
)

func (i Index) String() string {
	switch i {
	case Table:
		return "table"
	case GSI1:
		return "gsi1"
	case GSI2:
		return "gsi2"
	}
	return fmt.Sprintf("index(%d)", int(i))
}

// Query selects the items of one partition, optionally narrowed on the sort key.
// At most one of SKPrefix and the SKFrom/SKTo range may be set. A range is inclusive on both
// ends; an empty SKFrom or SKTo leaves that end open.
type Query struct {
	Index      Index
	PK         string
	SKPrefix   string
	SKFrom     string
	SKTo       string
	Descending bool
	// Limit caps the items in the returned page; 0 means the adapter's default page size.
	// Pages may hold fewer items than Limit (expired items are filtered out after the read),
	// so callers page until Next is empty.
	Limit int
	// Cursor continues a previous Query with the same parameters (Page.Next).
	Cursor string
}

// Page is one page of query results.
type Page struct {
	Items []Item
	// Next is empty on the last page.
	Next string
}

// Cond is the condition a write must satisfy.
type Cond int

const (
	// Always writes unconditionally.
	Always Cond = iota
	// NotExists requires that no live item has the key (an expired item counts as absent).
	NotExists
	// Exists requires that a live item has the key.
	Exists
	// VersionEquals requires a live item whose Version equals Expect.
	VersionEquals
)

func (c Cond) String() string {
	switch c {
	case Always:
		return "always"
	case NotExists:
		return "not-exists"
	case Exists:
		return "exists"
	case VersionEquals:
		return "version-equals"
	}
	return fmt.Sprintf("cond(%d)", int(c))
}

// Op is the kind of one write.
type Op int

const (
	// OpPut writes Item.
	OpPut Op = iota
	// OpDelete removes the item at Key.
	OpDelete
	// OpCheck writes nothing; it only asserts the condition inside a transaction.
	OpCheck
	// OpAdd adds Write.Add to the counters of the item at Key and sets Write.Set among its
	// labels, creating the item (version 0, no data) if it does not exist. Everything else
	// about the item (data, index keys, expiry, version) stays as it is.
	OpAdd
)

// Limits of one OpAdd, so that it always fits DynamoDB's 4 KB update expression.
const (
	MaxAddCounters = 200
	MaxAddLabels   = 50
	// MaxNameBytes bounds a counter's or a label's name.
	MaxNameBytes = 255
)

// Key addresses one item.
type Key struct {
	PK string
	SK string
}

func (k Key) String() string { return k.PK + " / " + k.SK }

// Write is one conditional write, alone or inside a transaction.
type Write struct {
	Op   Op
	Item Item // for OpPut
	Key  Key  // for OpDelete and OpCheck
	Cond Cond
	// Expect is the version required by VersionEquals.
	Expect int64
	// Add and Set are OpAdd's amounts and labels.
	Add map[string]int64
	Set map[string]string
}

// Target is the key the write touches.
func (w Write) Target() Key {
	if w.Op == OpPut {
		return Key{PK: w.Item.PK, SK: w.Item.SK}
	}
	return w.Key
}

// PutItem is a Write that stores it under cond.
func PutItem(it Item, cond Cond) Write { return Write{Op: OpPut, Item: it, Cond: cond} }

// PutIfVersion is a Write that stores it only if the stored version is expect.
func PutIfVersion(it Item, expect int64) Write {
	return Write{Op: OpPut, Item: it, Cond: VersionEquals, Expect: expect}
}

// DeleteKey is a Write that removes k under cond.
func DeleteKey(k Key, cond Cond) Write { return Write{Op: OpDelete, Key: k, Cond: cond} }

// AddTo is an unconditional OpAdd on k: it adds add to the item's counters and sets set among
// its labels.
func AddTo(k Key, add map[string]int64, set map[string]string) Write {
	return Write{Op: OpAdd, Key: k, Add: add, Set: set}
}

// Check is a Write that only asserts cond on k inside a transaction.
func Check(k Key, cond Cond, expect int64) Write {
	return Write{Op: OpCheck, Key: k, Cond: cond, Expect: expect}
}

// Store is the port. Implementations must be safe for concurrent use.
type Store interface {
	// Get returns the live item at pk/sk, or an error matching ErrNotFound.
	Get(ctx context.Context, pk, sk string) (Item, error)
	// GetMany reads up to MaxGetMany keys at once and returns the live items among them by
	// key; a key without a live item is not in the map. A key may be given more than once.
	// Each item is read as Get reads it (strongly consistent), though not all at one moment.
	GetMany(ctx context.Context, keys []Key) (map[Key]Item, error)
	// Query returns one page of live items.
	Query(ctx context.Context, q Query) (Page, error)
	// Write applies one conditional write. A failed condition returns *ConditionError.
	Write(ctx context.Context, w Write) error
	// Transact applies up to MaxTransactWrites writes all or nothing. If any condition
	// fails, nothing is written and the error is *TransactionError naming each failure.
	// No two writes may touch the same key.
	Transact(ctx context.Context, ws []Write) error
	// QueryPartitions runs q on each of up to MaxQueryPartitions partitions and returns, for
	// pks[i], every live item QueryAll would (all pages): the same range read of many small
	// partitions (a rebuild of the reports reads every contact's records so) in one call, which
	// an adapter may serve with fewer round trips than one query each. q.PK, Limit and Cursor
	// must be empty; a partition may be named more than once. See CheckPartitions.
	QueryPartitions(ctx context.Context, q Query, pks []string) ([][]Item, error)
}

// MaxQueryPartitions is how many partitions one QueryPartitions reads.
const MaxQueryPartitions = 100

// ErrNotFound is returned (wrapped) by Get when no live item exists.
var ErrNotFound = errors.New("store: item not found")

// ErrConditionFailed matches every *ConditionError and every *TransactionError caused by a
// failed condition, so callers that only need "someone else got there first" can use errors.Is.
var ErrConditionFailed = errors.New("store: condition failed")

// ConditionError says which condition failed on which key.
type ConditionError struct {
	Key  Key
	Cond Cond
	// Expect is the version that VersionEquals wanted.
	Expect int64
}

func (e *ConditionError) Error() string {
	if e.Cond == VersionEquals {
		return fmt.Sprintf("store: condition %s %d failed on %s", e.Cond, e.Expect, e.Key)
	}
	return fmt.Sprintf("store: condition %s failed on %s", e.Cond, e.Key)
}

// Is makes errors.Is(err, ErrConditionFailed) true.
func (e *ConditionError) Is(target error) bool { return target == ErrConditionFailed }

// TransactionError reports a cancelled transaction.
type TransactionError struct {
	// Failed lists the writes whose condition failed, by their index in the request.
	Failed []FailedWrite
	// Cause is set when the transaction failed for another reason (conflict, throttling).
	Cause error
}

// FailedWrite is one failed condition inside a transaction.
type FailedWrite struct {
	Index int
	ConditionError
}

func (e *TransactionError) Error() string {
	if len(e.Failed) == 0 {
		return fmt.Sprintf("store: transaction cancelled: %v", e.Cause)
	}
	msg := "store: transaction cancelled:"
	for i, f := range e.Failed {
		if i > 0 {
			msg += ";"
		}
		msg += fmt.Sprintf(" write %d: %s", f.Index, f.ConditionError.Error())
	}
	return msg
}

// Is makes errors.Is(err, ErrConditionFailed) true when a condition caused the cancellation.
func (e *TransactionError) Is(target error) bool {
	return target == ErrConditionFailed && len(e.Failed) > 0
}

// Unwrap exposes the non-condition cause.
func (e *TransactionError) Unwrap() error { return e.Cause }

// ErrConflict is wrapped by the error of a transaction that DynamoDB cancelled because another
// transaction was writing one of the same items at that moment. Nothing was written; trying
// again (after a short wait) is the remedy.
var ErrConflict = errors.New("store: a concurrent transaction touched the same item")

// ErrTooLarge is wrapped by the error of a write whose item would exceed DynamoDB's item size
// limit. A Put is refused before it reaches the backend; an add is refused when it is applied,
// since only then is the item's size known. It also matches ErrInvalid.
var ErrTooLarge = fmt.Errorf("%w: item too large", ErrInvalid)

// ErrInvalid is wrapped by errors about requests the port rejects before touching the backend
// (an empty key, too many writes, two writes on one key, both a prefix and a range).
var ErrInvalid = errors.New("store: invalid request")

// Validate checks a transaction request the same way in every adapter.
func Validate(ws []Write) error {
	if len(ws) == 0 {
		return fmt.Errorf("%w: a transaction needs at least one write", ErrInvalid)
	}
	if len(ws) > MaxTransactWrites {
		return fmt.Errorf("%w: a transaction holds at most %d writes, got %d", ErrInvalid, MaxTransactWrites, len(ws))
	}
	seen := make(map[Key]int, len(ws))
	for i, w := range ws {
		if err := ValidateWrite(w); err != nil {
			return fmt.Errorf("write %d: %w", i, err)
		}
		k := w.Target()
		if j, dup := seen[k]; dup {
			return fmt.Errorf("%w: writes %d and %d both touch %s", ErrInvalid, j, i, k)
		}
		seen[k] = i
	}
	return nil
}

// ValidateWrite checks one write.
func ValidateWrite(w Write) error {
	k := w.Target()
	if k.PK == "" || k.SK == "" {
		return fmt.Errorf("%w: pk and sk must both be set (got %q / %q)", ErrInvalid, k.PK, k.SK)
	}
	if w.Op == OpCheck && w.Cond == Always {
		return fmt.Errorf("%w: a check on %s needs a condition", ErrInvalid, k)
	}
	if w.Op == OpAdd {
		if len(w.Add) == 0 && len(w.Set) == 0 {
			return fmt.Errorf("%w: an add on %s changes no counter and sets no label", ErrInvalid, k)
		}
		if len(w.Add) > MaxAddCounters || len(w.Set) > MaxAddLabels {
			return fmt.Errorf("%w: an add on %s changes %d counters and %d labels; one add takes at most %d and %d",
				ErrInvalid, k, len(w.Add), len(w.Set), MaxAddCounters, MaxAddLabels)
		}
		if err := checkNames(k, w.Add, w.Set); err != nil {
			return err
		}
	}
	if w.Op == OpPut {
		it := w.Item
		if (it.GSI1PK == "") != (it.GSI1SK == "") {
			return fmt.Errorf("%w: %s sets only one of gsi1pk and gsi1sk", ErrInvalid, k)
		}
		if (it.GSI2PK == "") != (it.GSI2SK == "") {
			return fmt.Errorf("%w: %s sets only one of gsi2pk and gsi2sk", ErrInvalid, k)
		}
		if err := checkNames(k, it.Counters, it.Labels); err != nil {
			return err
		}
	}
	return nil
}

// checkNames checks counter and label names: not empty and at most MaxNameBytes.
func checkNames[L any](k Key, counters map[string]int64, labels map[string]L) error {
	for n := range counters {
		if n == "" || len(n) > MaxNameBytes {
			return fmt.Errorf("%w: counter name %q on %s must have 1 to %d bytes", ErrInvalid, n, k, MaxNameBytes)
		}
	}
	for n := range labels {
		if n == "" || len(n) > MaxNameBytes {
			return fmt.Errorf("%w: label name %q on %s must have 1 to %d bytes", ErrInvalid, n, k, MaxNameBytes)
		}
	}
	return nil
}

// ValidateKeys checks the keys of a GetMany the same way in every adapter, and returns them
// without repeats, in their first order.
func ValidateKeys(keys []Key) ([]Key, error) {
	if len(keys) > MaxGetMany {
		return nil, fmt.Errorf("%w: one read of many items takes at most %d keys, got %d", ErrInvalid, MaxGetMany, len(keys))
	}
	seen := make(map[Key]bool, len(keys))
	out := make([]Key, 0, len(keys))
	for _, k := range keys {
		if k.PK == "" || k.SK == "" {
			return nil, fmt.Errorf("%w: pk and sk must both be set (got %q / %q)", ErrInvalid, k.PK, k.SK)
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out, nil
}

// ValidateQuery checks a query the same way in every adapter.
func ValidateQuery(q Query) error {
	if q.PK == "" {
		return fmt.Errorf("%w: query on %s needs a partition key", ErrInvalid, q.Index)
	}
	if q.SKPrefix != "" && (q.SKFrom != "" || q.SKTo != "") {
		return fmt.Errorf("%w: query on %s sets both a sort-key prefix and a range", ErrInvalid, q.Index)
	}
	if q.Index < Table || q.Index > GSI2 {
		return fmt.Errorf("%w: unknown index %d", ErrInvalid, int(q.Index))
	}
	if q.Limit < 0 {
		return fmt.Errorf("%w: negative limit %d", ErrInvalid, q.Limit)
	}
	return nil
}

// Live reports whether an item with this expiry is still visible at now.
func Live(expiresAt, now time.Time) bool {
	return expiresAt.IsZero() || expiresAt.After(now)
}

// QueryAll pages through q and returns every live item. It is for bounded partitions
// (one contact's orders, one account's connections); report scans page explicitly.
func QueryAll(ctx context.Context, s Store, q Query) ([]Item, error) {
	var out []Item
	for {
		p, err := s.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out, nil
		}
		q.Cursor = p.Next
	}
}
