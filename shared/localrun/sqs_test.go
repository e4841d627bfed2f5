package localrun

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"github.com/cartrelay/cartrelay/shared/queue/queuetest"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/queue"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// batches records the SQS events a handler got.
type batches struct {
	mu  sync.Mutex
	evs []events.SQSEvent
}

func (b *batches) add(ev events.SQSEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.evs = append(b.evs, ev)
}

func (b *batches) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.evs)
}

func (b *batches) get(i int) events.SQSEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.evs[i]
}

func send(t *testing.T, q queue.Queue, name string, msgs ...queue.Message) {
	t.Helper()
	if err := q.Send(context.Background(), name, msgs); err != nil {
		t.Fatal(err)
	}
}

// consume runs one consumer of the ingest queue on fq.
func consume(t *testing.T, fq *fakeQueue, h SQSHandler) (*running, *syncBuffer) {
	t.Helper()
	log, logs := testLogger()
	r := start(t, Config{
		Queue: fq, Clock: fq.clock, Logger: log, PollWait: 20 * time.Millisecond,
		Consumers: []Consumer{{Queue: queue.Ingest, Handler: h}},
	})
	return r, logs
}

func idsByBody(ev events.SQSEvent) map[string]string {
	out := map[string]string{}
	for _, r := range ev.Records {
		out[r.Body] = r.MessageId
	}
	return out
}

func bodies(s []snapshot) []string {
	var out []string
	for _, m := range s {
		out = append(out, m.Body)
	}
	return out
}

func TestSQSEventShape(t *testing.T) {
	fifoQueue, _ := queuetest.FIFOQueues(t)
	clk := clock.NewFake(t0)
	fq := newFakeQueue(clk)
	send(t, fq, queue.Ingest, queue.Message{Body: `{"order":"A-1"}`, Attributes: map[string]string{"source": "ultracart"}})
	send(t, fq, fifoQueue, queue.Message{Body: "fact-1", GroupID: "acct#a@example.com", DedupID: "fact-1"})

	std, fifo := &batches{}, &batches{}
	record := func(b *batches) SQSHandler {
		return func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			b.add(ev)
			return events.SQSEventResponse{}, nil
		}
	}
	start(t, Config{
		Queue: fq, Clock: clk, PollWait: 20 * time.Millisecond,
		Consumers: []Consumer{
			{Queue: queue.Ingest, Handler: record(std)},
			{Queue: fifoQueue, Handler: record(fifo), BatchSize: 1},
		},
	})
	eventually(t, 5*time.Second, "both batches", func() bool { return std.count() == 1 && fifo.count() == 1 })

	rec := std.get(0).Records[0]
	sum := md5.Sum([]byte(rec.Body))
	source := "ultracart"
	want := events.SQSMessage{
		MessageId:              rec.MessageId,
		ReceiptHandle:          rec.ReceiptHandle,
		Body:                   `{"order":"A-1"}`,
		Md5OfBody:              hex.EncodeToString(sum[:]),
		Md5OfMessageAttributes: attributesMD5(map[string]string{"source": "ultracart"}),
		Attributes: map[string]string{
			"ApproximateReceiveCount":          "1",
			"SentTimestamp":                    strconv.FormatInt(t0.UnixMilli(), 10),
			"SenderId":                         "000000000000",
			"ApproximateFirstReceiveTimestamp": strconv.FormatInt(t0.UnixMilli(), 10),
		},
		MessageAttributes: map[string]events.SQSMessageAttribute{
			"source": {StringValue: &source, DataType: "String", StringListValues: []string{}, BinaryListValues: [][]byte{}},
		},
		EventSourceARN: "arn:aws:sqs:local:000000000000:ingest",
		EventSource:    "aws:sqs",
		AWSRegion:      "local",
	}
	if rec.MessageId == "" || rec.ReceiptHandle == "" {
		t.Errorf("missing ids: %+v", rec)
	}
	if !reflect.DeepEqual(rec, want) {
		t.Errorf("record\n got %+v\nwant %+v", rec, want)
	}

	f := fifo.get(0).Records[0]
	if f.Attributes["MessageGroupId"] != "acct#a@example.com" || f.Attributes["MessageDeduplicationId"] != "fact-1" {
		t.Errorf("FIFO attributes = %v", f.Attributes)
	}
	if f.EventSourceARN != "arn:aws:sqs:local:000000000000:ontraport" || f.Md5OfMessageAttributes != "" || len(f.MessageAttributes) != 0 {
		t.Errorf("FIFO record = %+v", f)
	}
	eventually(t, 5*time.Second, "successful messages deleted", func() bool {
		return len(fq.contents(queue.Ingest)) == 0 && len(fq.contents(fifoQueue)) == 0
	})
}

