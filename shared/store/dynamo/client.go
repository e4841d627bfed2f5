package dynamo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cartrelay/cartrelay/shared/awsjson"
)

// service is DynamoDB's AWS JSON protocol. An answer is at most a query's page of 1 MB of
// items, which grows by a third in base64 and by the attribute names' quoting.
var service = awsjson.Service{Name: "dynamodb", Target: "DynamoDB_20120810", Version: "1.0", MaxAnswer: 16 << 20}

// Client calls the DynamoDB operations cartrelay uses, through awsjson: the SDK's signer,
// credentials, transport and retryer (which retries throttling, ProvisionedThroughputExceeded
// and 5xx answers as it does for the SDK's own client), without the SDK's DynamoDB client, whose
// model of the whole API every bootstrap would otherwise build at start.
type Client struct {
	api      *awsjson.Client
	capacity CapacityFunc
}

// CapacityFunc is told, after every successful call, what the call cost: op is the operation,
// request the request's JSON as sent.
type CapacityFunc func(op string, request []byte, consumed []ConsumedCapacity)

// ConsumedCapacity is the capacity one call used on one table.
type ConsumedCapacity struct {
	TableName          string
	CapacityUnits      *float64
	ReadCapacityUnits  *float64
	WriteCapacityUnits *float64
	Table              *IndexCapacity
	// GlobalSecondaryIndexes is by index name.
	GlobalSecondaryIndexes map[string]IndexCapacity
}

// IndexCapacity is the capacity a call used on the table itself or on one index.
type IndexCapacity struct {
	CapacityUnits      *float64
	ReadCapacityUnits  *float64
	WriteCapacityUnits *float64
}

// NewClient returns a client configured by cfg as the SDK's own client would be (region,
// credentials, HTTP client, retryer, AWS_ENDPOINT_URL).
func NewClient(cfg aws.Config) *Client {
	return &Client{api: awsjson.New(cfg, service)}
}

// WithCapacity returns a copy of c that asks DynamoDB for the capacity of every call (by table
// and index) and hands it to f.
func (c *Client) WithCapacity(f CapacityFunc) *Client {
	return &Client{api: c.api, capacity: f}
}

// call sends req (whose ReturnConsumedCapacity the client sets) and decodes the answer into
// out, which reports the capacity it holds.
func (c *Client) call(ctx context.Context, op string, req interface{ setCapacity(string) }, out answer) error {
	if c.capacity != nil {
		req.setCapacity("INDEXES")
	}
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("DynamoDB %s: encode the request: %w", op, err)
	}
	raw, err := c.api.CallRaw(ctx, op, body)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("DynamoDB %s: the answer is not the JSON DynamoDB documents: %w", op, err)
	}
	if c.capacity != nil {
		c.capacity(op, body, out.consumed())
	}
	return nil
}

// withCapacity is embedded in every request the capacity can be asked of.
type withCapacity struct {
	ReturnConsumedCapacity string `json:",omitempty"`
}

func (w *withCapacity) setCapacity(v string) { w.ReturnConsumedCapacity = v }

// answer is what every answer decodes into.
type answer interface{ consumed() []ConsumedCapacity }

// oneCapacity is the capacity of a single-item call or a query.
type oneCapacity struct {
	ConsumedCapacity *ConsumedCapacity
}

func (o *oneCapacity) consumed() []ConsumedCapacity {
	if o.ConsumedCapacity == nil {
		return nil
	}
	return []ConsumedCapacity{*o.ConsumedCapacity}
}

// manyCapacities is the capacity of a transaction, by table.
type manyCapacities struct {
	ConsumedCapacity []ConsumedCapacity
}

func (m *manyCapacities) consumed() []ConsumedCapacity { return m.ConsumedCapacity }

// conditional is what a write and a condition check share.
type conditional struct {
	TableName                 string
	ConditionExpression       string            `json:",omitempty"`
	ExpressionAttributeNames  map[string]string `json:",omitempty"`
	ExpressionAttributeValues Item              `json:",omitempty"`
}

type getItemInput struct {
	TableName      string
	Key            Item
	ConsistentRead bool `json:",omitempty"`
	withCapacity
}

type getItemOutput struct {
	Item Item
	oneCapacity
}

