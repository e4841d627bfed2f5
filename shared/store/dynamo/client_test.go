package dynamo

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/store"
)

// canned is one answer of the stand-in DynamoDB endpoint.
type canned struct {
	status int
	body   string
}

type request struct {
	target string
	body   map[string]any
}

// standIn returns a store whose DynamoDB answers with answers in turn (the last one from then
// on), and the requests it got. Retries wait no time.
func standIn(t *testing.T, answers ...canned) (*Store, func() []request) {
	t.Helper()
	var mu sync.Mutex
	var got []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Errorf("request body is not JSON: %s", raw)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.0" {
			t.Errorf("Content-Type %q", ct)
		}
		mu.Lock()
		got = append(got, request{target: r.Header.Get("X-Amz-Target"), body: body})
		a := answers[min(len(got), len(answers))-1]
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	noWait := retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = noWait })
		}}
	st := New(NewClient(cfg), "t", clock.NewFake(startOf2040()))
	return st, func() []request {
		mu.Lock()
		defer mu.Unlock()
		return got
	}
}

const ddbError = `{"__type":"com.amazonaws.dynamodb.v20120810#`

// TestWriteRequest: a conditional put is DynamoDB's PutItem with the item and its condition.
func TestWriteRequest(t *testing.T) {
	st, got := standIn(t, canned{200, `{}`})
	err := st.Write(t.Context(), store.PutItem(store.Item{PK: "P", SK: "S", Version: 2, Data: []byte("hi")}, store.NotExists))
	if err != nil {
		t.Fatal(err)
	}
	r := got()[0]
	if r.target != "DynamoDB_20120810.PutItem" {
		t.Errorf("target %q", r.target)
	}
	b, _ := json.Marshal(r.body)
	for _, want := range []string{`"TableName":"t"`, `"ConditionExpression":"attribute_not_exists(#pk) OR #ttl \u003c= :now"`,
		`"Item":{"data":{"B":"aGk="},"pk":{"S":"P"},"sk":{"S":"S"},"ver":{"N":"2"}}`, `"ExpressionAttributeValues":{":now":{"N":"2208988800"}}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("request %s lacks %s", b, want)
		}
	}
	if _, ok := r.body["ReturnConsumedCapacity"]; ok {
		t.Errorf("capacity asked for without a CapacityFunc: %s", b)
	}
}

// TestErrorsCallersBranchOn: DynamoDB's error answers become the port's errors.
func TestErrorsCallersBranchOn(t *testing.T) {
	put := store.PutItem(store.Item{PK: "P", SK: "S"}, store.Exists)
	t.Run("conditional check failed", func(t *testing.T) {
		st, _ := standIn(t, canned{400, ddbError + `ConditionalCheckFailedException","message":"The conditional request failed"}`})
		var ce *store.ConditionError
		if err := st.Write(t.Context(), put); !errors.As(err, &ce) || ce.Key != (store.Key{PK: "P", SK: "S"}) {
			t.Fatalf("got %v, want a *store.ConditionError for P/S", err)
		}
	})
	t.Run("item too large", func(t *testing.T) {
		st, _ := standIn(t, canned{400, ddbError + `ValidationException","message":"Item size has exceeded the maximum allowed size"}`})
		if err := st.Write(t.Context(), put); !errors.Is(err, store.ErrTooLarge) {
			t.Fatalf("got %v, want ErrTooLarge", err)
		}
	})
	t.Run("throttling is retried", func(t *testing.T) {
		st, got := standIn(t, canned{400, ddbError + `ProvisionedThroughputExceededException","message":"slow down"}`}, canned{200, `{}`})
		if err := st.Write(t.Context(), put); err != nil {
			t.Fatal(err)
		}
		if n := len(got()); n != 2 {
			t.Fatalf("%d requests, want 2", n)
		}
	})
	t.Run("transaction cancelled by a condition", func(t *testing.T) {
		st, got := standIn(t, canned{400, ddbError + `TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]",` +
			`"CancellationReasons":[{"Code":"None"},{"Code":"ConditionalCheckFailed","Message":"The conditional request failed"}]}`})
		err := st.Transact(t.Context(), []store.Write{store.PutItem(store.Item{PK: "A", SK: "1"}, store.Always),
			store.Check(store.Key{PK: "B", SK: "2"}, store.VersionEquals, 7)})
		var te *store.TransactionError
		if !errors.As(err, &te) || te.Cause != nil || len(te.Failed) != 1 || te.Failed[0].Index != 1 ||
			te.Failed[0].Key != (store.Key{PK: "B", SK: "2"}) || te.Failed[0].Expect != 7 {
			t.Fatalf("got %#v", err)
		}
		r := got()[0]
		if r.target != "DynamoDB_20120810.TransactWriteItems" {
			t.Errorf("target %q", r.target)
		}
		b, _ := json.Marshal(r.body["TransactItems"])
		if !strings.HasPrefix(string(b), `[{"Put":{"Item":`) || !strings.Contains(string(b), `{"ConditionCheck":{"ConditionExpression":`) {
			t.Errorf("TransactItems %s", b)
		}
	})
	t.Run("transaction cancelled by a conflict", func(t *testing.T) {
		st, _ := standIn(t, canned{400, ddbError + `TransactionCanceledException","Message":"cancelled",` +
			`"CancellationReasons":[{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"}]}`})
		err := st.Transact(t.Context(), []store.Write{put})
		var te *store.TransactionError
		if !errors.As(err, &te) || len(te.Failed) != 0 || !errors.Is(te.Cause, store.ErrConflict) {
			t.Fatalf("got %#v, want a TransactionError whose cause is ErrConflict", err)
		}
	})
	t.Run("transaction cancelled for an item too large", func(t *testing.T) {
		st, _ := standIn(t, canned{400, ddbError + `TransactionCanceledException","Message":"cancelled",` +
			`"CancellationReasons":[{"Code":"ValidationError","Message":"Item size has exceeded the maximum allowed size"}]}`})
		var te *store.TransactionError
		if err := st.Transact(t.Context(), []store.Write{put}); !errors.As(err, &te) || !errors.Is(te.Cause, store.ErrTooLarge) {
			t.Fatalf("got %#v, want a TransactionError whose cause is ErrTooLarge", err)
		}
	})
}

