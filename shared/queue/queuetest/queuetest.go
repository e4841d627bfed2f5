// Package queuetest is the contract suite that every queue.Queue adapter passes, so that code
// tested against the embedded queues behaves the same on Amazon SQS.
//
// The suite runs in real time against SQS (or its emulator) and on a fake clock against the
// embedded adapter. It therefore never waits on a queue's default visibility timeout
// (minutes): it passes short visibilities explicitly, makes time pass through Harness.Pass,
// and cycles messages with ChangeVisibility(0). Its tests run in parallel, so the real-time
// waits overlap and the whole suite takes a few seconds against SQS.
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// Harness connects the suite to one adapter.
type Harness struct {
	// New returns an empty queue for t. Nothing it holds may be shared with another test:
	// the tests run in parallel.
	New func(t *testing.T) queue.Queue
	// Pass makes d pass for the queue New returned for t or for a test t is a subtest of: it
	// advances that test's fake clock, or sleeps when the adapter runs in real time.
	Pass func(t *testing.T, d time.Duration)
}

// vis is the short visibility the suite hides messages for; SQS counts it in whole seconds.
const vis = time.Second

// settle is added to vis before a hidden message is expected back, for SQS's approximate
// timers.
const settle = 300 * time.Millisecond

// Topology is the layout the suite runs on: cartrelay's own (destinations.Queues), the fixed
// queues around each registered destination's FIFO queue. Harness.New must build its adapter
// with it.
func Topology() queue.Topology {
	return destinations.Queues()
}

// FIFOQueues are two FIFO queues of Topology (the first two registered destinations'), for
// tests that need one, or two to tell apart.
func FIFOQueues(t testing.TB) (first, second string) {
	t.Helper()
	var names []string
	for _, s := range Topology() {
		if s.FIFO {
			names = append(names, s.Name)
		}
	}
	if len(names) < 2 {
		t.Fatalf("the queue layout has %d FIFO queues (%v); the queue tests need two", len(names), names)
	}
	return names[0], names[1]
}

// Run runs the contract suite.
func Run(t *testing.T, h Harness) {
	if h.New == nil || h.Pass == nil {
		t.Fatal("queuetest.Harness needs New and Pass")
	}
	tests := []struct {
		name string
		run  func(t *testing.T, h Harness)
	}{
		{"RoundtripWithAttributes", testRoundtrip},
		{"BatchOf25ArrivesExactlyOnce", testBatch25},
		{"LargeMessagesInOneSend", testLargeMessages},
		{"InvalidEntriesFailAlone", testInvalidEntries},
		{"InvalidMessageFailsWholeSend", testInvalidMessage},
		{"VisibilityHidesThenReshows", testVisibility},
		{"ReceiveCountIncrements", testReceiveCount},
		{"DeleteRemoves", testDelete},
		{"ChangeVisibility", testChangeVisibility},
		{"StaleReceiptHandle", testStaleReceipt},
		{"DeadLetterAfterMaxReceiveCount", testDeadLetter},
		{"RedriveMovesBack", testRedrive},
		{"DeadLettersOneByOne", testDeadLettersOneByOne},
		{"FIFOOrderPerGroup", testFIFOOrder},
		{"FIFOGroupLock", testFIFOGroupLock},
		{"FIFODeduplication", testFIFODedup},
		{"Stats", testStats},
		{"UnknownQueue", testUnknownQueue},
		{"ReceiveOptionsChecked", testReceiveOptions},
		{"LongPollWakesOnSend", testLongPollWakes},
		{"LongPollTimesOut", testLongPollTimesOut},
		{"LongPollHonoursContext", testLongPollContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, h)
		})
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func send(t *testing.T, q queue.Queue, name string, msgs ...queue.Message) {
	t.Helper()
	if err := q.Send(testCtx(t), name, msgs); err != nil {
		t.Fatalf("send %d message(s) to %s: %v", len(msgs), name, err)
	}
}

func receive(t *testing.T, q queue.Queue, name string, opt queue.ReceiveOptions) []queue.Received {
	t.Helper()
	got, err := q.Receive(testCtx(t), name, opt)
	if err != nil {
		t.Fatalf("receive from %s: %v", name, err)
	}
	return got
}

