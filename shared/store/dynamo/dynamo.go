// Package dynamo implements store.Store on one DynamoDB table (single-table design), with
// aws-sdk-go-v2. The contract suite in store/storetest runs it against DynamoDB Local.
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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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
	client *dynamodb.Client
	table  string
	clk    clock.Clock
}

var _ store.Store = (*Store)(nil)

// New returns a store on table. clk decides which items have expired: DynamoDB deletes expired
// items only eventually, so the store hides them itself.
func New(client *dynamodb.Client, table string, clk clock.Clock) *Store {
	return &Store{client: client, table: table, clk: clk}
}

// Get returns the live item at pk/sk, reading strongly consistently so a repository sees its
// own writes.
func (s *Store) Get(ctx context.Context, pk, sk string) (store.Item, error) {
	key := store.Key{PK: pk, SK: sk}
	if pk == "" || sk == "" {
		return store.Item{}, fmt.Errorf("get %s: %w: pk and sk must both be set", key, store.ErrInvalid)
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            keyAttrs(key),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return store.Item{}, fmt.Errorf("get %s from DynamoDB table %s: %w", key, s.table, err)
	}
	if out.Item == nil {
		return store.Item{}, fmt.Errorf("get %s: %w", key, store.ErrNotFound)
	}
	it, err := decodeItem(out.Item)
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
	var err error
	switch w.Op {
	case store.OpPut:
		_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                 aws.String(s.table),
			Item:                      encodeItem(w.Item),
			ConditionExpression:       c.expr,
			ExpressionAttributeNames:  c.names,
			ExpressionAttributeValues: c.values,
		})
	case store.OpDelete:
		_, err = s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName:                 aws.String(s.table),
			Key:                       keyAttrs(w.Key),
			ConditionExpression:       c.expr,
			ExpressionAttributeNames:  c.names,
			ExpressionAttributeValues: c.values,
		})
	case store.OpAdd:
		u := update(w, c)
		_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(s.table),
			Key:                       keyAttrs(w.Key),
			UpdateExpression:          u.expr,
			ConditionExpression:       c.expr,
			ExpressionAttributeNames:  u.names,
			ExpressionAttributeValues: u.values,
		})
	case store.OpCheck:
		// DynamoDB has a condition check only inside transactions.
		err = s.Transact(ctx, []store.Write{w})
		var te *store.TransactionError
		if errors.As(err, &te) && len(te.Failed) == 1 && te.Cause == nil {
			return &te.Failed[0].ConditionError
		}
		return err
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return &store.ConditionError{Key: w.Target(), Cond: w.Cond, Expect: w.Expect}
	}
	if tooLarge(err) {
		return fmt.Errorf("write %s to DynamoDB table %s: %w: %w", w.Target(), s.table, store.ErrTooLarge, err)
	}
	var tc *types.TransactionConflictException
	if errors.As(err, &tc) {
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
	items := make([]types.TransactWriteItem, len(ws))
	for i, w := range ws {
		if err := store.CheckWrite(w); err != nil {
			return fmt.Errorf("write %d: %w", i, err)
		}
		c := condition(w, now)
		table := aws.String(s.table)
		switch w.Op {
		case store.OpPut:
			items[i].Put = &types.Put{TableName: table, Item: encodeItem(w.Item),
				ConditionExpression: c.expr, ExpressionAttributeNames: c.names, ExpressionAttributeValues: c.values}
		case store.OpDelete:
			items[i].Delete = &types.Delete{TableName: table, Key: keyAttrs(w.Key),
				ConditionExpression: c.expr, ExpressionAttributeNames: c.names, ExpressionAttributeValues: c.values}
		case store.OpCheck:
			items[i].ConditionCheck = &types.ConditionCheck{TableName: table, Key: keyAttrs(w.Key),
				ConditionExpression: c.expr, ExpressionAttributeNames: c.names, ExpressionAttributeValues: c.values}
		case store.OpAdd:
			u := update(w, c)
			items[i].Update = &types.Update{TableName: table, Key: keyAttrs(w.Key), UpdateExpression: u.expr,
				ConditionExpression: c.expr, ExpressionAttributeNames: u.names, ExpressionAttributeValues: u.values}
		}
	}
	_, err := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err != nil {
		return s.transactionError(ws, err)
	}
	return nil
}

