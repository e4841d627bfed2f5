package wiring_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/localrun"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// TestServeFloodOfOneRouteSparesTheOthers: junk flooding /track and the ThriveCart webhook
// past their throttles is refused with 429, while an UltraCart delivery still gets through
// and is queued. The clock stands still, so no bucket refills during the test.
func TestServeFloodOfOneRouteSparesTheOthers(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	env, err := operator.Embedded(context.Background(), t.TempDir(), wiring.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	ctx := context.Background()
	if _, err := env.Accounts.Put(ctx, "acme", []byte(`{"ultracart":{"webhook_username":"uc","webhook_password":"pw-123"},"iterable":{"enabled":true}}`)); err != nil {
		t.Fatal(err)
	}
	cfg, err := wiring.ServeConfig(env, wiring.ServeOptions{Addr: "127.0.0.1:0", ScheduleEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// Only the HTTP API is under test; without consumers the queued delivery stays put.
	cfg.Consumers, cfg.Schedules = nil, nil
	ready := make(chan string, 1)
	cfg.Ready = func(a string) { ready <- a }
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- localrun.Run(runCtx, cfg) }()
	var base string
	select {
	case a := <-ready:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	limits := map[string]localrun.Throttle{}
	for _, r := range wiring.HTTPRoutes() {
		limits[r.RouteKey] = r.Throttle
	}

	post := func(path, ctype string, body []byte, basicAuth bool) int {
		req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if basicAuth {
			req.SetBasicAuth("uc", "pw-123")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	flood := func(path, ctype, body string, burst int) {
		throttled := 0
		for range burst + 50 {
			if post(path, ctype, []byte(body), false) == http.StatusTooManyRequests {
				throttled++
			}
		}
		if throttled != 50 {
			t.Fatalf("flooding %s: %d of %d requests throttled, want 50", path, throttled, burst+50)
		}
	}
	flood("/track/acme", "text/plain", `{"visitor":"v","url":"https://x.example/"}`, limits["ANY /track/{proxy+}"].Burst)
	flood("/webhooks/thrivecart/acme", "application/x-www-form-urlencoded", "junk=1", limits["ANY /webhooks/thrivecart/{proxy+}"].Burst)

	order, err := os.ReadFile(filepath.Join("..", "ultracart", "testdata", "order_create.json"))
	if err != nil {
		t.Fatal(err)
	}
	if s := post("/webhooks/ultracart/acme", "application/json", order, true); s != http.StatusOK {
		t.Fatalf("an UltraCart delivery during the flood: %d, want 200", s)
	}
	st, err := env.Queue.Stats(ctx, queue.Ingest)
	if err != nil {
		t.Fatal(err)
	}
	if st.Visible != 1 {
		t.Fatalf("%d messages queued after one UltraCart delivery of one event, want 1", st.Visible)
	}
}
