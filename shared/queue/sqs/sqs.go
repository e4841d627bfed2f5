// Package sqs implements queue.Queue on Amazon SQS (and on SQS emulators such as moto).
//
// Logical queue names map to queue URLs given at construction: in Lambda they come from the
// QUEUE_URL_* variables of template.yaml (URLsFromEnv); against a local endpoint Ensure
// creates the queues and returns them.
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

	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/cartrelay/cartrelay/shared/queue"
)

// Queue is the SQS adapter. It is safe for concurrent use.
type Queue struct {
	client *awssqs.Client
	topo   queue.Topology
	urls   map[string]string
}

var _ queue.Queue = (*Queue)(nil)

// New returns the adapter. urls maps logical queue names (topo.Names) to queue URLs; a
// queue missing from it fails when used.
func New(client *awssqs.Client, topo queue.Topology, urls map[string]string) *Queue {
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
	// Checking contents before the call also keeps invalid UTF-8 away from the SDK, whose JSON
	// encoding would silently replace it and then fail the whole batch on a checksum mismatch.
	valid, failed := queue.CheckContents(msgs)
	batches := batchBySize(valid)
	sent := 0
	for i, batch := range batches {
		out, err := q.client.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{
			QueueUrl: &url,
			Entries:  entries(spec, batch),
		})
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
		for _, f := range out.Failed {
			idx, err := strconv.Atoi(strings.TrimPrefix(deref(f.Id), "e"))
			if err != nil || idx < 0 || idx >= len(batch) {
				return fmt.Errorf("send to queue %s: SQS reported a failure for unknown batch entry %q: %s", name, deref(f.Id), deref(f.Message))
			}
			failed = append(failed, queue.FailedEntry{
				ID:          batch[idx].ID,
				Code:        deref(f.Code),
				Reason:      deref(f.Message),
				SenderFault: f.SenderFault,
			})
		}
		sent += len(batch) - len(out.Failed)
	}
	if len(failed) > 0 {
		return &queue.SendError{Queue: name, Failed: failed}
	}
	return nil
}

// entries builds one batch request. Entry ids are positions in the batch, since callers'
// ids need not follow SQS's rules for them (letters, digits, - and _, unique in the batch).
func entries(spec queue.Spec, batch []queue.Message) []types.SendMessageBatchRequestEntry {
	out := make([]types.SendMessageBatchRequestEntry, len(batch))
	for i, m := range batch {
		e := types.SendMessageBatchRequestEntry{
			Id:          ptr("e" + strconv.Itoa(i)),
			MessageBody: ptr(m.Body),
		}
		if len(m.Attributes) > 0 {
			e.MessageAttributes = make(map[string]types.MessageAttributeValue, len(m.Attributes))
			for k, v := range m.Attributes {
				e.MessageAttributes[k] = types.MessageAttributeValue{DataType: ptr("String"), StringValue: ptr(v)}
			}
		}
		if spec.FIFO {
			e.MessageGroupId = ptr(m.GroupID)
			e.MessageDeduplicationId = ptr(m.DedupID)
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
	in := &awssqs.ReceiveMessageInput{
		QueueUrl:            &url,
		MaxNumberOfMessages: int32(max),
		WaitTimeSeconds:     seconds(opt.Wait),
		// Zero leaves the queue's own visibility timeout in force.
		VisibilityTimeout: seconds(opt.Visibility),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{
			types.MessageSystemAttributeNameApproximateReceiveCount,
			types.MessageSystemAttributeNameSentTimestamp,
			types.MessageSystemAttributeNameApproximateFirstReceiveTimestamp,
			types.MessageSystemAttributeNameMessageGroupId,
			types.MessageSystemAttributeNameMessageDeduplicationId,
		},
		MessageAttributeNames: []string{"All"},
	}
	out, err := q.client.ReceiveMessage(ctx, in)
	if err != nil {
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

func received(m types.Message) (queue.Received, error) {
	r := queue.Received{
		MessageID:     deref(m.MessageId),
		ReceiptHandle: deref(m.ReceiptHandle),
		Body:          deref(m.Body),
		GroupID:       m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)],
		DedupID:       m.Attributes[string(types.MessageSystemAttributeNameMessageDeduplicationId)],
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
	if r.ReceiveCount, err = intAttribute(m, types.MessageSystemAttributeNameApproximateReceiveCount); err != nil {
		return r, err
	}
	if r.SentAt, err = millisAttribute(m, types.MessageSystemAttributeNameSentTimestamp); err != nil {
		return r, err
	}
	if r.FirstReceivedAt, err = millisAttribute(m, types.MessageSystemAttributeNameApproximateFirstReceiveTimestamp); err != nil {
		return r, err
	}
	return r, nil
}

func intAttribute(m types.Message, name types.MessageSystemAttributeName) (int, error) {
	s, ok := m.Attributes[string(name)]
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("message %s: attribute %s is %q, not a number: %w", deref(m.MessageId), name, s, err)
	}
	return n, nil
}

func millisAttribute(m types.Message, name types.MessageSystemAttributeName) (time.Time, error) {
	s, ok := m.Attributes[string(name)]
	if !ok {
		return time.Time{}, nil
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("message %s: attribute %s is %q, not a time in milliseconds: %w", deref(m.MessageId), name, s, err)
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
	_, err = q.client.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: &receiptHandle})
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
	_, err = q.client.ChangeMessageVisibility(ctx, &awssqs.ChangeMessageVisibilityInput{
		QueueUrl:          &url,
		ReceiptHandle:     &receiptHandle,
		VisibilityTimeout: seconds(visibility),
	})
	if err != nil {
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
	out, err := q.client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl: &url,
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		},
	})
	if err != nil {
		return queue.Stats{}, fmt.Errorf("count messages of queue %s: %w", name, q.mapErr(name, url, err))
	}
	st := queue.Stats{Queue: name}
	for attr, dst := range map[types.QueueAttributeName]*int{
		types.QueueAttributeNameApproximateNumberOfMessages:           &st.Visible,
		types.QueueAttributeNameApproximateNumberOfMessagesNotVisible: &st.InFlight,
		types.QueueAttributeNameApproximateNumberOfMessagesDelayed:    &st.Delayed,
	} {
		s := out.Attributes[string(attr)]
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

// mapErr turns SQS's errors about a queue or a handle into ones an operator can act on.
func (q *Queue) mapErr(name, url string, err error) error {
	var notExist *types.QueueDoesNotExist
	var invalidHandle *types.ReceiptHandleIsInvalid
	var notInFlight *types.MessageNotInflight
	switch code := errorCode(err); {
	case errors.As(err, &notExist) || code == "AWS.SimpleQueueService.NonExistentQueue" || code == "QueueDoesNotExist":
		return fmt.Errorf("SQS queue %s (%s) does not exist: check %s or create the queues: %w", name, url, EnvVar(name), err)
	case errors.As(err, &invalidHandle) || code == "ReceiptHandleIsInvalid":
		return fmt.Errorf("%w: %w", queue.ErrStaleReceipt, err)
	case errors.As(err, &notInFlight) || code == "AWS.SimpleQueueService.MessageNotInflight" || code == "MessageNotInflight":
		return fmt.Errorf("%w: the message is no longer in flight: %w", queue.ErrStaleReceipt, err)
	}
	return err
}

func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return "RequestFailed"
}

// seconds rounds d up to whole seconds, SQS's unit, so that a positive duration never becomes 0.
func seconds(d time.Duration) int32 {
	return int32(math.Ceil(d.Seconds()))
}

func ptr[T any](v T) *T { return &v }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
