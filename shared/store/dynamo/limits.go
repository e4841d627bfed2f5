package dynamo

import (
	"fmt"
	"unicode/utf8"

	"github.com/cartrelay/cartrelay/shared/store"
)

// DynamoDB's limits, checked before a request is sent so that both adapters reject the same
// writes with store.ErrInvalid (the embedded adapter checks the same limits).
const (
	maxItemBytes         = 400 * 1024
	maxPartitionKeyBytes = 2048
	maxSortKeyBytes      = 1024
	// numberBytes over-estimates DynamoDB's size of a number attribute (at most 21 bytes), so
	// an item that passes the check is never too large for DynamoDB.
	numberBytes = 21
)

// validateWrite adds DynamoDB's own rejections to store.ValidateWrite.
func validateWrite(w store.Write) error {
	if err := store.ValidateWrite(w); err != nil {
		return err
	}
	k := w.Target()
	switch w.Op {
	case store.OpPut, store.OpDelete, store.OpCheck:
	default:
		return fmt.Errorf("%w: unknown operation %d on %s", store.ErrInvalid, int(w.Op), k)
	}
	switch w.Cond {
	case store.Always, store.NotExists, store.Exists, store.VersionEquals:
	default:
		return fmt.Errorf("%w: unknown condition %d on %s", store.ErrInvalid, int(w.Cond), k)
	}
	if err := checkKey(k, AttrPK, k.PK, maxPartitionKeyBytes); err != nil {
		return err
	}
	if err := checkKey(k, AttrSK, k.SK, maxSortKeyBytes); err != nil {
		return err
	}
	if w.Op != store.OpPut {
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
	if n := itemBytes(it); n > maxItemBytes {
		return fmt.Errorf("%w: item %s is about %d bytes; DynamoDB stores at most %d", store.ErrInvalid, k, n, maxItemBytes)
	}
	return nil
}

func checkKey(k store.Key, attr, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%w: %s of %s is %d bytes; DynamoDB allows at most %d", store.ErrInvalid, attr, k, len(v), max)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s of %s is not valid UTF-8", store.ErrInvalid, attr, k)
	}
	return nil
}

// itemBytes follows DynamoDB's item size rule: the sum of every attribute's name and value.
func itemBytes(it store.Item) int {
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
	return n
}

// validateQuery adds DynamoDB's rejections to store.ValidateQuery.
func validateQuery(q store.Query) error {
	if err := store.ValidateQuery(q); err != nil {
		return err
	}
	for _, v := range []string{q.PK, q.SKPrefix, q.SKFrom, q.SKTo} {
		if !utf8.ValidString(v) {
			return fmt.Errorf("%w: query on %s has a key that is not valid UTF-8", store.ErrInvalid, q.Index)
		}
	}
	return nil
}
