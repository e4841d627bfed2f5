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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

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

func client(endpoint string) *awssqs.Client {
	return awssqs.New(awssqs.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
	})
}

func motoClient(t *testing.T) *awssqs.Client {
	t.Helper()
	if moto.err != nil {
		testenv.MotoUnavailable(t, moto.err)
	}
	return client(moto.endpoint)
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
	for _, spec := range queuetest.Topology() {
		out, err := c.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(urls[spec.Name]), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
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
// it fails entries only for an invalid DelaySeconds, which cartrelay never sends.
type fakeSQS struct {
	mu    sync.Mutex
	calls int
	// reply returns, for one call, the entry ids to fail; or ok=false to fail the call.
	reply func(call int, ids []string) (fail []string, ok bool)
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
	fail, ok := f.reply(call, ids)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"com.amazonaws.sqs#KmsAccessDenied","message":"the key is disabled"}`)
		return
	}
	failed := map[string]bool{}
	for _, id := range fail {
		failed[id] = true
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
	for _, e := range in.Entries {
		if failed[e.Id] {
			out.Failed = append(out.Failed, bad{e.Id, "InternalError", "try again", false})
			continue
		}
		sum := md5.Sum([]byte(e.MessageBody))
		out.Successful = append(out.Successful, ok1{e.Id, "mid-" + e.Id, hex.EncodeToString(sum[:])})
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
	tests := []struct {
		name       string
		n          int
		reply      func(call int, ids []string) ([]string, bool)
		wantFailed []string // nil: no error; "*": a plain error
	}{
		{"all accepted", 12, func(int, []string) ([]string, bool) { return nil, true }, nil},
		{"entries failed in the second batch", 15,
			func(call int, _ []string) ([]string, bool) {
				if call == 2 {
					return []string{"e0", "e3"}, true
				}
				return nil, true
			},
			[]string{"caller id 10", "caller id 13"}},
		{"first batch refused", 15, func(int, []string) ([]string, bool) { return nil, false }, []string{"*"}},
		{"second of three batches refused", 25,
			func(call int, _ []string) ([]string, bool) { return nil, call != 2 },
			func() []string {
				var out []string
				for i := 10; i < 25; i++ {
					out = append(out, fmt.Sprintf("caller id %d", i))
				}
				return out
			}()},
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
				if err == nil || errors.As(err, &se) || !strings.Contains(err.Error(), "KmsAccessDenied") {
					t.Fatalf("send = %v; want a plain error carrying SQS's code", err)
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
