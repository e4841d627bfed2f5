package localrun

import (
	"bytes"
	"context"
	"github.com/cartrelay/cartrelay/shared/queue/queuetest"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer collects log output written from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) contains(s string) bool { return strings.Contains(b.String(), s) }

func testLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// running is one Run in the background.
type running struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// start runs cfg on a free loopback port and stops it when the test ends.
func start(t *testing.T, cfg Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Addr = "127.0.0.1:0"
	if cfg.Queues == nil {
		cfg.Queues = queuetest.Topology()
	}
	ready := make(chan string, 1)
	cfg.Ready = func(addr string) { ready <- addr }
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- Run(ctx, cfg) }()
	select {
	case r.addr = <-ready:
	case err := <-r.done:
		cancel()
		t.Fatalf("Run returned before it was ready: %v", err)
	case <-time.After(5 * time.Second):
		cancel()
		t.Fatal("Run was not ready within 5s")
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run's context and returns Run's result.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return within 30s of cancellation")
		}
	})
	return r.err
}

func (r *running) url(path string) string { return "http://" + r.addr + path }

// eventually polls cond until it holds or the time is up.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
