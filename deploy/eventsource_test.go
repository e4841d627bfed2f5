package deploy

// The parts of AWS that invoke the functions, played by the end-to-end test: an SQS event
// source mapping with ReportBatchItemFailures, an EventBridge schedule, and the HTTP API's
// routes (shared/localrun plays API Gateway; the routes come from the template).

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/cartrelay/cartrelay/shared/localrun"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

// eventSource plays one SQS event source mapping of the template: it receives a batch, invokes
// the function with the event Lambda would send, and deletes what the function did not report
// as failed.
type eventSource struct {
	fn       *testenv.Lambda
	client   *awssqs.Client
	queueURL string
	queueARN string
	region   string
	batch    int
}

// sqsEventSource is the mapping of function id's SQS event in the template.
func (d *deployed) sqsEventSource(t *testing.T, tpl *template, id string, fn *testenv.Lambda) *eventSource {
	t.Helper()
	for _, ev := range tpl.events(id) {
		if ev.typ != "SQS" {
			continue
		}
		q, _ := getAtt(get(ev.props, "Queue"))
		if !slices.Contains(strs(get(ev.props, "FunctionResponseTypes")), "ReportBatchItemFailures") {
			t.Fatalf("%s's event source does not report batch item failures", id)
		}
		return &eventSource{fn: fn, client: d.sqs, queueURL: d.queueURLs[q], queueARN: d.queueARNs[q], region: d.region,
			batch: num(t, get(ev.props, "BatchSize"), id+" BatchSize")}
	}
	t.Fatalf("%s has no SQS event source", id)
	return nil
}

// batchOutcome is what one invocation did to its batch.
type batchOutcome struct {
	received, failed, deleted []string // message ids
	// bodies are the received messages' bodies, by id.
	bodies map[string]string
}

// sqsRecord is one record of the SQS event, with the field names of Lambda's documented
// event rather than a library's struct tags.
type sqsRecord struct {
	MessageID              string                    `json:"messageId"`
	ReceiptHandle          string                    `json:"receiptHandle"`
	Body                   string                    `json:"body"`
	Attributes             map[string]string         `json:"attributes"`
	MessageAttributes      map[string]sqsMessageAttr `json:"messageAttributes"`
	MD5OfBody              string                    `json:"md5OfBody"`
	MD5OfMessageAttributes string                    `json:"md5OfMessageAttributes,omitempty"`
	EventSource            string                    `json:"eventSource"`
	EventSourceARN         string                    `json:"eventSourceARN"`
	AWSRegion              string                    `json:"awsRegion"`
}

type sqsMessageAttr struct {
	StringValue      *string  `json:"stringValue,omitempty"`
	BinaryValue      []byte   `json:"binaryValue,omitempty"`
	StringListValues []string `json:"stringListValues"`
	BinaryListValues [][]byte `json:"binaryListValues"`
	DataType         string   `json:"dataType"`
}

// poll receives up to one batch (waiting up to wait for the first message) and hands it to the
// function. An empty queue gives an empty outcome. A function error, or a failure list naming
// no message of the batch, fails the whole batch: nothing is deleted, as Lambda does.
func (es *eventSource) poll(ctx context.Context, t *testing.T, wait time.Duration) batchOutcome {
	t.Helper()
	out, err := es.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(es.queueURL),
		MaxNumberOfMessages:         int32(es.batch),
		WaitTimeSeconds:             int32(wait / time.Second),
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		t.Fatalf("receive from %s: %v", es.queueURL, err)
	}
	res := batchOutcome{bodies: map[string]string{}}
	if len(out.Messages) == 0 {
		return res
	}
	handles := map[string]string{}
	records := make([]sqsRecord, len(out.Messages))
	for i, m := range out.Messages {
		id := aws.ToString(m.MessageId)
		res.received = append(res.received, id)
		res.bodies[id] = aws.ToString(m.Body)
		handles[id] = aws.ToString(m.ReceiptHandle)
		attrs := map[string]sqsMessageAttr{}
		for k, v := range m.MessageAttributes {
			attrs[k] = sqsMessageAttr{StringValue: v.StringValue, BinaryValue: v.BinaryValue, DataType: aws.ToString(v.DataType),
				StringListValues: []string{}, BinaryListValues: [][]byte{}}
		}
		records[i] = sqsRecord{MessageID: id, ReceiptHandle: handles[id], Body: aws.ToString(m.Body), Attributes: m.Attributes,
			MessageAttributes: attrs, MD5OfBody: aws.ToString(m.MD5OfBody), MD5OfMessageAttributes: aws.ToString(m.MD5OfMessageAttributes),
			EventSource: "aws:sqs", EventSourceARN: es.queueARN, AWSRegion: es.region}
	}
	payload, err := json.Marshal(map[string]any{"Records": records})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := es.fn.Invoke(ctx, payload)
	if err != nil {
		t.Logf("%s failed on a batch of %d; nothing is deleted: %v", es.fn.Name, len(records), err)
		res.failed = res.received
		return res
	}
	var resp struct {
		BatchItemFailures []struct {
			ItemIdentifier string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		t.Fatalf("%s answered a batch with %s, not a partial batch response: %v", es.fn.Name, raw, err)
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		if handles[f.ItemIdentifier] == "" {
			t.Errorf("%s reported failure %q, which names no message of the batch; Lambda would retry the whole batch", es.fn.Name, f.ItemIdentifier)
			res.failed = res.received
			return res
		}
		failed[f.ItemIdentifier] = true
	}
	var entries []sqstypes.DeleteMessageBatchRequestEntry
	for i, id := range res.received {
		if failed[id] {
			res.failed = append(res.failed, id)
			continue
		}
		entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), ReceiptHandle: aws.String(handles[id])})
		res.deleted = append(res.deleted, id)
	}
	if len(entries) > 0 {
		del, err := es.client.DeleteMessageBatch(ctx, &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(es.queueURL), Entries: entries})
		if err != nil || len(del.Failed) > 0 {
			t.Fatalf("delete the handled messages from %s: %v %+v", es.queueURL, err, del)
		}
	}
	return res
}

