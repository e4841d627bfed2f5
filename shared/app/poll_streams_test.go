package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
)

// pollAll runs the schedule, then the poll handler until the poll queue is empty, then ingest.
// It returns how many poll jobs ran.
func (h *harness) pollAll() int {
	h.t.Helper()
	ctx := context.Background()
	if err := h.env.App.Schedule(ctx, events.EventBridgeEvent{}); err != nil {
		h.t.Fatal(err)
	}
	jobs := 0
	for range 100 {
		rs, err := h.env.Queue.Receive(ctx, queue.Poll, queue.ReceiveOptions{Max: 10})
		if err != nil {
			h.t.Fatal(err)
		}
		if len(rs) == 0 {
			break
		}
		resp, err := h.env.App.Poll(ctx, toSQSEvent(queue.Poll, rs))
		if err != nil || len(resp.BatchItemFailures) > 0 {
			h.t.Fatalf("poll handler: %v %+v", err, resp.BatchItemFailures)
		}
		for _, r := range rs {
			if err := h.env.Queue.Delete(ctx, queue.Poll, r.ReceiptHandle); err != nil {
				h.t.Fatal(err)
			}
		}
		jobs += len(rs)
	}
	h.drainIngest()
	return jobs
}

// TestPolledRecordsReachHistory polls an UltraCart connection's auto orders, customers and items
// through the schedule, poll and ingest handlers: each is stored as its webhook would store it,
// and a later change UltraCart reports only through its listings (no webhook) reaches the
// contact on the next poll: a customer's new email moves the history, an auto order's
// cancellation shows on the subscriber, an item's new name in the catalogue.
func TestPolledRecordsReachHistory(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.account("acme", "")
	fake := ultracartfake.New(ultracartfake.Options{AutoOrders: 3, Customers: 3, Items: 3, Start: h.clk.Now().AddDate(0, 0, -5),
		Spacing: time.Hour, SimpleKey: "uc-key", Clock: h.clk})
	t.Cleanup(fake.Close)
	if _, err := h.env.Connections.Put(ctx, connections.Connection{Account: "acme", Provider: connections.UltraCart,
		Kind: connections.KindSimpleKey, SimpleKey: "uc-key", BaseURL: fake.URL}); err != nil {
		t.Fatal(err)
	}
	// One job per UltraCart stream, and the account's ThriveCart job (which finds no API key).
	if jobs := h.pollAll(); jobs != len(ucpoll.Streams())+1 {
		t.Fatalf("%d poll jobs, want one per stream (%v) and one for ThriveCart", jobs, ucpoll.Streams())
	}
	for _, stream := range ucpoll.Streams() {
		if cur, _, err := ucpoll.LoadCursor(ctx, h.env.Store, "acme", stream); err != nil || !cur.CaughtUp || cur.Requests == 0 {
			t.Fatalf("stream %s after the first poll: %+v (%v)", stream, cur, err)
		}
	}
	if q := h.quarantined("acme"); len(q) != 0 {
		t.Fatalf("quarantined: %+v", q)
	}
	sub := h.contact("acme", ultracartfake.SubscriberEmail(0))
	if len(sub.Subscriptions) != 1 || sub.Subscriptions[0].ID != ultracartfake.AutoOrderCode(0) || sub.Subscriptions[0].Status != domain.SubActive {
		t.Fatalf("subscriber's subscriptions: %+v", sub.Subscriptions)
	}
	if c := h.contact("acme", ultracartfake.CustomerEmail(1)); c.Profile == nil || c.Profile.FirstName != "Casey" {
		t.Fatalf("customer 1's profile: %+v", c.Profile)
	}
	item := func() *domain.Item {
		it, err := history.New(h.env.Store).Item(ctx, "acme", domain.UltraCart, ultracartfake.ItemID(2))
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	if it := item(); it == nil || it.Name != "Tea blend 3" || it.Price.Decimal() != "5.02" {
		t.Fatalf("item 3: %+v", it)
	}

	h.clk.Advance(time.Hour)
	fake.Modify(ultracartfake.Customers, 1, map[string]any{"email": "casey.new@example.com"})
	fake.Modify(ultracartfake.AutoOrders, 0, map[string]any{"status": "canceled", "canceled_dts": h.clk.Now().Format(time.RFC3339),
		"cancel_reason": "moving abroad"})
	fake.Modify(ultracartfake.Items, 2, map[string]any{"description": "Tea blend, renamed"})
	h.clk.Advance(time.Minute)
	h.pollAll()

	changed := h.facts(iterableQueue, domain.FactEmailChanged)
	if len(changed) != 1 || changed[0].OldEmail != ultracartfake.CustomerEmail(1) || changed[0].Email != "casey.new@example.com" {
		t.Fatalf("EmailChanged facts: %+v", changed)
	}
	if old := h.contact("acme", ultracartfake.CustomerEmail(1)); old.AliasOf != "casey.new@example.com" {
		t.Fatalf("the old email is not an alias of the new: %q", old.AliasOf)
	}
	sub = h.contact("acme", ultracartfake.SubscriberEmail(0))
	if len(sub.Subscriptions) != 1 || sub.Subscriptions[0].Status != domain.SubCancelled || sub.Subscriptions[0].Reason != "moving abroad" {
		t.Fatalf("subscriber's subscriptions after the cancellation: %+v", sub.Subscriptions)
	}
	if it := item(); it == nil || it.Name != "Tea blend, renamed" {
		t.Fatalf("item 3 after the rename: %+v", it)
	}
	if q := h.quarantined("acme"); len(q) != 0 {
		t.Fatalf("quarantined: %+v", q)
	}

	// Polling again with nothing changed stores nothing new: the re-read overlap is dropped
	// by ingest's content dedupe.
	facts := len(h.sent[iterableQueue]) + len(h.sent[ontraportQueue])
	calls := len(fake.Calls())
	h.clk.Advance(15 * time.Minute)
	h.pollAll()
	reread := 0
	for _, c := range fake.Calls()[calls:] {
		reread += c.Returned
	}
	if got := len(h.sent[iterableQueue]) + len(h.sent[ontraportQueue]); got != facts || reread == 0 {
		t.Fatalf("a poll with nothing changed re-read %d records and routed %d new facts", reread, got-facts)
	}
}
