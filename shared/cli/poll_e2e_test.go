package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/queue"
	qembedded "github.com/cartrelay/cartrelay/shared/queue/embedded"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
	"github.com/cartrelay/cartrelay/shared/store/embedded"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
)

// TestPollEndToEnd runs the schedule, poll and ingest handlers in process over the embedded
// store and queues, against the UltraCart fake: the schedule enqueues the connection's jobs,
// the poll handler walks the orders onto the ingest queue, ingest stores each order once, and a
// later poll that re-reads the head changes nothing.
func TestPollEndToEnd(t *testing.T) {
	const n = 300
	ctx := context.Background()
	env := newPollEnv(t, n, 0)
	a, st, clk, fake, drain, t0 := env.a, env.st, env.clk, env.fake, env.drain, env.t0
	if err := a.Schedule(ctx, events.EventBridgeEvent{}); err != nil {
		t.Fatal(err)
	}
	// One job per UltraCart stream, and the account's ThriveCart job (which finds no API key).
	if jobs := drain(queue.Poll, a.Poll); jobs != len(ucpoll.Streams())+1 {
		t.Fatalf("%d poll jobs, want one per stream and one for ThriveCart", jobs)
	}
	if got := drain(queue.Ingest, a.Ingest); got != n+n/25 {
		t.Fatalf("%d events ingested, want %d orders and %d refunds", got, n, n/25)
	}
	countOrders := func() int {
		seen := 0
		err := history.New(st).OrdersSince(ctx, "acme", t0.AddDate(0, 0, -30), t0, func(json.RawMessage) error { seen++; return nil })
		if err != nil {
			t.Fatal(err)
		}
		return seen
	}
	if got := countOrders(); got != n {
		t.Fatalf("%d orders stored, want %d", got, n)
	}
	if qs, err := history.New(st).QuarantineList(ctx, "acme", 10); err != nil || len(qs) != 0 {
		t.Fatalf("quarantined: %+v %v", qs, err)
	}

	// Nothing is due right after catching up; after the interval every stream re-reads the head,
	// but affiliates, whose whole list is read again only after ucpoll.AffiliateInterval.
	if err := a.Schedule(ctx, events.EventBridgeEvent{}); err != nil {
		t.Fatal(err)
	}
	if jobs := drain(queue.Poll, a.Poll); jobs != 0 {
		t.Fatalf("%d poll jobs right after catching up", jobs)
	}
	clk.Advance(11 * time.Minute)
	calls := len(fake.Calls())
	if err := a.Schedule(ctx, events.EventBridgeEvent{}); err != nil {
		t.Fatal(err)
	}
	if jobs := drain(queue.Poll, a.Poll); jobs != len(ucpoll.Streams())-1 {
		t.Fatalf("%d poll jobs after the interval, want one per stream but affiliates", jobs)
	}
	if got := len(fake.Calls()) - calls; got != len(ucpoll.Streams())-1 {
		t.Fatalf("%d requests to re-read the head, want one per stream but affiliates", got)
	}
	drain(queue.Ingest, a.Ingest)
	if got := countOrders(); got != n {
		t.Fatalf("%d orders stored after the re-read, want %d", got, n)
	}
	cur, _, err := ucpoll.LoadCursor(ctx, st, "acme", ucpoll.Orders)
	if err != nil || !cur.CaughtUp || cur.Done < n || cur.Estimated != n {
		t.Fatalf("cursor %+v (%v)", cur, err)
	}
}

type pollEnv struct {
	a     *app.App
	st    *embedded.Store
	clk   *clock.Fake
	fake  *ultracartfake.Server
	drain func(name string, h func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)) int
	t0    time.Time
}