// getItem reads the item at key: nil when there is none.
func (c *Client) getItem(ctx context.Context, table string, key Item, consistent bool) (Item, error) {
	var out getItemOutput
	err := c.call(ctx, "GetItem", &getItemInput{TableName: table, Key: key, ConsistentRead: consistent}, &out)
	return out.Item, err
}

type putItemInput struct {
	conditional
	Item Item
	withCapacity
}

// putItem writes item, if cond holds.
func (c *Client) putItem(ctx context.Context, item Item, cond conditional) error {
	return c.call(ctx, "PutItem", &putItemInput{conditional: cond, Item: item}, &oneCapacity{})
}

type deleteItemInput struct {
	conditional
	Key Item
	withCapacity
}

// deleteItem deletes the item at key, if cond holds.
func (c *Client) deleteItem(ctx context.Context, key Item, cond conditional) error {
	return c.call(ctx, "DeleteItem", &deleteItemInput{conditional: cond, Key: key}, &oneCapacity{})
}

type updateItemInput struct {
	conditional
	Key              Item
	UpdateExpression string
	withCapacity
}

// updateItem applies expr to the item at key, if cond holds.
func (c *Client) updateItem(ctx context.Context, key Item, expr string, cond conditional) error {
	return c.call(ctx, "UpdateItem", &updateItemInput{conditional: cond, Key: key, UpdateExpression: expr}, &oneCapacity{})
}

// queryInput is a Query request.
type queryInput struct {
	TableName                 string
	IndexName                 string `json:",omitempty"`
	KeyConditionExpression    string
	FilterExpression          string `json:",omitempty"`
	ExpressionAttributeNames  map[string]string
	ExpressionAttributeValues Item
	ScanIndexForward          bool
	ConsistentRead            bool  `json:",omitempty"`
	Limit                     int32 `json:",omitempty"`
	ExclusiveStartKey         Item  `json:",omitempty"`
	withCapacity
}

type queryOutput struct {
	Items            []Item
	LastEvaluatedKey Item
	oneCapacity
}

// query reads one page of a query.
func (c *Client) query(ctx context.Context, in *queryInput) (items []Item, last Item, err error) {
	var out queryOutput
	err = c.call(ctx, "Query", in, &out)
	return out.Items, out.LastEvaluatedKey, err
}

// transactItem is one write of a transaction; exactly one field is set.
type transactItem struct {
	Put            *putInTransaction    `json:",omitempty"`
	Delete         *keyedInTransaction  `json:",omitempty"`
	ConditionCheck *keyedInTransaction  `json:",omitempty"`
	Update         *updateInTransaction `json:",omitempty"`
}

type putInTransaction struct {
	conditional
	Item Item
}

type keyedInTransaction struct {
	conditional
	Key Item
}

type updateInTransaction struct {
	conditional
	Key              Item
	UpdateExpression string
}

type transactWriteItemsInput struct {
	TransactItems []transactItem
	withCapacity
}

// transactWriteItems applies items all or nothing. A cancelled transaction is a
// *TransactionCanceledError.
func (c *Client) transactWriteItems(ctx context.Context, items []transactItem) error {
	err := c.call(ctx, "TransactWriteItems", &transactWriteItemsInput{TransactItems: items}, &manyCapacities{})
	var api *awsjson.APIError
	if errors.As(err, &api) && api.Code == "TransactionCanceledException" {
		var body struct{ CancellationReasons []CancellationReason }
		if jerr := json.Unmarshal(api.Body, &body); jerr != nil {
			return fmt.Errorf("%w (its cancellation reasons cannot be read: %w)", err, jerr)
		}
		return &TransactionCanceledError{Reasons: body.CancellationReasons, Err: err}
	}
	return err
}

// CancellationReason is why DynamoDB cancelled a transaction, for one of its writes in order:
// Code "None" for a write that was not at fault.
type CancellationReason struct {
	Code    string
	Message string
}

// TransactionCanceledError is DynamoDB's TransactionCanceledException with its reasons.
type TransactionCanceledError struct {
	Reasons []CancellationReason
	Err     error
}

func (e *TransactionCanceledError) Error() string { return e.Err.Error() }
func (e *TransactionCanceledError) Unwrap() error { return e.Err }

// errorCode is the DynamoDB error code of err ("ConditionalCheckFailedException"), or "".
func errorCode(err error) string {
	var api *awsjson.APIError
	if errors.As(err, &api) {
		return api.Code
	}
	return ""
}
