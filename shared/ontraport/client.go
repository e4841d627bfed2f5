package ontraport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/outbound"
)

// Headers ONTRAPORT sends on every response (B.3 of the API notes): the budget, what is left of
// it, and the seconds until the window resets. It sends no Retry-After.
const (
	headerLimit     = "X-Rate-Limit-Limit"
	headerRemaining = "X-Rate-Limit-Remaining"
	headerReset     = "X-Rate-Limit-Reset"
)

// redacted replaces the API key in the delivery log.
const redacted = "[redacted]"

// maxLoggedBody caps each body kept in the delivery log; a delivery is one table item, and
// DynamoDB items hold at most 400 KB.
const maxLoggedBody = 8 << 10

// defaultReset is the pause after a 429 that carries no reset header: the whole window.
const defaultReset = time.Minute

// limiter admits requests against the account's shared budget (ratelimit.Shared).
type limiter interface {
	Reserve(ctx context.Context) (time.Duration, error)
	Block(ctx context.Context, until time.Time) error
}

// client talks to one ONTRAPORT account for one delivery and keeps every exchange for the
// delivery log, including those of failed attempts.
type client struct {
	cfg     config
	http    *http.Client
	lim     limiter
	clk     clock.Clock
	sleep   func(context.Context, time.Duration) error
	maxWait time.Duration
	retries int
	log     *slog.Logger

	// placeholder numbers the ids a dry run invents where ONTRAPORT would assign them.
	placeholder int64
	exchanges   []history.HTTPExchange
}

// call is one API request.
type call struct {
	method string
	path   string // below the base URL, "/Contacts/saveorupdate"
	query  url.Values
	body   any // sent as JSON
	// safe marks a request that has no second effect when repeated (reads, merges by email,
	// tag changes): a failure is retried at once within the delivery. Creations are never
	// retried here; the next delivery looks up what the failed one may have created.
	safe bool
}

// placeholderBase starts the ids a dry run shows: large enough not to be mistaken for real ids.
const placeholderBase = 900000000

// do sends rq and returns the envelope's data.
func (c *client) do(ctx context.Context, rq call) (json.RawMessage, error) {
	var body []byte
	if rq.body != nil {
		b, err := json.Marshal(rq.body)
		if err != nil {
			return nil, fmt.Errorf("encode ontraport %s %s: %w", rq.method, rq.path, err)
		}
		body = b
	}
	u := c.cfg.baseURL + rq.path
	if len(rq.query) > 0 {
		u += "?" + rq.query.Encode()
	}
	if c.cfg.dry {
		c.record(rq.method, u, body, 0, "")
		return c.dryAnswer(rq), nil
	}
	for attempt := 0; ; attempt++ {
		data, err := c.once(ctx, rq, u, body)
		if err == nil || !rq.safe || attempt >= c.retries || ctx.Err() != nil || !retryAtOnce(err) {
			return data, err
		}
		c.log.Debug("retrying a safe ONTRAPORT request", slog.String("path", rq.path), slog.Int("attempt", attempt+1), slog.Any("error", err))
		if err := c.sleep(ctx, (250*time.Millisecond)<<attempt); err != nil {
			return nil, err
		}
	}
}

// retryAtOnce: server errors and transport failures (timeouts included) may pass on a second
// try; a 429, a rejected request or a malformed answer will not.
func retryAtOnce(err error) bool {
	var ra *deliver.RetryAfterError
	if errors.As(err, &ra) || errors.Is(err, ErrUnexpectedResponse) || errors.Is(err, outbound.ErrRedirectRefused) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status >= 500 || ae.Status == 408
	}
	return true
}

