package queue

import (
	"context"
	"fmt"
	"time"
)

// Dead letters, one by one. A dead-letter queue has no consumer, so its messages can be looked
// at by receiving them and making them visible again at once. On a source queue that would count
// as a receive toward the dead-letter limit, so these functions take only a -dlq name.
//
// On a FIFO dead-letter queue a receive hands out a message group's messages in order and no
// more of that group while they are in flight, so a look reaches at most one batch (10) of any
// one group; the rest of a larger group shows after those are replayed or discarded.

// PeekHold is how long looked-at messages stay hidden before they are made visible again.
const PeekHold = 30 * time.Second

// Peek returns up to max messages of a dead-letter queue and leaves them there.
func Peek(ctx context.Context, q Queue, t Topology, dlq string, max int) ([]Received, error) {
	if _, ok := t.SourceOf(dlq); !ok {
		return nil, fmt.Errorf("%w %q: only a -dlq queue can be looked into", ErrUnknownQueue, dlq)
	}
	got, err := receiveUpTo(ctx, q, dlq, max, func(Received) bool { return false })
	release(ctx, q, dlq, got)
	return got, err
}

// Take finds the message messageID in a dead-letter queue among its first maxScan messages and
// returns it received (hidden for PeekHold, with a live receipt handle) so the caller can delete
// or requeue it; every other message looked at is made visible again. found is false when it is
// not among them.
func Take(ctx context.Context, q Queue, t Topology, dlq, messageID string, maxScan int) (msg Received, found bool, err error) {
	if _, ok := t.SourceOf(dlq); !ok {
		return Received{}, false, fmt.Errorf("%w %q: only a -dlq queue holds dead letters", ErrUnknownQueue, dlq)
	}
	got, err := receiveUpTo(ctx, q, dlq, maxScan, func(r Received) bool { return r.MessageID == messageID })
	var others []Received
	for _, r := range got {
		if r.MessageID == messageID && !found {
			msg, found = r, true
			continue
		}
		others = append(others, r)
	}
	release(ctx, q, dlq, others)
	return msg, found, err
}

// receiveUpTo receives batches until max messages, an empty receive, or one that stop likes.
func receiveUpTo(ctx context.Context, q Queue, name string, max int, stop func(Received) bool) ([]Received, error) {
	var out []Received
	seen := map[string]bool{}
	for len(out) < max {
		n := min(MaxBatch, max-len(out))
		batch, err := q.Receive(ctx, name, ReceiveOptions{Max: n, Visibility: PeekHold})
		if err != nil {
			return out, fmt.Errorf("look into %s: %w", name, err)
		}
		if len(batch) == 0 {
			return out, nil
		}
		done := false
		for _, r := range batch {
			if seen[r.MessageID] {
				continue
			}
			seen[r.MessageID] = true
			out = append(out, r)
			done = done || stop(r)
		}
		if done {
			return out, nil
		}
	}
	return out, nil
}

// release makes messages visible again; one that cannot be (it moved on) is simply left.
func release(ctx context.Context, q Queue, name string, msgs []Received) {
	for _, r := range msgs {
		// A failure leaves the message hidden until PeekHold ends, when it reappears by itself.
		_ = q.ChangeVisibility(ctx, name, r.ReceiptHandle, 0)
	}
}

// Requeue moves one received dead letter back to its source queue, as Redrive does for all:
// sent again (with a new deduplication id on a FIFO queue), then deleted from the dead-letter
// queue.
func Requeue(ctx context.Context, q Queue, t Topology, dlq string, r Received) error {
	src, ok := t.SourceOf(dlq)
	if !ok {
		return fmt.Errorf("%w %q: only a -dlq queue can be replayed", ErrUnknownQueue, dlq)
	}
	m := Message{ID: "r0", Body: r.Body, GroupID: r.GroupID, DedupID: r.DedupID, Attributes: r.Attributes}
	if m.DedupID != "" {
		m.DedupID = replayDedupID(r)
	}
	if err := q.Send(ctx, src, []Message{m}); err != nil {
		return fmt.Errorf("replay a message of %s to %s: %w", dlq, src, err)
	}
	if err := q.Delete(ctx, dlq, r.ReceiptHandle); err != nil {
		return fmt.Errorf("replay a message of %s: delete it after requeueing it: %w", dlq, err)
	}
	return nil
}
