package sqs_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/cartrelay/cartrelay/shared/awsjson"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/queue/queuetest"
	"github.com/cartrelay/cartrelay/shared/queue/sqs"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

// One moto_server serves the whole package; each test makes its own queues under a unique
// prefix.
var moto struct {
	endpoint string
	err      error
}

func TestMain(m *testing.M) {
	var stop func()
	moto.endpoint, stop, moto.err = testenv.StartMoto()
	code := m.Run()
	if stop != nil {
		stop()
	}
	os.Exit(code)
}

func awsConfig(endpoint string) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
	}
}

func client(endpoint string) *awsjson.Client {
	return sqs.NewClient(awsConfig(endpoint))
}

func motoClient(t *testing.T) *awsjson.Client {
	t.Helper()
	if moto.err != nil {
		testenv.MotoUnavailable(t, moto.err)
	}
	return client(moto.endpoint)
}

// sdkClient is the SDK's own SQS client on moto, to check the adapter's requests against
// what the SDK sends and reads.
func sdkClient(t *testing.T) *awssqs.Client {
	t.Helper()
	if moto.err != nil {
		testenv.MotoUnavailable(t, moto.err)
	}
	return awssqs.NewFromConfig(awsConfig(moto.endpoint))
}

// prefixes hands out queue name prefixes unique within the moto_server of this run.
type prefixes struct{ n atomic.Int64 }

func (p *prefixes) next() string { return fmt.Sprintf("t%d-", p.n.Add(1)) }

func TestContract(t *testing.T) {
	c := motoClient(t)
	var names prefixes
	queuetest.Run(t, queuetest.Harness{
		New: func(t *testing.T) queue.Queue {
			urls, err := sqs.Ensure(t.Context(), c, queuetest.Topology(), names.next())
			if err != nil {
				t.Fatalf("create queues: %v", err)
			}
			return sqs.New(c, queuetest.Topology(), urls)
		},
		// SQS runs in real time; the suite keeps its waits to a second or two.
		Pass: func(t *testing.T, d time.Duration) { time.Sleep(d) },
	})
}

func TestEnsure(t *testing.T) {
	c := motoClient(t)
	ctx := t.Context()
	urls, err := sqs.Ensure(ctx, c, queuetest.Topology(), "ensure-")
	if err != nil {
		t.Fatal(err)
	}
	if len(urls) != len(queuetest.Topology().Names()) {
		t.Fatalf("got %d urls, want one per queue: %v", len(urls), urls)
	}
	wantSuffix := map[string]string{
		"ingest": "/ensure-ingest", "ingest-dlq": "/ensure-ingest-dlq",
		"ontraport": "/ensure-ontraport.fifo", "ontraport-dlq": "/ensure-ontraport-dlq.fifo",
		"iterable": "/ensure-iterable.fifo", "iterable-dlq": "/ensure-iterable-dlq.fifo",
		"poll": "/ensure-poll", "poll-dlq": "/ensure-poll-dlq",
	}
	for name, suffix := range wantSuffix {
		if !strings.HasSuffix(urls[name], suffix) {
			t.Errorf("url of %s = %q, want it to end in %q", name, urls[name], suffix)
		}
	}
	sdk := sdkClient(t)
	for _, spec := range queuetest.Topology() {
		out, err := sdk.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(urls[spec.Name]), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		var policy struct {
			Target string `json:"deadLetterTargetArn"`
			Max    any    `json:"maxReceiveCount"`
		}
		if err := json.Unmarshal([]byte(out.Attributes["RedrivePolicy"]), &policy); err != nil {
			t.Fatalf("%s: redrive policy %q: %v", spec.Name, out.Attributes["RedrivePolicy"], err)
		}
		dlq, _ := sqs.PhysicalName(queuetest.Topology(), "ensure-", spec.DLQ())
		if !strings.HasSuffix(policy.Target, ":"+dlq) {
			t.Errorf("%s redrives to %s, want its DLQ %s", spec.Name, policy.Target, urls[spec.DLQ()])
		}
		if fmt.Sprint(policy.Max) != fmt.Sprint(spec.MaxReceiveCount) {
			t.Errorf("%s maxReceiveCount = %v, want %d", spec.Name, policy.Max, spec.MaxReceiveCount)
		}
		if got, want := out.Attributes["VisibilityTimeout"], fmt.Sprint(int(spec.VisibilityTimeout.Seconds())); got != want {
			t.Errorf("%s visibility timeout = %s, want %s", spec.Name, got, want)
		}
		if spec.FIFO && (out.Attributes["FifoQueue"] != "true" || out.Attributes["ContentBasedDeduplication"] != "false") {
			t.Errorf("%s: FifoQueue %q, ContentBasedDeduplication %q; want true, false", spec.Name, out.Attributes["FifoQueue"], out.Attributes["ContentBasedDeduplication"])
		}
	}
	again, err := sqs.Ensure(ctx, c, queuetest.Topology(), "ensure-")
	if err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	for name, url := range urls {
		if again[name] != url {
			t.Errorf("second Ensure: %s = %q, want %q", name, again[name], url)
		}
	}
}

