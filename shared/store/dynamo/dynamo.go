// Package dynamo implements store.Store on one DynamoDB table (single-table design), calling
// DynamoDB through shared/awsjson with its own encoding of items (client.go, attrvalue.go). The
// contract suite in store/storetest runs it against DynamoDB Local.
//
// The table layout is fixed by the constants below; template.yaml declares the same names.
package dynamo

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/store"
)

// TableName is the table's name when configuration does not name another.
const TableName = "cartrelay"

// Attribute names. Every key attribute is a string (S). GSI key attributes are written only when
// set, which keeps the GSIs sparse; ttl is written only for items that expire. The names are
// the port's, because DynamoDB's item size limit, which every adapter checks, counts them.
const (
	AttrPK      = store.AttrPK
	AttrSK      = store.AttrSK
	AttrGSI1PK  = store.AttrGSI1PK
	AttrGSI1SK  = store.AttrGSI1SK
	AttrGSI2PK  = store.AttrGSI2PK
	AttrGSI2SK  = store.AttrGSI2SK
	AttrTTL     = store.AttrTTL     // N, unix seconds; the table's TTL attribute
	AttrVersion = store.AttrVersion // N
	AttrData    = store.AttrData    // B
	// AttrDataDeflated holds Data compressed with DEFLATE in place of AttrData (see deflateAbove).
	AttrDataDeflated = "dz" // B
)

// Global secondary index names; both project all attributes.
const (
	IndexGSI1 = "gsi1"
	IndexGSI2 = "gsi2"
)

// Store is the DynamoDB adapter. It is safe for concurrent use.
type Store struct {
	client *Client
	table  string
	clk    clock.Clock
}

var _ store.Store = (*Store)(nil)

// New returns a store on table. clk decides which items have expired: DynamoDB deletes expired
// items only eventually, so the store hides them itself.
func New(client *Client, table string, clk clock.Clock) *Store {
	return &Store{client: client, table: table, clk: clk}
}

// Get returns the live item at pk/sk, reading strongly consistently so a repository sees its
// own writes.
func (s *Store) Get(ctx context.Context, pk, sk string) (store.Item, error) {
	key := store.Key{PK: pk, SK: sk}
	if pk == "" || sk == "" {
		return store.Item{}, fmt.Errorf("get %s: %w: pk and sk must both be set", key, store.ErrInvalid)
	}
	item, err := s.client.getItem(ctx, s.table, keyAttrs(key), true)
	if err != nil {
		return store.Item{}, fmt.Errorf("get %s from DynamoDB table %s: %w", key, s.table, err)
	}
	if item == nil {
		return store.Item{}, fmt.Errorf("get %s: %w", key, store.ErrNotFound)
	}
	it, err := decodeItem(item)
	if err != nil {
		return store.Item{}, fmt.Errorf("get %s from DynamoDB table %s: %w", key, s.table, err)
	}
	if !store.Live(it.ExpiresAt, s.clk.Now()) {
		return store.Item{}, fmt.Errorf("get %s: %w", key, store.ErrNotFound)
	}
	return it, nil
}

// Write applies one conditional write.
func (s *Store) Write(ctx context.Context, w store.Write) error {
	if err := store.CheckWrite(w); err != nil {
		return err
	}
	c := condition(w, s.clk.Now())
	c.TableName = s.table
	var err error
	switch w.Op {
	case store.OpPut:
		err = s.client.putItem(ctx, encodeItem(w.Item), c)
	case store.OpDelete:
		err = s.client.deleteItem(ctx, keyAttrs(w.Key), c)
	case store.OpAdd:
		expr, u := update(w, c)
		err = s.client.updateItem(ctx, keyAttrs(w.Key), expr, u)
	case store.OpCheck:
		// DynamoDB has a condition check only inside transactions.
		err = s.Transact(ctx, []store.Write{w})
		var te *store.TransactionError
		if errors.As(err, &te) && len(te.Failed) == 1 && te.Cause == nil {
			return &te.Failed[0].ConditionError
		}
		return err
	}
	if errorCode(err) == "ConditionalCheckFailedException" {
		return &store.ConditionError{Key: w.Target(), Cond: w.Cond, Expect: w.Expect}
	}
	if tooLarge(err) {
		return fmt.Errorf("write %s to DynamoDB table %s: %w: %w", w.Target(), s.table, store.ErrTooLarge, err)
	}
	if errorCode(err) == "TransactionConflictException" {
		return fmt.Errorf("write %s to DynamoDB table %s: %w: %w", w.Target(), s.table, store.ErrConflict, err)
	}
	if err != nil {
		return fmt.Errorf("write %s to DynamoDB table %s: %w", w.Target(), s.table, err)
	}
	return nil
}

