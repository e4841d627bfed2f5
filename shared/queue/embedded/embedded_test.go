package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/queue/embedded"
	"github.com/cartrelay/cartrelay/shared/queue/queuetest"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
)

var epoch = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

func openDB(t testing.TB, path string) *sqlitedb.DB {
	t.Helper()
	db, err := sqlitedb.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newQueue(t testing.TB, db *sqlitedb.DB, clk clock.Clock) *embedded.Queue {
	t.Helper()
	q, err := embedded.New(context.Background(), db, clk, queuetest.Topology())
	if err != nil {
		t.Fatalf("embedded.New: %v", err)
	}
	return q
}

func fresh(t testing.TB) (*embedded.Queue, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(epoch)
	return newQueue(t, openDB(t, filepath.Join(t.TempDir(), sqlitedb.FileName)), clk), clk
}

func TestContract(t *testing.T) {
	// Each test gets its own fake clock, found again by test name so that a subtest's Pass
	// moves its parent's clock.
	var mu sync.Mutex
	clocks := map[string]*clock.Fake{}
	queuetest.Run(t, queuetest.Harness{
		New: func(t *testing.T) queue.Queue {
			q, clk := fresh(t)
			mu.Lock()
			defer mu.Unlock()
			clocks[t.Name()] = clk
			return q
		},
		Pass: func(t *testing.T, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			for name := t.Name(); ; {
				if clk, ok := clocks[name]; ok {
					clk.Advance(d)
					return
				}
				i := strings.LastIndexByte(name, '/')
				if i < 0 {
					t.Fatal("Pass called from a test that did not call New")
				}
				name = name[:i]
			}
		},
	})
}

func sendN(t testing.TB, q queue.Queue, name string, n int) {
	t.Helper()
	msgs := make([]queue.Message, n)
	for i := range msgs {
		msgs[i] = queue.Message{Body: fmt.Sprintf("m%04d", i), GroupID: fmt.Sprintf("g%d", i%7), DedupID: fmt.Sprintf("d%d-%d", time.Now().UnixNano(), i)}
	}
	if err := q.Send(context.Background(), name, msgs); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// consume receives and deletes with several goroutines over one or more adapters (each may
// stand for another process) and fails if any message is handed out twice.
func consume(t *testing.T, qs []*embedded.Queue, name string, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for w := range 8 {
		q := qs[w%len(qs)]
		wg.Go(func() {
			for {
				mu.Lock()
				done := len(seen) >= want
				mu.Unlock()
				if done {
					return
				}
				got, err := q.Receive(ctx, name, queue.ReceiveOptions{Max: 3, Visibility: time.Hour, Wait: 200 * time.Millisecond})
				if err != nil {
					errc <- err
					return
				}
				for _, r := range got {
					mu.Lock()
					seen[r.Body]++
					mu.Unlock()
					if err := q.Delete(ctx, name, r.ReceiptHandle); err != nil {
						errc <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if len(seen) != want {
		t.Fatalf("received %d distinct messages, want %d", len(seen), want)
	}
	for body, n := range seen {
		if n != 1 {
			t.Errorf("message %s handed out %d times", body, n)
		}
	}
}

func TestConcurrentReceiversNeverShareAMessage(t *testing.T) {
	fifoA, _ := queuetest.FIFOQueues(t)
	for _, name := range []string{queue.Ingest, fifoA} {
		t.Run(name, func(t *testing.T) {
			q, _ := fresh(t)
			sendN(t, q, name, 300)
			consume(t, []*embedded.Queue{q}, name, 300)
		})
	}
}

// Two database handles on one file behave, for SQLite, like two processes: separate
// connections that meet only at the file's locks.
func TestSecondProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), sqlitedb.FileName)
	clk := clock.NewFake(epoch)
	serve := newQueue(t, openDB(t, path), clk)
	cli := newQueue(t, openDB(t, path), clk)

	t.Run("receivers in both never share a message", func(t *testing.T) {
		sendN(t, cli, queue.Ingest, 200)
		consume(t, []*embedded.Queue{serve, cli}, queue.Ingest, 200)
	})
	t.Run("a long poll sees a message the other sent", func(t *testing.T) {
		go func() {
			time.Sleep(200 * time.Millisecond)
			_ = cli.Send(context.Background(), queue.Poll, []queue.Message{{Body: "from the cli"}})
		}()
		start := time.Now()
		got, err := serve.Receive(context.Background(), queue.Poll, queue.ReceiveOptions{Wait: 5 * time.Second})
		if err != nil || len(got) != 1 {
			t.Fatalf("receive = %d messages, %v; want 1", len(got), err)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("the long poll took %s to notice the other process's message", took)
		}
	})
	t.Run("stats and replay from the other", func(t *testing.T) {
		if err := serve.Send(context.Background(), queue.Ingest+queue.DLQSuffix, []queue.Message{{Body: "parked"}}); err != nil {
			t.Fatal(err)
		}
		st, err := cli.Stats(context.Background(), queue.Ingest+queue.DLQSuffix)
		if err != nil || st.Visible != 1 {
			t.Fatalf("stats from the other process = %+v, %v", st, err)
		}
		if n, err := queue.Redrive(context.Background(), cli, queuetest.Topology(), queue.Ingest+queue.DLQSuffix, 0); err != nil || n != 1 {
			t.Fatalf("redrive = %d, %v", n, err)
		}
		got, err := serve.Receive(context.Background(), queue.Ingest, queue.ReceiveOptions{})
		if err != nil || len(got) != 1 || got[0].Body != "parked" {
			t.Fatalf("receive after replay = %v, %v", got, err)
		}
	})
}

func TestDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), sqlitedb.FileName)
	clk := clock.NewFake(epoch)
	ctx := context.Background()

	db, err := sqlitedb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	q := newQueue(t, db, clk)
	if err := q.Send(ctx, queue.Ingest, []queue.Message{{Body: "a", Attributes: map[string]string{"k": "v"}}, {Body: "b"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Receive(ctx, queue.Ingest, queue.ReceiveOptions{Max: 1, Visibility: time.Minute}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	q = newQueue(t, openDB(t, path), clk)
	st, err := q.Stats(ctx, queue.Ingest)
	if err != nil || st.Visible != 1 || st.InFlight != 1 {
		t.Fatalf("after reopening, stats = %+v, %v; want 1 visible and 1 in flight", st, err)
	}
	clk.Advance(time.Minute)
	got, err := q.Receive(ctx, queue.Ingest, queue.ReceiveOptions{})
	if err != nil || len(got) != 2 || got[0].Body != "a" || got[0].Attributes["k"] != "v" || got[0].ReceiveCount != 2 {
		t.Fatalf("after reopening, receive = %+v, %v", got, err)
	}
}

func TestTimeComesFromTheClock(t *testing.T) {
	q, clk := fresh(t)
	ctx := context.Background()
	if err := q.Send(ctx, queue.Poll, []queue.Message{{Body: "x"}}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(90 * time.Second)
	got, err := q.Receive(ctx, queue.Poll, queue.ReceiveOptions{})
	if err != nil || len(got) != 1 {
		t.Fatalf("receive = %v, %v", got, err)
	}
	r := got[0]
	if !r.SentAt.Equal(epoch) || !r.FirstReceivedAt.Equal(epoch.Add(90*time.Second)) {
		t.Errorf("sent %v, first received %v; want the fake clock's times", r.SentAt, r.FirstReceivedAt)
	}
	// The poll queue's own visibility (15 minutes) applies to the last nanosecond.
	clk.Advance(15*time.Minute - time.Nanosecond)
	if got, _ := q.Receive(ctx, queue.Poll, queue.ReceiveOptions{}); len(got) != 0 {
		t.Fatal("message visible before its visibility timeout ran out")
	}
	clk.Advance(time.Nanosecond)
	if got, _ := q.Receive(ctx, queue.Poll, queue.ReceiveOptions{}); len(got) != 1 {
		t.Fatal("message not visible when its visibility timeout ran out")
	}
}

// SQS hands out a new receipt handle per receive and honours only the latest. moto accepts
// every handle a message ever had, so these cases are checked here rather than in the
// contract suite.
func TestOldReceiptHandles(t *testing.T) {
	q, clk := fresh(t)
	ctx := context.Background()
	if err := q.Send(ctx, queue.Ingest, []queue.Message{{Body: "x"}}); err != nil {
		t.Fatal(err)
	}
	first, _ := q.Receive(ctx, queue.Ingest, queue.ReceiveOptions{Visibility: time.Second})
	clk.Advance(time.Second)

	if err := q.ChangeVisibility(ctx, queue.Ingest, first[0].ReceiptHandle, time.Minute); !errors.Is(err, queue.ErrStaleReceipt) {
		t.Errorf("change visibility once the timeout ran out = %v, want queue.ErrStaleReceipt", err)
	}
	second, _ := q.Receive(ctx, queue.Ingest, queue.ReceiveOptions{Visibility: time.Minute})
	if len(second) != 1 {
		t.Fatal("message did not come back")
	}
	if err := q.ChangeVisibility(ctx, queue.Ingest, first[0].ReceiptHandle, 0); !errors.Is(err, queue.ErrStaleReceipt) {
		t.Errorf("change visibility with the first handle = %v, want queue.ErrStaleReceipt", err)
	}
	if err := q.Delete(ctx, queue.Ingest, first[0].ReceiptHandle); err != nil {
		t.Errorf("delete with the first handle = %v, want no error", err)
	}
	if st, _ := q.Stats(ctx, queue.Ingest); st.InFlight != 1 {
		t.Errorf("delete with an old handle removed the message: stats %+v", st)
	}
	if err := q.Delete(ctx, queue.Ingest, second[0].ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	if st, _ := q.Stats(ctx, queue.Ingest); st != (queue.Stats{Queue: queue.Ingest}) {
		t.Errorf("after deleting with the latest handle, stats %+v", st)
	}
}

func TestDedupWindow(t *testing.T) {
	fifoA, _ := queuetest.FIFOQueues(t)
	q, clk := fresh(t)
	ctx := context.Background()
	send := func(body string) {
		t.Helper()
		if err := q.Send(ctx, fifoA, []queue.Message{{Body: body, GroupID: "g", DedupID: "fact-1"}}); err != nil {
			t.Fatal(err)
		}
	}
	take := func() []string {
		t.Helper()
		got, err := q.Receive(ctx, fifoA, queue.ReceiveOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range got {
			out = append(out, r.Body)
			if err := q.Delete(ctx, fifoA, r.ReceiptHandle); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	send("first")
	if got := take(); len(got) != 1 {
		t.Fatalf("got %v", got)
	}
	// The id is remembered after the message is gone, for the whole window from the first send.
	clk.Advance(queue.DedupWindow - time.Second)
	send("inside the window")
	if got := take(); len(got) != 0 {
		t.Fatalf("a duplicate inside the window was queued: %v", got)
	}
	clk.Advance(time.Second)
	send("after the window")
	if got := take(); len(got) != 1 || got[0] != "after the window" {
		t.Fatalf("after the window got %v", got)
	}
}

func TestDeleteUnlocksGroupAndWakesLongPoll(t *testing.T) {
	_, fifoB := queuetest.FIFOQueues(t)
	q, _ := fresh(t)
	ctx := context.Background()
	if err := q.Send(ctx, fifoB, []queue.Message{{Body: "1", GroupID: "g", DedupID: "1"}, {Body: "2", GroupID: "g", DedupID: "2"}}); err != nil {
		t.Fatal(err)
	}
	first, _ := q.Receive(ctx, fifoB, queue.ReceiveOptions{Max: 1})
	go func() {
		time.Sleep(200 * time.Millisecond)
		_ = q.Delete(ctx, fifoB, first[0].ReceiptHandle)
	}()
	start := time.Now()
	got, err := q.Receive(ctx, fifoB, queue.ReceiveOptions{Wait: 5 * time.Second})
	if err != nil || len(got) != 1 || got[0].Body != "2" {
		t.Fatalf("receive = %v, %v; want message 2", got, err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("the long poll took %s to see the group unlock", took)
	}
}

func TestNewNeedsDatabaseAndClock(t *testing.T) {
	if _, err := embedded.New(context.Background(), nil, clock.System{}, queuetest.Topology()); err == nil {
		t.Fatal("New without a database: no error")
	}
}

func BenchmarkSend(b *testing.B) {
	fifoA, _ := queuetest.FIFOQueues(b)
	for _, size := range []int{1, 10} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			q, _ := fresh(b)
			ctx := context.Background()
			msgs := make([]queue.Message, size)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				for j := range msgs {
					msgs[j] = queue.Message{Body: fmt.Sprintf(`{"event":%d}`, i*size+j), GroupID: "g", DedupID: fmt.Sprintf("d%d-%d", i, j)}
				}
				if err := q.Send(ctx, fifoA, msgs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

func BenchmarkReceive(b *testing.B) {
	fifoA, _ := queuetest.FIFOQueues(b)
	for _, name := range []string{queue.Ingest, fifoA} {
		b.Run(name, func(b *testing.B) {
			q, _ := fresh(b)
			ctx := context.Background()
			// Receive and delete ten at a time from a queue kept at a few thousand messages.
			sendN(b, q, name, 5000)
			b.ReportAllocs()
			received := 0
			for b.Loop() {
				got, err := q.Receive(ctx, name, queue.ReceiveOptions{Visibility: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				if len(got) == 0 {
					b.StopTimer()
					sendN(b, q, name, 5000)
					b.StartTimer()
					continue
				}
				for _, r := range got {
					if err := q.Delete(ctx, name, r.ReceiptHandle); err != nil {
						b.Fatal(err)
					}
				}
				received += len(got)
			}
			b.ReportMetric(float64(received)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// OldestWaiting is when the oldest message not in flight was sent: a message being worked on
// does not count, and an empty queue has none.
func TestOldestWaiting(t *testing.T) {
	ctx := context.Background()
	q, clk := fresh(t)
	var _ queue.Ager = q
	if _, ok, err := q.OldestWaiting(ctx, queue.Ingest); ok || err != nil {
		t.Fatalf("empty queue: ok %v, %v", ok, err)
	}
	send := func(body string) {
		t.Helper()
		if err := q.Send(ctx, queue.Ingest, []queue.Message{{Body: body}}); err != nil {
			t.Fatal(err)
		}
	}
	send("first")
	clk.Advance(time.Minute)
	send("second")
	clk.Advance(time.Minute)
	at, ok, err := q.OldestWaiting(ctx, queue.Ingest)
	if err != nil || !ok || !at.Equal(epoch) {
		t.Fatalf("oldest = %v %v %v, want %v", at, ok, err, epoch)
	}
	got, err := q.Receive(ctx, queue.Ingest, queue.ReceiveOptions{Max: 1, Visibility: time.Hour})
	if err != nil || len(got) != 1 || got[0].Body != "first" {
		t.Fatalf("receive: %v %v", got, err)
	}
	if at, ok, _ := q.OldestWaiting(ctx, queue.Ingest); !ok || !at.Equal(epoch.Add(time.Minute)) {
		t.Errorf("with the first in flight, oldest = %v %v, want the second's %v", at, ok, epoch.Add(time.Minute))
	}
	if _, _, err := q.OldestWaiting(ctx, "nope"); !errors.Is(err, queue.ErrUnknownQueue) {
		t.Errorf("unknown queue: %v", err)
	}
}

// TestReleaseInFlight: what a dead runtime had received comes back at once, on the queues
// named, and the dead runtime's receipt handles no longer work.
func TestReleaseInFlight(t *testing.T) {
	q, _ := fresh(t)
	ctx := context.Background()
	for _, name := range []string{queue.Ingest, queue.Poll} {
		if err := q.Send(ctx, name, []queue.Message{{ID: "a", Body: "a"}, {ID: "b", Body: "b"}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := q.Receive(ctx, queue.Ingest, queue.ReceiveOptions{Max: 10})
	if err != nil || len(got) != 2 {
		t.Fatalf("receive: %d, %v", len(got), err)
	}
	if _, err := q.Receive(ctx, queue.Poll, queue.ReceiveOptions{Max: 1}); err != nil {
		t.Fatal(err)
	}
	n, err := q.ReleaseInFlight(ctx, []string{queue.Ingest})
	if err != nil || n != 2 {
		t.Fatalf("released %d (%v), want 2", n, err)
	}
	if st, _ := q.Stats(ctx, queue.Ingest); st.Visible != 2 || st.InFlight != 0 {
		t.Fatalf("ingest after the release: %+v", st)
	}
	if st, _ := q.Stats(ctx, queue.Poll); st.InFlight != 1 {
		t.Fatalf("a queue not named was released too: %+v", st)
	}
	if err := q.ChangeVisibility(ctx, queue.Ingest, got[0].ReceiptHandle, time.Minute); !errors.Is(err, queue.ErrStaleReceipt) {
		t.Fatalf("the dead runtime's receipt still works: %v", err)
	}
	again, err := q.Receive(ctx, queue.Ingest, queue.ReceiveOptions{Max: 10})
	if err != nil || len(again) != 2 || again[0].ReceiveCount != 2 {
		t.Fatalf("receive after the release: %+v, %v", again, err)
	}
}

// DeleteBatch removes the messages its handles hold, in one write, ignores a stale handle as
// Delete does, and refuses a batch it cannot take whole.
func TestDeleteBatch(t *testing.T) {
	q, clk := fresh(t)
	fifo, _ := queuetest.FIFOQueues(t)
	ctx := context.Background()
	if err := q.Send(ctx, fifo, []queue.Message{
		{ID: "a", Body: "1", GroupID: "g1", DedupID: "1"}, {ID: "b", Body: "2", GroupID: "g2", DedupID: "2"},
		{ID: "c", Body: "3", GroupID: "g3", DedupID: "3"}}); err != nil {
		t.Fatal(err)
	}
	got, err := q.Receive(ctx, fifo, queue.ReceiveOptions{Visibility: time.Second})
	if err != nil || len(got) != 3 {
		t.Fatalf("receive = %d messages, %v; want 3", len(got), err)
	}
	// The first message's handle goes stale: its visibility ran out and it was received again.
	clk.Advance(time.Second)
	again, err := q.Receive(ctx, fifo, queue.ReceiveOptions{Max: 1, Visibility: time.Minute})
	if err != nil || len(again) != 1 || again[0].Body != "1" {
		t.Fatalf("receive again = %v, %v; want message 1", again, err)
	}

	if err := q.DeleteBatch(ctx, fifo, []string{got[1].ReceiptHandle, ""}); err == nil {
		t.Error("a batch with an empty handle was taken; want an error")
	}
	if err := q.DeleteBatch(ctx, fifo, make([]string, queue.MaxBatch+1)); err == nil {
		t.Errorf("a batch of %d handles was taken; want an error", queue.MaxBatch+1)
	}
	if err := q.DeleteBatch(ctx, "nope", []string{got[1].ReceiptHandle}); !errors.Is(err, queue.ErrUnknownQueue) {
		t.Errorf("DeleteBatch on an unknown queue = %v, want queue.ErrUnknownQueue", err)
	}
	if st, _ := q.Stats(ctx, fifo); st.InFlight != 1 || st.Visible != 2 {
		t.Fatalf("refused batches changed the queue: stats %+v", st)
	}

	if err := q.DeleteBatch(ctx, fifo, []string{got[0].ReceiptHandle, got[1].ReceiptHandle, got[2].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	// Messages 2 and 3 are gone; message 1 stays in flight under its new handle.
	if st, _ := q.Stats(ctx, fifo); st != (queue.Stats{Queue: fifo, InFlight: 1}) {
		t.Errorf("after the batch delete, stats %+v; want only message 1 in flight", st)
	}
	if err := q.DeleteBatch(ctx, fifo, []string{again[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if st, _ := q.Stats(ctx, fifo); st != (queue.Stats{Queue: fifo}) {
		t.Errorf("after deleting message 1, stats %+v; want an empty queue", st)
	}
}
