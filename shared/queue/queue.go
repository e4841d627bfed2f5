// Package queue is cartrelay's port onto its message queues, with two adapters: queue/sqs
// (Amazon SQS, in AWS) and queue/embedded (durable, in the same SQLite file as the embedded
// store). The contract suite in queue/queuetest holds both to SQS's behaviour.
//
// Callers use logical names (ingest, poll, each destination's queue and each one's -dlq), of
// the Topology they are given. The adapters map them to physical queues: an SQS FIFO queue's name must end in ".fifo".
package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Logical queue names (docs/architecture.md, Queues).
// The destinations' queues are named by their registrations (shared/destinations, Queues).
const (
	Ingest = "ingest"
	Poll   = "poll"
)

// DLQSuffix turns a queue's logical name into its dead-letter queue's.
const DLQSuffix = "-dlq"

// MaxBatch is SQS's limit on entries per SendMessageBatch, ReceiveMessage and DeleteMessageBatch.
const MaxBatch = 10

// MaxBodyBytes is SQS's limit on one message (256 KiB).
const MaxBodyBytes = 256 * 1024

// DedupWindow is how long a FIFO queue remembers a deduplication id.
const DedupWindow = 5 * time.Minute

// Spec describes one source queue and its DLQ.
type Spec struct {
	Name string
	FIFO bool
	// MaxReceiveCount is how many receives a message gets before it moves to the DLQ.
	MaxReceiveCount int
	// VisibilityTimeout is the default time a received message stays hidden.
	VisibilityTimeout time.Duration
}

// DLQ is the logical name of the spec's dead-letter queue.
func (s Spec) DLQ() string { return s.Name + DLQSuffix }

// Topology is the queue layout of docs/architecture.md, Queues: the fixed queues (ingest and
// poll) around one queue per registered destination. The destination registry builds it
// (destinations.Queues), so a new destination brings its own queue without an edit here; the
// adapters and every caller that checks a logical name take it as a value.
type Topology []Spec

// Layout is the topology with the destinations' queues between ingest and poll. The
// visibility timeouts match template.yaml (at least six times each consumer's timeout, as AWS
// recommends for SQS event sources).
func Layout(destinations ...Spec) Topology {
	t := Topology{{Name: Ingest, MaxReceiveCount: 5, VisibilityTimeout: 3 * time.Minute}}
	t = append(t, destinations...)
	return append(t, Spec{Name: Poll, MaxReceiveCount: 5, VisibilityTimeout: 15 * time.Minute})
}

// DestinationSpec is the spec of a destination's queue: FIFO, grouped per contact.
//
// Its MaxReceiveCount is high because a FIFO receive also hands out the messages queued behind
// a contact's failed fact, which the forwarder holds back unattempted: their receive count
// grows with their predecessors' failures. The forwarder gives up on a fact after its own
// failures (app.GiveUpAfter, 10) and parks it; the dead-letter queue is left for messages the
// forwarder cannot settle at all (it crashes, or the table is unreachable).
func DestinationSpec(name string) Spec {
	return Spec{Name: name, FIFO: true, MaxReceiveCount: 30, VisibilityTimeout: 3 * time.Minute}
}

// SpecFor finds the spec of a logical source queue or DLQ name. A DLQ's spec has the DLQ's
// name, the source's FIFO flag and no redrive (MaxReceiveCount 0).
func (t Topology) SpecFor(name string) (Spec, bool) {
	for _, s := range t {
		if s.Name == name {
			return s, true
		}
		if s.DLQ() == name {
			return Spec{Name: name, FIFO: s.FIFO, VisibilityTimeout: s.VisibilityTimeout}, true
		}
	}
	return Spec{}, false
}

// SourceOf returns the source queue a DLQ redrives to.
func (t Topology) SourceOf(dlq string) (string, bool) {
	src, ok := strings.CutSuffix(dlq, DLQSuffix)
	if !ok {
		return "", false
	}
	_, known := t.SpecFor(src)
	return src, known
}

// Names lists every logical queue, sources then DLQs.
func (t Topology) Names() []string {
	var out []string
	for _, s := range t {
		out = append(out, s.Name)
	}
	for _, s := range t {
		out = append(out, s.DLQ())
	}
	return out
}

// Message is one message to send.
type Message struct {
	// ID identifies the entry within one Send call (SQS's batch entry id); Send fills it in
	// when empty. It is not the message id the queue assigns.
	ID   string
	Body string
	// GroupID and DedupID are required on FIFO queues and ignored on standard ones.
	GroupID string
	DedupID string
	// Attributes are string message attributes.
	Attributes map[string]string
}

// Received is a message handed out by Receive.
type Received struct {
	MessageID     string
	ReceiptHandle string
	Body          string
	GroupID       string
	DedupID       string
	Attributes    map[string]string
	// ReceiveCount includes this receive.
	ReceiveCount int
	SentAt       time.Time
	// FirstReceivedAt is the time of the first receive.
	FirstReceivedAt time.Time
}

