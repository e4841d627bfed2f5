package app_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/deliver/delivertest"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/phone"
	"github.com/cartrelay/cartrelay/shared/queue"
	queueembedded "github.com/cartrelay/cartrelay/shared/queue/embedded"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
	"github.com/cartrelay/cartrelay/shared/store/dynamo"
	"github.com/cartrelay/cartrelay/shared/testenv"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// TestARedeliveredFactIsTakenOnceOnBothBackends is the part of the destination contract
// (delivertest) that lives in the forwarder: a fact delivered twice, as SQS may hand it over,
// reaches the destination once and leaves one delivered entry in the delivery log. The done
// marker and the log are in the table, so every registered destination is run through Forward
// with the table in SQLite and in DynamoDB (DynamoDB Local). delivertest cannot run this
// itself: a destination's own tests would then import app, which imports the destination.
func TestARedeliveredFactIsTakenOnceOnBothBackends(t *testing.T) {
	for _, backend := range []struct {
		name string
		open func(t *testing.T) func(t *testing.T) *harness
	}{
		{"embedded", func(*testing.T) func(*testing.T) *harness { return newHarness }},
		{"dynamodb", func(t *testing.T) func(*testing.T) *harness {
			tables := testenv.DynamoDBTables(t, "redelivery")
			return func(t *testing.T) *harness { return newHarnessOnDynamoDB(t, tables) }
		}},
	} {
		t.Run(backend.name, func(t *testing.T) {
			open := backend.open(t)
			for _, r := range destinations.All() {
				t.Run(r.Name, func(t *testing.T) {
					build, ok := chaosTargets()[r.Name]
					if !ok {
						t.Fatalf("destination %s is registered but has no fake here: add it to chaosTargets, so the forwarder's redelivery is checked for it", r.Name)
					}
					h := open(t)
					redeliverOnce(t, h, r.Name, build(t, h, nil))
				})
				t.Run(r.Name+"/twice in one batch", func(t *testing.T) {
					build := chaosTargets()[r.Name]
					h := open(t)
					twiceInOneBatch(t, h, r.Name, build(t, h, nil))
				})
			}
		})
	}
}

// newHarnessOnDynamoDB is newHarness with the table in DynamoDB Local (a new one from tables)
// and the queues embedded.
func newHarnessOnDynamoDB(t *testing.T, tables func(testing.TB, clock.Clock) *dynamo.Store) *harness {
	t.Helper()
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	o := wiring.Options{Clock: clk, Phone: phone.E164}
	dir := t.TempDir()
	db, err := sqlitedb.InDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q, err := queueembedded.New(ctx, db, clk, destinations.Queues())
	if err != nil {
		t.Fatal(err)
	}
	key, err := secrets.LoadOrCreateLocalKey(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := wiring.NewSealer(key, o)
	if err != nil {
		t.Fatal(err)
	}
	env, err := wiring.New(tables(t, clk), q, sealer, o)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, env: env, clk: clk, sent: map[string][]domain.Fact{}, dir: dir}
}

// placedExample is the OrderPlaced fact of the destination contract's examples, as a message.
func placedExample(t *testing.T) (domain.Fact, queue.Received) {
	t.Helper()
	var placed domain.Fact
	for _, f := range delivertest.Examples(t) {
		if f.Kind == domain.FactOrderPlaced {
			placed = f
		}
	}
	body, err := json.Marshal(placed)
	if err != nil {
		t.Fatal(err)
	}
	return placed, queue.Received{MessageID: "m-1", ReceiptHandle: "r-1", Body: string(body), GroupID: placed.Account + "|" + placed.Email, ReceiveCount: 1}
}

// twiceInOneBatch hands the forwarder of dest one batch holding the same OrderPlaced fact
// twice (a message and its redelivery): the forwarder reads the batch's done markers together
// before it delivers any, and the second copy must still find the marker the first left.
func twiceInOneBatch(t *testing.T, h *harness, dest string, target chaosTarget) {
	ctx := context.Background()
	placed, msg := placedExample(t)
	again := msg
	again.MessageID, again.ReceiptHandle = "m-2", "r-2"
	resp, err := h.env.App.Forward(target.dest)(ctx, toSQSEvent(dest, []queue.Received{msg, again}))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("delivery: %v, failures %v", err, resp.BatchItemFailures)
	}
	if target.requests() == 0 {
		t.Fatalf("the delivery of %s made no request to %s", placed.ID, dest)
	}
	log, err := history.New(h.env.Store).Deliveries(ctx, placed.Account, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	var statuses []string
	for _, d := range log {
		if d.FactID == placed.ID && d.Dest == dest {
			statuses = append(statuses, d.Status)
		}
	}
	if len(statuses) != 1 || statuses[0] != history.DeliverySent {
		t.Errorf("the delivery log holds entries %q for %s to %s, want one %q", statuses, placed.ID, dest, history.DeliverySent)
	}
}

// redeliverOnce hands the forwarder of dest the same OrderPlaced message twice, the second time
// as SQS redelivers it, and checks the destination and the delivery log.
func redeliverOnce(t *testing.T, h *harness, dest string, target chaosTarget) {
	ctx := context.Background()
	placed, msg := placedExample(t)
	forward := h.env.App.Forward(target.dest)
	resp, err := forward(ctx, toSQSEvent(dest, []queue.Received{msg}))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("first delivery: %v, failures %v", err, resp.BatchItemFailures)
	}
	first := target.requests()
	if first == 0 {
		t.Fatalf("the first delivery of %s made no request to %s", placed.ID, dest)
	}
	msg.ReceiptHandle, msg.ReceiveCount = "r-2", 2
	resp, err = forward(ctx, toSQSEvent(dest, []queue.Received{msg}))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("redelivery: %v, failures %v", err, resp.BatchItemFailures)
	}
	if n := target.requests(); n != first {
		t.Errorf("the redelivered fact made %d more request(s) to %s; its done marker must stop it", n-first, dest)
	}

	repo := history.New(h.env.Store)
	log, err := repo.Deliveries(ctx, placed.Account, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	var statuses []string
	for _, d := range log {
		if d.FactID == placed.ID && d.Dest == dest {
			statuses = append(statuses, d.Status)
		}
	}
	if len(statuses) != 1 || statuses[0] != history.DeliverySent {
		t.Errorf("the delivery log holds entries %q for %s to %s, want one %q", statuses, placed.ID, dest, history.DeliverySent)
	}
	if done, err := repo.FactDone(ctx, placed.Account, dest, placed.ID); err != nil || done == nil {
		t.Errorf("no done marker for %s to %s (%v)", placed.ID, dest, err)
	}
}