func (c *client) once(ctx context.Context, rq call, u string, body []byte) (json.RawMessage, error) {
	if err := c.admit(ctx); err != nil {
		return nil, err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("build ontraport %s %s: %w", rq.method, rq.path, err)
	}
	req.Header.Set("Api-Appid", c.cfg.appID)
	req.Header.Set("Api-Key", c.cfg.apiKey.Reveal())
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.record(rq.method, u, body, 0, "request failed: "+err.Error())
		return nil, fmt.Errorf("ontraport %s %s: %w", rq.method, rq.path, err)
	}
	defer resp.Body.Close()
	raw, rerr := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	c.record(rq.method, u, body, resp.StatusCode, string(raw))
	reset := c.observe(ctx, resp)
	if rerr != nil {
		return nil, fmt.Errorf("ontraport %s %s: read the response: %w", rq.method, rq.path, rerr)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := &APIError{Method: rq.method, Path: rq.path, Status: resp.StatusCode, Body: shorten(string(raw), 2000)}
		var env struct {
			Code int `json:"code"`
		}
		if json.Unmarshal(raw, &env) == nil {
			ae.Code = env.Code
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			return nil, &deliver.RetryAfterError{After: reset, Err: ae}
		}
		return nil, ae
	}
	var env struct {
		Code *int            `json:"code"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || env.Code == nil {
		return nil, fmt.Errorf("%w: %s %s answered %d with %q", ErrUnexpectedResponse, rq.method, rq.path, resp.StatusCode, shorten(string(raw), 200))
	}
	if *env.Code != 0 {
		return nil, &APIError{Method: rq.method, Path: rq.path, Status: resp.StatusCode, Code: *env.Code, Body: shorten(string(raw), 2000)}
	}
	return env.Data, nil
}

// admit waits for the shared budget, but not longer than maxWait (and the context's deadline):
// a longer pause is handed back to the queue, which redelivers after it.
func (c *client) admit(ctx context.Context) error {
	var waited time.Duration
	for {
		wait, err := c.lim.Reserve(ctx)
		if err != nil {
			return fmt.Errorf("ontraport request budget: %w", err)
		}
		if wait <= 0 {
			return nil
		}
		over := waited+wait > c.maxWait
		if dl, ok := ctx.Deadline(); ok && c.clk.Now().Add(wait).After(dl) {
			over = true
		}
		if over {
			return &deliver.RetryAfterError{After: wait, Err: ErrRateLimited}
		}
		if err := c.sleep(ctx, wait); err != nil {
			return err
		}
		waited += wait
	}
}

// observe applies ONTRAPORT's rate headers to the shared limiter: when it says the budget is
// spent (other tools may share it), or answers 429, every process pauses until its reset. It
// returns that reset as a duration.
func (c *client) observe(ctx context.Context, resp *http.Response) time.Duration {
	reset := defaultReset
	if s := resp.Header.Get(headerReset); s != "" {
		if n, err := strconv.ParseFloat(s, 64); err == nil && n >= 0 {
			reset = time.Duration(n * float64(time.Second))
		}
	}
	spent := resp.StatusCode == http.StatusTooManyRequests
	if s := resp.Header.Get(headerRemaining); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n <= 0 {
			spent = true
		}
	}
	if spent && reset > 0 {
		if err := c.lim.Block(ctx, c.clk.Now().Add(reset)); err != nil {
			c.log.Warn("could not record ONTRAPORT's pause in the shared limiter", slog.Any("error", err))
		}
	}
	return reset
}

// record keeps one exchange for the delivery log, with the API key redacted.
func (c *client) record(method, u string, body []byte, status int, respBody string) {
	h := map[string]string{"Api-Appid": c.cfg.appID, "Api-Key": redacted}
	if body != nil {
		h["Content-Type"] = "application/json"
	}
	c.exchanges = append(c.exchanges, history.HTTPExchange{
		Method: method, URL: u, RequestHeaders: h,
		RequestBody: shorten(string(body), maxLoggedBody), Status: status,
		ResponseBody: shorten(respBody, maxLoggedBody),
	})
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…(truncated)"
}

// dryAnswer is what a dry run pretends ONTRAPORT answered: nothing found by lookups, so the
// log shows every request a first delivery sends, and placeholder ids where ONTRAPORT assigns
// them.
func (c *client) dryAnswer(rq call) json.RawMessage {
	id := func() int64 {
		c.placeholder++
		return placeholderBase + c.placeholder
	}
	var v any = map[string]any{}
	switch {
	case rq.path == pathSaveOrUpdate, rq.method == http.MethodPost && rq.path == pathProducts:
		v = map[string]any{"id": id()}
	case rq.method == http.MethodGet && (rq.path == pathProducts || rq.path == pathTransactions):
		v = []any{}
	case rq.path == pathContact:
		v = map[string]any{"id": rq.query.Get("id"), "freferrer": "0"}
	case rq.path == pathTransaction:
		v = map[string]any{"id": rq.query.Get("id"), "status": statusPaid}
	case rq.path == pathProcessManual:
		v = map[string]any{"result_code": 1, "transaction_id": id(), "invoice_id": id()}
	}
	b, _ := json.Marshal(v)
	return b
}

// dryNote explains placeholder ids in a dry run's log.
func dryNote(note string) string {
	msg := fmt.Sprintf("dry run (no ontraport.api_key): recorded the requests without sending them; ids from %d up are placeholders for ids ONTRAPORT would assign", placeholderBase+1)
	if note == "" {
		return msg
	}
	return msg + "; " + note
}

// joinNotes joins the non-empty notes of one delivery.
func joinNotes(notes []string) string {
	var out []string
	for _, n := range notes {
		if n != "" {
			out = append(out, n)
		}
	}
	return strings.Join(out, "; ")
}
