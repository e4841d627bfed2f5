package localrun

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"github.com/cartrelay/cartrelay/shared/queue/queuetest"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// newAPI serves cfg's routes in-process, without the rest of Run.
func newAPI(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	if cfg.Queues == nil {
		cfg.Queues = queuetest.Topology()
	}
	cfg, err := withDefaults(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newHTTPAPI(cfg, context.Background()))
	t.Cleanup(srv.Close)
	return srv
}

// recorder is a handler that keeps the events it got and answers resp.
type recorder struct {
	mu   sync.Mutex
	evs  []events.APIGatewayV2HTTPRequest
	resp events.APIGatewayV2HTTPResponse
}

func (r *recorder) handle(_ context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
	return r.resp, nil
}

func (r *recorder) last(t *testing.T) events.APIGatewayV2HTTPRequest {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.evs) == 0 {
		t.Fatal("the handler was not called")
	}
	return r.evs[len(r.evs)-1]
}

func (r *recorder) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evs)
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func newRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestRequestMapping(t *testing.T) {
	now := time.Date(2025, 3, 12, 19, 3, 58, 123e6, time.UTC)
	rec := &recorder{}
	exact := &recorder{}
	srv := newAPI(t, Config{
		Clock: clock.NewFake(now),
		Routes: []Route{
			{Path: "/webhooks/", RouteKey: "ANY /webhooks/{proxy+}", Handler: rec.handle},
			{Method: "get", Path: "/connect", Handler: exact.handle},
		},
	})
	host := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := net.SplitHostPort(host)

	req := newRequest(t, http.MethodPost, srv.URL+"/webhooks/ultracart/acct%201?a=1&a=2&b=x%20y&empty=", strings.NewReader(`{"x":1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cartrelay-test/1")
	req.Header.Add("X-Multi", "one")
	req.Header.Add("X-Multi", "two")
	req.Header.Add("Cookie", "s=1; t=2")
	req.Header.Add("Cookie", "u=3")
	resp, _ := do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	ev := rec.last(t)

	checks := []struct {
		name      string
		got, want any
	}{
		{"version", ev.Version, "2.0"},
		{"routeKey", ev.RouteKey, "ANY /webhooks/{proxy+}"},
		{"rawPath", ev.RawPath, "/webhooks/ultracart/acct%201"},
		{"rawQueryString", ev.RawQueryString, "a=1&a=2&b=x%20y&empty="},
		{"cookies", ev.Cookies, []string{"s=1", "t=2", "u=3"}},
		{"queryStringParameters", ev.QueryStringParameters, map[string]string{"a": "1,2", "b": "x y", "empty": ""}},
		{"pathParameters", ev.PathParameters, map[string]string{"proxy": "ultracart/acct 1"}},
		{"body", ev.Body, `{"x":1}`},
		{"isBase64Encoded", ev.IsBase64Encoded, false},
		{"header x-multi", ev.Headers["x-multi"], "one,two"},
		{"header content-type", ev.Headers["content-type"], "application/json"},
		{"header host", ev.Headers["host"], host},
		{"header user-agent", ev.Headers["user-agent"], "cartrelay-test/1"},
		{"header x-forwarded-for", ev.Headers["x-forwarded-for"], "127.0.0.1"},
		{"header x-forwarded-proto", ev.Headers["x-forwarded-proto"], "http"},
		{"header x-forwarded-port", ev.Headers["x-forwarded-port"], port},
		{"requestContext.routeKey", ev.RequestContext.RouteKey, "ANY /webhooks/{proxy+}"},
		{"requestContext.accountId", ev.RequestContext.AccountID, "local"},
		{"requestContext.apiId", ev.RequestContext.APIID, "local"},
		{"requestContext.stage", ev.RequestContext.Stage, "$default"},
		{"requestContext.domainName", ev.RequestContext.DomainName, host},
		{"requestContext.time", ev.RequestContext.Time, "12/Mar/2025:19:03:58 +0000"},
		{"requestContext.timeEpoch", ev.RequestContext.TimeEpoch, now.UnixMilli()},
		{"requestContext.http", ev.RequestContext.HTTP, events.APIGatewayV2HTTPRequestContextHTTPDescription{
			Method: "POST", Path: "/webhooks/ultracart/acct 1", Protocol: "HTTP/1.1", SourceIP: "127.0.0.1", UserAgent: "cartrelay-test/1",
		}},
		{"requestId matches the response header", ev.RequestContext.RequestID, resp.Header.Get("Apigw-Requestid")},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	for k := range ev.Headers {
		if k != strings.ToLower(k) {
			t.Errorf("header %q is not lower-cased", k)
		}
	}
	if _, ok := ev.Headers["cookie"]; ok {
		t.Error("the cookie header must move to cookies, as in payload 2.0")
	}
	if ev.RequestContext.RequestID == "" {
		t.Error("empty request id")
	}

	// A tunnel's forwarding headers survive; API Gateway appends the caller.
	req = newRequest(t, http.MethodPost, srv.URL+"/webhooks/x", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Forwarded-Proto", "https")
	do(t, req)
	ev2 := rec.last(t)
	if got := ev2.Headers["x-forwarded-for"]; got != "203.0.113.9, 127.0.0.1" {
		t.Errorf("x-forwarded-for = %q", got)
	}
	if got := ev2.Headers["x-forwarded-proto"]; got != "https" {
		t.Errorf("x-forwarded-proto = %q", got)
	}
	if ev2.RequestContext.RequestID == ev.RequestContext.RequestID {
		t.Error("two requests share a request id")
	}
	if ev2.Cookies != nil || ev2.QueryStringParameters != nil || ev2.Body != "" || ev2.IsBase64Encoded {
		t.Errorf("a bare request should have no cookies, query or body: %+v", ev2)
	}

	// An exact route has no path parameters, and its derived route key names its method.
	do(t, newRequest(t, http.MethodGet, srv.URL+"/connect", nil))
	ev3 := exact.last(t)
	if ev3.PathParameters != nil {
		t.Errorf("exact route pathParameters = %v, want none", ev3.PathParameters)
	}
	if ev3.RouteKey != "GET /connect" {
		t.Errorf("derived route key = %q", ev3.RouteKey)
	}
}

func TestRequestBodyEncoding(t *testing.T) {
	rec := &recorder{}
	srv := newAPI(t, Config{Routes: []Route{{Path: "/in", Handler: rec.handle}}})
	binary := []byte{0x89, 'P', 'N', 'G', 0, 0xff, 0xfe}
	notUTF8 := []byte(`{"name":"caf` + "\xe9" + `"}`)
	cases := []struct {
		name, contentType string
		body              []byte
		wantBody          string
		wantB64           bool
	}{
		{"json", "application/json", []byte(`{"a":"é"}`), `{"a":"é"}`, false},
		{"text with charset", "text/plain; charset=utf-8", []byte("hello"), "hello", false},
		{"xml", "application/xml", []byte("<a/>"), "<a/>", false},
		{"vendor json", "application/vnd.api+json", []byte("{}"), "{}", false},
		{"binary", "application/octet-stream", binary, base64.StdEncoding.EncodeToString(binary), true},
		{"image", "image/png", binary, base64.StdEncoding.EncodeToString(binary), true},
		// API Gateway does not count form posts as text; a ThriveCart webhook arrives encoded.
		{"form", "application/x-www-form-urlencoded", []byte("a=1&b=2"), base64.StdEncoding.EncodeToString([]byte("a=1&b=2")), true},
		{"no content type", "", []byte("raw"), base64.StdEncoding.EncodeToString([]byte("raw")), true},
		{"json that is not UTF-8", "application/json", notUTF8, base64.StdEncoding.EncodeToString(notUTF8), true},
		{"empty", "application/json", nil, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := newRequest(t, http.MethodPost, srv.URL+"/in", bytes.NewReader(c.body))
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			do(t, req)
			ev := rec.last(t)
			if ev.Body != c.wantBody || ev.IsBase64Encoded != c.wantB64 {
				t.Errorf("body %q base64 %v, want %q base64 %v", ev.Body, ev.IsBase64Encoded, c.wantBody, c.wantB64)
			}
		})
	}
}

func TestRouting(t *testing.T) {
	hit := func(name string) HTTPHandler {
		return func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: name}, nil
		}
	}
	srv := newAPI(t, Config{Routes: []Route{
		{Path: "/webhooks/", Handler: hit("any-greedy")},
		{Method: "POST", Path: "/webhooks/", Handler: hit("post-greedy")},
		{Path: "/webhooks/special", Handler: hit("exact")},
		{Path: "/webhooks/deep/", Handler: hit("longer-greedy")},
		{Method: "GET", Path: "/connect", Handler: hit("connect")},
	}})
	cases := []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/webhooks/x", 200, "any-greedy"},
		{"POST", "/webhooks/x", 200, "post-greedy"},
		{"POST", "/webhooks/special", 200, "exact"},
		{"GET", "/webhooks/deep/y", 200, "longer-greedy"},
		{"POST", "/webhooks/deep/y", 200, "longer-greedy"},
		{"GET", "/connect", 200, "connect"},
		// A greedy route needs something after its prefix, as {proxy+} does.
		{"GET", "/webhooks", 404, `{"message":"Not Found"}`},
		{"GET", "/webhooks/", 404, `{"message":"Not Found"}`},
		{"POST", "/connect", 404, `{"message":"Not Found"}`},
		{"GET", "/connect/more", 404, `{"message":"Not Found"}`},
		{"GET", "/nowhere", 404, `{"message":"Not Found"}`},
	}
	for _, c := range cases {
		resp, body := do(t, newRequest(t, c.method, srv.URL+c.path, nil))
		if resp.StatusCode != c.status || string(body) != c.body {
			t.Errorf("%s %s = %d %s, want %d %s", c.method, c.path, resp.StatusCode, body, c.status, c.body)
		}
		if c.status == 404 && resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: 404 content type %q", c.method, c.path, resp.Header.Get("Content-Type"))
		}
	}
}

// TestRouteThrottles: each throttled route has its own bucket, refilled on the clock, and a
// throttled request never reaches its handler.
func TestRouteThrottles(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	flooded, other := &recorder{}, &recorder{}
	srv := newAPI(t, Config{Clock: clk, Routes: []Route{
		{Path: "/track/", Handler: flooded.handle, Throttle: Throttle{Rate: 2, Burst: 3}},
		{Path: "/webhooks/ultracart/", Handler: other.handle, Throttle: Throttle{Rate: 2, Burst: 3}},
	}})
	status := func(path string) int {
		resp, _ := do(t, newRequest(t, "POST", srv.URL+path, strings.NewReader("{}")))
		return resp.StatusCode
	}
	var got []int
	for range 10 {
		got = append(got, status("/track/acme"))
	}
	if want := []int{200, 200, 200, 429, 429, 429, 429, 429, 429, 429}; !reflect.DeepEqual(got, want) {
		t.Fatalf("flood: %v, want %v", got, want)
	}
	if flooded.calls() != 3 {
		t.Errorf("the flooded handler ran %d times, want 3", flooded.calls())
	}
	resp, body := do(t, newRequest(t, "POST", srv.URL+"/track/acme", nil))
	if resp.StatusCode != 429 || string(body) != `{"message":"Too Many Requests"}` {
		t.Errorf("throttled answer %d %s", resp.StatusCode, body)
	}
	for i := range 3 {
		if s := status("/webhooks/ultracart/acme"); s != 200 {
			t.Fatalf("request %d on the other route while the first is flooded: %d", i, s)
		}
	}
	clk.Advance(500 * time.Millisecond)
	if s := status("/track/acme"); s != 200 {
		t.Errorf("after one refill interval: %d, want 200", s)
	}
	if s := status("/track/acme"); s != 429 {
		t.Errorf("second request after one refill interval: %d, want 429", s)
	}
}

func TestBodyOverLimit(t *testing.T) {
	rec := &recorder{}
	srv := newAPI(t, Config{MaxBodyBytes: 16, Routes: []Route{{Path: "/webhooks/", Handler: rec.handle}}})

	resp, body := do(t, newRequest(t, http.MethodPost, srv.URL+"/webhooks/a", strings.NewReader(strings.Repeat("x", 17))))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	var got struct {
		Message  string `json:"message"`
		Error    string `json:"error"`
		MaxBytes int64  `json:"max_bytes"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("413 body is not JSON: %s", body)
	}
	if got.Message != "Request Entity Too Large" || got.MaxBytes != 16 || !strings.Contains(got.Error, "16-byte limit") {
		t.Errorf("413 body = %s", body)
	}

	// Without a declared length (chunked), the limit holds while reading.
	chunked := newRequest(t, http.MethodPost, srv.URL+"/webhooks/a", io.MultiReader(strings.NewReader(strings.Repeat("y", 10)), strings.NewReader(strings.Repeat("y", 10))))
	chunked.ContentLength = -1
	if resp, _ := do(t, chunked); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked status %d, want 413", resp.StatusCode)
	}
	// A large body is refused from its declared length, before it is read.
	if resp, _ := do(t, newRequest(t, http.MethodPost, srv.URL+"/webhooks/a", bytes.NewReader(make([]byte, 4<<20)))); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("4 MiB body: status %d, want 413", resp.StatusCode)
	}
	if n := rec.calls(); n != 0 {
		t.Fatalf("the handler ran %d times for bodies over the limit", n)
	}

	if resp, _ := do(t, newRequest(t, http.MethodPost, srv.URL+"/webhooks/a", strings.NewReader(strings.Repeat("z", 16)))); resp.StatusCode != http.StatusOK {
		t.Errorf("a body at the limit: status %d", resp.StatusCode)
	}
}