func TestQueueDoesNotExist(t *testing.T) {
	c := motoClient(t)
	urls := map[string]string{}
	for _, name := range queuetest.Topology().Names() {
		urls[name] = moto.endpoint + "/123456789012/never-created-" + name
	}
	q := sqs.New(c, queuetest.Topology(), urls)
	ctx := t.Context()
	checks := map[string]error{
		"send": q.Send(ctx, queue.Ingest, []queue.Message{{Body: "x"}}),
	}
	_, checks["receive"] = q.Receive(ctx, queue.Ingest, queue.ReceiveOptions{})
	_, checks["stats"] = q.Stats(ctx, queue.Ingest)
	for op, err := range checks {
		if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "QUEUE_URL_INGEST") {
			t.Errorf("%s on a missing queue = %v; want an error saying it does not exist and naming QUEUE_URL_INGEST", op, err)
		}
	}
}

func TestMissingURL(t *testing.T) {
	q := sqs.New(client("http://127.0.0.1:1"), queuetest.Topology(), map[string]string{queue.Ingest: "http://127.0.0.1:1/q"})
	_, err := q.Stats(t.Context(), queue.Poll)
	if err == nil || !strings.Contains(err.Error(), "QUEUE_URL_POLL") {
		t.Fatalf("stats of a queue without URL = %v; want an error naming QUEUE_URL_POLL", err)
	}
}

