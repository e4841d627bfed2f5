package dynamo

import (
	"context"
	"fmt"
	"math"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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
	in := &dynamodb.QueryInput{
		TableName:        aws.String(s.table),
		ScanIndexForward: aws.Bool(!q.Descending),
		FilterExpression: aws.String("attribute_not_exists(#ttl) OR #ttl > :now"),
		ExpressionAttributeNames: map[string]string{
			"#pk": pkAttr, "#ttl": AttrTTL,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":  &types.AttributeValueMemberS{Value: q.PK},
			":now": number(s.clk.Now().Unix()),
		},
	}
	keyCond := "#pk = :pk"
	str := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
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
	in.KeyConditionExpression = aws.String(keyCond)
	switch q.Index {
	case store.Table:
		// Only the table offers strongly consistent reads; a GSI is always eventually consistent.
		in.ConsistentRead = aws.Bool(true)
	case store.GSI1:
		in.IndexName = aws.String(IndexGSI1)
	case store.GSI2:
		in.IndexName = aws.String(IndexGSI2)
	}
	if q.Limit > 0 {
		in.Limit = aws.Int32(int32(min(q.Limit, math.MaxInt32)))
	}
	if q.Cursor != "" {
		start, err := decodeCursor(q)
		if err != nil {
			return store.Page{}, err
		}
		in.ExclusiveStartKey = start
	}

	out, err := s.client.Query(ctx, in)
	if err != nil {
		return store.Page{}, fmt.Errorf("query %s %q on DynamoDB table %s: %w", q.Index, q.PK, s.table, err)
	}
	page := store.Page{Items: make([]store.Item, 0, len(out.Items))}
	for _, m := range out.Items {
		it, err := decodeItem(m)
		if err != nil {
			return store.Page{}, fmt.Errorf("query %s %q on DynamoDB table %s: %w", q.Index, q.PK, s.table, err)
		}
		page.Items = append(page.Items, it)
	}
	if len(out.LastEvaluatedKey) > 0 {
		next, err := encodeCursor(out.LastEvaluatedKey)
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
