package dynamo

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/cartrelay/cartrelay/shared/store"
)

// A cursor is DynamoDB's LastEvaluatedKey, as base64url JSON of its attributes (all strings in
// this table). It carries the table key even on a GSI, because GSI keys are not unique and
// DynamoDB needs the table key to resume between items that share one.

func encodeCursor(key Item) (string, error) {
	m := make(map[string]string, len(key))
	for name, v := range key {
		if v.Kind != KindS {
			return "", fmt.Errorf("DynamoDB returned a last evaluated key with attribute %s of type %s; this table's keys are strings", name, v.Kind)
		}
		m[name] = v.Text
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode cursor: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// decodeCursor turns q.Cursor back into an ExclusiveStartKey, refusing one that another query
// made: DynamoDB would either reject it with a less helpful message or resume somewhere else.
func decodeCursor(q store.Query) (Item, error) {
	bad := func(why string) (Item, error) {
		return nil, fmt.Errorf("%w: cursor for query on %s %q %s; pass Page.Next of the same query", store.ErrInvalid, q.Index, q.PK, why)
	}
	raw, err := base64.RawURLEncoding.DecodeString(q.Cursor)
	if err != nil {
		return bad("is not valid base64")
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return bad("is not a key")
	}
	want := cursorAttrs(q.Index)
	got := make([]string, 0, len(m))
	for name, v := range m {
		if v == "" {
			return bad("has an empty " + name)
		}
		got = append(got, name)
	}
	sort.Strings(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return bad(fmt.Sprintf("names attributes %v, not %v", got, want))
	}
	pkAttr, _ := keyAttrNames(q.Index)
	if m[pkAttr] != q.PK {
		return bad("belongs to another partition")
	}
	key := make(Item, len(m))
	for name, v := range m {
		key[name] = S(v)
	}
	return key, nil
}

// cursorAttrs lists, sorted, the attributes of a LastEvaluatedKey on index i.
func cursorAttrs(i store.Index) []string {
	attrs := []string{AttrPK, AttrSK}
	if i != store.Table {
		pk, sk := keyAttrNames(i)
		attrs = append(attrs, pk, sk)
	}
	sort.Strings(attrs)
	return attrs
}
