package localrun

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"golang.org/x/time/rate"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/queue"
)

const healthPath = "/healthz"

// requestTimeLayout is the format of requestContext.time in API Gateway events.
const requestTimeLayout = "02/Jan/2006:15:04:05 -0700"

// httpAPI plays an API Gateway HTTP API with Lambda proxy integrations (payload 2.0) on the
// $default stage.
type httpAPI struct {
	routes []Route
	// limits holds each throttled route's bucket, by route key.
	limits  map[string]*rate.Limiter
	q       queue.Queue
	queues  []string
	clock   clock.Clock
	log     *slog.Logger
	maxBody int64
	// hard is the context handlers run under: it outlives the client connection, as a
	// Lambda invocation does, and ends only when the shutdown grace period runs out.
	hard context.Context
}

func newHTTPAPI(cfg Config, hard context.Context) *httpAPI {
	var qs []string
	seen := map[string]bool{}
	for _, c := range cfg.Consumers {
		spec, _ := cfg.Queues.SpecFor(c.Queue)
		for _, name := range []string{c.Queue, spec.DLQ()} {
			if !seen[name] {
				seen[name] = true
				qs = append(qs, name)
			}
		}
	}
	limits := map[string]*rate.Limiter{}
	for _, r := range cfg.Routes {
		if !r.Throttle.IsZero() {
			limits[r.RouteKey] = rate.NewLimiter(rate.Limit(r.Throttle.Rate), r.Throttle.Burst)
		}
	}
	return &httpAPI{routes: cfg.Routes, limits: limits, q: cfg.Queue, queues: qs, clock: cfg.Clock, log: cfg.Logger, maxBody: cfg.MaxBodyBytes, hard: hard}
}

func isPrefix(path string) bool { return strings.HasSuffix(path, "/") }

// match picks the route API Gateway would: an exact path beats a greedy one, a longer greedy
// prefix beats a shorter one, and a route with the request's method beats ANY on the same
// path. proxy is what a greedy route's {proxy+} captured.
func (a *httpAPI) match(method, path string) (r Route, proxy string, ok bool) {
	best := -1
	for _, rt := range a.routes {
		if rt.Method != "" && rt.Method != method {
			continue
		}
		var score int
		var rest string
		switch {
		case isPrefix(rt.Path):
			var found bool
			rest, found = strings.CutPrefix(path, rt.Path)
			if !found || rest == "" {
				continue
			}
			score = 2 * len(rt.Path)
		case rt.Path == path:
			// Above every greedy route: no prefix can be longer than the path itself.
			score = 2 * (len(path) + 1)
		default:
			continue
		}
		if rt.Method != "" {
			score++
		}
		if score > best {
			best, r, proxy, ok = score, rt, rest, true
		}
	}
	return r, proxy, ok
}

func (a *httpAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.URL.Path == healthPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		a.health(w, r)
		return
	}
	requestID := newRequestID()
	// API Gateway names every response with the request id; it is what a merchant would
	// quote in a support request, so the local server does the same.
	w.Header().Set("Apigw-Requestid", requestID)
	log := a.log.With("request_id", requestID, "method", r.Method, "path", r.URL.Path)

	rt, proxy, ok := a.match(r.Method, r.URL.Path)
	if !ok {
		log.Info("http request", "status", http.StatusNotFound, "duration_ms", since(start))
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not Found"})
		return
	}
	log = log.With("route", rt.RouteKey)
	if lim := a.limits[rt.RouteKey]; lim != nil && !lim.AllowN(a.clock.Now(), 1) {
		// API Gateway's own answer to a throttled route; each route has its own bucket, so a
		// flood of one cannot starve the others.
		log.Warn("http request throttled", "status", http.StatusTooManyRequests)
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"message": "Too Many Requests"})
		return
	}

	body, err := readBody(w, r, a.maxBody)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			log.Warn("http request body over the limit", "status", http.StatusRequestEntityTooLarge, "max_bytes", a.maxBody)
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{
				"message":   "Request Entity Too Large",
				"error":     fmt.Sprintf("the request body is over the %d-byte limit", a.maxBody),
				"max_bytes": a.maxBody,
			})
			return
		}
		log.Warn("http request body unreadable", "status", http.StatusBadRequest, "error", err)
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Bad Request"})
		return
	}

	ev := a.event(r, rt, proxy, body, requestID)
	resp, err := call(func() (events.APIGatewayV2HTTPResponse, error) { return rt.Handler(a.hard, ev) })
	if err != nil {
		// The handler's error stays in the log; like API Gateway, the client learns nothing
		// about it beyond the 500.
		log.Error("http handler failed", "status", http.StatusInternalServerError, "duration_ms", since(start), "error", err)
		writeJSON(w, http.StatusInternalServerError, map[string]any{"message": "Internal Server Error"})
		return
	}
	status, err := writeResponse(w, r, resp)
	if err != nil {
		log.Error("http handler returned a malformed response", "status", http.StatusInternalServerError, "duration_ms", since(start), "error", err)
		writeJSON(w, http.StatusInternalServerError, map[string]any{"message": "Internal Server Error"})
		return
	}
	log.Info("http request", "status", status, "duration_ms", since(start))
}

