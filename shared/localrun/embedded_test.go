package localrun

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/cartrelay/cartrelay/shared/queue/queuetest"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/queue/embedded"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
)

// These tests run the local runtime on the durable queue `cartrelay serve` uses, to show that
// the guarantees hold on it and not only on the in-memory fake.

func openEmbedded(t *testing.T, path string, clk clock.Clock) (*embedded.Queue, *sqlitedb.DB) {
	t.Helper()
	db, err := sqlitedb.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q, err := embedded.New(context.Background(), db, clk, queuetest.Topology())
	if err != nil {
		t.Fatal(err)
	}
	return q, db
}

func TestEmbeddedWebhookToDeadLetter(t *testing.T) {
	clk := clock.NewFake(t0)
	q, _ := openEmbedded(t, filepath.Join(t.TempDir(), sqlitedb.FileName), clk)

	webhook := func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		if err := q.Send(ctx, queue.Ingest, []queue.Message{{Body: ev.Body}}); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK}, nil
	}
	var mu sync.Mutex
	var handled []string
	var poisonCounts []string
	ingest := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		var resp events.SQSEventResponse
		mu.Lock()
		defer mu.Unlock()
		for _, r := range ev.Records {
			if r.Body != "poison" {
				handled = append(handled, r.Body)
				continue
			}
			poisonCounts = append(poisonCounts, r.Attributes["ApproximateReceiveCount"])
			if err := q.ChangeVisibility(ctx, queue.Ingest, r.ReceiptHandle, 0); err != nil {
				return resp, err
			}
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
		}
		return resp, nil
	}
	r := start(t, Config{
		Queue: q, Clock: clk, PollWait: 50 * time.Millisecond,
		Routes:    []Route{{Method: "POST", Path: "/webhooks/", Handler: webhook}},
		Consumers: []Consumer{{Queue: queue.Ingest, Handler: ingest}},
	})
	for _, body := range []string{"good-1", "poison", "good-2"} {
		req := newRequest(t, http.MethodPost, r.url("/webhooks/ultracart/acct"), strings.NewReader(body))
		req.Header.Set("Content-Type", "text/plain")
		if resp, _ := do(t, req); resp.StatusCode != 200 {
			t.Fatalf("webhook %s: %d", body, resp.StatusCode)
		}
	}
	dlq := queue.Ingest + queue.DLQSuffix
	eventually(t, 10*time.Second, "the poison message in the DLQ", func() bool {
		s, err := q.Stats(context.Background(), dlq)
		return err == nil && s.Visible == 1
	})

	resp, body := do(t, newRequest(t, http.MethodGet, r.url("/healthz"), nil))
	var health struct {
		Queues []queue.Stats `json:"queues"`
	}
	if err := json.Unmarshal(body, &health); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz %d %s", resp.StatusCode, body)
	}
	if want := []queue.Stats{{Queue: queue.Ingest}, {Queue: dlq, Visible: 1}}; !slices.Equal(health.Queues, want) {
		t.Errorf("healthz queues = %+v, want %+v", health.Queues, want)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	slices.Sort(handled)
	if !slices.Equal(handled, []string{"good-1", "good-2"}) {
		t.Errorf("handled = %v", handled)
	}
	spec, _ := queuetest.Topology().SpecFor(queue.Ingest)
	var want []string
	for i := 1; i <= spec.MaxReceiveCount; i++ {
		want = append(want, strconv.Itoa(i))
	}
	if !slices.Equal(poisonCounts, want) {
		t.Errorf("poison receive counts = %v, want %v", poisonCounts, want)
	}
}

// TestEmbeddedInterruptedBatchSurvivesRestart stops the process while a handler is stuck:
// the message it held comes back after a restart on the same file.
func TestEmbeddedInterruptedBatchSurvivesRestart(t *testing.T) {
	clk := clock.NewFake(t0)
	path := filepath.Join(t.TempDir(), sqlitedb.FileName)
	q, db := openEmbedded(t, path, clk)
	if err := q.Send(context.Background(), queue.Ingest, []queue.Message{{Body: "order-1"}}); err != nil {
		t.Fatal(err)
	}

	entered := make(chan struct{})
	r := start(t, Config{
		Queue: q, Clock: clk, PollWait: 50 * time.Millisecond, ShutdownTimeout: 100 * time.Millisecond,
		Consumers: []Consumer{{Queue: queue.Ingest, Handler: func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			close(entered)
			<-ctx.Done()
			return events.SQSEventResponse{}, ctx.Err()
		}}},
	})
	<-entered
	if err := r.stop(t); !errors.Is(err, ErrShutdownTimeout) {
		t.Fatalf("Run = %v, want ErrShutdownTimeout", err)
	}
	db.Close()

	q2, _ := openEmbedded(t, path, clk)
	spec, _ := queuetest.Topology().SpecFor(queue.Ingest)
	clk.Advance(spec.VisibilityTimeout + time.Second)
	got := &batches{}
	r2 := start(t, Config{
		Queue: q2, Clock: clk, PollWait: 50 * time.Millisecond,
		Consumers: []Consumer{{Queue: queue.Ingest, Handler: func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			got.add(ev)
			return events.SQSEventResponse{}, nil
		}}},
	})
	eventually(t, 10*time.Second, "the redelivery after restart", func() bool { return got.count() == 1 })
	rec := got.get(0).Records[0]
	if rec.Body != "order-1" || rec.Attributes["ApproximateReceiveCount"] != "2" {
		t.Errorf("redelivered %q with receive count %s", rec.Body, rec.Attributes["ApproximateReceiveCount"])
	}
	eventually(t, 10*time.Second, "the message deleted", func() bool {
		s, err := q2.Stats(context.Background(), queue.Ingest)
		return err == nil && s.Visible == 0 && s.InFlight == 0
	})
	if err := r2.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
}