func TestAttributesMD5(t *testing.T) {
	// The example in the SQS developer guide's description of the digest.
	if got := attributesMD5(map[string]string{"SellerName": "Example Store"}); got != "cd28f3b68aeee4b2eac9c66f2f694b58" {
		t.Errorf("attributesMD5 = %s", got)
	}
}

func TestPartialBatchFailureDeletesOnlySuccesses(t *testing.T) {
	fq := newFakeQueue(clock.NewFake(t0))
	send(t, fq, queue.Ingest, queue.Message{Body: "a"}, queue.Message{Body: "b"}, queue.Message{Body: "c"})
	got := &batches{}
	_, logs := consume(t, fq, func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		got.add(ev)
		return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: idsByBody(ev)["b"]}}}, nil
	})
	eventually(t, 5*time.Second, "a and c deleted", func() bool { return len(fq.contents(queue.Ingest)) == 1 })
	left := fq.contents(queue.Ingest)
	if left[0].Body != "b" || !left[0].InFlight || left[0].Receives != 1 {
		t.Errorf("left = %+v, want b in flight after one receive", left)
	}
	if n := got.count(); n != 1 || len(got.get(0).Records) != 3 {
		t.Errorf("batches = %d, want one batch of 3", n)
	}
	eventually(t, 5*time.Second, "the batch logged with the failed id", func() bool {
		return logs.contains(`"failed_ids":["` + left[0].ID + `"]`)
	})
}

func TestWholeBatchFailures(t *testing.T) {
	cases := []struct {
		name string
		h    SQSHandler
		log  string
	}{
		{"handler error", func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{}, errors.New("store unavailable")
		}, "store unavailable"},
		{"handler panic", func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			panic("nil map")
		}, "handler panicked: nil map"},
		{"failure id not in the batch", func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "not-a-message"}}}, nil
		}, `names no message of the batch`},
		{"empty failure id", func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: ev.Records[0].MessageId}, {}}}, nil
		}, `names no message of the batch`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fq := newFakeQueue(clock.NewFake(t0))
			send(t, fq, queue.Ingest, queue.Message{Body: "a"}, queue.Message{Body: "b"})
			calls := &batches{}
			r, logs := consume(t, fq, func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
				calls.add(ev)
				return c.h(ctx, ev)
			})
			eventually(t, 5*time.Second, "the batch", func() bool { return calls.count() == 1 && logs.contains("whole batch stays queued") })
			if err := r.stop(t); err != nil {
				t.Fatalf("Run = %v", err)
			}
			left := fq.contents(queue.Ingest)
			if !reflect.DeepEqual(bodies(left), []string{"a", "b"}) {
				t.Fatalf("left = %+v, want both messages", left)
			}
			for _, m := range left {
				if !m.InFlight || m.Receives != 1 {
					t.Errorf("%s: in flight %v after %d receives, want hidden until its visibility timeout", m.Body, m.InFlight, m.Receives)
				}
			}
			if !logs.contains(c.log) {
				t.Errorf("log lacks %q:\n%s", c.log, logs)
			}
		})
	}
}