// newPollEnv builds the handlers over the embedded store and queues, with account acme
// connected to an UltraCart fake holding n orders.
func newPollEnv(t *testing.T, n int, budget time.Duration) *pollEnv {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	db, err := sqlitedb.InDir(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := embedded.New(ctx, db, clk)
	if err != nil {
		t.Fatal(err)
	}
	q, err := qembedded.New(ctx, db, clk, destinations.Queues())
	if err != nil {
		t.Fatal(err)
	}
	key, err := secrets.NewLocalKey(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealer := secrets.NewSealer(key, clk)
	accts := accounts.NewRepo(st, sealer, clk)
	if _, err := accts.Put(ctx, "acme", []byte(`{"ultracart":{"webhook_username":"uc","webhook_password":"pw-123"},"forward_since":"2026-02-25T00:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	fake := ultracartfake.New(ultracartfake.Options{Orders: n, Start: t0.AddDate(0, 0, -10), Spacing: 6 * 24 * time.Hour / time.Duration(n),
		RefundEvery: 25, SimpleKey: "uc-key", Rate: 1000, Window: time.Hour, Clock: clk})
	t.Cleanup(fake.Close)
	conns := connections.NewRepo(st, sealer, clk)
	if _, err := conns.Put(ctx, connections.Connection{Account: "acme", Provider: connections.UltraCart,
		Kind: connections.KindSimpleKey, SimpleKey: "uc-key", BaseURL: fake.URL}); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(app.Deps{Store: st, Queue: q, Accounts: accts, Clock: clk, Polling: &app.Polling{
		Connections: conns, Options: ucpoll.Options{Start: t0.AddDate(0, 0, -30)},
		Budget: budget, Sleep: func(_ context.Context, d time.Duration) error { clk.Advance(d); return nil }}})
	if err != nil {
		t.Fatal(err)
	}
	drain := func(name string, h func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)) int {
		handled := 0
		for {
			msgs, err := q.Receive(ctx, name, queue.ReceiveOptions{Max: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) == 0 {
				return handled
			}
			ev := events.SQSEvent{}
			for _, m := range msgs {
				attrs := map[string]events.SQSMessageAttribute{}
				for k, v := range m.Attributes {
					attrs[k] = events.SQSMessageAttribute{StringValue: &v, DataType: "String"}
				}
				ev.Records = append(ev.Records, events.SQSMessage{MessageId: m.MessageID, Body: m.Body, MessageAttributes: attrs})
			}
			resp, err := h(ctx, ev)
			if err != nil || len(resp.BatchItemFailures) > 0 {
				t.Fatalf("%s handler: %v %+v", name, err, resp.BatchItemFailures)
			}
			for _, m := range msgs {
				if err := q.Delete(ctx, name, m.ReceiptHandle); err != nil {
					t.Fatal(err)
				}
			}
			handled += len(msgs)
		}
	}
	return &pollEnv{a: a, st: st, clk: clk, fake: fake, drain: drain, t0: t0}
}

// TestPollContinues gives each poll run a budget of a few requests: a run that runs out puts
// its job back on the poll queue, and the chain of continuations still brings every order in
// exactly once.
func TestPollContinues(t *testing.T) {
	const n = 1000
	ctx := context.Background()
	env := newPollEnv(t, n, 3*time.Minute)
	env.fake.OnRequest(func(context.Context, ultracartfake.Call) { env.clk.Advance(30 * time.Second) })
	if err := env.a.Schedule(ctx, events.EventBridgeEvent{}); err != nil {
		t.Fatal(err)
	}
	runs := 0
	for range 100 {
		got := env.drain(queue.Poll, env.a.Poll)
		if got == 0 {
			break
		}
		runs += got
	}
	if runs < 4 {
		t.Fatalf("only %d poll runs; the budget did not bind", runs)
	}
	if got := env.drain(queue.Ingest, env.a.Ingest); got != n+n/25 {
		t.Fatalf("%d events, want %d", got, n+n/25)
	}
	seen := 0
	if err := history.New(env.st).OrdersSince(ctx, "acme", env.t0.AddDate(0, 0, -30), env.t0, func(json.RawMessage) error { seen++; return nil }); err != nil || seen != n {
		t.Fatalf("%d orders stored (%v)", seen, err)
	}
}
