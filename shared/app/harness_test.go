package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/ontraport"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/phone"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// harness is the embedded runtime with the handlers called in process, as Lambda would.
// ONTRAPORT's and Iterable's names and the names of their queues, as their registrations give
// them.
var (
	ontraportName, ontraportQueue = ontraport.Registration().Name, ontraport.Registration().Queue.Name
	iterableName, iterableQueue   = iterable.Registration().Name, iterable.Registration().Queue.Name
)

type harness struct {
	t   *testing.T
	env *wiring.Env
	clk *clock.Fake
	// sent collects the facts routed to each destination queue, in queue order.
	sent map[string][]domain.Fact
	// dir is the data directory of the embedded runtime.
	dir string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessWith(t, wiring.Options{})
}

// newHarnessWith is newHarness with options; the clock and the phone normalizer are set here.
func newHarnessWith(t *testing.T, o wiring.Options) *harness {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	o.Clock, o.Phone = clk, phone.E164
	dir := t.TempDir()
	env, err := operator.Embedded(context.Background(), dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	return &harness{t: t, env: env, clk: clk, sent: map[string][]domain.Fact{}, dir: dir}
}

const ucUser, ucPass, tcSecret = "uc-user", "uc-pass-1", "TESTSECRETWORD01"

func (h *harness) account(id string, extra string) {
	h.t.Helper()
	patch := fmt.Sprintf(`{"ultracart":{"webhook_username":%q,"webhook_password":%q},"thrivecart":{"secret":%q},
		"forward_since":"2000-01-01T00:00:00Z","ontraport":{"enabled":true},"iterable":{"enabled":true}%s}`, ucUser, ucPass, tcSecret, extra)
	if _, err := h.env.Accounts.Put(context.Background(), id, []byte(patch)); err != nil {
		h.t.Fatal(err)
	}
}

func fixture(t *testing.T, source, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", source, "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func httpReq(method, path, ctype string, body []byte, headers map[string]string) events.APIGatewayV2HTTPRequest {
	h := map[string]string{"content-type": ctype}
	for k, v := range headers {
		h[k] = v
	}
	req := events.APIGatewayV2HTTPRequest{Version: "2.0", RawPath: path, Headers: h, Body: string(body)}
	req.RequestContext.HTTP.Method = method
	req.RequestContext.HTTP.Path = path
	req.RequestContext.RequestID = fmt.Sprintf("req-%d", time.Now().UnixNano())
	if ctype == "application/x-www-form-urlencoded" {
		// API Gateway hands form posts to Lambda base64-encoded.
		req.Body, req.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	return req
}

func basic(user, pass string) map[string]string {
	return map[string]string{"authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
}

// postUC posts an UltraCart delivery with the right credentials and returns the status.
func (h *harness) postUC(account string, body []byte) events.APIGatewayV2HTTPResponse {
	h.t.Helper()
	resp, err := h.env.App.Webhook(context.Background(), httpReq("POST", "/webhooks/ultracart/"+account, "application/json", body, basic(ucUser, ucPass)))
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

func toSQSEvent(name string, rs []queue.Received) events.SQSEvent {
	var ev events.SQSEvent
	for _, r := range rs {
		attrs := map[string]events.SQSMessageAttribute{}
		for k, v := range r.Attributes {
			v := v
			attrs[k] = events.SQSMessageAttribute{DataType: "String", StringValue: &v}
		}
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: r.MessageID, ReceiptHandle: r.ReceiptHandle, Body: r.Body,
			MessageAttributes: attrs, EventSourceARN: "arn:aws:sqs:local:000000000000:" + name,
			Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(r.ReceiveCount), "MessageGroupId": r.GroupID}})
	}
	return ev
}

// drainIngest runs the ingest handler until its queue is empty, and collects what it routed.
func (h *harness) drainIngest() {
	h.t.Helper()
	ctx := context.Background()
	for range 1000 {
		rs, err := h.env.Queue.Receive(ctx, queue.Ingest, queue.ReceiveOptions{Max: 10})
		if err != nil {
			h.t.Fatal(err)
		}
		if len(rs) == 0 {
			break
		}
		resp, err := h.env.App.Ingest(ctx, toSQSEvent(queue.Ingest, rs))
		if err != nil {
			h.t.Fatal(err)
		}
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		if len(failed) > 0 {
			h.t.Fatalf("ingest reported %d failure(s); logs are discarded, check the quarantine", len(failed))
		}
		for _, r := range rs {
			if err := h.env.Queue.Delete(ctx, queue.Ingest, r.ReceiptHandle); err != nil {
				h.t.Fatal(err)
			}
		}
	}
	for _, dest := range []string{ontraportQueue, iterableQueue} {
		for {
			rs, err := h.env.Queue.Receive(ctx, dest, queue.ReceiveOptions{Max: 10})
			if err != nil {
				h.t.Fatal(err)
			}
			if len(rs) == 0 {
				break
			}
			for _, r := range rs {
				var f domain.Fact
				if err := json.Unmarshal([]byte(r.Body), &f); err != nil {
					h.t.Fatal(err)
				}
				if r.DedupID != f.ID {
					h.t.Fatalf("fact %s sent with dedup id %s", f.ID, r.DedupID)
				}
				h.sent[dest] = append(h.sent[dest], f)
				if err := h.env.Queue.Delete(ctx, dest, r.ReceiptHandle); err != nil {
					h.t.Fatal(err)
				}
			}
		}
	}
}

func (h *harness) facts(dest string, kind domain.FactKind) []domain.Fact {
	var out []domain.Fact
	for _, f := range h.sent[dest] {
		if f.Kind == kind {
			out = append(out, f)
		}
	}
	return out
}

func (h *harness) contact(account, email string) *history.ContactView {
	h.t.Helper()
	v, err := history.New(h.env.Store).View(context.Background(), account, email)
	if err != nil {
		h.t.Fatal(err)
	}
	return v
}

func (h *harness) quarantined(account string) []history.Quarantined {
	h.t.Helper()
	q, err := history.New(h.env.Store).QuarantineList(context.Background(), account, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return q
}

func (h *harness) queued(name string) int {
	h.t.Helper()
	s, err := h.env.Queue.Stats(context.Background(), name)
	if err != nil {
		h.t.Fatal(err)
	}
	return s.Visible + s.InFlight
}

// ingestOnly runs the ingest handler until its queue is empty and leaves the destination queues
// for a forwarder.
func (h *harness) ingestOnly() {
	h.t.Helper()
	ctx := context.Background()
	for {
		rs, err := h.env.Queue.Receive(ctx, queue.Ingest, queue.ReceiveOptions{Max: 10})
		if err != nil {
			h.t.Fatal(err)
		}
		if len(rs) == 0 {
			return
		}
		if _, err := h.env.App.Ingest(ctx, toSQSEvent(queue.Ingest, rs)); err != nil {
			h.t.Fatal(err)
		}
		for _, r := range rs {
			h.env.Queue.Delete(ctx, queue.Ingest, r.ReceiptHandle)
		}
	}
}
