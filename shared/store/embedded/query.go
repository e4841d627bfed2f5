package embedded

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/cartrelay/cartrelay/shared/store"
)

// maxPage is both the default and the largest page. Like DynamoDB's 1 MB page cap it keeps one
// call bounded; the port lets pages be shorter than Limit.
const maxPage = 1000

// Query returns one page of live items, in sort-key byte order like DynamoDB. On a GSI, items
// that share a GSI sort key come in (pk, sk) order so a cursor can resume between them.
func (s *Store) Query(ctx context.Context, q store.Query) (store.Page, error) {
	s.counts.Add("store.query", 1)
	if err := store.CheckQuery(q); err != nil {
		return store.Page{}, err
	}
	pkCol, skCol := columns(q.Index)
	where := []string{pkCol + " = ?", "(expires_at IS NULL OR expires_at > ?)"}
	args := []any{q.PK, s.clk.Now().Unix()}

	where, args = skRange(q, skCol, where, args)

	cmp, dir := ">", "ASC"
	if q.Descending {
		cmp, dir = "<", "DESC"
	}
	if q.Cursor != "" {
		after, err := decodeCursor(q)
		if err != nil {
			return store.Page{}, err
		}
		if q.Index == store.Table {
			where = append(where, "sk "+cmp+" ?")
			args = append(args, after.SK)
		} else {
			where = append(where, "("+skCol+", pk, sk) "+cmp+" (?, ?, ?)")
			args = append(args, after.indexSK, after.PK, after.SK)
		}
	}
	order := skCol + " " + dir
	if q.Index != store.Table {
		order += ", pk " + dir + ", sk " + dir
	}
	limit := q.Limit
	if limit == 0 || limit > maxPage {
		limit = maxPage
	}
	// One extra row tells whether another page exists, so the last page carries no cursor.
	args = append(args, limit+1)

	rows, err := s.db.Query(ctx, nil,
		`SELECT `+itemColumns+` FROM `+TableName+
			` WHERE `+strings.Join(where, " AND ")+` ORDER BY `+order+` LIMIT ?`, args...)
	if err != nil {
		return store.Page{}, fmt.Errorf("query %s %q: %w", q.Index, q.PK, err)
	}
	defer rows.Close()
	var page store.Page
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return store.Page{}, fmt.Errorf("query %s %q: %w", q.Index, q.PK, err)
		}
		page.Items = append(page.Items, it)
	}
	if err := rows.Err(); err != nil {
		return store.Page{}, fmt.Errorf("query %s %q: %w", q.Index, q.PK, err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.Next = encodeCursor(q.Index, page.Items[limit-1])
	}
	return page, nil
}

func columns(i store.Index) (pk, sk string) {
	switch i {
	case store.GSI1:
		return "gsi1pk", "gsi1sk"
	case store.GSI2:
		return "gsi2pk", "gsi2sk"
	}
	return "pk", "sk"
}

// prefixEnd returns the smallest string greater than every string starting with prefix, so a
// prefix becomes an index range. SQLite compares TEXT bytewise (memcmp), as DynamoDB does.
func prefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// position is where a page ended. It holds the table key and, on a GSI, the index key, like
// DynamoDB's LastEvaluatedKey: GSI keys are not unique, so the table key breaks ties.
type position struct {
	PK, SK           string
	indexPK, indexSK string
}

