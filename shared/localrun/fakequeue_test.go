package localrun

import (
	"context"
	"errors"
	"fmt"
	"github.com/cartrelay/cartrelay/shared/queue/queuetest"
	"slices"
	"sync"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// fakeQueue is an in-memory queue.Queue with SQS's rules: visibility timeouts on the
// injected clock, receive counts, the move to the DLQ when a message is due for a receive
// past its queue's MaxReceiveCount, FIFO group locking and deduplication, and receipt
// handles that go stale on the next receive.
type fakeQueue struct {
	clock clock.Clock

	mu      sync.Mutex
	seq     int
	queues  map[string][]*fakeMsg
	dedup   map[string]time.Time // queue + "\x00" + dedup id → expiry
	wake    chan struct{}        // closed and replaced whenever messages may have appeared
	failRcv int                  // Receive calls still to fail
	rcvErrs int                  // Receive calls that failed
}

type fakeMsg struct {
	id, body, group, dedupID string
	attrs                    map[string]string
	sentAt, firstReceived    time.Time
	visibleAt                time.Time
	receives                 int
	receipt                  string
}

func newFakeQueue(c clock.Clock) *fakeQueue {
	return &fakeQueue{clock: c, queues: map[string][]*fakeMsg{}, dedup: map[string]time.Time{}, wake: make(chan struct{})}
}

func (f *fakeQueue) notify() {
	close(f.wake)
	f.wake = make(chan struct{})
}

func (f *fakeQueue) Send(ctx context.Context, q string, msgs []queue.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("send to %s: %w", q, err)
	}
	msgs = slices.Clone(msgs)
	if err := queuetest.Topology().ValidateMessages(q, msgs); err != nil {
		return err
	}
	spec, _ := queuetest.Topology().SpecFor(q)
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now()
	for _, m := range msgs {
		if spec.FIFO {
			key := q + "\x00" + m.DedupID
			if exp, ok := f.dedup[key]; ok && now.Before(exp) {
				continue
			}
			f.dedup[key] = now.Add(queue.DedupWindow)
		}
		f.seq++
		f.queues[q] = append(f.queues[q], &fakeMsg{
			id: fmt.Sprintf("msg-%04d", f.seq), body: m.Body, group: m.GroupID, dedupID: m.DedupID,
			attrs: m.Attributes, sentAt: now, visibleAt: now,
		})
	}
	f.notify()
	return nil
}

func (f *fakeQueue) Receive(ctx context.Context, q string, opt queue.ReceiveOptions) ([]queue.Received, error) {
	spec, ok := queuetest.Topology().SpecFor(q)
	if !ok {
		return nil, fmt.Errorf("%w %q", queue.ErrUnknownQueue, q)
	}
	deadline := time.Now().Add(opt.Wait)
	for {
		f.mu.Lock()
		if f.failRcv > 0 {
			f.failRcv--
			f.rcvErrs++
			f.mu.Unlock()
			return nil, errors.New("fake: receive failed")
		}
		got := f.take(spec, opt)
		wake := f.wake
		f.mu.Unlock()
		if len(got) > 0 || !time.Now().Before(deadline) {
			return got, nil
		}
		// Visibility runs on the injected clock, which may move without a send: poll as
		// well as wait for a wake-up.
		t := time.NewTimer(min(5*time.Millisecond, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("receive from %s: %w", q, ctx.Err())
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// take must be called with f.mu held.
func (f *fakeQueue) take(spec queue.Spec, opt queue.ReceiveOptions) []queue.Received {
	now := f.clock.Now()
	limit := opt.Max
	if limit == 0 {
		limit = queue.MaxBatch
	}
	vis := opt.Visibility
	if vis <= 0 {
		vis = spec.VisibilityTimeout
	}
	// A FIFO group with a message in flight hands out nothing else until it is back.
	locked := map[string]bool{}
	if spec.FIFO {
		for _, m := range f.queues[spec.Name] {
			if m.receives > 0 && m.visibleAt.After(now) {
				locked[m.group] = true
			}
		}
	}
	var out []queue.Received
	var keep []*fakeMsg
	for _, m := range f.queues[spec.Name] {
		if len(out) == limit || m.visibleAt.After(now) || locked[m.group] {
			keep = append(keep, m)
			continue
		}
		if spec.MaxReceiveCount > 0 && m.receives >= spec.MaxReceiveCount {
			m.receipt = ""
			m.visibleAt = now
			f.queues[spec.DLQ()] = append(f.queues[spec.DLQ()], m)
			continue
		}
		m.receives++
		if m.firstReceived.IsZero() {
			m.firstReceived = now
		}
		f.seq++
		m.receipt = fmt.Sprintf("rh-%s-%d", m.id, f.seq)
		m.visibleAt = now.Add(vis)
		out = append(out, queue.Received{
			MessageID: m.id, ReceiptHandle: m.receipt, Body: m.body, GroupID: m.group, DedupID: m.dedupID,
			Attributes: m.attrs, ReceiveCount: m.receives, SentAt: m.sentAt, FirstReceivedAt: m.firstReceived,
		})
		keep = append(keep, m)
	}
	f.queues[spec.Name] = keep
	return out
}

func (f *fakeQueue) Delete(ctx context.Context, q, receipt string) error {
	if _, ok := queuetest.Topology().SpecFor(q); !ok {
		return fmt.Errorf("%w %q", queue.ErrUnknownQueue, q)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queues[q] = slices.DeleteFunc(f.queues[q], func(m *fakeMsg) bool { return receipt != "" && m.receipt == receipt })
	return nil
}

func (f *fakeQueue) ChangeVisibility(ctx context.Context, q, receipt string, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now()
	for _, m := range f.queues[q] {
		if receipt != "" && m.receipt == receipt && m.visibleAt.After(now) {
			m.visibleAt = now.Add(d)
			f.notify()
			return nil
		}
	}
	return fmt.Errorf("fake: %s: receipt %q is not in flight", q, receipt)
}

func (f *fakeQueue) Stats(ctx context.Context, q string) (queue.Stats, error) {
	if _, ok := queuetest.Topology().SpecFor(q); !ok {
		return queue.Stats{}, fmt.Errorf("%w %q", queue.ErrUnknownQueue, q)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now()
	s := queue.Stats{Queue: q}
	for _, m := range f.queues[q] {
		if m.visibleAt.After(now) {
			s.InFlight++
		} else {
			s.Visible++
		}
	}
	return s, nil
}

// snapshot is a test's view of one message.
type snapshot struct {
	ID, Body string
	Receives int
	InFlight bool
}

// contents lists every message of q, visible or in flight, in queue order.
func (f *fakeQueue) contents(q string) []snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.clock.Now()
	var out []snapshot
	for _, m := range f.queues[q] {
		out = append(out, snapshot{ID: m.id, Body: m.body, Receives: m.receives, InFlight: m.visibleAt.After(now)})
	}
	return out
}

func (f *fakeQueue) failReceives(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failRcv = n
}

func (f *fakeQueue) receiveErrors() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rcvErrs
}

var _ queue.Queue = (*fakeQueue)(nil)
