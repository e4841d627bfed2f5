package queue_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/cartrelay/cartrelay/shared/queue/queuetest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/queue"
)

func TestValidateMessages(t *testing.T) {
	fifoA, fifoB := queuetest.FIFOQueues(t)
	tests := []struct {
		name    string
		queue   string
		msgs    []queue.Message
		wantErr error
		wantIn  string
	}{
		{"standard ok", queue.Ingest, []queue.Message{{Body: "a"}, {Body: "b", GroupID: "ignored"}}, nil, ""},
		{"fifo ok", fifoA, []queue.Message{{Body: "a", GroupID: "g", DedupID: "d"}}, nil, ""},
		{"dlq ok", fifoB + queue.DLQSuffix, []queue.Message{{Body: "a", GroupID: "g", DedupID: "d"}}, nil, ""},
		{"none", queue.Poll, nil, nil, ""},
		{"unknown queue", "orders", []queue.Message{{Body: "a"}}, queue.ErrUnknownQueue, "known: ingest"},
		{"empty body", queue.Ingest, []queue.Message{{Body: "a"}, {Body: ""}}, queue.ErrInvalid, "m1 to ingest has an empty body"},
		{"body at the limit", queue.Ingest, []queue.Message{{Body: strings.Repeat("x", queue.MaxBodyBytes)}}, nil, ""},
		{"body over the limit", queue.Ingest, []queue.Message{{ID: "big", Body: strings.Repeat("x", queue.MaxBodyBytes+1)}}, queue.ErrInvalid, "big to ingest is 262145 bytes"},
		{"attributes count toward the limit", queue.Ingest, []queue.Message{{Body: strings.Repeat("x", queue.MaxBodyBytes-10), Attributes: map[string]string{"key": "value"}}}, queue.ErrInvalid, "over the 262144-byte limit"},
		{"fifo without group", fifoB, []queue.Message{{Body: "a", DedupID: "d"}}, queue.ErrInvalid, "needs a group id"},
		{"fifo dlq without dedup", fifoA + queue.DLQSuffix, []queue.Message{{Body: "a", GroupID: "g"}}, queue.ErrInvalid, "needs a deduplication id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := queuetest.Topology().ValidateMessages(tc.queue, tc.msgs)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("ValidateMessages = %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantIn) {
				t.Fatalf("ValidateMessages = %v; want %v mentioning %q", err, tc.wantErr, tc.wantIn)
			}
		})
	}
}

func TestValidateMessagesFillsIDs(t *testing.T) {
	msgs := []queue.Message{{Body: "a"}, {ID: "mine", Body: "b"}, {Body: "c"}}
	if err := queuetest.Topology().ValidateMessages(queue.Ingest, msgs); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.ID)
	}
	if want := []string{"m0", "mine", "m2"}; !slices.Equal(ids, want) {
		t.Fatalf("ids = %v, want %v", ids, want)
	}
}

func TestChunks(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []int
	}{
		{0, nil},
		{1, []int{1}},
		{10, []int{10}},
		{11, []int{10, 1}},
		{25, []int{10, 10, 5}},
	} {
		msgs := make([]queue.Message, tc.n)
		for i := range msgs {
			msgs[i].Body = fmt.Sprint(i)
		}
		var sizes []int
		var flat []queue.Message
		for _, c := range queue.Chunks(msgs) {
			sizes = append(sizes, len(c))
			flat = append(flat, c...)
		}
		if !slices.Equal(sizes, tc.want) {
			t.Errorf("Chunks of %d = sizes %v, want %v", tc.n, sizes, tc.want)
		}
		if !slices.EqualFunc(flat, msgs, func(a, b queue.Message) bool { return a.Body == b.Body }) {
			t.Errorf("Chunks of %d lost or reordered messages", tc.n)
		}
	}
}

func TestSourceOfAndSpecFor(t *testing.T) {
	fifoA, fifoB := queuetest.FIFOQueues(t)
	for _, tc := range []struct {
		in     string
		source string
		ok     bool
	}{
		{"ingest-dlq", queue.Ingest, true},
		{fifoA + queue.DLQSuffix, fifoA, true},
		{"poll-dlq", queue.Poll, true},
		{"ingest", "", false},
		{"orders-dlq", "orders", false},
		{"", "", false},
	} {
		src, ok := queuetest.Topology().SourceOf(tc.in)
		if ok != tc.ok || (ok && src != tc.source) {
			t.Errorf("SourceOf(%q) = %q, %v; want %q, %v", tc.in, src, ok, tc.source, tc.ok)
		}
	}
	dlq, ok := queuetest.Topology().SpecFor(fifoB + queue.DLQSuffix)
	if !ok || !dlq.FIFO || dlq.MaxReceiveCount != 0 || dlq.Name != fifoB+queue.DLQSuffix {
		t.Errorf("SpecFor(%s-dlq) = %+v, %v; want a FIFO spec without redrive", fifoB, dlq, ok)
	}
	if names := queuetest.Topology().Names(); len(names) != 2*len(queuetest.Topology()) || names[0] != queue.Ingest || names[len(names)-1] != "poll-dlq" {
		t.Errorf("Names() = %v", names)
	}
}

