//go:build unix

// Only where serve can hold its data directory (lock_unix.go) does it take over from a dead one.
package operator_test

import (
	"context"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// TestTakeOverReleasesEveryConsumedQueue: a serve that died holding a message of any queue it
// consumes (ingest, poll and every registered destination's, the signed webhooks' among them)
// leaves it in flight; the next serve on the same data puts each back at once instead of
// letting it wait out its visibility timeout.
func TestTakeOverReleasesEveryConsumedQueue(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	topo := destinations.Queues()

	dead, err := operator.Embedded(ctx, dir, wiring.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range topo {
		m := queue.Message{Body: s.Name}
		if s.FIFO {
			m.GroupID, m.DedupID = "acme|ann@example.com", "fact-"+s.Name
		}
		if err := dead.Queue.Send(ctx, s.Name, []queue.Message{m}); err != nil {
			t.Fatalf("send to %s: %v", s.Name, err)
		}
		got, err := dead.Queue.Receive(ctx, s.Name, queue.ReceiveOptions{Visibility: time.Hour})
		if err != nil || len(got) != 1 {
			t.Fatalf("receive from %s: %v, %v", s.Name, got, err)
		}
	}
	if err := dead.Close(); err != nil {
		t.Fatal(err)
	}

	next, err := operator.Embedded(ctx, dir, wiring.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	released, release, err := next.TakeOver(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if released != len(topo) {
		t.Errorf("released %d messages, want one on each of the %d queues serve consumes", released, len(topo))
	}
	for _, s := range topo {
		got, err := next.Queue.Receive(ctx, s.Name, queue.ReceiveOptions{})
		if err != nil || len(got) != 1 || got[0].Body != s.Name {
			t.Errorf("queue %s after the take-over: %v, %v; want its message visible again at once", s.Name, got, err)
		}
	}
}