// receiveOne long-polls for exactly one message.
func receiveOne(t *testing.T, q queue.Queue, name string, visibility time.Duration) queue.Received {
	t.Helper()
	got := receive(t, q, name, queue.ReceiveOptions{Max: 1, Visibility: visibility, Wait: 2 * time.Second})
	if len(got) != 1 {
		t.Fatalf("receive from %s: got %d messages, want 1", name, len(got))
	}
	return got[0]
}

func receiveNone(t *testing.T, q queue.Queue, name string) {
	t.Helper()
	if got := receive(t, q, name, queue.ReceiveOptions{}); len(got) != 0 {
		t.Fatalf("receive from %s: got %d message(s) (first %q), want none", name, len(got), got[0].Body)
	}
}

// drain receives and deletes until want messages came or the time is up, and returns them in
// the order they were received.
func drain(t *testing.T, q queue.Queue, name string, want int) []queue.Received {
	t.Helper()
	var out []queue.Received
	deadline := time.Now().Add(15 * time.Second)
	for len(out) < want && time.Now().Before(deadline) {
		got := receive(t, q, name, queue.ReceiveOptions{Visibility: 30 * time.Second, Wait: time.Second})
		for _, r := range got {
			if err := q.Delete(testCtx(t), name, r.ReceiptHandle); err != nil {
				t.Fatalf("delete %s from %s: %v", r.MessageID, name, err)
			}
		}
		out = append(out, got...)
	}
	if len(out) != want {
		t.Fatalf("drain %s: got %d messages, want %d", name, len(out), want)
	}
	return out
}

func stats(t *testing.T, q queue.Queue, name string) queue.Stats {
	t.Helper()
	st, err := q.Stats(testCtx(t), name)
	if err != nil {
		t.Fatalf("stats of %s: %v", name, err)
	}
	return st
}

func wantStats(t *testing.T, q queue.Queue, name string, visible, inFlight int) {
	t.Helper()
	want := queue.Stats{Queue: name, Visible: visible, InFlight: inFlight}
	if got := stats(t, q, name); got != want {
		t.Fatalf("stats of %s = %+v, want %+v", name, got, want)
	}
}

func bodies(rs []queue.Received) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Body
	}
	return out
}

func fifo(group, dedup, body string) queue.Message {
	return queue.Message{GroupID: group, DedupID: dedup, Body: body}
}