func TestSendErrorMessage(t *testing.T) {
	e := &queue.SendError{Queue: "ingest"}
	for i := range 5 {
		e.Failed = append(e.Failed, queue.FailedEntry{ID: fmt.Sprintf("m%d", i), Code: "InternalError", Reason: "boom"})
	}
	got := e.Error()
	if !strings.HasPrefix(got, "queue ingest: 5 message(s) not queued; m0: InternalError boom") || !strings.HasSuffix(got, "; and 2 more") {
		t.Errorf("Error() = %q", got)
	}
	if ids := e.FailedIDs(); len(ids) != 5 || !ids["m4"] {
		t.Errorf("FailedIDs() = %v", ids)
	}
}

// memQueue is the least queue Redrive needs: receive hands out whatever is queued, in order.
type memQueue struct {
	queued   map[string][]queue.Received
	next     int
	failSend func(msgs []queue.Message) error
	deleted  []string
}

func (m *memQueue) Send(_ context.Context, name string, msgs []queue.Message) error {
	if err := queuetest.Topology().ValidateMessages(name, msgs); err != nil {
		return err
	}
	var sendErr error
	failed := map[string]bool{}
	if m.failSend != nil {
		sendErr = m.failSend(msgs)
		var se *queue.SendError
		if errors.As(sendErr, &se) {
			failed = se.FailedIDs()
		} else if sendErr != nil {
			return sendErr
		}
	}
	for _, msg := range msgs {
		if failed[msg.ID] {
			continue
		}
		m.next++
		m.queued[name] = append(m.queued[name], queue.Received{
			MessageID: fmt.Sprintf("id%d", m.next), ReceiptHandle: fmt.Sprintf("rh%d", m.next),
			Body: msg.Body, GroupID: msg.GroupID, DedupID: msg.DedupID, Attributes: msg.Attributes,
		})
	}
	return sendErr
}

func (m *memQueue) Receive(_ context.Context, name string, opt queue.ReceiveOptions) ([]queue.Received, error) {
	n := min(opt.Max, len(m.queued[name]))
	got := slices.Clone(m.queued[name][:n])
	m.queued[name] = m.queued[name][n:]
	return got, nil
}

func (m *memQueue) Delete(_ context.Context, _ string, rh string) error {
	m.deleted = append(m.deleted, rh)
	return nil
}

func (m *memQueue) ChangeVisibility(context.Context, string, string, time.Duration) error {
	return nil
}

func (m *memQueue) Stats(_ context.Context, name string) (queue.Stats, error) {
	return queue.Stats{Queue: name, Visible: len(m.queued[name])}, nil
}

func TestRedrive(t *testing.T) {
	park := func(q *memQueue, dlq string, n int) {
		for i := range n {
			if err := q.Send(context.Background(), dlq, []queue.Message{{Body: fmt.Sprintf("b%d", i), GroupID: "g", DedupID: fmt.Sprintf("fact-%d", i)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name       string
		dlq        string
		parked     int
		limit      int
		failSend   func([]queue.Message) error
		wantMoved  int
		wantErr    bool
		wantSource []string
	}{
		{"all of a standard DLQ", "ingest-dlq", 23, 0, nil, 23, false, nil},
		{"limit", "ingest-dlq", 23, 12, nil, 12, false, nil},
		{"fifo keeps order and renames dedup ids", "ontraport-dlq", 3, 0, nil, 3, false, []string{"b0", "b1", "b2"}},
		{"empty", "poll-dlq", 0, 0, nil, 0, false, nil},
		{"partial send failure keeps the failed ones parked", "ingest-dlq", 3, 0,
			func(msgs []queue.Message) error {
				return &queue.SendError{Queue: "ingest", Failed: []queue.FailedEntry{{ID: msgs[1].ID, Code: "InternalError"}}}
			}, 2, true, nil},
		{"whole send failure moves nothing", "ingest-dlq", 3, 0,
			func([]queue.Message) error { return errors.New("network down") }, 0, true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := &memQueue{queued: map[string][]queue.Received{}}
			park(q, tc.dlq, tc.parked)
			parked := slices.Clone(q.queued[tc.dlq])
			q.failSend = tc.failSend
			moved, err := queue.Redrive(context.Background(), q, queuetest.Topology(), tc.dlq, tc.limit)
			if moved != tc.wantMoved || (err != nil) != tc.wantErr {
				t.Fatalf("Redrive = %d, %v; want %d moved, error %v", moved, err, tc.wantMoved, tc.wantErr)
			}
			if len(q.deleted) != moved {
				t.Errorf("deleted %d from the DLQ, moved %d: a message must leave the DLQ exactly when its copy is queued", len(q.deleted), moved)
			}
			src, _ := queuetest.Topology().SourceOf(tc.dlq)
			if len(q.queued[src]) != moved {
				t.Errorf("source has %d messages, want %d", len(q.queued[src]), moved)
			}
			for i, r := range q.queued[src] {
				if tc.wantSource == nil {
					break
				}
				if r.Body != tc.wantSource[i] {
					t.Errorf("source message %d = %q, want %q", i, r.Body, tc.wantSource[i])
				}
				if r.DedupID == parked[i].DedupID || !strings.HasPrefix(r.DedupID, parked[i].DedupID) {
					t.Errorf("replayed dedup id %q: want a new id derived from %q", r.DedupID, parked[i].DedupID)
				}
			}
		})
	}
	t.Run("only a DLQ", func(t *testing.T) {
		_, err := queue.Redrive(context.Background(), &memQueue{}, queuetest.Topology(), queue.Ingest, 0)
		if !errors.Is(err, queue.ErrUnknownQueue) {
			t.Fatalf("Redrive of a source queue = %v", err)
		}
	})
}