// TestQueryPages: LastEvaluatedKey becomes the page's cursor, and the cursor the next
// request's ExclusiveStartKey.
func TestQueryPages(t *testing.T) {
	st, got := standIn(t,
		canned{200, `{"Count":1,"ScannedCount":1,"Items":[{"pk":{"S":"P"},"sk":{"S":"1"},"v":{"N":"1"}}],"LastEvaluatedKey":{"pk":{"S":"P"},"sk":{"S":"1"}}}`},
		canned{200, `{"Count":0,"ScannedCount":0,"Items":[]}`})
	page, err := st.Query(t.Context(), store.Query{PK: "P", Limit: 1})
	if err != nil || len(page.Items) != 1 || page.Items[0].SK != "1" || page.Next == "" {
		t.Fatalf("first page %+v, %v", page, err)
	}
	page, err = st.Query(t.Context(), store.Query{PK: "P", Limit: 1, Cursor: page.Next})
	if err != nil || len(page.Items) != 0 || page.Next != "" {
		t.Fatalf("second page %+v, %v", page, err)
	}
	reqs := got()
	if start, _ := json.Marshal(reqs[1].body["ExclusiveStartKey"]); string(start) != `{"pk":{"S":"P"},"sk":{"S":"1"}}` {
		t.Errorf("ExclusiveStartKey %s", start)
	}
	if reqs[0].body["ConsistentRead"] != true || reqs[0].body["Limit"] != 1.0 || reqs[0].body["ScanIndexForward"] != true {
		t.Errorf("first request %v", reqs[0].body)
	}
}