func testRoundtrip(t *testing.T, h Harness) {
	_, fifoB := FIFOQueues(t)
	q := h.New(t)
	tests := []struct {
		name  string
		queue string
		msg   queue.Message
	}{
		{"standard with attributes", queue.Ingest, queue.Message{Body: `{"event":"order"}`, Attributes: map[string]string{"kind": "order", "account": "acct-1"}}},
		{"standard without attributes", queue.Poll, queue.Message{Body: "job"}},
		{"fifo", fifoB, queue.Message{Body: "fact", GroupID: "acct-1#a@example.com", DedupID: "fact-1", Attributes: map[string]string{"fact": "fact-1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			send(t, q, tc.queue, tc.msg)
			r := receiveOne(t, q, tc.queue, vis)
			if r.Body != tc.msg.Body {
				t.Errorf("body = %q, want %q", r.Body, tc.msg.Body)
			}
			if len(r.Attributes) != 0 || len(tc.msg.Attributes) != 0 {
				if !maps.Equal(r.Attributes, tc.msg.Attributes) {
					t.Errorf("attributes = %v, want %v", r.Attributes, tc.msg.Attributes)
				}
			}
			if r.GroupID != tc.msg.GroupID || r.DedupID != tc.msg.DedupID {
				t.Errorf("group, dedup = %q, %q, want %q, %q", r.GroupID, r.DedupID, tc.msg.GroupID, tc.msg.DedupID)
			}
			if r.MessageID == "" || r.ReceiptHandle == "" {
				t.Errorf("message id %q, receipt handle %q: want both set", r.MessageID, r.ReceiptHandle)
			}
			if r.ReceiveCount != 1 {
				t.Errorf("receive count = %d, want 1", r.ReceiveCount)
			}
			if r.SentAt.IsZero() || r.FirstReceivedAt.Before(r.SentAt) {
				t.Errorf("sent at %v, first received at %v: want a sent time and a first receive no earlier", r.SentAt, r.FirstReceivedAt)
			}
			if err := q.Delete(testCtx(t), tc.queue, r.ReceiptHandle); err != nil {
				t.Fatalf("delete: %v", err)
			}
		})
	}
}

func testBatch25(t *testing.T, h Harness) {
	q := h.New(t)
	var msgs []queue.Message
	for i := range 25 {
		msgs = append(msgs, queue.Message{Body: fmt.Sprintf("msg-%02d", i)})
	}
	send(t, q, queue.Ingest, msgs...)
	got := bodies(drain(t, q, queue.Ingest, 25))
	slices.Sort(got)
	want := bodies(nil)
	for _, m := range msgs {
		want = append(want, m.Body)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("received %v, want each of %v once", got, want)
	}
	receiveNone(t, q, queue.Ingest)
	wantStats(t, q, queue.Ingest, 0, 0)
}

func testLargeMessages(t *testing.T, h Harness) {
	q := h.New(t)
	// Three messages near the size limit: together they are over SQS's limit on one batch
	// request, so the adapter must split the batch by size as well as by count.
	var msgs []queue.Message
	for i := range 3 {
		msgs = append(msgs, queue.Message{Body: fmt.Sprintf("%d", i) + strings.Repeat("x", 200*1024)})
	}
	send(t, q, queue.Ingest, msgs...)
	got := drain(t, q, queue.Ingest, 3)
	for _, r := range got {
		if len(r.Body) != 200*1024+1 {
			t.Fatalf("body of %d bytes, want %d", len(r.Body), 200*1024+1)
		}
	}
}

func testInvalidEntries(t *testing.T, h Harness) {
	q := h.New(t)
	msgs := []queue.Message{
		{ID: "ok1", Body: "first"},
		{ID: "nul", Body: "a\x00b"},
		{ID: "utf8", Body: "bad \xff utf-8"},
		{ID: "ok2", Body: "second"},
		{ID: "attrname", Body: "x", Attributes: map[string]string{"has space": "v"}},
		{ID: "attrvalue", Body: "x", Attributes: map[string]string{"k": "\x01"}},
		{ID: "attrempty", Body: "x", Attributes: map[string]string{"k": ""}},
	}
	for i := range 10 {
		msgs = append(msgs, queue.Message{ID: fmt.Sprintf("fill%d", i), Body: fmt.Sprintf("fill-%d", i)})
	}
	err := q.Send(testCtx(t), queue.Ingest, msgs)
	var se *queue.SendError
	if !errors.As(err, &se) {
		t.Fatalf("send = %v, want a *queue.SendError", err)
	}
	wantFailed := map[string]bool{"nul": true, "utf8": true, "attrname": true, "attrvalue": true, "attrempty": true}
	if got := se.FailedIDs(); !maps.Equal(got, wantFailed) {
		t.Fatalf("failed ids = %v, want %v", got, wantFailed)
	}
	for _, f := range se.Failed {
		if !f.SenderFault || f.Code == "" || f.Reason == "" {
			t.Errorf("failed entry %+v: want a code, a reason and SenderFault", f)
		}
	}
	if se.Queue != queue.Ingest {
		t.Errorf("SendError.Queue = %q, want %q", se.Queue, queue.Ingest)
	}
	got := bodies(drain(t, q, queue.Ingest, 12))
	slices.Sort(got)
	if got[0] != "fill-0" || got[10] != "first" || got[11] != "second" {
		t.Fatalf("received %v, want the 12 valid messages", got)
	}
}

func testInvalidMessage(t *testing.T, h Harness) {
	fifoA, _ := FIFOQueues(t)
	q := h.New(t)
	tests := []struct {
		name  string
		queue string
		msgs  []queue.Message
	}{
		{"empty body", queue.Ingest, []queue.Message{{Body: "ok"}, {Body: ""}}},
		{"over the size limit", queue.Ingest, []queue.Message{{Body: "ok"}, {Body: strings.Repeat("x", queue.MaxBodyBytes+1)}}},
		{"fifo without group", fifoA, []queue.Message{fifo("g", "d1", "ok"), {Body: "x", DedupID: "d2"}}},
		{"fifo without dedup id", fifoA, []queue.Message{fifo("g", "d1", "ok"), {Body: "x", GroupID: "g"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := q.Send(testCtx(t), tc.queue, tc.msgs)
			if !errors.Is(err, queue.ErrInvalid) {
				t.Fatalf("send = %v, want queue.ErrInvalid", err)
			}
			// Nothing of a rejected call is queued.
			wantStats(t, q, tc.queue, 0, 0)
		})
	}
}

func testVisibility(t *testing.T, h Harness) {
	q := h.New(t)
	send(t, q, queue.Ingest, queue.Message{Body: "hide me"})
	first := receiveOne(t, q, queue.Ingest, vis)
	receiveNone(t, q, queue.Ingest)
	wantStats(t, q, queue.Ingest, 0, 1)

	h.Pass(t, vis+settle)
	again := receiveOne(t, q, queue.Ingest, vis)
	if again.MessageID != first.MessageID {
		t.Fatalf("got message %s back, want %s", again.MessageID, first.MessageID)
	}
	if again.ReceiveCount != 2 {
		t.Errorf("receive count = %d, want 2", again.ReceiveCount)
	}
	if again.ReceiptHandle == first.ReceiptHandle {
		t.Errorf("the second receive reused receipt handle %q; want a fresh one", first.ReceiptHandle)
	}
	if !again.FirstReceivedAt.Equal(first.FirstReceivedAt) {
		t.Errorf("first received at moved from %v to %v", first.FirstReceivedAt, again.FirstReceivedAt)
	}

	// Without an explicit visibility the queue's own (minutes) applies.
	if err := q.ChangeVisibility(testCtx(t), queue.Ingest, again.ReceiptHandle, 0); err != nil {
		t.Fatalf("change visibility: %v", err)
	}
	receiveOne(t, q, queue.Ingest, 0)
	h.Pass(t, vis+settle)
	receiveNone(t, q, queue.Ingest)
}

func testReceiveCount(t *testing.T, h Harness) {
	q := h.New(t)
	send(t, q, queue.Poll, queue.Message{Body: "count me"})
	for want := 1; want <= 3; want++ {
		r := receiveOne(t, q, queue.Poll, time.Minute)
		if r.ReceiveCount != want {
			t.Fatalf("receive %d: count = %d", want, r.ReceiveCount)
		}
		if err := q.ChangeVisibility(testCtx(t), queue.Poll, r.ReceiptHandle, 0); err != nil {
			t.Fatalf("change visibility: %v", err)
		}
	}
}

func testDelete(t *testing.T, h Harness) {
	q := h.New(t)
	send(t, q, queue.Ingest, queue.Message{Body: "a"}, queue.Message{Body: "b"})
	got := receive(t, q, queue.Ingest, queue.ReceiveOptions{Visibility: vis, Wait: time.Second})
	if len(got) == 0 {
		t.Fatal("received nothing")
	}
	for _, r := range got {
		if err := q.Delete(testCtx(t), queue.Ingest, r.ReceiptHandle); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}
	drain(t, q, queue.Ingest, 2-len(got))
	wantStats(t, q, queue.Ingest, 0, 0)
	h.Pass(t, vis+settle)
	receiveNone(t, q, queue.Ingest)
}

func testChangeVisibility(t *testing.T, h Harness) {
	_, fifoB := FIFOQueues(t)
	q := h.New(t)
	ctx := testCtx(t)
	t.Run("zero reshows at once", func(t *testing.T) {
		send(t, q, queue.Ingest, queue.Message{Body: "now"})
		r := receiveOne(t, q, queue.Ingest, time.Hour)
		if err := q.ChangeVisibility(ctx, queue.Ingest, r.ReceiptHandle, 0); err != nil {
			t.Fatalf("change visibility: %v", err)
		}
		again := receiveOne(t, q, queue.Ingest, time.Hour)
		if again.MessageID != r.MessageID {
			t.Fatalf("got %s, want %s", again.MessageID, r.MessageID)
		}
		if err := q.Delete(ctx, queue.Ingest, again.ReceiptHandle); err != nil {
			t.Fatalf("delete: %v", err)
		}
	})
	t.Run("extends", func(t *testing.T) {
		send(t, q, queue.Poll, queue.Message{Body: "later"})
		r := receiveOne(t, q, queue.Poll, vis)
		if err := q.ChangeVisibility(ctx, queue.Poll, r.ReceiptHandle, time.Hour); err != nil {
			t.Fatalf("change visibility: %v", err)
		}
		h.Pass(t, vis+settle)
		receiveNone(t, q, queue.Poll)
		wantStats(t, q, queue.Poll, 0, 1)
	})
	t.Run("out of range", func(t *testing.T) {
		send(t, q, fifoB, fifo("g", "d", "x"))
		r := receiveOne(t, q, fifoB, time.Minute)
		for _, d := range []time.Duration{-time.Second, 13 * time.Hour} {
			if err := q.ChangeVisibility(ctx, fifoB, r.ReceiptHandle, d); err == nil {
				t.Errorf("change visibility to %s: no error", d)
			}
		}
	})
}

func testStaleReceipt(t *testing.T, h Harness) {
	fifoA, _ := FIFOQueues(t)
	q := h.New(t)
	ctx := testCtx(t)
	for _, name := range []string{queue.Ingest, fifoA} {
		t.Run(name, func(t *testing.T) {
			send(t, q, name, fifo("g", "d", "x"))
			r := receiveOne(t, q, name, time.Minute)
			if err := q.Delete(ctx, name, r.ReceiptHandle); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if err := q.Delete(ctx, name, r.ReceiptHandle); err != nil {
				t.Errorf("second delete with the same handle = %v, want no error", err)
			}
			err := q.ChangeVisibility(ctx, name, r.ReceiptHandle, 0)
			if !errors.Is(err, queue.ErrStaleReceipt) {
				t.Errorf("change visibility after delete = %v, want queue.ErrStaleReceipt", err)
			}
			if err := q.Delete(ctx, name, ""); err == nil {
				t.Error("delete with an empty handle: no error")
			}
		})
	}
}

func testDeadLetter(t *testing.T, h Harness) {
	fifoA, _ := FIFOQueues(t)
	q := h.New(t)
	for _, name := range []string{queue.Ingest, fifoA} {
		spec, _ := Topology().SpecFor(name)
		t.Run(name, func(t *testing.T) {
			msg := queue.Message{Body: "poison", GroupID: "g", DedupID: "poison-1", Attributes: map[string]string{"why": "test"}}
			send(t, q, name, msg, fifo("g2", "other-1", "healthy"))
			var id string
			for i := 1; i <= spec.MaxReceiveCount; i++ {
				var r queue.Received
				for _, got := range receive(t, q, name, queue.ReceiveOptions{Visibility: time.Minute, Wait: 2 * time.Second}) {
					if got.Body == msg.Body {
						r = got
						continue
					}
					// The healthy message is handled and deleted, as a consumer would.
					if err := q.Delete(testCtx(t), name, got.ReceiptHandle); err != nil {
						t.Fatalf("delete: %v", err)
					}
				}
				if r.ReceiveCount != i {
					t.Fatalf("receive %d: poison message has count %d", i, r.ReceiveCount)
				}
				id = r.MessageID
				if err := q.ChangeVisibility(testCtx(t), name, r.ReceiptHandle, 0); err != nil {
					t.Fatalf("change visibility: %v", err)
				}
			}
			// One receive past the limit moves it instead of handing it out.
			receiveNone(t, q, name)
			wantStats(t, q, name, 0, 0)
			wantStats(t, q, spec.DLQ(), 1, 0)

			moved, err := queue.Redrive(testCtx(t), q, Topology(), spec.DLQ(), 0)
			if err != nil || moved != 1 {
				t.Fatalf("redrive = %d, %v; want 1, nil", moved, err)
			}
			wantStats(t, q, spec.DLQ(), 0, 0)
			back := receiveOne(t, q, name, time.Minute)
			if back.Body != msg.Body || !maps.Equal(back.Attributes, msg.Attributes) {
				t.Errorf("replayed message = %q %v, want %q %v", back.Body, back.Attributes, msg.Body, msg.Attributes)
			}
			if spec.FIFO && back.GroupID != msg.GroupID {
				t.Errorf("replayed group = %q, want %q", back.GroupID, msg.GroupID)
			}
			if back.ReceiveCount != 1 || back.MessageID == id {
				t.Errorf("replayed message has id %s and count %d; want a new message received once", back.MessageID, back.ReceiveCount)
			}
		})
	}
}

func testRedrive(t *testing.T, h Harness) {
	_, fifoB := FIFOQueues(t)
	q := h.New(t)
	for _, spec := range []queue.Spec{mustSpec(queue.Poll), mustSpec(fifoB)} {
		t.Run(spec.Name, func(t *testing.T) {
			var msgs []queue.Message
			for i := range 3 {
				msgs = append(msgs, fifo("g", fmt.Sprintf("d%d", i), fmt.Sprintf("parked-%d", i)))
			}
			send(t, q, spec.DLQ(), msgs...)

			moved, err := queue.Redrive(testCtx(t), q, Topology(), spec.DLQ(), 2)
			if err != nil || moved != 2 {
				t.Fatalf("redrive with limit 2 = %d, %v; want 2, nil", moved, err)
			}
			wantStats(t, q, spec.DLQ(), 1, 0)
			moved, err = queue.Redrive(testCtx(t), q, Topology(), spec.DLQ(), 0)
			if err != nil || moved != 1 {
				t.Fatalf("redrive the rest = %d, %v; want 1, nil", moved, err)
			}
			if moved, err := queue.Redrive(testCtx(t), q, Topology(), spec.DLQ(), 0); err != nil || moved != 0 {
				t.Fatalf("redrive of an empty DLQ = %d, %v; want 0, nil", moved, err)
			}
			got := bodies(drain(t, q, spec.Name, 3))
			if !spec.FIFO {
				slices.Sort(got)
			}
			if want := []string{"parked-0", "parked-1", "parked-2"}; !slices.Equal(got, want) {
				t.Fatalf("source received %v, want %v", got, want)
			}
		})
	}
	t.Run("source queue refused", func(t *testing.T) {
		if _, err := queue.Redrive(testCtx(t), q, Topology(), queue.Ingest, 0); !errors.Is(err, queue.ErrUnknownQueue) {
			t.Fatalf("redrive of a source queue = %v, want queue.ErrUnknownQueue", err)
		}
	})
}

// testDeadLettersOneByOne: a dead-letter queue can be looked into without taking anything out
// of it, and one message of it can be taken to be discarded or replayed.
func testDeadLettersOneByOne(t *testing.T, h Harness) {
	fifoA, _ := FIFOQueues(t)
	q := h.New(t)
	for _, spec := range []queue.Spec{mustSpec(queue.Ingest), mustSpec(fifoA)} {
		t.Run(spec.Name, func(t *testing.T) {
			var msgs []queue.Message
			for i := range 3 {
				m := fifo(fmt.Sprintf("g%d", i), fmt.Sprintf("d%d", i), fmt.Sprintf("dead-%d", i))
				m.Attributes = map[string]string{"account": "acme"}
				msgs = append(msgs, m)
			}
			send(t, q, spec.DLQ(), msgs...)
			peek := func() map[string]queue.Received {
				t.Helper()
				got, err := queue.Peek(testCtx(t), q, Topology(), spec.DLQ(), 10)
				if err != nil {
					t.Fatalf("peek: %v", err)
				}
				out := map[string]queue.Received{}
				for _, r := range got {
					out[r.Body] = r
				}
				return out
			}
			seen := peek()
			if len(seen) != 3 || seen["dead-1"].Attributes["account"] != "acme" {
				t.Fatalf("peek saw %v, want the three dead letters with their attributes", slices.Sorted(maps.Keys(seen)))
			}
			// Looking took nothing: they are all still there, and visible.
			if again := peek(); len(again) != 3 {
				t.Fatalf("a second look saw %d, want 3", len(again))
			}

			r, found, err := queue.Take(testCtx(t), q, Topology(), spec.DLQ(), seen["dead-1"].MessageID, 10)
			if err != nil || !found || r.Body != "dead-1" {
				t.Fatalf("take dead-1 = %q %v %v", r.Body, found, err)
			}
			if err := q.Delete(testCtx(t), spec.DLQ(), r.ReceiptHandle); err != nil {
				t.Fatalf("delete the taken message: %v", err)
			}
			r, found, err = queue.Take(testCtx(t), q, Topology(), spec.DLQ(), seen["dead-2"].MessageID, 10)
			if err != nil || !found {
				t.Fatalf("take dead-2 = %v %v", found, err)
			}
			if err := queue.Requeue(testCtx(t), q, Topology(), spec.DLQ(), r); err != nil {
				t.Fatalf("requeue dead-2: %v", err)
			}
			back := drain(t, q, spec.Name, 1)
			if back[0].Body != "dead-2" || back[0].Attributes["account"] != "acme" || (spec.FIFO && back[0].GroupID != "g2") {
				t.Fatalf("the source queue got %+v, want dead-2 with its attributes and group", back[0])
			}
			if _, found, err := queue.Take(testCtx(t), q, Topology(), spec.DLQ(), "no-such-message", 10); err != nil || found {
				t.Fatalf("take of an unknown message = %v %v, want not found", found, err)
			}
			if left := peek(); len(left) != 1 || left["dead-0"].Body != "dead-0" {
				t.Fatalf("left in the dead-letter queue: %v, want dead-0 only", slices.Sorted(maps.Keys(left)))
			}
		})
	}
	t.Run("source queue refused", func(t *testing.T) {
		if _, err := queue.Peek(testCtx(t), q, Topology(), queue.Ingest, 10); !errors.Is(err, queue.ErrUnknownQueue) {
			t.Fatalf("peek into a source queue = %v, want queue.ErrUnknownQueue", err)
		}
	})
}

func mustSpec(name string) queue.Spec {
	s, ok := Topology().SpecFor(name)
	if !ok {
		panic("no spec for " + name)
	}
	return s
}

func testFIFOOrder(t *testing.T, h Harness) {
	fifoA, _ := FIFOQueues(t)
	q := h.New(t)
	// 25 messages over two groups, interleaved and sent in one call (three batches).
	var msgs []queue.Message
	for i := range 25 {
		g := []string{"a", "b"}[i%2]
		msgs = append(msgs, fifo(g, fmt.Sprintf("d%02d", i), fmt.Sprintf("%s-%02d", g, i/2)))
	}
	send(t, q, fifoA, msgs...)
	perGroup := map[string][]string{}
	for _, r := range drain(t, q, fifoA, 25) {
		perGroup[r.GroupID] = append(perGroup[r.GroupID], r.Body)
	}
	for g, n := range map[string]int{"a": 13, "b": 12} {
		var want []string
		for i := range n {
			want = append(want, fmt.Sprintf("%s-%02d", g, i))
		}
		if !slices.Equal(perGroup[g], want) {
			t.Errorf("group %s came as %v, want %v", g, perGroup[g], want)
		}
	}
}

func testFIFOGroupLock(t *testing.T, h Harness) {
	fifoA, fifoB := FIFOQueues(t)
	q := h.New(t)
	ctx := testCtx(t)
	send(t, q, fifoA, fifo("a", "a0", "a0"), fifo("a", "a1", "a1"), fifo("b", "b0", "b0"))

	a0 := receiveOne(t, q, fifoA, time.Minute)
	if a0.Body != "a0" {
		t.Fatalf("first receive got %q, want the oldest, a0", a0.Body)
	}
	// Group a is locked while a0 is in flight; group b is not.
	got := receive(t, q, fifoA, queue.ReceiveOptions{Visibility: vis})
	if b := bodies(got); !slices.Equal(b, []string{"b0"}) {
		t.Fatalf("while a0 is in flight got %v, want [b0]", b)
	}
	receiveNone(t, q, fifoA)

	if err := q.Delete(ctx, fifoA, a0.ReceiptHandle); err != nil {
		t.Fatalf("delete a0: %v", err)
	}
	if a1 := receiveOne(t, q, fifoA, time.Minute); a1.Body != "a1" {
		t.Fatalf("after deleting a0 got %q, want a1", a1.Body)
	}
	// Group b unlocks when b0's visibility runs out, and b0 comes again.
	h.Pass(t, vis+settle)
	if b0 := receiveOne(t, q, fifoA, time.Minute); b0.Body != "b0" || b0.ReceiveCount != 2 {
		t.Fatalf("after b0's visibility ran out got %q (count %d), want b0 (count 2)", b0.Body, b0.ReceiveCount)
	}
	// Several messages of one group come in one receive, in order.
	send(t, q, fifoB, fifo("c", "c0", "c0"), fifo("c", "c1", "c1"), fifo("c", "c2", "c2"))
	got = receive(t, q, fifoB, queue.ReceiveOptions{Visibility: time.Minute, Wait: 2 * time.Second})
	if b := bodies(got); !slices.Equal(b, []string{"c0", "c1", "c2"}) {
		t.Fatalf("one receive of group c got %v, want [c0 c1 c2]", b)
	}
}

func testFIFODedup(t *testing.T, h Harness) {
	fifoA, fifoB := FIFOQueues(t)
	q := h.New(t)
	// The original stays in the queue while its duplicates arrive: moto only compares against
	// messages still queued, while SQS remembers an id for the whole window.
	send(t, q, fifoA, fifo("g", "fact-1", "first"))
	send(t, q, fifoA, fifo("g", "fact-1", "second"), fifo("h", "fact-1", "other group"))
	send(t, q, fifoA, fifo("g", "fact-2", "third"), fifo("g", "fact-2", "third again"))
	got := bodies(drain(t, q, fifoA, 2))
	if want := []string{"first", "third"}; !slices.Equal(got, want) {
		t.Fatalf("received %v, want %v", got, want)
	}
	// Dedup is per queue: the same id on another FIFO queue is a different message.
	send(t, q, fifoB, fifo("g", "fact-1", "elsewhere"))
	if r := receiveOne(t, q, fifoB, time.Minute); r.Body != "elsewhere" {
		t.Fatalf("got %q, want the message sent to %s", r.Body, fifoB)
	}
	receiveNone(t, q, fifoA)
}

func testStats(t *testing.T, h Harness) {
	_, fifoB := FIFOQueues(t)
	q := h.New(t)
	for _, name := range Topology().Names() {
		wantStats(t, q, name, 0, 0)
	}
	send(t, q, fifoB, fifo("a", "1", "1"), fifo("b", "2", "2"), fifo("c", "3", "3"))
	got := receive(t, q, fifoB, queue.ReceiveOptions{Max: 1, Visibility: time.Minute, Wait: time.Second})
	if len(got) != 1 {
		t.Fatalf("received %d, want 1", len(got))
	}
	wantStats(t, q, fifoB, 2, 1)
	wantStats(t, q, fifoB+queue.DLQSuffix, 0, 0)
}

func testUnknownQueue(t *testing.T, h Harness) {
	q := h.New(t)
	ctx := testCtx(t)
	for _, name := range []string{"nope", "", "ontraport.fifo", "ingest-dlq-dlq"} {
		ops := map[string]error{
			"send":              q.Send(ctx, name, []queue.Message{{Body: "x"}}),
			"delete":            q.Delete(ctx, name, "handle"),
			"change visibility": q.ChangeVisibility(ctx, name, "handle", 0),
		}
		_, ops["receive"] = q.Receive(ctx, name, queue.ReceiveOptions{})
		_, ops["stats"] = q.Stats(ctx, name)
		for op, err := range ops {
			if !errors.Is(err, queue.ErrUnknownQueue) {
				t.Errorf("%s on %q = %v, want queue.ErrUnknownQueue", op, name, err)
			}
		}
	}
}

func testReceiveOptions(t *testing.T, h Harness) {
	q := h.New(t)
	for _, opt := range []queue.ReceiveOptions{
		{Max: 11},
		{Max: -1},
		{Wait: 21 * time.Second},
		{Visibility: 13 * time.Hour},
	} {
		if _, err := q.Receive(testCtx(t), queue.Ingest, opt); err == nil {
			t.Errorf("receive with %+v: no error", opt)
		}
	}
}

func testLongPollWakes(t *testing.T, h Harness) {
	q := h.New(t)
	ctx := testCtx(t)
	errc := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		errc <- q.Send(ctx, queue.Ingest, []queue.Message{{Body: "wake"}})
	}()
	start := time.Now()
	got := receive(t, q, queue.Ingest, queue.ReceiveOptions{Wait: 10 * time.Second})
	took := time.Since(start)
	if err := <-errc; err != nil {
		t.Fatalf("send: %v", err)
	}
	if len(got) != 1 || got[0].Body != "wake" {
		t.Fatalf("long poll got %v, want [wake]", bodies(got))
	}
	if took > 3*time.Second {
		t.Fatalf("long poll returned %s after the send; want it to wake at once", took)
	}
}

func testLongPollTimesOut(t *testing.T, h Harness) {
	q := h.New(t)
	start := time.Now()
	got := receive(t, q, queue.Poll, queue.ReceiveOptions{Wait: time.Second})
	took := time.Since(start)
	if len(got) != 0 {
		t.Fatalf("got %d messages from an empty queue", len(got))
	}
	if took < 800*time.Millisecond || took > 5*time.Second {
		t.Fatalf("a 1 s long poll on an empty queue returned after %s", took)
	}
}

func testLongPollContext(t *testing.T, h Harness) {
	q := h.New(t)
	ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := q.Receive(ctx, queue.Poll, queue.ReceiveOptions{Wait: 10 * time.Second})
	if err == nil {
		t.Fatal("a long poll whose context ended returned no error")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("a long poll whose context ended after 300ms returned after %s", took)
	}
}
