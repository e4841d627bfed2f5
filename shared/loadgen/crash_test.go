package loadgen_test

import (
	"github.com/cartrelay/cartrelay/shared/destinations"
	"net"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/loadgen"
	"github.com/cartrelay/cartrelay/shared/ontraport"
	"github.com/cartrelay/cartrelay/shared/queue"
	queueembedded "github.com/cartrelay/cartrelay/shared/queue/embedded"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
	storeembedded "github.com/cartrelay/cartrelay/shared/store/embedded"
)

// TestCrashUnderLoad builds the CLI, runs `cartrelay serve` as its own process, posts order
// deliveries at a steady rate, kills serve with SIGKILL in the middle (requests, commits and
// queue batches in flight), starts it again on the same address while the deliveries keep
// coming, and checks that every delivery answered 200 was stored exactly once: each accepted
// order is in the table once, on a contact that counts it once, with one OrderPlaced fact, and
// nothing is left on the queues, in their dead-letter queues or in quarantine.
func TestCrashUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and runs serve for several seconds")
	}
	ctx := t.Context()
	dir := t.TempDir()
	bin := filepath.Join(dir, "cartrelay")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/cartrelay/cartrelay/cmd/cartrelay").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	if err := loadgen.PutAccount(ctx, bin, data, map[string]any{
		"forward_since": "2020-01-01T00:00:00Z",
		"ultracart":     map[string]any{"webhook_username": loadgen.WebhookUser, "webhook_password": loadgen.WebhookPassword},
		"ontraport":     map[string]any{"enabled": true}, "iterable": map[string]any{"enabled": true},
	}); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	start := func() *loadgen.Serve {
		t.Helper()
		s, err := loadgen.StartServe(ctx, loadgen.ServeOptions{Binary: bin, Data: data, Addr: addr, Args: []string{"--no-throttle"}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	srv := start()

	// 100 deliveries a second for 5 s; serve is killed after 2.5 s and back 0.5 s later.
	var mu sync.Mutex
	var accepted []uint64
	refused := 0
	crashed := make(chan *loadgen.Serve, 1)
	time.AfterFunc(2500*time.Millisecond, func() {
		if err := srv.Kill(); err != nil {
			t.Errorf("kill serve: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
		crashed <- start()
	})
	const run = "CRASH"
	loadgen.Post(loadgen.Load{URL: "http://" + addr, Run: run, Rate: 100, Duration: 5 * time.Second, Timeout: 10 * time.Second}, ctx.Done(),
		func(a loadgen.Answer) {
			mu.Lock()
			defer mu.Unlock()
			if a.Accepted() {
				accepted = append(accepted, a.N)
			} else {
				refused++
			}
		})
	srv = <-crashed
	defer srv.Kill()
	if refused == 0 {
		t.Fatal("no delivery failed: serve was not down while they were posted")
	}
	if len(accepted) < 200 {
		t.Fatalf("only %d deliveries were accepted", len(accepted))
	}
	t.Logf("%d deliveries accepted, %d not (serve was down)", len(accepted), refused)

	db, err := sqlitedb.InDir(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := storeembedded.New(ctx, db, clock.System{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := queueembedded.New(ctx, db, clock.System{}, destinations.Queues())
	if err != nil {
		t.Fatal(err)
	}
	repo := history.New(st)
	// Wait (in real time: serve runs on its own) until every queue is empty.
	deadline := time.Now().Add(90 * time.Second)
	for {
		busy := 0
		for _, name := range []string{queue.Ingest, ontraport.Registration().Queue.Name, iterable.Registration().Queue.Name} {
			s, err := q.Stats(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			busy += s.Visible + s.InFlight + s.Delayed
		}
		if busy == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still queued 90 s after the load", busy)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, name := range []string{queue.Ingest + "-dlq", ontraport.Registration().Queue.DLQ(), iterable.Registration().Queue.DLQ()} {
		if s, _ := q.Stats(ctx, name); s.Visible+s.InFlight+s.Delayed != 0 {
			t.Errorf("dead-letter queue %s holds %+v", name, s)
		}
	}
	if held, err := repo.QuarantineList(ctx, loadgen.Account, 0); err != nil || len(held) != 0 {
		t.Errorf("quarantined: %d (%v)", len(held), err)
	}
	for _, n := range accepted {
		id := loadgen.OrderID(run, n)
		email := loadgen.Email(run, n)
		v, err := repo.View(ctx, loadgen.Account, email)
		if err != nil {
			t.Fatal(err)
		}
		placed := 0
		for _, f := range v.Facts {
			if f.Kind == domain.FactOrderPlaced {
				placed++
			}
		}
		switch {
		case len(v.Orders) != 1 || v.Orders[0].OrderID != id:
			t.Errorf("order %s answered 200: %d orders stored for its buyer", id, len(v.Orders))
		case v.Profile == nil || v.Profile.PurchaseCount != 1:
			t.Errorf("order %s: the buyer's profile %+v does not count it once", id, v.Profile)
		case placed != 1:
			t.Errorf("order %s: %d OrderPlaced facts", id, placed)
		}
	}
}

// freeAddr is a local address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