func TestURLsFromEnv(t *testing.T) {
	fifoA, _ := queuetest.FIFOQueues(t)
	full := map[string]string{
		"QUEUE_URL_INGEST": "u1", "QUEUE_URL_INGEST_DLQ": "u2",
		"QUEUE_URL_ONTRAPORT": "u3", "QUEUE_URL_ONTRAPORT_DLQ": "u4",
		"QUEUE_URL_ITERABLE": "u5", "QUEUE_URL_ITERABLE_DLQ": "u6",
		"QUEUE_URL_POLL": "u7", "QUEUE_URL_POLL_DLQ": "u8",
	}
	// Every other registered destination's queues, named the same way.
	for _, n := range queuetest.Topology().Names() {
		if _, ok := full[sqs.EnvVar(n)]; !ok {
			full[sqs.EnvVar(n)] = "u-" + n
		}
	}
	tests := []struct {
		name    string
		unset   []string
		wantErr []string
	}{
		{"all set", nil, nil},
		{"two missing", []string{"QUEUE_URL_POLL", "QUEUE_URL_ITERABLE_DLQ"}, []string{"QUEUE_URL_POLL", "QUEUE_URL_ITERABLE_DLQ"}},
		{"blank counts as missing", []string{"QUEUE_URL_INGEST"}, []string{"QUEUE_URL_INGEST"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range full {
				env[k] = v
			}
			for _, k := range tc.unset {
				env[k] = " "
			}
			urls, err := sqs.URLsFromEnv(queuetest.Topology(), func(k string) string { return env[k] })
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if urls[fifoA+queue.DLQSuffix] != full[sqs.EnvVar(fifoA+queue.DLQSuffix)] || len(urls) != len(queuetest.Topology().Names()) {
					t.Fatalf("urls = %v", urls)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, v := range tc.wantErr {
				if !strings.Contains(err.Error(), v) {
					t.Errorf("error %q does not name %s", err, v)
				}
			}
		})
	}
}

func TestPhysicalNameAndPrefix(t *testing.T) {
	fifoA, fifoB := queuetest.FIFOQueues(t)
	tests := []struct {
		prefix, name, want string
	}{
		{"prod-", queue.Ingest, "prod-ingest"},
		{"prod-", fifoA, "prod-" + fifoA + ".fifo"},
		{"prod-", fifoB + queue.DLQSuffix, "prod-" + fifoB + "-dlq.fifo"},
		{"", queue.Poll + queue.DLQSuffix, "poll-dlq"},
	}
	for _, tc := range tests {
		if got, err := sqs.PhysicalName(queuetest.Topology(), tc.prefix, tc.name); err != nil || got != tc.want {
			t.Errorf("PhysicalName(%q, %q) = %q, %v; want %q", tc.prefix, tc.name, got, err, tc.want)
		}
	}
	if _, err := sqs.PhysicalName(queuetest.Topology(), "p-", "nope"); !errors.Is(err, queue.ErrUnknownQueue) {
		t.Errorf("PhysicalName of an unknown queue = %v", err)
	}
	for _, bad := range []string{"has space-", "dot.", strings.Repeat("x", 70)} {
		if _, err := sqs.Ensure(t.Context(), client("http://127.0.0.1:1"), queuetest.Topology(), bad); err == nil {
			t.Errorf("Ensure with prefix %q: no error", bad)
		}
	}
}

// fakeSQS answers SendMessageBatch from a script, for the failure paths moto cannot produce:
// it fails entries only for an invalid DelaySeconds, which cartrelay never sends, and its
// digests are always right.
type fakeSQS struct {
	mu    sync.Mutex
	calls int
	// reply scripts the answer to one call, given the batch's entry ids.
	reply func(call int, ids []string) batchReply
}

// batchReply is the answer to one SendMessageBatch call.
type batchReply struct {
	refuse  bool     // fail the whole call
	fail    []string // entries listed as Failed
	corrupt []string // entries listed as Successful with the wrong body digest
	omit    []string // entries listed nowhere
	extra   string   // an entry id listed as Failed that was not in the batch
}

func (f *fakeSQS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Amz-Target") != "AmazonSQS.SendMessageBatch" {
		http.Error(w, "unexpected "+r.Header.Get("X-Amz-Target"), http.StatusBadRequest)
		return
	}
	var in struct {
		Entries []struct{ Id, MessageBody string }
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.calls++
	call := f.calls
	f.mu.Unlock()
	var ids []string
	for _, e := range in.Entries {
		ids = append(ids, e.Id)
	}
	reply := f.reply(call, ids)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	if reply.refuse {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"com.amazonaws.sqs#KmsAccessDenied","message":"the key is disabled"}`)
		return
	}
	type ok1 struct{ Id, MessageId, MD5OfMessageBody string }
	type bad struct {
		Id, Code, Message string
		SenderFault       bool
	}
	out := struct {
		Successful []ok1
		Failed     []bad
	}{Successful: []ok1{}, Failed: []bad{}}
	if reply.extra != "" {
		out.Failed = append(out.Failed, bad{reply.extra, "InternalError", "try again", false})
	}
	for _, e := range in.Entries {
		sum := md5.Sum([]byte(e.MessageBody))
		switch {
		case slices.Contains(reply.fail, e.Id):
			out.Failed = append(out.Failed, bad{e.Id, "InternalError", "try again", false})
		case slices.Contains(reply.omit, e.Id):
		case slices.Contains(reply.corrupt, e.Id):
			sum = md5.Sum([]byte(e.MessageBody + "?"))
			fallthrough
		default:
			out.Successful = append(out.Successful, ok1{e.Id, "mid-" + e.Id, hex.EncodeToString(sum[:])})
		}
	}
	_ = json.NewEncoder(w).Encode(out)
}

func TestSendFailures(t *testing.T) {
	msgs := func(n int) []queue.Message {
		out := make([]queue.Message, n)
		for i := range out {
			out[i] = queue.Message{ID: fmt.Sprintf("caller id %d", i), Body: fmt.Sprintf("body %d", i)}
		}
		return out
	}
	callerIDs := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, fmt.Sprintf("caller id %d", i))
		}
		return out
	}
	onCall := func(n int, r batchReply) func(int, []string) batchReply {
		return func(call int, _ []string) batchReply {
			if call == n {
				return r
			}
			return batchReply{}
		}
	}
	tests := []struct {
		name       string
		n          int
		reply      func(call int, ids []string) batchReply
		wantFailed []string // nil: no error; "*": a plain error
		wantCode   string   // the code of every failed entry, or what the plain error says, when set
	}{
		{"all accepted", 12, onCall(0, batchReply{}), nil, ""},
		{"entries failed in the second batch", 15, onCall(2, batchReply{fail: []string{"e0", "e3"}}),
			[]string{"caller id 10", "caller id 13"}, "InternalError"},
		{"first batch refused", 15, onCall(1, batchReply{refuse: true}), []string{"*"}, "KmsAccessDenied"},
		{"second of three batches refused", 25, onCall(2, batchReply{refuse: true}), callerIDs(10, 25), ""},
		{"a body stored with another digest is not queued", 12, onCall(1, batchReply{corrupt: []string{"e4"}}),
			[]string{"caller id 4"}, "MD5Mismatch"},
		{"an entry the answer leaves out is not queued", 12, onCall(2, batchReply{omit: []string{"e1"}}),
			[]string{"caller id 11"}, "NotReported"},
		{"an answer about an entry not sent", 5, onCall(1, batchReply{extra: "e7"}), []string{"*"}, `unknown batch entry "e7"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(&fakeSQS{reply: tc.reply})
			defer srv.Close()
			q := sqs.New(client(srv.URL), queuetest.Topology(), map[string]string{queue.Ingest: srv.URL + "/000000000000/ingest"})
			err := q.Send(t.Context(), queue.Ingest, msgs(tc.n))
			switch {
			case tc.wantFailed == nil:
				if err != nil {
					t.Fatal(err)
				}
			case tc.wantFailed[0] == "*":
				var se *queue.SendError
				if err == nil || errors.As(err, &se) || !strings.Contains(err.Error(), tc.wantCode) {
					t.Fatalf("send = %v; want a plain error saying %s", err, tc.wantCode)
				}
			default:
				var se *queue.SendError
				if !errors.As(err, &se) {
					t.Fatalf("send = %v; want *queue.SendError", err)
				}
				got := se.FailedIDs()
				if len(got) != len(tc.wantFailed) {
					t.Fatalf("failed = %v; want %v", got, tc.wantFailed)
				}
				for _, id := range tc.wantFailed {
					if !got[id] {
						t.Errorf("entry %q not reported as failed; got %v", id, got)
					}
				}
				for _, f := range se.Failed {
					if tc.wantCode != "" && (f.Code != tc.wantCode || f.SenderFault) {
						t.Errorf("entry %s failed with code %q, sender fault %v; want %q, retryable", f.ID, f.Code, f.SenderFault, tc.wantCode)
					}
				}
			}
		})
	}
}

func TestContext(t *testing.T) {
	// The contract suite's context test covers a long poll; this checks that a cancelled
	// context fails fast even before any call.
	c := motoClient(t)
	urls, err := sqs.Ensure(t.Context(), c, queuetest.Topology(), "ctx-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := sqs.New(c, queuetest.Topology(), urls).Receive(ctx, queue.Ingest, queue.ReceiveOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("receive with a cancelled context = %v", err)
	}
}