// ReceiveOptions tunes one Receive.
type ReceiveOptions struct {
	// Max is how many messages at most (1..10); 0 means 10.
	Max int
	// Visibility overrides the queue's visibility timeout when positive.
	Visibility time.Duration
	// Wait is the long-poll time; 0 returns at once.
	Wait time.Duration
}

// SQS's limits. Both adapters check them before acting, so code that works against the
// embedded queues also works against SQS, and an out-of-range value fails with a message
// naming the queue.
const (
	maxVisibility = 12 * time.Hour
	maxWait       = 20 * time.Second
)

// CheckReceive checks opt for a Receive from queue and returns how many messages to ask for.
func CheckReceive(queue string, opt ReceiveOptions) (max int, err error) {
	max = opt.Max
	if max == 0 {
		max = MaxBatch
	}
	if max < 0 || max > MaxBatch {
		return 0, fmt.Errorf("receive from queue %s: at most %d messages can be received at once, not %d", queue, MaxBatch, opt.Max)
	}
	if opt.Visibility < 0 || opt.Visibility > maxVisibility {
		return 0, fmt.Errorf("receive from queue %s: visibility %s is outside 0..%s", queue, opt.Visibility, maxVisibility)
	}
	if opt.Wait < 0 || opt.Wait > maxWait {
		return 0, fmt.Errorf("receive from queue %s: wait %s is outside 0..%s", queue, opt.Wait, maxWait)
	}
	return max, nil
}

// CheckChangeVisibility checks the arguments of a ChangeVisibility on queue.
func CheckChangeVisibility(queue, receiptHandle string, visibility time.Duration) error {
	if visibility < 0 || visibility > maxVisibility {
		return fmt.Errorf("change visibility on queue %s: %s is outside 0..%s", queue, visibility, maxVisibility)
	}
	if receiptHandle == "" {
		return fmt.Errorf("change visibility on queue %s: the receipt handle is empty", queue)
	}
	return nil
}

// Stats counts a queue's messages, as SQS's approximate attributes do.
type Stats struct {
	Queue    string `json:"queue"`
	Visible  int    `json:"visible"`
	InFlight int    `json:"in_flight"`
	Delayed  int    `json:"delayed"`
}

// Queue is the port. Implementations must be safe for concurrent use.
type Queue interface {
	// Send enqueues msgs, in batches of MaxBatch. If some entries fail, the others are sent
	// and the error is *SendError naming the failed entries; callers must treat those as
	// not queued.
	Send(ctx context.Context, queue string, msgs []Message) error
	// Receive hands out visible messages and hides them for the visibility timeout. A message
	// received more than its queue's MaxReceiveCount times moves to the DLQ instead.
	Receive(ctx context.Context, queue string, opt ReceiveOptions) ([]Received, error)
	// Delete removes a received message. Deleting with a stale receipt handle is not an error
	// on standard queues (as in SQS).
	Delete(ctx context.Context, queue string, receiptHandle string) error
	// ChangeVisibility sets how long until a received message is visible again (0 = now).
	ChangeVisibility(ctx context.Context, queue string, receiptHandle string, visibility time.Duration) error
	// Stats returns the approximate counts of a queue.
	Stats(ctx context.Context, queue string) (Stats, error)
}

// BatchDeleter is implemented by adapters that delete several received messages of one queue in
// one call, as SQS's DeleteMessageBatch does: the embedded queue, where they are then one write
// instead of one each.
type BatchDeleter interface {
	// DeleteBatch removes received messages of queue, at most MaxBatch of them, all or none.
	// A stale receipt handle is ignored, as Delete ignores it.
	DeleteBatch(ctx context.Context, queue string, receiptHandles []string) error
}

// Ager is implemented by adapters that can tell when a queue's oldest waiting message was sent:
// the embedded queue. SQS publishes that age only as the CloudWatch metric
// ApproximateAgeOfOldestMessage, not as a queue attribute, so its adapter does not.
type Ager interface {
	// OldestWaiting is when the oldest message of queue that is not in flight was sent; ok is
	// false when none is waiting.
	OldestWaiting(ctx context.Context, queue string) (sentAt time.Time, ok bool, err error)
}

// ErrUnknownQueue is wrapped when a logical name is not in the topology.
var ErrUnknownQueue = errors.New("queue: unknown queue")

// ErrInvalid is wrapped when a message breaks the queue's rules (FIFO without group id,
// body over MaxBodyBytes, empty body).
var ErrInvalid = errors.New("queue: invalid message")

// ErrStaleReceipt is wrapped when ChangeVisibility gets a receipt handle that no longer
// holds its message in flight: the message was deleted, moved to its DLQ, received again or
// is visible again (SQS's ReceiptHandleIsInvalid and MessageNotInflight).
var ErrStaleReceipt = errors.New("queue: stale receipt handle")

// SendError reports the entries of a Send that were not queued.
type SendError struct {
	Queue  string
	Failed []FailedEntry
}

// FailedEntry is one entry that was not queued.
type FailedEntry struct {
	ID     string
	Code   string
	Reason string
	// SenderFault is true when retrying the same entry cannot succeed.
	SenderFault bool
}

