// Package sqs implements queue.Queue on Amazon SQS (and on SQS emulators such as moto).
//
// Logical queue names map to queue URLs given at construction: in Lambda they come from the
// QUEUE_URL_* variables of template.yaml (URLsFromEnv); against a local endpoint Ensure
// creates the queues and returns them. SQS is called through shared/awsjson (see api.go).
//
// Message bodies are checked against the MD5 digests SQS returns, as the SDK's client checks
// them: an entry of a send whose digest differs is reported as not queued, and a receive
// that returns a body whose digest differs fails. The digests of message attributes are
// not checked (the SDK does not check them either); TLS already protects both in transit.
package sqs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/queue"
)

// Queue is the SQS adapter. It is safe for concurrent use.
type Queue struct {
	client Client
	topo   queue.Topology
	urls   map[string]string
}

var _ queue.Queue = (*Queue)(nil)

// New returns the adapter over client (NewClient). urls maps logical queue names
// (topo.Names) to queue URLs; a queue missing from it fails when used.
func New(client Client, topo queue.Topology, urls map[string]string) *Queue {
	return &Queue{client: client, topo: topo, urls: maps.Clone(urls)}
}

func (q *Queue) lookup(name string) (string, queue.Spec, error) {
	spec, ok := q.topo.SpecFor(name)
	if !ok {
		// ValidateMessages words the error the same way for every adapter.
		return "", queue.Spec{}, q.topo.ValidateMessages(name, nil)
	}
	url := q.urls[name]
	if url == "" {
		return "", queue.Spec{}, fmt.Errorf("queue %s has no SQS URL configured (set %s)", name, EnvVar(name))
	}
	return url, spec, nil
}

// Send implements queue.Queue with SendMessageBatch. Entries are batched by count and by
// size, since SQS also limits the total payload of one batch request.
func (q *Queue) Send(ctx context.Context, name string, msgs []queue.Message) error {
	if err := q.topo.ValidateMessages(name, msgs); err != nil {
		return err
	}
	url, spec, err := q.lookup(name)
	if err != nil {
		return err
	}
	// Checking contents before the call also keeps invalid UTF-8 out of the JSON request,
	// whose encoding would silently replace it and then fail the entry on its MD5.
	valid, failed := queue.CheckContents(msgs)
	batches := batchBySize(valid)
	sent := 0
	for i, batch := range batches {
		var out sendMessageBatchOutput
		err := q.client.Call(ctx, "SendMessageBatch", sendMessageBatchInput{QueueUrl: url, Entries: entries(spec, batch)}, &out)
		if err != nil {
			err = q.mapErr(name, url, err)
			if sent == 0 {
				// Nothing is queued yet, so a plain error tells the caller all of it failed.
				return fmt.Errorf("send to queue %s: %w", name, err)
			}
			// Earlier batches are queued: name exactly what is not.
			failed = append(failed, queue.NotQueued(batch, errorCode(err), err.Error())...)
			for _, rest := range batches[i+1:] {
				failed = append(failed, queue.NotQueued(rest, "NotSent", "an earlier batch failed: "+err.Error())...)
			}
			break
		}
		notQueued, err := batchResult(batch, out)
		if err != nil {
			return fmt.Errorf("send to queue %s: %w", name, err)
		}
		failed = append(failed, notQueued...)
		sent += len(batch) - len(notQueued)
	}
	if len(failed) > 0 {
		return &queue.SendError{Queue: name, Failed: failed}
	}
	return nil
}

// batchResult reads SendMessageBatch's answer for batch: the entries SQS failed, those whose
// body digest is not that of the body sent, and any it did not report on, are not queued.
func batchResult(batch []queue.Message, out sendMessageBatchOutput) ([]queue.FailedEntry, error) {
	reported := make([]bool, len(batch))
	entry := func(id string) (int, error) {
		digits, ok := strings.CutPrefix(id, "e")
		idx, err := strconv.Atoi(digits)
		if !ok || err != nil || idx < 0 || idx >= len(batch) || reported[idx] {
			return 0, fmt.Errorf("SQS reported on unknown batch entry %q, or on one entry twice", id)
		}
		reported[idx] = true
		return idx, nil
	}
	var failed []queue.FailedEntry
	for _, f := range out.Failed {
		idx, err := entry(f.Id)
		if err != nil {
			return nil, fmt.Errorf("%w: %s %s", err, f.Code, f.Message)
		}
		failed = append(failed, queue.FailedEntry{ID: batch[idx].ID, Code: f.Code, Reason: f.Message, SenderFault: f.SenderFault})
	}
	for _, s := range out.Successful {
		idx, err := entry(s.Id)
		if err != nil {
			return nil, err
		}
		// As in the SDK, an answer without a digest is not checked.
		if want := bodyMD5(batch[idx].Body); s.MD5OfMessageBody != "" && s.MD5OfMessageBody != want {
			failed = append(failed, queue.FailedEntry{ID: batch[idx].ID, Code: "MD5Mismatch", Reason: fmt.Sprintf(
				"SQS accepted it as message %s with body MD5 %s, but the body sent has MD5 %s: what SQS holds may be altered, so send it again",
				s.MessageId, s.MD5OfMessageBody, want)})
		}
	}
	for idx, ok := range reported {
		if !ok {
			failed = append(failed, queue.FailedEntry{ID: batch[idx].ID, Code: "NotReported",
				Reason: "SQS's answer lists the entry neither as sent nor as failed"})
		}
	}
	return failed, nil
}

