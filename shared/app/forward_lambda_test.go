package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/queue"
	queuesqs "github.com/cartrelay/cartrelay/shared/queue/sqs"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/testenv"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// lambdaEvent is the event Lambda's SQS event source mapping hands the function for msgs.
func lambdaEvent(t *testing.T, arn string, msgs []queue.Received) []byte {
	t.Helper()
	var ev events.SQSEvent
	for _, m := range msgs {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: m.MessageID, ReceiptHandle: m.ReceiptHandle, Body: m.Body,
			EventSource: "aws:sqs", EventSourceARN: arn, AWSRegion: "us-east-1",
			Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(m.ReceiveCount), "MessageGroupId": m.GroupID,
				"MessageDeduplicationId": m.DedupID, "SentTimestamp": strconv.FormatInt(m.SentAt.UnixMilli(), 10)}})
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLambdaForwardHoldsTheContactOnSQS runs the forward handler as Lambda does (its event JSON
// through lambda.NewHandler) over SQS (moto_server). Lambda's event source mapping leaves the
// reported failures in flight for the queue's visibility timeout (3 minutes), and a FIFO queue
// hands out none of a group while one of its messages is in flight; so the handler itself sets
// the visibility of the contact's messages after the failed one, and the whole group is back,
// in order, once the failed fact's retry is due.
func TestLambdaForwardHoldsTheContactOnSQS(t *testing.T) {
	endpoint := testenv.Moto(t)
	ctx := context.Background()
	c := queuesqs.NewClient(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	urls, err := queuesqs.Ensure(ctx, c, destinations.Queues(), "fwd-")
	if err != nil {
		t.Fatal(err)
	}
	key, err := secrets.NewLocalKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.System{}
	env, err := wiring.New(testenv.EmbeddedStore(t, clk), queuesqs.New(c, destinations.Queues(), urls), secrets.NewSealer(key, clk), wiring.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Accounts.Put(ctx, "acme", []byte(`{"ontraport":{"enabled":true}}`)); err != nil {
		t.Fatal(err)
	}
	var msgs []queue.Message
	var ids []string
	for i := range 3 {
		f := domain.Fact{ID: fmt.Sprintf("acme:ContactChanged:ann-%d", i), Account: "acme", Kind: domain.FactContactChanged,
			Email: "ann@example.com", OccurredAt: time.Now().UTC()}
		body, _ := json.Marshal(f)
		msgs = append(msgs, queue.Message{Body: string(body), GroupID: "acme|ann@example.com", DedupID: f.ID})
		ids = append(ids, f.ID)
	}
	if err := env.Queue.Send(ctx, ontraportQueue, msgs); err != nil {
		t.Fatal(err)
	}
	got, err := env.Queue.Receive(ctx, ontraportQueue, queue.ReceiveOptions{Max: 10, Wait: 2 * time.Second})
	if err != nil || len(got) != 3 {
		t.Fatalf("received %d of the contact's 3 messages in one batch, %v", len(got), err)
	}

	dest := &scripted{fail: map[string]int{ids[0]: 1}}
	out, err := lambda.NewHandler(env.App.Forward(dest)).Invoke(ctx, lambdaEvent(t, "arn:aws:sqs:us-east-1:123456789012:fwd-ontraport.fifo", got))
	if err != nil {
		t.Fatal(err)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if want := messageIDs(got); !slices.Equal(failed, want) {
		t.Fatalf("batch item failures %v, want the whole group %v", failed, want)
	}
	// While the failed fact waits for its retry, none of the contact's messages goes out.
	if early, err := env.Queue.Receive(ctx, ontraportQueue, queue.ReceiveOptions{Max: 10}); err != nil || len(early) != 0 {
		t.Fatalf("right after the failure the queue handed out %d of the contact's messages (%v); want none before the failed one", len(early), err)
	}
	// The first failure retries within a second (SQS counts visibility in whole seconds).
	time.Sleep(1500 * time.Millisecond)
	again, err := env.Queue.Receive(ctx, ontraportQueue, queue.ReceiveOptions{Max: 10, Wait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, r := range again {
		bodies = append(bodies, factIDOf(t, r))
		if r.ReceiveCount != 2 {
			t.Errorf("message %s came back with receive count %d, want 2", r.MessageID, r.ReceiveCount)
		}
	}
	if !slices.Equal(bodies, ids) {
		t.Fatalf("after the retry delay the group came back as %v, want %v in order (a queue default of 3 minutes would return nothing)", bodies, ids)
	}
}