// Transact applies ws all or nothing with TransactWriteItems.
func (s *Store) Transact(ctx context.Context, ws []store.Write) error {
	if err := store.Validate(ws); err != nil {
		return err
	}
	now := s.clk.Now()
	items := make([]transactItem, len(ws))
	for i, w := range ws {
		if err := store.CheckWrite(w); err != nil {
			return fmt.Errorf("write %d: %w", i, err)
		}
		c := condition(w, now)
		c.TableName = s.table
		switch w.Op {
		case store.OpPut:
			items[i].Put = &putInTransaction{conditional: c, Item: encodeItem(w.Item)}
		case store.OpDelete:
			items[i].Delete = &keyedInTransaction{conditional: c, Key: keyAttrs(w.Key)}
		case store.OpCheck:
			items[i].ConditionCheck = &keyedInTransaction{conditional: c, Key: keyAttrs(w.Key)}
		case store.OpAdd:
			expr, u := update(w, c)
			items[i].Update = &updateInTransaction{conditional: u, Key: keyAttrs(w.Key), UpdateExpression: expr}
		}
	}
	if err := s.client.transactWriteItems(ctx, items); err != nil {
		return s.transactionError(ws, err)
	}
	return nil
}

// transactionError turns DynamoDB's cancellation reasons into a *store.TransactionError: one
// entry per failed condition, and anything else (a conflicting transaction, throttling) as the
// cause, which a caller may retry.
func (s *Store) transactionError(ws []store.Write, err error) error {
	var tce *TransactionCanceledError
	if !errors.As(err, &tce) {
		if tooLarge(err) {
			return fmt.Errorf("transaction of %d writes on DynamoDB table %s: %w: %w", len(ws), s.table, store.ErrTooLarge, err)
		}
		return fmt.Errorf("transaction of %d writes on DynamoDB table %s: %w", len(ws), s.table, err)
	}
	te := &store.TransactionError{}
	var other []string
	big, conflict := false, false
	for i, r := range tce.Reasons {
		switch code := r.Code; code {
		case "", "None":
		case "ConditionalCheckFailed":
			if i < len(ws) {
				w := ws[i]
				te.Failed = append(te.Failed, store.FailedWrite{
					Index:          i,
					ConditionError: store.ConditionError{Key: w.Target(), Cond: w.Cond, Expect: w.Expect},
				})
			}
		default:
			if tooLargeMessage(r.Message) {
				big = true
			}
			if code == "TransactionConflict" {
				conflict = true
			}
			other = append(other, fmt.Sprintf("write %d: %s (%s)", i, code, r.Message))
		}
	}
	if len(other) > 0 {
		te.Cause = fmt.Errorf("DynamoDB cancelled the transaction: %s: %w", strings.Join(other, "; "), err)
		if big {
			te.Cause = fmt.Errorf("%w: %w", store.ErrTooLarge, te.Cause)
		}
		if conflict && len(te.Failed) == 0 {
			te.Cause = fmt.Errorf("%w: %w", store.ErrConflict, te.Cause)
		}
	} else if len(te.Failed) == 0 {
		te.Cause = err
	}
	return te
}