// The cursor is base64url JSON of the key attributes under the DynamoDB adapter's attribute
// names, so both adapters hand out cursors of the same shape.
func encodeCursor(i store.Index, it store.Item) string {
	m := map[string]string{"pk": it.PK, "sk": it.SK}
	switch i {
	case store.GSI1:
		m["gsi1pk"], m["gsi1sk"] = it.GSI1PK, it.GSI1SK
	case store.GSI2:
		m["gsi2pk"], m["gsi2sk"] = it.GSI2PK, it.GSI2SK
	}
	b, _ := json.Marshal(m) // a map of strings always marshals
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(q store.Query) (position, error) {
	bad := func(why string) (position, error) {
		return position{}, fmt.Errorf("%w: cursor for query on %s %q %s; pass Page.Next of the same query", store.ErrInvalid, q.Index, q.PK, why)
	}
	raw, err := base64.RawURLEncoding.DecodeString(q.Cursor)
	if err != nil {
		return bad("is not valid base64")
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return bad("is not a key")
	}
	pkCol, skCol := columns(q.Index)
	want := []string{"pk", "sk"}
	if q.Index != store.Table {
		want = append(want, pkCol, skCol)
	}
	if len(m) != len(want) {
		return bad("names other attributes")
	}
	for _, a := range want {
		if m[a] == "" {
			return bad("lacks " + a)
		}
	}
	p := position{PK: m["pk"], SK: m["sk"], indexPK: m[pkCol], indexSK: m[skCol]}
	if p.indexPK != q.PK {
		return bad("belongs to another partition")
	}
	return p, nil
}

// QueryPartitions reads every partition of pks in one statement: a contact's records are a
// few rows, and the work SQLite and database/sql do per statement (binding, a fresh cursor,
// the result set) is then most of what a read of one partition costs.
func (s *Store) QueryPartitions(ctx context.Context, q store.Query, pks []string) ([][]store.Item, error) {
	s.counts.Add("store.query", int64(len(pks))) // a query of each, as on DynamoDB
	if err := store.CheckPartitions(q, pks); err != nil {
		return nil, err
	}
	out := make([][]store.Item, len(pks))
	if len(pks) == 0 {
		return out, nil
	}
	pkCol, skCol := columns(q.Index)
	list, err := json.Marshal(pks)
	if err != nil {
		return nil, fmt.Errorf("query %s of %d partitions: %w", q.Index, len(pks), err)
	}
	where := []string{pkCol + " IN (SELECT value FROM json_each(?))", "(expires_at IS NULL OR expires_at > ?)"}
	args := []any{string(list), s.clk.Now().Unix()}
	if q.Index != store.Table {
		where = append(where, pkCol+" IS NOT NULL") // lets SQLite use the partial index
	}
	where, args = skRange(q, skCol, where, args)
	dir := "ASC"
	if q.Descending {
		dir = "DESC"
	}
	order := pkCol + ", " + skCol + " " + dir
	if q.Index != store.Table {
		order += ", pk " + dir + ", sk " + dir
	}
	rows, err := s.db.Query(ctx, nil,
		`SELECT `+itemColumns+` FROM `+TableName+` WHERE `+strings.Join(where, " AND ")+` ORDER BY `+order, args...)
	if err != nil {
		return nil, fmt.Errorf("query %s of %d partitions: %w", q.Index, len(pks), err)
	}
	defer rows.Close()
	byPK := make(map[string][]store.Item, len(pks))
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, fmt.Errorf("query %s of %d partitions: %w", q.Index, len(pks), err)
		}
		p := indexPK(q.Index, it)
		byPK[p] = append(byPK[p], it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query %s of %d partitions: %w", q.Index, len(pks), err)
	}
	taken := make(map[string]bool, len(byPK))
	for i, pk := range pks {
		out[i] = byPK[pk]
		if taken[pk] { // a partition named twice gets a copy of its own
			out[i] = slices.Clone(out[i])
		}
		taken[pk] = true
	}
	return out, nil
}

func indexPK(i store.Index, it store.Item) string {
	switch i {
	case store.GSI1:
		return it.GSI1PK
	case store.GSI2:
		return it.GSI2PK
	}
	return it.PK
}

// skRange adds the conditions of q's sort-key range (prefix, from, to) on skCol to a query's.
func skRange(q store.Query, skCol string, where []string, args []any) ([]string, []any) {
	if q.SKPrefix != "" {
		where = append(where, skCol+" >= ?")
		args = append(args, q.SKPrefix)
		if end, ok := prefixEnd(q.SKPrefix); ok {
			where = append(where, skCol+" < ?")
			args = append(args, end)
		}
	}
	if q.SKFrom != "" {
		where = append(where, skCol+" >= ?")
		args = append(args, q.SKFrom)
	}
	if q.SKTo != "" {
		where = append(where, skCol+" <= ?")
		args = append(args, q.SKTo)
	}
	return where, args
}