func TestRedeliveryAfterVisibilityTimeout(t *testing.T) {
	clk := clock.NewFake(t0)
	fq := newFakeQueue(clk)
	send(t, fq, queue.Ingest, queue.Message{Body: "a"})
	got := &batches{}
	consume(t, fq, func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		got.add(ev)
		if ev.Records[0].Attributes["ApproximateReceiveCount"] == "1" {
			return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: ev.Records[0].MessageId}}}, nil
		}
		return events.SQSEventResponse{}, nil
	})
	eventually(t, 5*time.Second, "the first delivery", func() bool { return got.count() == 1 })

	// Hidden until the queue's visibility timeout ends on the queue's clock.
	time.Sleep(100 * time.Millisecond)
	if n := got.count(); n != 1 {
		t.Fatalf("redelivered %d times before the visibility timeout", n-1)
	}
	spec, _ := queuetest.Topology().SpecFor(queue.Ingest)
	clk.Advance(spec.VisibilityTimeout + time.Second)

	eventually(t, 5*time.Second, "the redelivery", func() bool { return got.count() == 2 })
	rec := got.get(1).Records[0]
	if rec.Attributes["ApproximateReceiveCount"] != "2" {
		t.Errorf("second receive count = %s", rec.Attributes["ApproximateReceiveCount"])
	}
	if rec.Attributes["ApproximateFirstReceiveTimestamp"] != strconv.FormatInt(t0.UnixMilli(), 10) {
		t.Errorf("first receive timestamp moved: %s", rec.Attributes["ApproximateFirstReceiveTimestamp"])
	}
	eventually(t, 5*time.Second, "the message deleted", func() bool { return len(fq.contents(queue.Ingest)) == 0 })
}

func TestDeadLetterAfterMaxReceives(t *testing.T) {
	fq := newFakeQueue(clock.NewFake(t0))
	send(t, fq, queue.Ingest, queue.Message{Body: "poison"})
	var mu sync.Mutex
	var counts []string
	consume(t, fq, func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		rec := ev.Records[0]
		mu.Lock()
		counts = append(counts, rec.Attributes["ApproximateReceiveCount"])
		mu.Unlock()
		// Backoff by visibility, as the handlers do; zero makes the retry immediate.
		if err := fq.ChangeVisibility(ctx, queue.Ingest, rec.ReceiptHandle, 0); err != nil {
			return events.SQSEventResponse{}, err
		}
		return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: rec.MessageId}}}, nil
	})
	dlq := queue.Ingest + queue.DLQSuffix
	eventually(t, 5*time.Second, "the move to the DLQ", func() bool { return len(fq.contents(dlq)) == 1 })

	spec, _ := queuetest.Topology().SpecFor(queue.Ingest)
	var want []string
	for i := 1; i <= spec.MaxReceiveCount; i++ {
		want = append(want, strconv.Itoa(i))
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(counts, want) {
		t.Errorf("receive counts seen = %v, want %v", counts, want)
	}
	if left := fq.contents(queue.Ingest); len(left) != 0 {
		t.Errorf("ingest still holds %+v", left)
	}
	if m := fq.contents(dlq)[0]; m.Body != "poison" {
		t.Errorf("DLQ holds %+v", m)
	}
}

func TestReceiveErrorsBackOff(t *testing.T) {
	fq := newFakeQueue(clock.NewFake(t0))
	fq.failReceives(2)
	send(t, fq, queue.Ingest, queue.Message{Body: "a"})
	got := &batches{}
	_, logs := consume(t, fq, func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		got.add(ev)
		return events.SQSEventResponse{}, nil
	})
	eventually(t, 10*time.Second, "delivery after the receive errors", func() bool { return got.count() == 1 })
	if n := fq.receiveErrors(); n != 2 {
		t.Errorf("receive errors = %d", n)
	}
	if !logs.contains("queue receive failed; backing off") || !logs.contains("queue receive recovered") {
		t.Errorf("log:\n%s", logs)
	}
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	for n := 1; n <= 40; n++ {
		step := backoffMax
		if n < 20 {
			step = min(backoffBase<<(n-1), backoffMax)
		}
		for range 20 {
			if d := backoff(n); d < step/2 || d > step {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", n, d, step/2, step)
			}
		}
	}
}

