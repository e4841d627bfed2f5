package localrun

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// Identity of the local "account" in ARNs and attributes.
const (
	localAccount = "000000000000"
	localRegion  = "local"
)

// Receive-error backoff: doubling from backoffBase up to backoffMax, with jitter so that the
// workers of every consumer do not hammer a struggling queue in step.
const (
	backoffBase = 200 * time.Millisecond
	backoffMax  = 30 * time.Second
)

// deleteTimeout bounds the deletes after a successful batch. They run even after the grace
// period ended: the work is done, and skipping them would only cause a redelivery.
const deleteTimeout = 5 * time.Second

// poller plays Lambda's SQS event source mapping for one consumer.
type poller struct {
	c     Consumer
	q     queue.Queue
	clock clock.Clock
	log   *slog.Logger
	wait  time.Duration
	hard  context.Context
}

// run receives and dispatches batches until stop is cancelled. A batch received before that
// is always handed to the handler: its messages are already hidden, and finishing it is
// quicker than waiting out their visibility timeout after a restart.
func (p *poller) run(stop context.Context, worker int) {
	log := p.log.With("worker", worker)
	failures := 0
	for stop.Err() == nil {
		started := time.Now()
		msgs, err := p.q.Receive(stop, p.c.Queue, queue.ReceiveOptions{Max: p.c.BatchSize, Visibility: p.c.Visibility, Wait: p.wait})
		if err != nil {
			if stop.Err() != nil {
				return
			}
			failures++
			d := backoff(failures)
			log.Error("queue receive failed; backing off", "error", err, "attempt", failures, "retry_in_ms", d.Milliseconds())
			sleep(stop, d)
			continue
		}
		if failures > 0 {
			log.Info("queue receive recovered", "after_attempts", failures)
			failures = 0
		}
		if len(msgs) == 0 {
			// An adapter that returns before the wait is over would otherwise spin.
			if rest := p.wait - time.Since(started); rest > 0 {
				sleep(stop, rest)
			}
			continue
		}
		p.dispatch(log, msgs)
	}
}

// PollOnce receives one batch from c's queue, without waiting, and hands it to c's handler
// exactly as Run's pollers do. It returns how many messages the batch had. Tests drive a
// consumer with it step by step on a fake clock, so what they measure is the local runtime's
// own dispatch rather than a copy of it.
func PollOnce(ctx context.Context, c Consumer, q queue.Queue, clk clock.Clock, log *slog.Logger) (int, error) {
	if c.BatchSize == 0 {
		c.BatchSize = queue.MaxBatch
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &poller{c: c, q: q, clock: clk, log: log, hard: ctx}
	msgs, err := q.Receive(ctx, c.Queue, queue.ReceiveOptions{Max: c.BatchSize, Visibility: c.Visibility})
	if err != nil || len(msgs) == 0 {
		return 0, err
	}
	p.dispatch(log, msgs)
	return len(msgs), nil
}

// dispatch invokes the handler on one batch and deletes what it processed, with Lambda's
// ReportBatchItemFailures semantics: the records not listed as failures are deleted; a
// handler error, or a failure list naming a record that is not in the batch, fails the whole
// batch and nothing is deleted. What is not deleted becomes visible again when its
// visibility timeout ends, and the queue moves it to the DLQ after MaxReceiveCount receives.
func (p *poller) dispatch(log *slog.Logger, msgs []queue.Received) {
	start := time.Now()
	ev := p.event(msgs)
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.MessageID
	}
	log = log.With("batch_size", len(msgs))

	resp, err := call(func() (events.SQSEventResponse, error) { return p.c.Handler(p.hard, ev) })
	if err != nil {
		log.Error("queue handler failed; the whole batch stays queued for redelivery", "message_ids", ids, "duration_ms", since(start), "error", err)
		return
	}
	failed, err := batchFailures(resp, msgs)
	if err != nil {
		log.Error("queue handler reported an invalid failure list; the whole batch stays queued for redelivery", "message_ids", ids, "error", err)
		return
	}

	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.hard), deleteTimeout)
	defer cancel()
	errs := p.deleteAll(ctx, msgs, failed)
	var deleted int
	var delErrs []error
	for i, m := range msgs {
		switch {
		case failed[m.MessageID]:
		case errs[i] != nil:
			delErrs = append(delErrs, errs[i])
		default:
			deleted++
		}
	}
	if len(delErrs) > 0 {
		// The work is done but the messages come back: handlers are idempotent, so this
		// costs a duplicate delivery, never a loss.
		log.Error("queue delete failed; processed messages will be redelivered", "error", errors.Join(delErrs...))
	}
	level := slog.LevelInfo
	if len(failed) > 0 {
		level = slog.LevelWarn
	}
	failedIDs := make([]string, 0, len(failed))
	for id := range failed {
		failedIDs = append(failedIDs, id)
	}
	slices.Sort(failedIDs)
	log.Log(context.Background(), level, "queue batch handled", "deleted", deleted, "failed_ids", failedIDs, "duration_ms", since(start))
}

