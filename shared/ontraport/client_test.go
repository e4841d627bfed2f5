package ontraport

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/ontraport/ontraportfake"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
)

// newClient is a client of e's account, as Deliver builds one.
func (e *env) newClient(retries int) *client {
	e.t.Helper()
	cfg, err := configFor(e.acct)
	if err != nil {
		e.t.Fatal(err)
	}
	lim, err := ratelimit.NewShared(e.st, e.clk, LimiterPK(e.acct.ID), ratelimit.Limit{Requests: cfg.perMinute, Window: time.Minute})
	if err != nil {
		e.t.Fatal(err)
	}
	d := e.dest.o
	return &client{cfg: cfg, http: d.HTTPClient, lim: lim, clk: e.clk, sleep: d.Sleep, maxWait: d.MaxWait,
		retries: retries, log: d.Log}
}

func withFake(f func(*ontraportfake.Options)) envOpt {
	return func(fo *ontraportfake.Options, _ *Options, _ *accounts.Account) { f(fo) }
}

func withAccount(f func(*accounts.Account)) envOpt {
	return func(_ *ontraportfake.Options, _ *Options, a *accounts.Account) { f(a) }
}

func withOptions(f func(*Options)) envOpt {
	return func(_ *ontraportfake.Options, o *Options, _ *accounts.Account) { f(o) }
}

// TestClientHonoursRateHeaders: when ONTRAPORT says the budget is spent (other tools share it),
// every process pauses until its reset, and the pause is handed back to the queue when longer
// than a delivery may wait.
func TestClientHonoursRateHeaders(t *testing.T) {
	e := newEnv(t, withFake(func(o *ontraportfake.Options) { o.Limit = 5 }),
		withOptions(func(o *Options) { o.MaxWait = 5 * time.Second }))
	ctx := context.Background()
	c := e.newClient(0)
	for range 5 {
		if _, err := c.findTransactions(ctx, "x"); err != nil {
			t.Fatal(err)
		}
	}
	// The fifth answer said Remaining 0, Reset 60: the shared limiter is paused.
	_, err := c.findTransactions(ctx, "x")
	var ra *deliver.RetryAfterError
	if !errors.As(err, &ra) || !errors.Is(err, ErrRateLimited) || ra.After < 50*time.Second {
		t.Fatalf("sixth request: %v, want a rate-limit hint of about a minute", err)
	}
	if n := len(e.fake.Calls()); n != 5 {
		t.Fatalf("fake saw %d requests, want 5: the sixth must not be sent", n)
	}
	// Another process (a fresh client on the same table) waits too.
	if _, err := e.newClient(0).findTransactions(ctx, "x"); !errors.As(err, &ra) {
		t.Fatalf("another process: %v, want the shared pause", err)
	}
	e.clk.Advance(61 * time.Second)
	if _, err := c.findTransactions(ctx, "x"); err != nil {
		t.Fatalf("after the reset: %v", err)
	}
}