// readBody reads the whole body, refusing more than limit bytes. A declared length over the
// limit is refused before anything is read.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	return b, nil
}

// event builds the payload-2.0 event API Gateway would send for r.
func (a *httpAPI) event(r *http.Request, rt Route, proxy string, body []byte, requestID string) events.APIGatewayV2HTTPRequest {
	now := a.clock.Now().UTC()
	sourceIP := r.RemoteAddr
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		sourceIP = host
	}

	headers := make(map[string]string, len(r.Header)+4)
	var cookies []string
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if lk == "cookie" {
			// Payload 2.0 moves cookies out of the headers into their own list.
			for _, v := range vs {
				for c := range strings.SplitSeq(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		headers[lk] = strings.Join(vs, ",")
	}
	headers["host"] = r.Host
	// API Gateway appends the caller to x-forwarded-for and states the scheme and port it
	// was reached on. Values a tunnel in front of the local server set are kept, because
	// they describe the public URL that handlers build callback links from.
	if xff := headers["x-forwarded-for"]; xff != "" {
		headers["x-forwarded-for"] = xff + ", " + sourceIP
	} else {
		headers["x-forwarded-for"] = sourceIP
	}
	if headers["x-forwarded-proto"] == "" {
		headers["x-forwarded-proto"] = "http"
		if r.TLS != nil {
			headers["x-forwarded-proto"] = "https"
		}
	}
	if headers["x-forwarded-port"] == "" {
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			if _, port, err := net.SplitHostPort(la.String()); err == nil {
				headers["x-forwarded-port"] = port
			}
		}
	}

	var query map[string]string
	if r.URL.RawQuery != "" {
		// ParseQuery keeps every pair it could parse; API Gateway likewise passes on what it
		// can and leaves the raw string for anyone who needs more.
		values, _ := url.ParseQuery(r.URL.RawQuery)
		if len(values) > 0 {
			query = make(map[string]string, len(values))
			for k, vs := range values {
				query[k] = strings.Join(vs, ",")
			}
		}
	}

	var params map[string]string
	if isPrefix(rt.Path) {
		params = map[string]string{"proxy": proxy}
	}

	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              rt.RouteKey,
		RawPath:               r.URL.EscapedPath(),
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		PathParameters:        params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     rt.RouteKey,
			AccountID:    "local",
			Stage:        "$default",
			RequestID:    requestID,
			APIID:        "local",
			DomainName:   r.Host,
			DomainPrefix: domainPrefix(r.Host),
			Time:         now.Format(requestTimeLayout),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
		},
	}
	ev.Body, ev.IsBase64Encoded = encodeBody(r.Header.Get("Content-Type"), body)
	return ev
}

// encodeBody passes text through and base64-encodes everything else, as API Gateway does.
// Form posts (application/x-www-form-urlencoded) and bodies without a content type are not
// text to API Gateway, so handlers must decode them; doing the same here keeps that path
// tested locally.
func encodeBody(contentType string, body []byte) (string, bool) {
	if len(body) == 0 {
		return "", false
	}
	if isTextMedia(contentType) && utf8.Valid(body) {
		return string(body), false
	}
	return base64.StdEncoding.EncodeToString(body), true
}

func isTextMedia(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	if strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") {
		return true
	}
	switch mt {
	case "application/json", "application/javascript", "application/xml", "application/yaml", "application/x-yaml", "application/graphql":
		return true
	}
	return false
}

// domainPrefix is the first label of the host name, as in requestContext.domainPrefix.
func domainPrefix(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	prefix, _, _ := strings.Cut(host, ".")
	return prefix
}

// writeResponse writes a handler's response the way API Gateway does. Nothing is written when
// the response is malformed, so the caller can still answer 500.
func writeResponse(w http.ResponseWriter, r *http.Request, resp events.APIGatewayV2HTTPResponse) (int, error) {
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	if status < 100 || status > 599 {
		return 0, fmt.Errorf("status code %d is not an HTTP status", resp.StatusCode)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			return 0, fmt.Errorf("body marked base64 does not decode: %w", err)
		}
	}
	h := w.Header()
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	// The length is the server's to state: a handler's stale Content-Length would make the
	// write fail half-way.
	h.Del("Transfer-Encoding")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	return status, nil
}

func (a *httpAPI) health(w http.ResponseWriter, r *http.Request) {
	out := map[string]any{"status": "ok"}
	if a.q != nil && len(a.queues) > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		stats := make([]queue.Stats, 0, len(a.queues))
		for _, name := range a.queues {
			s, err := a.q.Stats(ctx, name)
			if err != nil {
				a.log.Error("health check: queue stats failed", "queue", name, "error", err)
				writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "error": fmt.Sprintf("queue %s: %v", name, err)})
				return
			}
			stats = append(stats, s)
		}
		out["queues"] = stats
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"message":"Internal Server Error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func since(t time.Time) int64 { return time.Since(t).Milliseconds() }
