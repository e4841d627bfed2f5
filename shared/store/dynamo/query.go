package dynamo

import (
	"context"
	"fmt"
	"math"

	"github.com/cartrelay/cartrelay/shared/store"
)

// Query returns one page of live items. Expired items are removed by a filter after DynamoDB
// reads them, so a page may hold fewer items than q.Limit, or none, and still have a cursor.
func (s *Store) Query(ctx context.Context, q store.Query) (store.Page, error) {
	if err := store.CheckQuery(q); err != nil {
		return store.Page{}, err
	}
	if q.SKFrom != "" && q.SKTo != "" && q.SKFrom > q.SKTo {
		// DynamoDB rejects BETWEEN with reversed bounds; the range is simply empty.
		return store.Page{}, nil
	}
	pkAttr, skAttr := keyAttrNames(q.Index)
	in := &queryInput{
		TableName:        s.table,
		ScanIndexForward: !q.Descending,
		FilterExpression: "attribute_not_exists(#ttl) OR #ttl > :now",
		ExpressionAttributeNames: map[string]string{
			"#pk": pkAttr, "#ttl": AttrTTL,
		},
		ExpressionAttributeValues: Item{":pk": S(q.PK), ":now": N(s.clk.Now().Unix())},
	}
	keyCond := "#pk = :pk"
	str := S
	switch {
	case q.SKPrefix != "":
		keyCond += " AND begins_with(#sk, :prefix)"
		in.ExpressionAttributeValues[":prefix"] = str(q.SKPrefix)
	case q.SKFrom != "" && q.SKTo != "":
		keyCond += " AND #sk BETWEEN :from AND :to"
		in.ExpressionAttributeValues[":from"] = str(q.SKFrom)
		in.ExpressionAttributeValues[":to"] = str(q.SKTo)
	case q.SKFrom != "":
		keyCond += " AND #sk >= :from"
		in.ExpressionAttributeValues[":from"] = str(q.SKFrom)
	case q.SKTo != "":
		keyCond += " AND #sk <= :to"
		in.ExpressionAttributeValues[":to"] = str(q.SKTo)
	}
	if q.SKPrefix != "" || q.SKFrom != "" || q.SKTo != "" {
		in.ExpressionAttributeNames["#sk"] = skAttr
	}
	in.KeyConditionExpression = keyCond
	switch q.Index {
	case store.Table:
		// Only the table offers strongly consistent reads; a GSI is always eventually consistent.
		in.ConsistentRead = true
	case store.GSI1:
		in.IndexName = IndexGSI1
	case store.GSI2:
		in.IndexName = IndexGSI2
	}
	if q.Limit > 0 {
		in.Limit = int32(min(q.Limit, math.MaxInt32))
	}
	if q.Cursor != "" {
		start, err := decodeCursor(q)
		if err != nil {
			return store.Page{}, err
		}
		in.ExclusiveStartKey = start
	}

	items, last, err := s.client.query(ctx, in)
	if err != nil {
		return store.Page{}, fmt.Errorf("query %s %q on DynamoDB table %s: %w", q.Index, q.PK, s.table, err)
	}
	page := store.Page{Items: make([]store.Item, 0, len(items))}
	for _, m := range items {
		it, err := decodeItem(m)
		if err != nil {
			return store.Page{}, fmt.Errorf("query %s %q on DynamoDB table %s: %w", q.Index, q.PK, s.table, err)
		}
		page.Items = append(page.Items, it)
	}
	if len(last) > 0 {
		next, err := encodeCursor(last)
		if err != nil {
			return store.Page{}, fmt.Errorf("query %s %q on DynamoDB table %s: %w", q.Index, q.PK, s.table, err)
		}
		page.Next = next
	}
	return page, nil
}

func keyAttrNames(i store.Index) (pk, sk string) {
	switch i {
	case store.GSI1:
		return AttrGSI1PK, AttrGSI1SK
	case store.GSI2:
		return AttrGSI2PK, AttrGSI2SK
	}
	return AttrPK, AttrSK
}