// condition renders w's condition, leaving its TableName to the caller; all empty for an
// unconditional write. An item whose ttl is at or before now counts as absent, because DynamoDB
// may keep expired items for days before deleting them.
func condition(w store.Write, now time.Time) conditional {
	const live = "attribute_exists(#pk) AND (attribute_not_exists(#ttl) OR #ttl > :now)"
	var expr string
	switch w.Cond {
	case store.Always:
		return conditional{}
	case store.NotExists:
		expr = "attribute_not_exists(#pk) OR #ttl <= :now"
	case store.Exists:
		expr = live
	case store.VersionEquals:
		expr = live + " AND #ver = :expect"
	}
	c := conditional{
		ConditionExpression:       expr,
		ExpressionAttributeNames:  map[string]string{"#pk": AttrPK, "#ttl": AttrTTL},
		ExpressionAttributeValues: Item{":now": N(now.Unix())},
	}
	if w.Cond == store.VersionEquals {
		c.ExpressionAttributeNames["#ver"] = AttrVersion
		c.ExpressionAttributeValues[":expect"] = N(w.Expect)
	}
	return c
}

// update renders an OpAdd: ADD for the counters (DynamoDB creates a missing counter, and a
// missing item, at zero) and SET for the labels, with c's placeholders merged into the
// update's. Placeholders are numbered in name order, so the same write always renders the same
// expression.
func update(w store.Write, c conditional) (string, conditional) {
	u := conditional{TableName: c.TableName, ConditionExpression: c.ConditionExpression,
		ExpressionAttributeNames: map[string]string{}, ExpressionAttributeValues: Item{}}
	maps.Copy(u.ExpressionAttributeNames, c.ExpressionAttributeNames)
	maps.Copy(u.ExpressionAttributeValues, c.ExpressionAttributeValues)
	var b strings.Builder
	if len(w.Add) > 0 {
		b.WriteString("ADD ")
		for i, name := range slices.Sorted(maps.Keys(w.Add)) {
			if i > 0 {
				b.WriteString(", ")
			}
			p := strconv.FormatInt(int64(i), 36)
			b.WriteString("#c" + p + " :c" + p)
			u.ExpressionAttributeNames["#c"+p] = store.AttrCounter + name
			u.ExpressionAttributeValues[":c"+p] = N(w.Add[name])
		}
	}
	if len(w.Set) > 0 {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("SET ")
		for i, name := range slices.Sorted(maps.Keys(w.Set)) {
			if i > 0 {
				b.WriteString(", ")
			}
			p := strconv.FormatInt(int64(i), 36)
			b.WriteString("#l" + p + " = :l" + p)
			u.ExpressionAttributeNames["#l"+p] = store.AttrLabel + name
			u.ExpressionAttributeValues[":l"+p] = S(w.Set[name])
		}
	}
	return b.String(), u
}

// tooLarge tells DynamoDB's refusal of an item over its size limit.
func tooLarge(err error) bool {
	var api interface{ ErrorMessage() string }
	return err != nil && errors.As(err, &api) && tooLargeMessage(api.ErrorMessage())
}

func tooLargeMessage(msg string) bool {
	msg = strings.ToLower(msg)
	return strings.Contains(msg, "item size") && strings.Contains(msg, "maximum allowed size")
}

func keyAttrs(k store.Key) Item {
	return Item{AttrPK: S(k.PK), AttrSK: S(k.SK)}
}

func encodeItem(it store.Item) Item {
	m := keyAttrs(store.Key{PK: it.PK, SK: it.SK})
	m[AttrVersion] = N(it.Version)
	if it.GSI1PK != "" {
		m[AttrGSI1PK] = S(it.GSI1PK)
		m[AttrGSI1SK] = S(it.GSI1SK)
	}
	if it.GSI2PK != "" {
		m[AttrGSI2PK] = S(it.GSI2PK)
		m[AttrGSI2SK] = S(it.GSI2SK)
	}
	if secs, ok := expirySeconds(it.ExpiresAt); ok {
		m[AttrTTL] = N(secs)
	}
	if len(it.Data) > 0 {
		if z, ok := deflate(it.Data); ok {
			m[AttrDataDeflated] = B(z)
		} else {
			m[AttrData] = B(it.Data)
		}
	}
	for name, v := range it.Counters {
		if v != 0 {
			m[store.AttrCounter+name] = N(v)
		}
	}
	for name, v := range it.Labels {
		m[store.AttrLabel+name] = S(v)
	}
	return m
}