func (e *SendError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "queue %s: %d message(s) not queued", e.Queue, len(e.Failed))
	for i, f := range e.Failed {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Failed)-3)
			break
		}
		fmt.Fprintf(&b, "; %s: %s %s", f.ID, f.Code, f.Reason)
	}
	return b.String()
}

// FailedIDs lists the ids of the entries that were not queued.
func (e *SendError) FailedIDs() map[string]bool {
	out := make(map[string]bool, len(e.Failed))
	for _, f := range e.Failed {
		out[f.ID] = true
	}
	return out
}

// ValidateMessages checks msgs against the rules of queue and fills empty entry ids.
// Both adapters call it so that a bad message fails the same way everywhere.
func (t Topology) ValidateMessages(queue string, msgs []Message) error {
	spec, ok := t.SpecFor(queue)
	if !ok {
		return fmt.Errorf("%w %q (known: %s)", ErrUnknownQueue, queue, strings.Join(t.Names(), ", "))
	}
	for i := range msgs {
		m := &msgs[i]
		if m.ID == "" {
			m.ID = fmt.Sprintf("m%d", i)
		}
		if m.Body == "" {
			return fmt.Errorf("%w: message %s to %s has an empty body", ErrInvalid, m.ID, queue)
		}
		if size := MessageSize(*m); size > MaxBodyBytes {
			return fmt.Errorf("%w: message %s to %s is %d bytes, over the %d-byte limit", ErrInvalid, m.ID, queue, size, MaxBodyBytes)
		}
		if spec.FIFO && m.GroupID == "" {
			return fmt.Errorf("%w: message %s to FIFO queue %s needs a group id", ErrInvalid, m.ID, queue)
		}
		if spec.FIFO && m.DedupID == "" {
			return fmt.Errorf("%w: message %s to FIFO queue %s needs a deduplication id", ErrInvalid, m.ID, queue)
		}
	}
	return nil
}

// MessageSize counts a message as SQS does against MaxBodyBytes: the body, and each
// attribute's name, type ("String") and value.
func MessageSize(m Message) int {
	n := len(m.Body)
	for k, v := range m.Attributes {
		n += len(k) + len("String") + len(v)
	}
	return n
}

// Chunks splits msgs into batches of at most MaxBatch.
func Chunks(msgs []Message) [][]Message {
	var out [][]Message
	for len(msgs) > MaxBatch {
		out = append(out, msgs[:MaxBatch])
		msgs = msgs[MaxBatch:]
	}
	if len(msgs) > 0 {
		out = append(out, msgs)
	}
	return out
}

// Redrive moves up to limit messages (0 = all that are visible) from a DLQ back to its source
// queue by receive, send and delete, which every SQS implementation supports. A message is
// deleted from the DLQ only after its copy is queued, so a crash mid-way duplicates at worst
// and never loses; consumers are idempotent. It returns how many moved.
func Redrive(ctx context.Context, q Queue, t Topology, dlq string, limit int) (int, error) {
	src, ok := t.SourceOf(dlq)
	if !ok {
		return 0, fmt.Errorf("%w %q: only a -dlq queue can be replayed (known: %s)", ErrUnknownQueue, dlq, strings.Join(t.Names(), ", "))
	}
	moved := 0
	for limit == 0 || moved < limit {
		max := MaxBatch
		if limit > 0 && limit-moved < max {
			max = limit - moved
		}
		got, err := q.Receive(ctx, dlq, ReceiveOptions{Max: max, Visibility: time.Minute})
		if err != nil {
			return moved, fmt.Errorf("replay %s: receive: %w", dlq, err)
		}
		if len(got) == 0 {
			return moved, nil
		}
		msgs := make([]Message, len(got))
		for i, r := range got {
			msgs[i] = Message{ID: fmt.Sprintf("r%d", i), Body: r.Body, GroupID: r.GroupID, DedupID: r.DedupID, Attributes: r.Attributes}
			if msgs[i].DedupID != "" {
				// The original id may still be inside the source queue's dedup window;
				// a replay must not be silently dropped as a duplicate of itself.
				msgs[i].DedupID = replayDedupID(r)
			}
		}
		sendErr := q.Send(ctx, src, msgs)
		failed := map[string]bool{}
		var se *SendError
		if errors.As(sendErr, &se) {
			failed = se.FailedIDs()
		} else if sendErr != nil {
			return moved, fmt.Errorf("replay %s to %s: %w", dlq, src, sendErr)
		}
		for i, r := range got {
			if failed[msgs[i].ID] {
				continue
			}
			if err := q.Delete(ctx, dlq, r.ReceiptHandle); err != nil {
				return moved, fmt.Errorf("replay %s: delete after requeue: %w", dlq, err)
			}
			moved++
		}
		if len(failed) > 0 {
			return moved, fmt.Errorf("replay %s to %s: %w", dlq, src, sendErr)
		}
	}
	return moved, nil
}

func replayDedupID(r Received) string {
	id := r.DedupID + "~r" + r.MessageID
	// SQS caps deduplication ids at 128 characters.
	if len(id) > 128 {
		id = id[len(id)-128:]
	}
	return id
}