// TestClient429 blocks every process for the reset and hands the hint to the forwarder.
func TestClient429(t *testing.T) {
	e := newEnv(t, withFake(func(o *ontraportfake.Options) {
		o.StormReset = 7 * time.Second
		o.Fault = func(r ontraportfake.Request) ontraportfake.Fault {
			if r.N <= 3 {
				return ontraportfake.TooMany
			}
			return ontraportfake.None
		}
	}), withOptions(func(o *Options) { o.MaxWait = time.Second }))
	ctx := context.Background()
	c := e.newClient(2)
	_, err := c.findTransactions(ctx, "x")
	var ra *deliver.RetryAfterError
	if !errors.As(err, &ra) || ra.After != 7*time.Second {
		t.Fatalf("429: %v, want RetryAfterError of 7s", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusTooManyRequests || deliver.IsPermanent(classify(err)) {
		t.Fatalf("429 must stay retryable: %v", err)
	}
	if n := len(e.fake.Calls()); n != 1 {
		t.Fatalf("a 429 is not retried at once: %d calls", n)
	}
	if _, err := c.findTransactions(ctx, "x"); !errors.As(err, &ra) || !errors.Is(err, ErrRateLimited) {
		t.Fatalf("during the pause: %v, want the limiter's own hint", err)
	}
	e.clk.Advance(8 * time.Second)
	for range 2 {
		if _, err := c.findTransactions(ctx, "x"); err == nil {
			t.Fatal("the storm lasts three requests")
		}
		e.clk.Advance(8 * time.Second)
	}
	if _, err := c.findTransactions(ctx, "x"); err != nil {
		t.Fatalf("after the storm: %v", err)
	}
}

// TestClientServerErrors: safe requests are retried at once; a creation is not (the next
// delivery looks up what it may have created); both stay retryable for the forwarder.
func TestClientServerErrors(t *testing.T) {
	e := newEnv(t, withFake(func(o *ontraportfake.Options) {
		o.Fault = func(r ontraportfake.Request) ontraportfake.Fault {
			if r.N <= 2 {
				return ontraportfake.ServerError
			}
			return ontraportfake.None
		}
	}))
	ctx := context.Background()
	c := e.newClient(2)
	if _, err := c.findTransactions(ctx, "x"); err != nil {
		t.Fatalf("a safe request after two 500s: %v", err)
	}
	if n := len(e.fake.Calls()); n != 3 {
		t.Fatalf("calls = %d, want 3", n)
	}
	if len(c.exchanges) != 3 || c.exchanges[0].Status != 500 || c.exchanges[2].Status != 200 {
		t.Fatalf("every attempt is kept for the log: %+v", c.exchanges)
	}
	e.fake.SetFault(func(ontraportfake.Request) ontraportfake.Fault { return ontraportfake.ServerError })
	_, err := c.createProduct(ctx, product{Name: "X", Price: "1.00", SKU: "X"})
	if err == nil || deliver.IsPermanent(classify(err)) {
		t.Fatalf("500 on a creation: %v, want a retryable error", err)
	}
	if n := len(e.fake.CallsTo(http.MethodPost, "/Products")); n != 1 {
		t.Fatalf("a creation was sent %d times", n)
	}
}

// TestClientTimeout: a request ONTRAPORT never answers fails within the client's timeout and is
// retryable.
func TestClientTimeout(t *testing.T) {
	e := newEnv(t, withFake(func(o *ontraportfake.Options) {
		o.Fault = func(ontraportfake.Request) ontraportfake.Fault { return ontraportfake.Hang }
	}), withOptions(func(o *Options) { o.HTTPClient = &http.Client{Timeout: 50 * time.Millisecond} }))
	start := time.Now()
	_, err := e.newClient(0).findTransactions(context.Background(), "x")
	if err == nil || !isTimeout(err) || deliver.IsPermanent(classify(err)) {
		t.Fatalf("hang: %v, want a retryable timeout", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("the timeout took %s", time.Since(start))
	}
}

// TestClientRejections: 4xx answers are permanent and carry ONTRAPORT's body.
func TestClientRejections(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.newClient(2).saveOrUpdate(ctx, map[string]any{"email": "not-an-email"})
	perm := classify(err)
	if !deliver.IsPermanent(perm) || !strings.Contains(perm.Error(), "422") || !strings.Contains(perm.Error(), "Invalid email") {
		t.Fatalf("invalid email: %v", perm)
	}
	set(&e.acct, keyAPIKey, accounts.NewSecret("wrong-key"))
	_, err = e.newClient(2).saveOrUpdate(ctx, map[string]any{"email": "a@example.com"})
	if perm := classify(err); !deliver.IsPermanent(perm) || !strings.Contains(perm.Error(), "401") {
		t.Fatalf("wrong key: %v", perm)
	}
	if n := len(e.fake.Calls()); n != 2 {
		t.Fatalf("rejections are not retried: %d calls", n)
	}
}

// TestClientRedactsTheKey: the delivery log never holds the API key.
func TestClientRedactsTheKey(t *testing.T) {
	e := newEnv(t)
	c := e.newClient(0)
	if _, err := c.saveOrUpdate(context.Background(), map[string]any{"email": "a@example.com"}); err != nil {
		t.Fatal(err)
	}
	ex := c.exchanges[0]
	if ex.RequestHeaders["Api-Key"] != redacted || ex.RequestHeaders["Api-Appid"] != testAppID {
		t.Fatalf("headers %v", ex.RequestHeaders)
	}
	for _, s := range []string{ex.URL, ex.RequestBody, ex.ResponseBody, strings.Join(mapValues(ex.RequestHeaders), " ")} {
		if strings.Contains(s, testKey) {
			t.Fatalf("the API key leaked into the log: %q", s)
		}
	}
}

// TestRefundGuard: a refund or tag request without explicit ids is never sent, whatever the
// caller passes, because ONTRAPORT would apply it to every transaction or contact.
func TestRefundGuard(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.newClient(0)
	for _, ids := range [][]int64{nil, {}, {0}, {-1}, {5, 0}} {
		if err := c.refund(ctx, ids); !errors.Is(err, ErrEmptySelection) || !deliver.IsPermanent(classify(err)) {
			t.Errorf("refund(%v) = %v, want a permanent ErrEmptySelection", ids, err)
		}
		if err := c.tagContacts(ctx, ids, []string{"T"}, false); !errors.Is(err, ErrEmptySelection) {
			t.Errorf("tagContacts(%v) = %v, want ErrEmptySelection", ids, err)
		}
	}
	if n := len(e.fake.Calls()); n != 0 || len(c.exchanges) != 0 {
		t.Fatalf("%d requests reached the fake", n)
	}
	// The fake models why: an empty selection refunds everything.
	e.fake.AddTransaction(ontraportfake.Transaction{ExternalOrderID: "other"})
	req, _ := http.NewRequest(http.MethodPut, e.fake.URL+pathRefund, strings.NewReader(`{"objectID":46,"ids":[]}`))
	req.Header.Set("Api-Appid", testAppID)
	req.Header.Set("Api-Key", testKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if r := e.fake.Refunds(); len(r) != 1 || !r[0].All {
		t.Fatalf("the fake should refund all on an empty selection: %+v", r)
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// TestSaveOrUpdateReadsBothShapes: a new contact's id is data.id, a merged one's data.attrs.id,
// as a string or a number (testdata/saveorupdate_responses.json).
func TestSaveOrUpdateReadsBothShapes(t *testing.T) {
	var cases []struct {
		Name    string          `json:"name"`
		Body    json.RawMessage `json:"body"`
		ID      int64           `json:"id"`
		Created bool            `json:"created"`
		Error   string          `json:"error"`
	}
	readJSONFile(t, "saveorupdate_responses.json", &cases)
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			body := []byte(tc.Body)
			var s string
			if json.Unmarshal(body, &s) == nil {
				body = []byte(s)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write(body)
			}))
			defer srv.Close()
			e := newEnv(t, withAccount(func(a *accounts.Account) { set(a, keyBaseURL, srv.URL) }))
			got, err := e.newClient(0).saveOrUpdate(context.Background(), map[string]any{"email": "ann@example.com"})
			if tc.Error != "" {
				if err == nil || !strings.Contains(err.Error(), tc.Error) {
					t.Fatalf("err = %v, want %q", err, tc.Error)
				}
				return
			}
			if err != nil || got.ID != tc.ID || got.Created != tc.Created {
				t.Fatalf("got %+v, %v; want id %d created %v", got, err, tc.ID, tc.Created)
			}
		})
	}
}