func TestShutdownLetsBatchFinish(t *testing.T) {
	fq := newFakeQueue(clock.NewFake(t0))
	send(t, fq, queue.Ingest, queue.Message{Body: "a"}, queue.Message{Body: "b"})
	entered, release := make(chan struct{}), make(chan struct{})
	var ctxErr error
	r, _ := consume(t, fq, func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		close(entered)
		<-release
		ctxErr = ctx.Err()
		return events.SQSEventResponse{}, nil
	})
	<-entered
	r.cancel()
	select {
	case err := <-r.done:
		t.Fatalf("Run returned (%v) while a batch was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run = %v, want nil after a clean drain", err)
	}
	if ctxErr != nil {
		t.Errorf("the handler's context was cancelled during the drain: %v", ctxErr)
	}
	if left := fq.contents(queue.Ingest); len(left) != 0 {
		t.Errorf("the finished batch was not deleted: %+v", left)
	}
}

func TestShutdownTimeoutLeavesMessagesQueued(t *testing.T) {
	clk := clock.NewFake(t0)
	fq := newFakeQueue(clk)
	send(t, fq, queue.Ingest, queue.Message{Body: "a"})
	entered := make(chan struct{})
	r := start(t, Config{
		Queue: fq, Clock: clk, PollWait: 20 * time.Millisecond, ShutdownTimeout: 100 * time.Millisecond,
		Consumers: []Consumer{{Queue: queue.Ingest, Handler: func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			close(entered)
			<-ctx.Done()
			return events.SQSEventResponse{}, ctx.Err()
		}}},
	})
	<-entered
	err := r.stop(t)
	if !errors.Is(err, ErrShutdownTimeout) {
		t.Fatalf("Run = %v, want ErrShutdownTimeout", err)
	}
	left := fq.contents(queue.Ingest)
	if len(left) != 1 || !left[0].InFlight {
		t.Fatalf("left = %+v, want the interrupted message in flight", left)
	}
	spec, _ := queuetest.Topology().SpecFor(queue.Ingest)
	clk.Advance(spec.VisibilityTimeout)
	if s, _ := fq.Stats(context.Background(), queue.Ingest); s.Visible != 1 {
		t.Errorf("after the visibility timeout: %+v, want the message visible for redelivery", s)
	}
}

func TestConcurrentWorkers(t *testing.T) {
	fq := newFakeQueue(clock.NewFake(t0))
	for i := range 4 {
		send(t, fq, queue.Ingest, queue.Message{Body: strconv.Itoa(i)})
	}
	var mu sync.Mutex
	inFlight, peak := 0, 0
	gate := make(chan struct{})
	start(t, Config{
		Queue: fq, Clock: fq.clock, PollWait: 20 * time.Millisecond,
		Consumers: []Consumer{{Queue: queue.Ingest, BatchSize: 1, Concurrency: 3, Handler: func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			mu.Lock()
			inFlight++
			peak = max(peak, inFlight)
			mu.Unlock()
			<-gate
			mu.Lock()
			inFlight--
			mu.Unlock()
			return events.SQSEventResponse{}, nil
		}}},
	})
	eventually(t, 5*time.Second, "three batches at once", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return inFlight == 3
	})
	close(gate)
	eventually(t, 5*time.Second, "all deleted", func() bool { return len(fq.contents(queue.Ingest)) == 0 })
	mu.Lock()
	defer mu.Unlock()
	if peak != 3 {
		t.Errorf("peak concurrency %d, want 3", peak)
	}
}