// entries builds one batch request. Entry ids are positions in the batch, since callers'
// ids need not follow SQS's rules for them (letters, digits, - and _, unique in the batch).
func entries(spec queue.Spec, batch []queue.Message) []sendMessageBatchEntry {
	out := make([]sendMessageBatchEntry, len(batch))
	for i, m := range batch {
		e := sendMessageBatchEntry{Id: "e" + strconv.Itoa(i), MessageBody: m.Body}
		if len(m.Attributes) > 0 {
			e.MessageAttributes = make(map[string]attributeValue, len(m.Attributes))
			for k, v := range m.Attributes {
				e.MessageAttributes[k] = attributeValue{DataType: "String", StringValue: &v}
			}
		}
		if spec.FIFO {
			e.MessageGroupId = m.GroupID
			e.MessageDeduplicationId = m.DedupID
		}
		out[i] = e
	}
	return out
}

// batchBySize splits msgs into batches of at most queue.MaxBatch entries whose sizes add up
// to at most queue.MaxBodyBytes, SQS's limit on one SendMessageBatch request.
func batchBySize(msgs []queue.Message) [][]queue.Message {
	var out [][]queue.Message
	for _, chunk := range queue.Chunks(msgs) {
		start, size := 0, 0
		for i, m := range chunk {
			n := queue.MessageSize(m)
			if i > start && size+n > queue.MaxBodyBytes {
				out = append(out, chunk[start:i])
				start, size = i, 0
			}
			size += n
		}
		out = append(out, chunk[start:])
	}
	return out
}

// Receive implements queue.Queue.
func (q *Queue) Receive(ctx context.Context, name string, opt queue.ReceiveOptions) ([]queue.Received, error) {
	url, _, err := q.lookup(name)
	if err != nil {
		return nil, err
	}
	max, err := queue.CheckReceive(name, opt)
	if err != nil {
		return nil, err
	}
	in := receiveMessageInput{
		QueueUrl:            url,
		MaxNumberOfMessages: max,
		WaitTimeSeconds:     seconds(opt.Wait),
		// Zero leaves the queue's own visibility timeout in force.
		VisibilityTimeout:           seconds(opt.Visibility),
		MessageSystemAttributeNames: []string{attrReceiveCount, attrSentTimestamp, attrFirstReceive, attrGroupID, attrDedupID},
		MessageAttributeNames:       []string{"All"},
	}
	var out receiveMessageOutput
	if err := q.client.Call(ctx, "ReceiveMessage", in, &out); err != nil {
		return nil, fmt.Errorf("receive from queue %s: %w", name, q.mapErr(name, url, err))
	}
	got := make([]queue.Received, 0, len(out.Messages))
	for _, m := range out.Messages {
		r, err := received(m)
		if err != nil {
			return nil, fmt.Errorf("receive from queue %s: %w", name, err)
		}
		got = append(got, r)
	}
	return got, nil
}

func received(m message) (queue.Received, error) {
	// As in the SDK, a message without a digest is not checked. One that fails stays in
	// flight, and is received again after its visibility timeout.
	if sum := bodyMD5(m.Body); m.MD5OfBody != "" && m.MD5OfBody != sum {
		return queue.Received{}, fmt.Errorf("message %s: SQS gives its body MD5 as %s, but the body received has MD5 %s; it will be received again after its visibility timeout", m.MessageId, m.MD5OfBody, sum)
	}
	r := queue.Received{
		MessageID:     m.MessageId,
		ReceiptHandle: m.ReceiptHandle,
		Body:          m.Body,
		GroupID:       m.Attributes[attrGroupID],
		DedupID:       m.Attributes[attrDedupID],
	}
	if len(m.MessageAttributes) > 0 {
		r.Attributes = make(map[string]string, len(m.MessageAttributes))
		for k, v := range m.MessageAttributes {
			// Only string (and number) attributes are sent by cartrelay; a binary one from
			// another producer has no string value and is left out.
			if v.StringValue != nil {
				r.Attributes[k] = *v.StringValue
			}
		}
	}
	var err error
	if r.ReceiveCount, err = intAttribute(m, attrReceiveCount); err != nil {
		return r, err
	}
	if r.SentAt, err = millisAttribute(m, attrSentTimestamp); err != nil {
		return r, err
	}
	if r.FirstReceivedAt, err = millisAttribute(m, attrFirstReceive); err != nil {
		return r, err
	}
	return r, nil
}