// deleteAll deletes the messages of a batch that did not fail, together, as Lambda's
// DeleteMessageBatch does: in one call when the queue deletes batches (on the embedded queue,
// one write), else at once, so that their writes can share a commit. errs[i] is msgs[i]'s.
func (p *poller) deleteAll(ctx context.Context, msgs []queue.Received, failed map[string]bool) []error {
	errs := make([]error, len(msgs))
	if bd, ok := p.q.(queue.BatchDeleter); ok {
		var handles []string
		for _, m := range msgs {
			if !failed[m.MessageID] {
				handles = append(handles, m.ReceiptHandle)
			}
		}
		if err := bd.DeleteBatch(ctx, p.c.Queue, handles); err != nil {
			for i, m := range msgs {
				if !failed[m.MessageID] {
					errs[i] = fmt.Errorf("message %s: %w", m.MessageID, err)
				}
			}
		}
		return errs
	}
	var wg sync.WaitGroup
	for i, m := range msgs {
		if failed[m.MessageID] {
			continue
		}
		wg.Go(func() {
			if err := p.q.Delete(ctx, p.c.Queue, m.ReceiptHandle); err != nil {
				errs[i] = fmt.Errorf("message %s: %w", m.MessageID, err)
			}
		})
	}
	wg.Wait()
	return errs
}

// batchFailures turns a handler's partial batch response into the set of message ids to
// keep. Lambda treats an empty or unknown item identifier as a failure of the whole batch,
// because it cannot tell which records the handler meant.
func batchFailures(resp events.SQSEventResponse, msgs []queue.Received) (map[string]bool, error) {
	inBatch := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		inBatch[m.MessageID] = true
	}
	failed := make(map[string]bool, len(resp.BatchItemFailures))
	for _, f := range resp.BatchItemFailures {
		if !inBatch[f.ItemIdentifier] {
			return nil, fmt.Errorf("batch item failure %q names no message of the batch", f.ItemIdentifier)
		}
		failed[f.ItemIdentifier] = true
	}
	return failed, nil
}

// event builds the SQS event Lambda would deliver for msgs.
func (p *poller) event(msgs []queue.Received) events.SQSEvent {
	arn := "arn:aws:sqs:" + localRegion + ":" + localAccount + ":" + p.c.Queue
	now := p.clock.Now()
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(msgs))}
	for i, m := range msgs {
		first := m.FirstReceivedAt
		if first.IsZero() {
			first = now
		}
		attrs := map[string]string{
			"ApproximateReceiveCount":          strconv.Itoa(m.ReceiveCount),
			"SentTimestamp":                    strconv.FormatInt(m.SentAt.UnixMilli(), 10),
			"SenderId":                         localAccount,
			"ApproximateFirstReceiveTimestamp": strconv.FormatInt(first.UnixMilli(), 10),
		}
		if m.GroupID != "" {
			attrs["MessageGroupId"] = m.GroupID
		}
		if m.DedupID != "" {
			attrs["MessageDeduplicationId"] = m.DedupID
		}
		mattrs := make(map[string]events.SQSMessageAttribute, len(m.Attributes))
		for k, v := range m.Attributes {
			mattrs[k] = events.SQSMessageAttribute{
				StringValue:      &v,
				StringListValues: []string{},
				BinaryListValues: [][]byte{},
				DataType:         "String",
			}
		}
		sum := md5.Sum([]byte(m.Body))
		ev.Records[i] = events.SQSMessage{
			MessageId:              m.MessageID,
			ReceiptHandle:          m.ReceiptHandle,
			Body:                   m.Body,
			Md5OfBody:              hex.EncodeToString(sum[:]),
			Md5OfMessageAttributes: attributesMD5(m.Attributes),
			Attributes:             attrs,
			MessageAttributes:      mattrs,
			EventSourceARN:         arn,
			EventSource:            "aws:sqs",
			AWSRegion:              localRegion,
		}
	}
	return ev
}

// attributesMD5 is SQS's MD5OfMessageAttributes for string attributes: over the attributes
// sorted by name, each name, data type and value length-prefixed (4 bytes, big endian), with
// the transport type byte 1 (string) before the value. "" when there are none, as in SQS.
func attributesMD5(attrs map[string]string) string {
	if len(attrs) == 0 {
		return ""
	}
	names := make([]string, 0, len(attrs))
	for k := range attrs {
		names = append(names, k)
	}
	slices.Sort(names)
	h := md5.New()
	field := func(s string) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	for _, k := range names {
		field(k)
		field("String")
		h.Write([]byte{1})
		field(attrs[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// backoff is the wait before retry number n (1-based): half the capped exponential step
// plus a random part of the other half.
func backoff(n int) time.Duration {
	d := backoffMax
	if n < 20 {
		d = min(backoffBase<<(n-1), backoffMax)
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) { _ = clock.Sleep(ctx, d) }