// transactionError turns DynamoDB's cancellation reasons into a *store.TransactionError: one
// entry per failed condition, and anything else (a conflicting transaction, throttling) as the
// cause, which a caller may retry.
func (s *Store) transactionError(ws []store.Write, err error) error {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		if tooLarge(err) {
			return fmt.Errorf("transaction of %d writes on DynamoDB table %s: %w: %w", len(ws), s.table, store.ErrTooLarge, err)
		}
		return fmt.Errorf("transaction of %d writes on DynamoDB table %s: %w", len(ws), s.table, err)
	}
	te := &store.TransactionError{}
	var other []string
	big, conflict := false, false
	for i, r := range tce.CancellationReasons {
		switch code := aws.ToString(r.Code); code {
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
			if tooLargeMessage(aws.ToString(r.Message)) {
				big = true
			}
			if code == "TransactionConflict" {
				conflict = true
			}
			other = append(other, fmt.Sprintf("write %d: %s (%s)", i, code, aws.ToString(r.Message)))
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

// cond is a condition expression with its placeholders; all nil for an unconditional write.
type cond struct {
	expr   *string
	names  map[string]string
	values map[string]types.AttributeValue
}

// condition renders w's condition. An item whose ttl is at or before now counts as absent,
// because DynamoDB may keep expired items for days before deleting them.
func condition(w store.Write, now time.Time) cond {
	const live = "attribute_exists(#pk) AND (attribute_not_exists(#ttl) OR #ttl > :now)"
	var expr string
	switch w.Cond {
	case store.Always:
		return cond{}
	case store.NotExists:
		expr = "attribute_not_exists(#pk) OR #ttl <= :now"
	case store.Exists:
		expr = live
	case store.VersionEquals:
		expr = live + " AND #ver = :expect"
	}
	c := cond{
		expr:   aws.String(expr),
		names:  map[string]string{"#pk": AttrPK, "#ttl": AttrTTL},
		values: map[string]types.AttributeValue{":now": number(now.Unix())},
	}
	if w.Cond == store.VersionEquals {
		c.names["#ver"] = AttrVersion
		c.values[":expect"] = number(w.Expect)
	}
	return c
}

// upd is an add's update expression with its placeholders, the condition's merged in.
type upd struct {
	expr   *string
	names  map[string]string
	values map[string]types.AttributeValue
}

// update renders an OpAdd: ADD for the counters (DynamoDB creates a missing counter, and a
// missing item, at zero) and SET for the labels. Placeholders are numbered in name order, so the
// same write always renders the same expression.
func update(w store.Write, c cond) upd {
	u := upd{names: map[string]string{}, values: map[string]types.AttributeValue{}}
	for k, v := range c.names {
		u.names[k] = v
	}
	for k, v := range c.values {
		u.values[k] = v
	}
	var b strings.Builder
	if len(w.Add) > 0 {
		b.WriteString("ADD ")
		for i, name := range slices.Sorted(maps.Keys(w.Add)) {
			if i > 0 {
				b.WriteString(", ")
			}
			p := strconv.FormatInt(int64(i), 36)
			b.WriteString("#c" + p + " :c" + p)
			u.names["#c"+p] = store.AttrCounter + name
			u.values[":c"+p] = number(w.Add[name])
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
			u.names["#l"+p] = store.AttrLabel + name
			u.values[":l"+p] = &types.AttributeValueMemberS{Value: w.Set[name]}
		}
	}
	u.expr = aws.String(b.String())
	if len(u.values) == 0 {
		u.values = nil
	}
	return u
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

func keyAttrs(k store.Key) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		AttrPK: &types.AttributeValueMemberS{Value: k.PK},
		AttrSK: &types.AttributeValueMemberS{Value: k.SK},
	}
}

func number(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func encodeItem(it store.Item) map[string]types.AttributeValue {
	m := keyAttrs(store.Key{PK: it.PK, SK: it.SK})
	m[AttrVersion] = number(it.Version)
	if it.GSI1PK != "" {
		m[AttrGSI1PK] = &types.AttributeValueMemberS{Value: it.GSI1PK}
		m[AttrGSI1SK] = &types.AttributeValueMemberS{Value: it.GSI1SK}
	}
	if it.GSI2PK != "" {
		m[AttrGSI2PK] = &types.AttributeValueMemberS{Value: it.GSI2PK}
		m[AttrGSI2SK] = &types.AttributeValueMemberS{Value: it.GSI2SK}
	}
	if secs, ok := expirySeconds(it.ExpiresAt); ok {
		m[AttrTTL] = number(secs)
	}
	if len(it.Data) > 0 {
		if z, ok := deflate(it.Data); ok {
			m[AttrDataDeflated] = &types.AttributeValueMemberB{Value: z}
		} else {
			m[AttrData] = &types.AttributeValueMemberB{Value: it.Data}
		}
	}
	for name, v := range it.Counters {
		if v != 0 {
			m[store.AttrCounter+name] = number(v)
		}
	}
	for name, v := range it.Labels {
		m[store.AttrLabel+name] = &types.AttributeValueMemberS{Value: v}
	}
	return m
}

func decodeItem(m map[string]types.AttributeValue) (store.Item, error) {
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
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			return store.Item{}, fmt.Errorf("attribute %s is %T, want a string", f.attr, v)
		}
		*f.dst = s.Value
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
		b, ok := v.(*types.AttributeValueMemberB)
		if !ok {
			return store.Item{}, fmt.Errorf("attribute %s is %T, want binary", AttrData, v)
		}
		if len(b.Value) > 0 {
			it.Data = b.Value
		}
	}
	if v, ok := m[AttrDataDeflated]; ok {
		b, ok := v.(*types.AttributeValueMemberB)
		if !ok {
			return store.Item{}, fmt.Errorf("attribute %s is %T, want binary", AttrDataDeflated, v)
		}
		data, err := inflate(b.Value)
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
			sv, ok := v.(*types.AttributeValueMemberS)
			if !ok {
				return store.Item{}, fmt.Errorf("attribute %s is %T, want a string", attr, v)
			}
			if it.Labels == nil {
				it.Labels = map[string]string{}
			}
			it.Labels[attr[len(store.AttrLabel):]] = sv.Value
		}
	}
	return it, nil
}

func intAttr(name string, v types.AttributeValue) (int64, error) {
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("attribute %s is %T, want a number", name, v)
	}
	i, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("attribute %s is %q, want a whole number: %w", name, n.Value, err)
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
