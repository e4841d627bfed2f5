package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// noisy is text that gzip cannot shrink much, to force each size class.
func noisy(n int) string {
	r := rand.New(rand.NewPCG(7, 9))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[r.IntN(len(letters))]
	}
	return string(b)
}

func TestSourceEventsOfEverySizeRoundTrip(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		size int
		form string // what the message body looks like
	}{
		{"inline", 1_000, "\n"},
		{"compressed", 100_000, `"gz"`}, // padded below with text that compresses well
		{"in the table", 1_500_000, `"ref"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload, _ := json.Marshal(map[string]any{"order_id": "X-1", "note": noisy(tc.size), "nested": map[string]any{"line": "a\nb"},
				"padding": strings.Repeat("x", 200_000)})
			in := app.SourceEvent{Account: "acme", Source: domain.UltraCart, Name: "order_update", Payload: payload,
				ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Delivery: "d1", Index: 3, Via: "webhook"}
			body, err := app.EncodeSourceEvent(ctx, h.env.Store, h.clk.Now(), in)
			if err != nil {
				t.Fatal(err)
			}
			if len(body) > queue.MaxBodyBytes {
				t.Fatalf("message body is %d bytes, over SQS's %d", len(body), queue.MaxBodyBytes)
			}
			if !strings.Contains(body, tc.form) {
				t.Fatalf("a %d-byte event was not sent as %s", tc.size, tc.form)
			}
			out, err := app.DecodeSourceEvent(ctx, h.env.Store, body)
			if err != nil {
				t.Fatal(err)
			}
			if string(out.Payload) != string(payload) {
				t.Fatal("payload changed on the way")
			}
			out.Payload, in.Payload = nil, nil
			if fmt.Sprint(out) != fmt.Sprint(in) {
				t.Fatalf("header changed: %+v != %+v", out, in)
			}
		})
	}
}

func TestUnreadableIngestMessageIsQuarantined(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	err := h.env.Queue.Send(context.Background(), queue.Ingest, []queue.Message{{Body: "not a message",
		Attributes: map[string]string{"account": "acme"}}})
	if err != nil {
		t.Fatal(err)
	}
	h.drainIngest()
	q := h.quarantined("acme")
	if len(q) != 1 || q[0].Kind != "unreadable" || q[0].Message != "not a message" {
		t.Fatalf("quarantine: %+v", q)
	}
}

func TestQuarantineReplayThatFailsAgainIsHeldAgain(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	h.postUC("acme", []byte(`{"events":[{"order_create":{"merchant_id":"DEMO"}}]}`)) // no order_id
	h.drainIngest()
	q := h.quarantined("acme")
	if len(q) != 1 || q[0].Kind != "invalid" {
		t.Fatalf("quarantine: %+v", q)
	}
	repo := history.New(h.env.Store)
	if err := repo.QuarantineMarkReplayed(context.Background(), q[0], h.clk.Now()); err != nil {
		t.Fatal(err)
	}
	if err := h.env.Queue.Send(context.Background(), queue.Ingest, []queue.Message{{Body: q[0].Message}}); err != nil {
		t.Fatal(err)
	}
	h.drainIngest()
	again := h.quarantined("acme")
	if len(again) != 1 || !again[0].ReplayedAt.IsZero() {
		t.Fatalf("after a failed replay: %+v; want the event held again, not marked replayed", again)
	}
}
