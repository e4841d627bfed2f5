package sqs_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/queue/queuetest"
	"github.com/cartrelay/cartrelay/shared/queue/sqs"
)

// recorder answers every call with a fixed body and keeps the last request.
type recorder struct {
	answer string
	target string
	ctype  string
	body   []byte
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.target, r.ctype = req.Header.Get("X-Amz-Target"), req.Header.Get("Content-Type")
	r.body, _ = io.ReadAll(req.Body)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_, _ = io.WriteString(w, r.answer)
}

// TestRequests pins what each operation sends, member by member as the SQS API Reference
// names them: zero receive options are left out (the queue's own settings apply), while a
// visibility of 0 is sent, since it makes a message visible now.
func TestRequests(t *testing.T) {
	fifo, _ := queuetest.FIFOQueues(t)
	const url = "https://sqs.example/000000000000/q"
	tests := []struct {
		name   string
		answer string
		call   func(ctx context.Context, q *sqs.Queue) error
		target string
		body   string
	}{
		{"send to a standard queue", `{"Successful":[{"Id":"e0"},{"Id":"e1"}]}`,
			func(ctx context.Context, q *sqs.Queue) error {
				return q.Send(ctx, queue.Ingest, []queue.Message{{Body: "one", Attributes: map[string]string{"kind": "order"}}, {Body: "two"}})
			},
			"SendMessageBatch", `{"QueueUrl":"` + url + `","Entries":[
				{"Id":"e0","MessageBody":"one","MessageAttributes":{"kind":{"DataType":"String","StringValue":"order"}}},
				{"Id":"e1","MessageBody":"two"}]}`},
		{"send to a FIFO queue", `{"Successful":[{"Id":"e0"}]}`,
			func(ctx context.Context, q *sqs.Queue) error {
				return q.Send(ctx, fifo, []queue.Message{{Body: "<b>&", GroupID: "acme", DedupID: "fact-1"}})
			},
			"SendMessageBatch", `{"QueueUrl":"` + url + `","Entries":[
				{"Id":"e0","MessageBody":"<b>&","MessageGroupId":"acme","MessageDeduplicationId":"fact-1"}]}`},
		{"receive with the queue's settings", `{}`,
			func(ctx context.Context, q *sqs.Queue) error {
				_, err := q.Receive(ctx, queue.Ingest, queue.ReceiveOptions{})
				return err
			},
			"ReceiveMessage", `{"QueueUrl":"` + url + `","MaxNumberOfMessages":10,
				"MessageSystemAttributeNames":["ApproximateReceiveCount","SentTimestamp","ApproximateFirstReceiveTimestamp","MessageGroupId","MessageDeduplicationId"],
				"MessageAttributeNames":["All"]}`},
		{"receive with a wait and a visibility, rounded up to seconds", `{"Messages":[]}`,
			func(ctx context.Context, q *sqs.Queue) error {
				_, err := q.Receive(ctx, queue.Ingest, queue.ReceiveOptions{Max: 3, Wait: 1500 * time.Millisecond, Visibility: 30 * time.Second})
				return err
			},
			"ReceiveMessage", `{"QueueUrl":"` + url + `","MaxNumberOfMessages":3,"WaitTimeSeconds":2,"VisibilityTimeout":30,
				"MessageSystemAttributeNames":["ApproximateReceiveCount","SentTimestamp","ApproximateFirstReceiveTimestamp","MessageGroupId","MessageDeduplicationId"],
				"MessageAttributeNames":["All"]}`},
		{"delete", `{}`,
			func(ctx context.Context, q *sqs.Queue) error { return q.Delete(ctx, queue.Ingest, "rh-1") },
			"DeleteMessage", `{"QueueUrl":"` + url + `","ReceiptHandle":"rh-1"}`},
		{"delete, answered without a body", ``,
			func(ctx context.Context, q *sqs.Queue) error { return q.Delete(ctx, queue.Ingest, "rh-1") },
			"DeleteMessage", `{"QueueUrl":"` + url + `","ReceiptHandle":"rh-1"}`},
		{"make visible now", `{}`,
			func(ctx context.Context, q *sqs.Queue) error { return q.ChangeVisibility(ctx, queue.Ingest, "rh-2", 0) },
			"ChangeMessageVisibility", `{"QueueUrl":"` + url + `","ReceiptHandle":"rh-2","VisibilityTimeout":0}`},
		{"hide for longer", `{}`,
			func(ctx context.Context, q *sqs.Queue) error {
				return q.ChangeVisibility(ctx, queue.Ingest, "rh-2", 90*time.Second)
			},
			"ChangeMessageVisibility", `{"QueueUrl":"` + url + `","ReceiptHandle":"rh-2","VisibilityTimeout":90}`},
		{"stats", `{"Attributes":{"ApproximateNumberOfMessages":"4"}}`,
			func(ctx context.Context, q *sqs.Queue) error {
				st, err := q.Stats(ctx, queue.Ingest)
				if err == nil && st.Visible != 4 {
					t.Errorf("stats %+v, want 4 visible", st)
				}
				return err
			},
			"GetQueueAttributes", `{"QueueUrl":"` + url + `","AttributeNames":["ApproximateNumberOfMessages","ApproximateNumberOfMessagesNotVisible","ApproximateNumberOfMessagesDelayed"]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{answer: tc.answer}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			q := sqs.New(client(srv.URL), queuetest.Topology(), map[string]string{queue.Ingest: url, fifo: url})
			if err := tc.call(t.Context(), q); err != nil {
				t.Fatal(err)
			}
			if rec.target != "AmazonSQS."+tc.target || rec.ctype != "application/x-amz-json-1.0" {
				t.Errorf("X-Amz-Target %q, Content-Type %q; want AmazonSQS.%s, application/x-amz-json-1.0", rec.target, rec.ctype, tc.target)
			}
			var got, want any
			if err := json.Unmarshal(rec.body, &got); err != nil {
				t.Fatalf("request body %s: %v", rec.body, err)
			}
			if err := json.Unmarshal([]byte(tc.body), &want); err != nil {
				t.Fatalf("test's body: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("request body\n%s\nwant\n%s", rec.body, tc.body)
			}
		})
	}
}

// TestReceiveChecksBodyDigest: a received body whose MD5 is not the one SQS gives fails the
// receive, as it fails the SDK's; one without a digest is taken as it is.
func TestReceiveChecksBodyDigest(t *testing.T) {
	md5hex := func(s string) string {
		sum := md5.Sum([]byte(s))
		return hex.EncodeToString(sum[:])
	}
	for _, tc := range []struct {
		name, digest string
		wantErr      bool
	}{
		{"matching digest", md5hex("héllo \u2028"), false},
		{"no digest", "", false},
		{"digest of another body", md5hex("hello"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, _ := json.Marshal(map[string]any{"Messages": []map[string]any{{
				"MessageId": "m-1", "ReceiptHandle": "rh", "Body": "héllo \u2028", "MD5OfBody": tc.digest,
				"Attributes":        map[string]string{"ApproximateReceiveCount": "2", "SentTimestamp": "1796692696297"},
				"MessageAttributes": map[string]any{"kind": map[string]string{"DataType": "String", "StringValue": "order"}, "raw": map[string]string{"DataType": "Binary", "BinaryValue": "AAE="}},
			}}})
			srv := httptest.NewServer(&recorder{answer: string(msg)})
			defer srv.Close()
			q := sqs.New(client(srv.URL), queuetest.Topology(), map[string]string{queue.Ingest: srv.URL + "/q"})
			got, err := q.Receive(t.Context(), queue.Ingest, queue.ReceiveOptions{})
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "m-1") || !strings.Contains(err.Error(), "MD5") {
					t.Fatalf("receive = %v, %v; want an error naming message m-1 and its MD5", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := queue.Received{MessageID: "m-1", ReceiptHandle: "rh", Body: "héllo \u2028", ReceiveCount: 2,
				SentAt: time.UnixMilli(1796692696297).UTC(), Attributes: map[string]string{"kind": "order"}}
			if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
				t.Fatalf("received %+v, want %+v", got, want)
			}
		})
	}
}

// TestSDKAgrees: on moto, what the adapter sends the SDK's own client receives intact (the SDK
// checks the body digests), and what the SDK sends the adapter receives intact, FIFO group
// and deduplication ids and message attributes included.
func TestSDKAgrees(t *testing.T) {
	c, sdk := motoClient(t), sdkClient(t)
	ctx := t.Context()
	urls, err := sqs.Ensure(ctx, c, queuetest.Topology(), "sdk-")
	if err != nil {
		t.Fatal(err)
	}
	fifo, _ := queuetest.FIFOQueues(t)
	q := sqs.New(c, queuetest.Topology(), urls)
	body := `{"order":"A-1","note":"<b> & ü \u2028 😀","tab":"\t"}`

	if err := q.Send(ctx, fifo, []queue.Message{{Body: body, GroupID: "acme", DedupID: "fact-1", Attributes: map[string]string{"kind": "order", "n": "1"}}}); err != nil {
		t.Fatal(err)
	}
	out, err := sdk.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(urls[fifo]), MaxNumberOfMessages: 10,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}, MessageAttributeNames: []string{"All"}})
	if err != nil {
		t.Fatalf("the SDK's receive: %v", err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("the SDK received %d messages, want 1", len(out.Messages))
	}
	m := out.Messages[0]
	if aws.ToString(m.Body) != body || m.Attributes["MessageGroupId"] != "acme" || m.Attributes["MessageDeduplicationId"] != "fact-1" ||
		aws.ToString(m.MessageAttributes["kind"].StringValue) != "order" || aws.ToString(m.MessageAttributes["n"].StringValue) != "1" ||
		aws.ToString(m.MessageAttributes["kind"].DataType) != "String" {
		t.Errorf("the SDK received %q with attributes %v and %v", aws.ToString(m.Body), m.Attributes, m.MessageAttributes)
	}
	if _, err := sdk.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(urls[fifo]), ReceiptHandle: m.ReceiptHandle}); err != nil {
		t.Fatal(err)
	}

	if _, err := sdk.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(urls[queue.Ingest]), MessageBody: aws.String(body),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"kind": {DataType: aws.String("String"), StringValue: aws.String("order")},
			"raw":  {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1}},
		}}); err != nil {
		t.Fatalf("the SDK's send: %v", err)
	}
	got, err := q.Receive(ctx, queue.Ingest, queue.ReceiveOptions{Wait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Body != body || !reflect.DeepEqual(got[0].Attributes, map[string]string{"kind": "order"}) ||
		got[0].ReceiveCount != 1 || got[0].SentAt.IsZero() || got[0].FirstReceivedAt.IsZero() {
		t.Fatalf("the adapter received %+v", got)
	}
}
