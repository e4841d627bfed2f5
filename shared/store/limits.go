package store

import (
	"fmt"
	"unicode/utf8"
)

// The attribute names of the single table. DynamoDB counts them towards an item's size, so
// every adapter needs them to apply DynamoDB's limits; store/dynamo writes items under them.
const (
	AttrPK      = "pk"
	AttrSK      = "sk"
	AttrGSI1PK  = "gsi1pk"
	AttrGSI1SK  = "gsi1sk"
	AttrGSI2PK  = "gsi2pk"
	AttrGSI2SK  = "gsi2sk"
	AttrTTL     = "ttl"
	AttrVersion = "ver"
	AttrData    = "data"
	// AttrCounter and AttrLabel prefix the attribute of each of an item's counters and labels.
	AttrCounter = "+"
	AttrLabel   = "="
)

// DynamoDB's limits. Every adapter enforces them, so a repository that works under
// `cartrelay serve` cannot start failing once it runs against DynamoDB in AWS.
const (
	maxItemBytes         = 400 * 1024
	maxPartitionKeyBytes = 2048
	maxSortKeyBytes      = 1024
	// numberBytes over-estimates DynamoDB's size of a number attribute (at most 21 bytes), so
	// an item that passes the check is never too large for DynamoDB.
	numberBytes = 21
)

// CheckWrite is ValidateWrite plus what DynamoDB itself rejects: an unknown operation or
// condition, a key that is too long or not UTF-8, an item that is too large.
func CheckWrite(w Write) error {
	if err := ValidateWrite(w); err != nil {
		return err
	}
	k := w.Target()
	switch w.Op {
	case OpPut, OpDelete, OpCheck, OpAdd:
	default:
		return fmt.Errorf("%w: unknown operation %d on %s", ErrInvalid, int(w.Op), k)
	}
	switch w.Cond {
	case Always, NotExists, Exists, VersionEquals:
	default:
		return fmt.Errorf("%w: unknown condition %d on %s", ErrInvalid, int(w.Cond), k)
	}
	if err := checkKey(k, AttrPK, k.PK, maxPartitionKeyBytes); err != nil {
		return err
	}
	if err := checkKey(k, AttrSK, k.SK, maxSortKeyBytes); err != nil {
		return err
	}
	if w.Op == OpAdd {
		return checkLabels(k, w.Set)
	}
	if w.Op != OpPut {
		return nil
	}
	it := w.Item
	for _, c := range []struct {
		name, value string
		max         int
	}{
		{AttrGSI1PK, it.GSI1PK, maxPartitionKeyBytes},
		{AttrGSI1SK, it.GSI1SK, maxSortKeyBytes},
		{AttrGSI2PK, it.GSI2PK, maxPartitionKeyBytes},
		{AttrGSI2SK, it.GSI2SK, maxSortKeyBytes},
	} {
		if err := checkKey(k, c.name, c.value, c.max); err != nil {
			return err
		}
	}
	if err := checkLabels(k, it.Labels); err != nil {
		return err
	}
	if err := CheckSize(it); err != nil {
		return err
	}
	return nil
}

func checkKey(k Key, attr, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%w: %s of %s is %d bytes; DynamoDB allows at most %d", ErrInvalid, attr, k, len(v), max)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s of %s is not valid UTF-8", ErrInvalid, attr, k)
	}
	return nil
}

func checkLabels(k Key, labels map[string]string) error {
	for n, v := range labels {
		if !utf8.ValidString(n) || !utf8.ValidString(v) {
			return fmt.Errorf("%w: label %q of %s is not valid UTF-8", ErrInvalid, n, k)
		}
	}
	return nil
}

// CheckSize refuses an item larger than DynamoDB stores, with an error matching ErrTooLarge.
// Adapters call it on the item an add would leave.
func CheckSize(it Item) error {
	if n := itemBytes(it); n > maxItemBytes {
		return fmt.Errorf("%w: item %s would be about %d bytes; DynamoDB stores at most %d", ErrTooLarge, Key{PK: it.PK, SK: it.SK}, n, maxItemBytes)
	}
	return nil
}

// itemBytes follows DynamoDB's item size rule: the sum of every attribute's name and value.
func itemBytes(it Item) int {
	n := len(AttrPK) + len(it.PK) + len(AttrSK) + len(it.SK) + len(AttrVersion) + numberBytes
	if it.GSI1PK != "" {
		n += len(AttrGSI1PK) + len(it.GSI1PK) + len(AttrGSI1SK) + len(it.GSI1SK)
	}
	if it.GSI2PK != "" {
		n += len(AttrGSI2PK) + len(it.GSI2PK) + len(AttrGSI2SK) + len(it.GSI2SK)
	}
	if !it.ExpiresAt.IsZero() {
		n += len(AttrTTL) + numberBytes
	}
	if len(it.Data) > 0 {
		n += len(AttrData) + len(it.Data)
	}
	for name := range it.Counters {
		n += len(AttrCounter) + len(name) + numberBytes
	}
	for name, v := range it.Labels {
		n += len(AttrLabel) + len(name) + len(v)
	}
	return n
}

// CheckQuery is ValidateQuery plus what DynamoDB itself rejects: a key that is not UTF-8.
func CheckQuery(q Query) error {
	if err := ValidateQuery(q); err != nil {
		return err
	}
	for _, v := range []string{q.PK, q.SKPrefix, q.SKFrom, q.SKTo} {
		if !utf8.ValidString(v) {
			return fmt.Errorf("%w: query on %s has a key that is not valid UTF-8", ErrInvalid, q.Index)
		}
	}
	return nil
}

// CheckPartitions checks a QueryPartitions request the same way in every adapter: q as
// CheckQuery does on each partition, with no partition key, limit or cursor of its own.
func CheckPartitions(q Query, pks []string) error {
	if q.PK != "" || q.Limit != 0 || q.Cursor != "" {
		return fmt.Errorf("%w: a query of many partitions takes them apart from the query, and every item of each (no limit or cursor)", ErrInvalid)
	}
	if len(pks) > MaxQueryPartitions {
		return fmt.Errorf("%w: a query of many partitions reads at most %d, got %d", ErrInvalid, MaxQueryPartitions, len(pks))
	}
	for _, pk := range pks {
		q.PK = pk
		if err := CheckQuery(q); err != nil {
			return err
		}
	}
	return nil
}