func decodeItem(m Item) (store.Item, error) {
	var it store.Item
	for _, f := range []struct {
		attr string
		dst  *string
	}{
		{AttrPK, &it.PK}, {AttrSK, &it.SK},
		{AttrGSI1PK, &it.GSI1PK}, {AttrGSI1SK, &it.GSI1SK},
		{AttrGSI2PK, &it.GSI2PK}, {AttrGSI2SK, &it.GSI2SK},
	} {
		v, ok := m[f.attr]
		if !ok {
			continue
		}
		if v.Kind != KindS {
			return store.Item{}, fmt.Errorf("attribute %s is of type %s, want a string (S)", f.attr, v.Kind)
		}
		*f.dst = v.Text
	}
	if v, ok := m[AttrVersion]; ok {
		n, err := intAttr(AttrVersion, v)
		if err != nil {
			return store.Item{}, err
		}
		it.Version = n
	}
	if v, ok := m[AttrTTL]; ok {
		n, err := intAttr(AttrTTL, v)
		if err != nil {
			return store.Item{}, err
		}
		it.ExpiresAt = time.Unix(n, 0).UTC()
	}
	if v, ok := m[AttrData]; ok {
		if v.Kind != KindB {
			return store.Item{}, fmt.Errorf("attribute %s is of type %s, want binary (B)", AttrData, v.Kind)
		}
		if len(v.Bytes) > 0 {
			it.Data = v.Bytes
		}
	}
	if v, ok := m[AttrDataDeflated]; ok {
		if v.Kind != KindB {
			return store.Item{}, fmt.Errorf("attribute %s is of type %s, want binary (B)", AttrDataDeflated, v.Kind)
		}
		data, err := inflate(v.Bytes)
		if err != nil {
			return store.Item{}, fmt.Errorf("attribute %s of %s / %s: %w", AttrDataDeflated, it.PK, it.SK, err)
		}
		it.Data = data
	}
	for attr, v := range m {
		switch {
		case strings.HasPrefix(attr, store.AttrCounter):
			n, err := intAttr(attr, v)
			if err != nil {
				return store.Item{}, err
			}
			if n == 0 {
				continue // the port reads a counter at zero as absent
			}
			if it.Counters == nil {
				it.Counters = map[string]int64{}
			}
			it.Counters[attr[len(store.AttrCounter):]] = n
		case strings.HasPrefix(attr, store.AttrLabel):
			if v.Kind != KindS {
				return store.Item{}, fmt.Errorf("attribute %s is of type %s, want a string (S)", attr, v.Kind)
			}
			if it.Labels == nil {
				it.Labels = map[string]string{}
			}
			it.Labels[attr[len(store.AttrLabel):]] = v.Text
		}
	}
	return it, nil
}

func intAttr(name string, v Value) (int64, error) {
	if v.Kind != KindN {
		return 0, fmt.Errorf("attribute %s is of type %s, want a number (N)", name, v.Kind)
	}
	i, err := strconv.ParseInt(v.Text, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("attribute %s is %q, want a whole number: %w", name, v.Text, err)
	}
	return i, nil
}

// expirySeconds converts an expiry to the whole unix seconds DynamoDB's TTL needs. It rounds up,
// so an item never disappears before the time its writer asked for. ok is false for the zero
// time, which means "never expires".
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

// deflateAbove is the size of Data from which it is stored compressed. DynamoDB charges a write
// unit per started kilobyte of the whole item (and again for each index holding it, twice in a
// transaction), and cartrelay's larger items are JSON (orders, facts, delivery records with
// their requests), which DEFLATE shrinks to a third or less: an order of 1.6 KB fits one unit.
const deflateAbove = 640

// deflate compresses data when it is large enough to be worth it and the result is smaller.
func deflate(data []byte) ([]byte, bool) {
	if len(data) < deflateAbove {
		return nil, false
	}
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.DefaultCompression)
	if err != nil {
		return nil, false
	}
	if _, err := w.Write(data); err != nil {
		return nil, false
	}
	if err := w.Close(); err != nil || b.Len() >= len(data) {
		return nil, false
	}
	return b.Bytes(), true
}

// maxInflated bounds what inflate returns: no item's data is larger than an item may be.
const maxInflated = 400 * 1024

func inflate(z []byte) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(z))
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxInflated+1))
	if err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	if len(data) > maxInflated {
		return nil, fmt.Errorf("inflate: over %d bytes", maxInflated)
	}
	return data, nil
}
