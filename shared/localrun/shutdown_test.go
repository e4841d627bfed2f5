package localrun

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// TestShutdownLosesNoAcceptedRequest plays the webhook under load while the process is told
// to stop: every request answered 200 must have its message on the queue, and a request in
// its handler when the stop came must still finish and be answered.
func TestShutdownLosesNoAcceptedRequest(t *testing.T) {
	fq := newFakeQueue(clock.System{})
	gate, gated := make(chan struct{}), make(chan struct{})
	var gatedOnce sync.Once
	webhook := func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		if ev.PathParameters["proxy"] == "gate" {
			gatedOnce.Do(func() { close(gated) })
			<-gate
		} else {
			// Long enough that requests are in the handler when the stop comes.
			time.Sleep(2 * time.Millisecond)
		}
		if err := fq.Send(ctx, queue.Ingest, []queue.Message{{Body: ev.Body}}); err != nil {
			return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusServiceUnavailable}, nil
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK, Body: `{"ok":true}`}, nil
	}
	r := start(t, Config{Queue: fq, Routes: []Route{{Method: "POST", Path: "/webhooks/", Handler: webhook}}})

	var mu sync.Mutex
	var accepted []string
	var afterStop atomic.Int64
	var stopping atomic.Bool
	post := func(client *http.Client, path, body string) bool {
		resp, err := client.Post(r.url(path), "application/json", strings.NewReader(body))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if _, err := io.ReadAll(resp.Body); err != nil || resp.StatusCode != http.StatusOK {
			return false
		}
		mu.Lock()
		accepted = append(accepted, body)
		mu.Unlock()
		if stopping.Load() {
			afterStop.Add(1)
		}
		return true
	}

	quit := make(chan struct{})
	var clients sync.WaitGroup
	for c := range 8 {
		clients.Go(func() {
			client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
			defer client.CloseIdleConnections()
			for n := 0; ; n++ {
				select {
				case <-quit:
					return
				default:
				}
				post(client, fmt.Sprintf("/webhooks/c%d", c), fmt.Sprintf(`{"client":%d,"n":%d}`, c, n))
			}
		})
	}
	gatedResult := make(chan bool, 1)
	go func() {
		gatedResult <- post(&http.Client{Timeout: 10 * time.Second}, "/webhooks/gate", `{"gated":true}`)
	}()

	<-gated
	eventually(t, 10*time.Second, "a stream of accepted requests", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted) >= 100
	})
	stopping.Store(true)
	r.cancel()
	// The gated request holds the drain open while the other clients keep trying.
	time.Sleep(50 * time.Millisecond)
	close(gate)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run = %v, want nil after a clean drain", err)
	}
	close(quit)
	clients.Wait()

	if !<-gatedResult {
		t.Error("the request in flight at the stop was not answered 200")
	}
	queued := map[string]bool{}
	for _, m := range fq.contents(queue.Ingest) {
		queued[m.Body] = true
	}
	mu.Lock()
	defer mu.Unlock()
	lost := 0
	for _, b := range accepted {
		if !queued[b] {
			lost++
			t.Errorf("answered 200 but not queued: %s", b)
		}
	}
	t.Logf("%d requests accepted (%d answered after the stop began), %d queued, %d lost", len(accepted), afterStop.Load(), len(queued), lost)
	if afterStop.Load() == 0 {
		t.Error("no request finished during the drain; the test did not exercise it")
	}
}

// TestStopCancelsInterruptibleHandlersAtOnce runs two consumers whose handlers are in flight
// when the stop comes: the interruptible one (a poll walk) is cancelled at once, the other
// (ingest) keeps running until it finishes, and Run returns cleanly long before its grace
// period would end.
func TestStopCancelsInterruptibleHandlersAtOnce(t *testing.T) {
	fq := newFakeQueue(clock.System{})
	ctx := context.Background()
	if err := fq.Send(ctx, queue.Poll, []queue.Message{{Body: `{"account":"acme","stream":"orders"}`}}); err != nil {
		t.Fatal(err)
	}
	if err := fq.Send(ctx, queue.Ingest, []queue.Message{{Body: `{}`}}); err != nil {
		t.Fatal(err)
	}
	pollIn, ingestIn, finishIngest := make(chan struct{}), make(chan struct{}), make(chan struct{})
	pollCancelled := make(chan error, 1)
	var ingestErr atomic.Value
	poll := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		close(pollIn)
		<-ctx.Done() // a walk that would go on for minutes
		pollCancelled <- ctx.Err()
		return events.SQSEventResponse{}, nil
	}
	ingest := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		close(ingestIn)
		<-finishIngest
		ingestErr.Store(fmt.Sprint(ctx.Err()))
		return events.SQSEventResponse{}, nil
	}
	r := start(t, Config{Queue: fq, ShutdownTimeout: time.Hour, Consumers: []Consumer{
		{Queue: queue.Poll, Handler: poll, BatchSize: 1, Interruptible: true},
		{Queue: queue.Ingest, Handler: ingest, BatchSize: 1},
	}})
	<-pollIn
	<-ingestIn
	r.cancel()
	select {
	case err := <-pollCancelled:
		if err != context.Canceled {
			t.Fatalf("the poll's context ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the interruptible handler was not cancelled when the stop began (the grace period is an hour)")
	}
	close(finishIngest)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run = %v, want nil: nothing ran past the grace period", err)
	}
	if got := ingestErr.Load(); got != "<nil>" {
		t.Fatalf("the ingest handler's context was %v at its end; a stop must let it finish", got)
	}
}