// drain polls until a receive finds the queue empty and returns every outcome; it fails the
// test on any failed message.
func (es *eventSource) drain(ctx context.Context, t *testing.T) batchOutcome {
	t.Helper()
	all := batchOutcome{bodies: map[string]string{}}
	for {
		b := es.poll(ctx, t, time.Second)
		if len(b.received) == 0 {
			return all
		}
		if len(b.failed) > 0 {
			t.Fatalf("%s failed messages %v of a batch of %d; its log:\n%s", es.fn.Name, b.failed, len(b.received), es.fn.Output())
		}
		all.received = append(all.received, b.received...)
		all.deleted = append(all.deleted, b.deleted...)
		for k, v := range b.bodies {
			all.bodies[k] = v
		}
	}
}

// scheduledEvent is the event an EventBridge schedule rule sends.
func scheduledEvent(s *stack, rule string, at time.Time) []byte {
	b, _ := json.Marshal(map[string]any{
		"version":     "0",
		"id":          fmt.Sprintf("%08x-cffa-4f76-80c9-8b7d4a4d2eaa", at.Unix()&0xffffffff),
		"detail-type": "Scheduled Event",
		"source":      "aws.events",
		"account":     s.account,
		"time":        at.UTC().Format(time.RFC3339),
		"region":      s.region,
		"resources":   []string{"arn:aws:events:" + s.region + ":" + s.account + ":rule/" + rule},
		"detail":      map[string]any{},
	})
	return b
}

// apiRoutes are the HTTP API's routes in the template, each sending its requests to the
// function that serves it, by the function's logical id.
func (tpl *template) apiRoutes() map[string]string {
	out := map[string]string{}
	for _, id := range tpl.ofType("AWS::ApiGatewayV2::Route") {
		p := get(tpl.resources[id], "Properties")
		integ := strings.TrimSuffix(strings.TrimPrefix(sub(get(p, "Target")), "integrations/${"), "}")
		fn, _ := getAtt(get(get(tpl.resources[integ], "Properties"), "IntegrationUri"))
		out[scalar(get(p, "RouteKey"))] = fn
	}
	return out
}

// localRoutes turns the template's routes into shared/localrun's, each invoking its function
// with the payload-2.0 event API Gateway sends.
func localRoutes(t *testing.T, routes map[string]string, fns func(id string) *testenv.Lambda) []localrun.Route {
	t.Helper()
	var out []localrun.Route
	for key, id := range routes {
		method, path, ok := strings.Cut(key, " ")
		if !ok {
			t.Fatalf("route key %q is not METHOD PATH", key)
		}
		if method == "ANY" {
			method = ""
		}
		if p, greedy := strings.CutSuffix(path, "{proxy+}"); greedy {
			path = p
		} else if strings.Contains(path, "{") {
			t.Fatalf("route %q has a path parameter the local API does not play", key)
		}
		out = append(out, localrun.Route{Method: method, Path: path, RouteKey: key, Handler: func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			var resp events.APIGatewayV2HTTPResponse
			payload, err := json.Marshal(ev)
			if err != nil {
				return resp, err
			}
			raw, err := fns(id).Invoke(ctx, payload)
			if err != nil {
				return resp, err
			}
			if err := json.Unmarshal(raw, &resp); err != nil {
				return resp, fmt.Errorf("%s answered %s: %w", id, raw, err)
			}
			return resp, nil
		}})
	}
	return out
}