func intAttribute(m message, name string) (int, error) {
	s, ok := m.Attributes[name]
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("message %s: attribute %s is %q, not a number: %w", m.MessageId, name, s, err)
	}
	return n, nil
}

func millisAttribute(m message, name string) (time.Time, error) {
	s, ok := m.Attributes[name]
	if !ok {
		return time.Time{}, nil
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("message %s: attribute %s is %q, not a time in milliseconds: %w", m.MessageId, name, s, err)
	}
	return time.UnixMilli(ms).UTC(), nil
}

// Delete implements queue.Queue. SQS ignores a stale handle on a standard queue; moto rejects
// a handle whose message has since moved to the DLQ, and SQS may reject a stale handle on a
// FIFO queue. All of these mean the message is no longer ours to delete, so they are ignored
// alike, as the embedded adapter does.
func (q *Queue) Delete(ctx context.Context, name string, receiptHandle string) error {
	url, _, err := q.lookup(name)
	if err != nil {
		return err
	}
	if receiptHandle == "" {
		return fmt.Errorf("delete from queue %s: the receipt handle is empty", name)
	}
	err = q.client.Call(ctx, "DeleteMessage", deleteMessageInput{QueueUrl: url, ReceiptHandle: receiptHandle}, &noOutput{})
	if err != nil {
		if err := q.mapErr(name, url, err); !errors.Is(err, queue.ErrStaleReceipt) {
			return fmt.Errorf("delete from queue %s: %w", name, err)
		}
	}
	return nil
}

// ChangeVisibility implements queue.Queue. A handle whose message is gone or no longer in
// flight wraps queue.ErrStaleReceipt.
func (q *Queue) ChangeVisibility(ctx context.Context, name string, receiptHandle string, visibility time.Duration) error {
	url, _, err := q.lookup(name)
	if err != nil {
		return err
	}
	if err := queue.CheckChangeVisibility(name, receiptHandle, visibility); err != nil {
		return err
	}
	in := changeMessageVisibilityInput{QueueUrl: url, ReceiptHandle: receiptHandle, VisibilityTimeout: seconds(visibility)}
	if err := q.client.Call(ctx, "ChangeMessageVisibility", in, &noOutput{}); err != nil {
		return fmt.Errorf("change visibility on queue %s: %w", name, q.mapErr(name, url, err))
	}
	return nil
}

// Stats implements queue.Queue from SQS's approximate counts.
func (q *Queue) Stats(ctx context.Context, name string) (queue.Stats, error) {
	url, _, err := q.lookup(name)
	if err != nil {
		return queue.Stats{}, err
	}
	var out queueAttributes
	in := getQueueAttributesInput{QueueUrl: url, AttributeNames: []string{attrVisible, attrInFlight, attrDelayed}}
	if err := q.client.Call(ctx, "GetQueueAttributes", in, &out); err != nil {
		return queue.Stats{}, fmt.Errorf("count messages of queue %s: %w", name, q.mapErr(name, url, err))
	}
	st := queue.Stats{Queue: name}
	for attr, dst := range map[string]*int{attrVisible: &st.Visible, attrInFlight: &st.InFlight, attrDelayed: &st.Delayed} {
		s := out.Attributes[attr]
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return queue.Stats{}, fmt.Errorf("count messages of queue %s: %s is %q, not a number: %w", name, attr, s, err)
		}
		*dst = n
	}
	return st, nil
}

// mapErr turns SQS's errors about a queue or a handle into ones an operator can act on. SQS's
// JSON API names them by shape (QueueDoesNotExist); the older query API's codes
// (AWS.SimpleQueueService.NonExistentQueue) are accepted too.
func (q *Queue) mapErr(name, url string, err error) error {
	switch errorCode(err) {
	case "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue":
		return fmt.Errorf("SQS queue %s (%s) does not exist: check %s or create the queues: %w", name, url, EnvVar(name), err)
	case "ReceiptHandleIsInvalid":
		return fmt.Errorf("%w: %w", queue.ErrStaleReceipt, err)
	case "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight":
		return fmt.Errorf("%w: the message is no longer in flight: %w", queue.ErrStaleReceipt, err)
	}
	return err
}

// seconds rounds d up to whole seconds, SQS's unit, so that a positive duration never becomes 0.
func seconds(d time.Duration) int {
	return int(math.Ceil(d.Seconds()))
}
