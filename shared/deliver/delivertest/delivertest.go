// Package delivertest is the contract every destination passes (docs/architecture.md, Adding a
// destination): without an API key it runs dry and records the exact requests it would send; a
// 4xx is permanent; a 429 carries the time to retry; a redelivered fact is taken once; every
// fact kind (domain.FactKinds) is either sent or skipped with a recorded reason. A
// destination's test calls Run with an Env over a fake of its API; the suite puts its own
// proxy in front of that fake to inject the failures.
//
// A redelivery here is the destination's own side of it (the fake holds one record). The
// forwarder's side, its done marker and delivery log, is checked for every registered
// destination on both backends by shared/app's TestARedeliveredFactIsTakenOnceOnBothBackends:
// this package cannot import shared/app, which imports every destination.
package delivertest

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
)

// Env is one destination over a fake of its API, fresh for each check.
type Env struct {
	Dest deliver.Destination
	// Account routes facts to the destination with an API key the fake accepts.
	Account accounts.Account
	// At returns the account with its API base URL at base (the suite's proxy).
	At func(a accounts.Account, base string) accounts.Account
	// WithoutKey returns the account with no API key.
	WithoutKey func(a accounts.Account) accounts.Account
	// API is the fake's base URL, and Transport (nil: the default) reaches it.
	API       string
	Transport http.RoundTripper
	// Placed is an OrderPlaced fact of the account's, for an order the fake does not hold.
	Placed domain.Fact
	// Held counts the records the fake holds for fact (for OrderPlaced: the order's purchases or
	// transactions).
	Held func(f domain.Fact) int
	// Facts are an example of every fact kind, delivered in order (an order's placement before
	// its refund); nil takes Examples.
	Facts []domain.Fact
}

//go:embed facts/*.json
var examples embed.FS

// Examples are one fact of every kind for account "acme" (facts/), in domain.FactKinds' order:
// one order of ann@example.com placed, refunded, shipped, charged back and reversed, her
// subscription, profile, cart, affiliate signup and erasure.
func Examples(t testing.TB) []domain.Fact {
	t.Helper()
	entries, err := examples.ReadDir("facts")
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[domain.FactKind]domain.Fact{}
	for _, e := range entries {
		raw, err := examples.ReadFile("facts/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		var f domain.Fact
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatalf("delivertest example %s: %v", e.Name(), err)
		}
		byKind[f.Kind] = f
	}
	var out []domain.Fact
	for _, k := range domain.FactKinds() {
		if f, ok := byKind[k]; ok {
			out = append(out, f)
		}
	}
	return out
}

// Run checks the contract; newEnv builds a fresh Env for every check.
func Run(t *testing.T, newEnv func(t *testing.T) Env) {
	t.Run("no API key runs dry and records the requests", func(t *testing.T) {
		e := newEnv(t)
		p := startProxy(t, e)
		acct := e.WithoutKey(e.At(e.Account, p.url))
		out, err := e.Dest.Deliver(context.Background(), acct, e.Placed)
		if err != nil {
			t.Fatalf("dry run: %v", err)
		}
		if out.Status != history.DeliveryDryRun {
			t.Fatalf("status %q without an API key, want %q", out.Status, history.DeliveryDryRun)
		}
		if len(out.Exchanges) == 0 {
			t.Fatal("a dry run recorded no requests: it must record the exact requests it would send")
		}
		for _, x := range out.Exchanges {
			if x.Method == "" || x.URL == "" {
				t.Errorf("a recorded request without method or URL: %+v", x)
			}
		}
		if n := p.count(); n != 0 {
			t.Fatalf("a dry run made %d requests", n)
		}
	})
	t.Run("a 4xx is permanent", func(t *testing.T) {
		e := newEnv(t)
		p := startProxy(t, e)
		p.fail(http.StatusBadRequest, 0)
		_, err := e.Dest.Deliver(context.Background(), e.At(e.Account, p.url), e.Placed)
		if err == nil || !deliver.IsPermanent(err) {
			t.Fatalf("after a 400: %v; want a permanent error, which the forwarder parks at once", err)
		}
	})
	t.Run("a 429 carries the time to retry", func(t *testing.T) {
		e := newEnv(t)
		p := startProxy(t, e)
		p.fail(http.StatusTooManyRequests, 7*time.Second)
		_, err := e.Dest.Deliver(context.Background(), e.At(e.Account, p.url), e.Placed)
		var ra *deliver.RetryAfterError
		if !errors.As(err, &ra) || ra.After <= 0 {
			t.Fatalf("after a 429 with Retry-After: %v; want a *deliver.RetryAfterError with a positive wait", err)
		}
		if deliver.IsPermanent(err) {
			t.Fatalf("a 429 must not be permanent: %v", err)
		}
	})
	t.Run("every fact kind is sent or skipped with a reason", func(t *testing.T) {
		e := newEnv(t)
		facts := e.Facts
		if facts == nil {
			facts = Examples(t)
		}
		seen := map[domain.FactKind]bool{}
		for _, f := range facts {
			seen[f.Kind] = true
			f.Account = e.Account.ID
			out, err := e.Dest.Deliver(context.Background(), e.Account, f)
			switch {
			case err != nil:
				t.Errorf("%s: %v; a destination sends a fact of every kind, or skips it with its reason", f.Kind, err)
			case out.Status == history.DeliverySkipped && out.Note == "":
				t.Errorf("%s was skipped without a reason: say in Outcome.Note why the destination does not take it", f.Kind)
			case out.Status != history.DeliverySkipped && out.Status != history.DeliverySent && out.Status != history.DeliveryDryRun:
				t.Errorf("%s: status %q", f.Kind, out.Status)
			case out.Status != history.DeliverySkipped && len(out.Exchanges) == 0:
				t.Errorf("%s: status %q without a request in the delivery log", f.Kind, out.Status)
			}
		}
		for _, k := range domain.FactKinds() {
			if !seen[k] {
				t.Errorf("no example of %s was delivered: add one to Env.Facts (or delivertest's facts/), so the destination shows it sends or skips it", k)
			}
		}
	})
	t.Run("a redelivered fact is taken once", func(t *testing.T) {
		e := newEnv(t)
		for i := range 2 {
			out, err := e.Dest.Deliver(context.Background(), e.Account, e.Placed)
			if err != nil {
				t.Fatalf("delivery %d: %v", i+1, err)
			}
			if out.Status != history.DeliverySent && out.Status != history.DeliverySkipped {
				t.Fatalf("delivery %d: status %q", i+1, out.Status)
			}
		}
		if n := e.Held(e.Placed); n != 1 {
			t.Fatalf("the fake holds %d records of %s after it was delivered twice, want 1", n, e.Placed.ID)
		}
	})
}

// proxy forwards to the fake, or answers every request with a failure.
type proxy struct {
	url   string
	mu    sync.Mutex
	n     int
	code  int
	after time.Duration
}

func startProxy(t *testing.T, e Env) *proxy {
	t.Helper()
	target, err := url.Parse(e.API)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = e.Transport
	p := &proxy{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.n++
		code, after := p.code, p.after
		p.mu.Unlock()
		if code == 0 {
			rp.ServeHTTP(w, r)
			return
		}
		if after > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(after/time.Second)))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"error":"refused by the contract test"}`))
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

func (p *proxy) fail(code int, after time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.code, p.after = code, after
}

func (p *proxy) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}