func TestHandlerFailureIs500(t *testing.T) {
	log, logs := testLogger()
	srv := newAPI(t, Config{Logger: log, Routes: []Route{
		{Path: "/error", Handler: func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "secret detail"}, errors.New("enqueue failed: boom")
		}},
		{Path: "/panic", Handler: func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			panic("handler bug")
		}},
		{Path: "/badbase64", Handler: func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "%%%", IsBase64Encoded: true}, nil
		}},
		{Path: "/badstatus", Handler: func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{StatusCode: 42}, nil
		}},
	}})
	for _, path := range []string{"/error", "/panic", "/badbase64", "/badstatus"} {
		resp, body := do(t, newRequest(t, http.MethodGet, srv.URL+path, nil))
		if resp.StatusCode != 500 || string(body) != `{"message":"Internal Server Error"}` {
			t.Errorf("%s = %d %s, want 500 Internal Server Error", path, resp.StatusCode, body)
		}
	}
	for _, want := range []string{"enqueue failed: boom", "handler panicked: handler bug", "does not decode", "status code 42"} {
		if !logs.contains(want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestResponseMapping(t *testing.T) {
	png := []byte{0x89, 'P', 'N', 'G', 0, 1, 2}
	srv := newAPI(t, Config{Routes: []Route{
		{Path: "/text", Handler: func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{
				Headers:           map[string]string{"Content-Type": "text/plain; charset=utf-8", "x-one": "1", "Content-Length": "999"},
				MultiValueHeaders: map[string][]string{"X-Many": {"a", "b"}},
				Cookies:           []string{"sid=abc; Path=/; HttpOnly", "theme=dark"},
				Body:              "hello",
			}, nil
		}},
		{Path: "/binary", Handler: func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{
				StatusCode: http.StatusCreated, Headers: map[string]string{"Content-Type": "image/png"},
				Body: base64.StdEncoding.EncodeToString(png), IsBase64Encoded: true,
			}, nil
		}},
	}})

	resp, body := do(t, newRequest(t, http.MethodGet, srv.URL+"/text", nil))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status 0 gave %d, want 200", resp.StatusCode)
	}
	if string(body) != "hello" {
		t.Errorf("body %q", body)
	}
	if got := resp.Header.Get("X-One"); got != "1" {
		t.Errorf("X-One = %q", got)
	}
	if got := resp.Header.Values("X-Many"); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("X-Many = %q", got)
	}
	if got := resp.Header.Values("Set-Cookie"); !reflect.DeepEqual(got, []string{"sid=abc; Path=/; HttpOnly", "theme=dark"}) {
		t.Errorf("Set-Cookie = %q", got)
	}
	if resp.Header.Get("Apigw-Requestid") == "" {
		t.Error("no Apigw-Requestid header")
	}

	resp, body = do(t, newRequest(t, http.MethodGet, srv.URL+"/binary", nil))
	if resp.StatusCode != http.StatusCreated || !bytes.Equal(body, png) || resp.Header.Get("Content-Type") != "image/png" {
		t.Errorf("binary = %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

func TestHealthz(t *testing.T) {
	fq := newFakeQueue(clock.System{})
	if err := fq.Send(context.Background(), queue.Ingest, []queue.Message{{Body: "a"}, {Body: "b"}}); err != nil {
		t.Fatal(err)
	}
	noop := func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
		return events.SQSEventResponse{}, nil
	}
	srv := newAPI(t, Config{Queue: fq, Consumers: []Consumer{{Queue: queue.Ingest, Handler: noop}}})

	resp, body := do(t, newRequest(t, http.MethodGet, srv.URL+"/healthz", nil))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("healthz = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var got struct {
		Status string        `json:"status"`
		Queues []queue.Stats `json:"queues"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := []queue.Stats{{Queue: queue.Ingest, Visible: 2}, {Queue: queue.Ingest + queue.DLQSuffix}}
	if got.Status != "ok" || !reflect.DeepEqual(got.Queues, want) {
		t.Errorf("healthz = %s", body)
	}

	bare := newAPI(t, Config{})
	resp, body = do(t, newRequest(t, http.MethodGet, bare.URL+"/healthz", nil))
	if resp.StatusCode != http.StatusOK || string(body) != `{"status":"ok"}` {
		t.Errorf("healthz without queues = %d %s", resp.StatusCode, body)
	}
}

func TestConfigErrors(t *testing.T) {
	h := func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{}, nil
	}
	sqs := func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
		return events.SQSEventResponse{}, nil
	}
	fq := newFakeQueue(clock.System{})
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"route without handler", Config{Routes: []Route{{Path: "/x"}}}, "has no handler"},
		{"relative path", Config{Routes: []Route{{Path: "x", Handler: h}}}, "must start with /"},
		{"duplicate route", Config{Routes: []Route{{Path: "/x", Handler: h}, {Path: "/x", Handler: h}}}, "declared twice"},
		{"healthz shadowed", Config{Routes: []Route{{Path: "/healthz", Handler: h}}}, "reserved"},
		{"unknown queue", Config{Queue: fq, Queues: queuetest.Topology(), Consumers: []Consumer{{Queue: "nope", Handler: sqs}}}, "unknown queue"},
		{"batch too big", Config{Queue: fq, Queues: queuetest.Topology(), Consumers: []Consumer{{Queue: queue.Ingest, Handler: sqs, BatchSize: 11}}}, "BatchSize 11"},
		{"no queue", Config{Queues: queuetest.Topology(), Consumers: []Consumer{{Queue: queue.Ingest, Handler: sqs}}}, "need a Queue"},
		{"no topology", Config{Queue: fq, Consumers: []Consumer{{Queue: queue.Ingest, Handler: sqs}}}, "consumers need Queues"},
		{"poll wait over SQS's", Config{PollWait: 21 * time.Second}, "PollWait"},
		{"throttle without burst", Config{Routes: []Route{{Path: "/x", Handler: h, Throttle: Throttle{Rate: 5}}}}, "must both be positive"},
		{"schedule without period", Config{Schedules: []Schedule{{Name: "s", Handler: func(context.Context, events.EventBridgeEvent) error { return nil }}}}, "must be positive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Addr = "127.0.0.1:0"
			err := Run(t.Context(), c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Run = %v, want an error containing %q", err, c.want)
			}
		})
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if err := Run(t.Context(), Config{Addr: busy.Addr().String()}); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("Run on a busy port = %v, want a listen error", err)
	}
}

// TestRunServesHTTP checks the wiring of the real server: the health check and a route.
func TestRunServesHTTP(t *testing.T) {
	rec := &recorder{resp: events.APIGatewayV2HTTPResponse{StatusCode: 202}}
	r := start(t, Config{Routes: []Route{{Path: "/webhooks/", Handler: rec.handle}}})
	if resp, _ := do(t, newRequest(t, http.MethodGet, r.url("/healthz"), nil)); resp.StatusCode != 200 {
		t.Errorf("healthz %d", resp.StatusCode)
	}
	form := url.Values{"event": {"order"}}.Encode()
	req := newRequest(t, http.MethodPost, r.url("/webhooks/thrivecart/acct"), strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, _ := do(t, req); resp.StatusCode != 202 {
		t.Errorf("route %d", resp.StatusCode)
	}
	if err := r.stop(t); err != nil {
		t.Errorf("Run = %v", err)
	}
}
