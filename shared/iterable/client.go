package iterable

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/outbound"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
)

// Endpoint classes share one rate window each (pk "A#<acct>#R#iterable:<class>"), across every
// process delivering for the account.
const (
	ClassEventsTrack     = "events.track"
	ClassEventsTrackBulk = "events.trackBulk"
	ClassUsersUpdate     = "users.update"
	ClassUsersBulkUpdate = "users.bulkUpdate"
	ClassCommerce        = "commerce"
	ClassUsersEmail      = "users.updateEmail"
	ClassLists           = "lists"
	ClassUsersForget     = "users.forget"
	// ClassUsersForgetDaily is users/forget's daily cap, beside its rate.
	ClassUsersForgetDaily = "users.forget.daily"
)

// ClassOf is the rate class of an API path.
func ClassOf(path string) string {
	switch path {
	case PathEventsTrack:
		return ClassEventsTrack
	case PathEventsTrackBulk:
		return ClassEventsTrackBulk
	case PathUsersUpdate:
		return ClassUsersUpdate
	case PathUsersBulkUpdate:
		return ClassUsersBulkUpdate
	case PathUsersUpdateEmail:
		return ClassUsersEmail
	case PathListsSubscribe, PathListsUnsubscribe:
		return ClassLists
	case PathUsersForget:
		return ClassUsersForget
	}
	return ClassCommerce
}

// DefaultLimits are Iterable's published per-project limits (Swagger operation descriptions).
// Endpoints without a published limit (commerce, updateEmail, lists) get a guard of 1000/s, so
// that a pause Iterable asks for with a 429 is still shared by every process. users/forget has a
// daily cap beside its rate: the 1,001st erasure of a day waits for the window to move.
func DefaultLimits() map[string]ratelimit.Limit {
	sec := func(n int) ratelimit.Limit { return ratelimit.Limit{Requests: n, Window: time.Second} }
	return map[string]ratelimit.Limit{
		ClassEventsTrack:      sec(2000),
		ClassEventsTrackBulk:  sec(10),
		ClassUsersUpdate:      sec(500),
		ClassUsersBulkUpdate:  sec(5),
		ClassCommerce:         sec(1000),
		ClassUsersEmail:       sec(1000),
		ClassLists:            sec(1000),
		ClassUsersForget:      sec(3),
		ClassUsersForgetDaily: {Requests: 1000, Window: 24 * time.Hour},
	}
}

// APIError is an answer from Iterable other than success, decoded from its envelope
// ({msg, code, params}) when it has one.
type APIError struct {
	Path   string
	Status int
	Code   string // IterableApiResponse code, such as "ForgottenUserError"
	Msg    string
	// RetryAfter is the server's Retry-After on a 429, when it gave one.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	msg := e.Msg
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Code != "" {
		return fmt.Sprintf("iterable %s: HTTP %d %s: %s", strings.TrimPrefix(e.Path, "/api/"), e.Status, e.Code, msg)
	}
	return fmt.Sprintf("iterable %s: HTTP %d: %s", strings.TrimPrefix(e.Path, "/api/"), e.Status, msg)
}

// Permanent reports whether retrying cannot help: a 4xx other than 408 and 429 (bad input, a
// bad key, a GDPR-forgotten user, a conflict), or a forgotten user whatever the status.
func (e *APIError) Permanent() bool {
	if e.Code == "ForgottenUserError" || e.Code == "RequestFieldsTypesMismatched" {
		return true
	}
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// TransportError is a request that got no answer (connection refused, timeout).
type TransportError struct {
	Path string
	Err  error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("iterable %s: no answer: %v", strings.TrimPrefix(e.Path, "/api/"), e.Err)
}
func (e *TransportError) Unwrap() error { return e.Err }

// ErrRateLimited is wrapped when the shared rate window says to wait longer than a delivery may
// sleep: the forwarder retries after the wait instead.
var ErrRateLimited = errors.New("iterable rate window full")

// session is one delivery's conversation with Iterable: it paces each call through the shared
// limiter, records every exchange (the Api-Key redacted) and classifies failures.
type session struct {
	d       *Destination
	account string
	base    string
	key     string
	dry     bool
	log     *slog.Logger
	ex      []history.HTTPExchange
	calls   []string
}

func (s *session) limiter(class string) (*ratelimit.Shared, error) {
	lim, ok := s.d.limits[class]
	if !ok {
		lim = DefaultLimits()[ClassCommerce]
	}
	l, err := ratelimit.NewShared(s.d.store, s.d.clk, "A#"+s.account+"#R#iterable:"+class, lim)
	if err != nil {
		return nil, fmt.Errorf("rate limit of %s: %w", class, err)
	}
	return l, nil
}

// admit waits for a slot in the class's shared window; a wait longer than maxInlineWait is
// handed back to the forwarder as a retry delay rather than slept through in a Lambda.
func (s *session) admit(ctx context.Context, l *ratelimit.Shared, path string) error {
	for {
		wait, err := l.Reserve(ctx)
		if err != nil {
			return fmt.Errorf("iterable %s: %w", path, err)
		}
		if wait == 0 {
			return nil
		}
		if wait > s.d.maxInlineWait {
			return &deliver.RetryAfterError{After: wait, Err: fmt.Errorf("%w for %s: next slot in %s", ErrRateLimited, ClassOf(path), wait.Round(time.Millisecond))}
		}
		if err := s.d.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// post sends body to path and decodes a successful answer into out (when not nil). In a dry run
// it only records the request. Errors: *APIError (deliver.Permanent-wrapped when retrying
// cannot help, inside a *deliver.RetryAfterError on a 429) or *TransportError.
func (s *session) post(ctx context.Context, path string, body, out any) error {
	payload, err := encode(body)
	if err != nil {
		return deliver.Permanent(fmt.Errorf("encode %s request: %w", path, err))
	}
	s.calls = append(s.calls, describe(path, body))
	url := s.base + path
	x := history.HTTPExchange{Method: http.MethodPost, URL: url,
		RequestHeaders: map[string]string{headerAPIKey: redactedHeaderValue, "Content-Type": contentTypeJSON},
		RequestBody:    clip(payload)}
	if s.dry {
		s.ex = append(s.ex, x)
		return nil
	}
	l, err := s.limiter(ClassOf(path))
	if err != nil {
		return err
	}
	if err := s.admit(ctx, l, path); err != nil {
		return err
	}
	if path == PathUsersForget {
		daily, err := s.limiter(ClassUsersForgetDaily)
		if err != nil {
			return err
		}
		if err := s.admit(ctx, daily, path); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return deliver.Permanent(fmt.Errorf("iterable %s: %w", path, err))
	}
	req.Header.Set(headerAPIKey, s.key)
	req.Header.Set("Content-Type", contentTypeJSON)
	req.Header.Set("Accept", contentTypeJSON)
	resp, err := s.d.http.Do(req)
	if err != nil {
		s.ex = append(s.ex, x)
		s.log.Warn("iterable request failed", slog.String("path", path), slog.Any("error", err))
		if errors.Is(err, outbound.ErrRedirectRefused) {
			// The base URL points somewhere that sends the key on; retrying cannot help.
			return deliver.Permanent(&TransportError{Path: path, Err: err})
		}
		return &TransportError{Path: path, Err: err}
	}
	defer resp.Body.Close()
	raw, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBodyBytes))
	x.Status, x.ResponseBody = resp.StatusCode, clip(raw)
	s.ex = append(s.ex, x)
	if rerr != nil {
		return &TransportError{Path: path, Err: fmt.Errorf("read the answer: %w", rerr)}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out != nil && len(bytes.TrimSpace(raw)) > 0 {
			if err := json.Unmarshal(raw, out); err != nil {
				// Accepted all the same; an unreadable success body loses only counts.
				s.log.Warn("iterable success answer unreadable", slog.String("path", path), slog.Any("error", err))
			}
		}
		return nil
	}
	apiErr := decodeError(path, resp.StatusCode, raw)
	if resp.StatusCode == http.StatusTooManyRequests {
		apiErr.RetryAfter = deliver.RetryAfter(resp.Header.Get("Retry-After"), s.d.clk.Now())
		pause := apiErr.RetryAfter
		if pause <= 0 {
			pause = time.Second
		}
		if err := l.Block(ctx, s.d.clk.Now().Add(pause)); err != nil {
			s.log.Warn("could not share the pause Iterable asked for", slog.Any("error", err))
		}
		s.log.Warn("iterable asked to slow down", slog.String("path", path), slog.Duration("retry_after", apiErr.RetryAfter))
		return &deliver.RetryAfterError{After: apiErr.RetryAfter, Err: apiErr}
	}
	if apiErr.Permanent() {
		return deliver.Permanent(apiErr)
	}
	s.log.Warn("iterable answered with an error", slog.String("path", path), slog.Int("status", resp.StatusCode), slog.String("code", apiErr.Code))
	return apiErr
}

// encode is JSON without HTML escaping: URLs keep their "&", as the delivery log shows them.
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// decodeError reads Iterable's envelope; a body that is not one (a gateway's HTML page) keeps
// its <title> or first line as the message.
func decodeError(path string, status int, raw []byte) *APIError {
	e := &APIError{Path: path, Status: status}
	var env APIResponse
	if json.Unmarshal(raw, &env) == nil && (env.Code != "" || env.Msg != "") {
		e.Code, e.Msg = env.Code, env.Msg
		return e
	}
	text := string(raw)
	if i := strings.Index(strings.ToLower(text), "<title>"); i >= 0 {
		rest := text[i+len("<title>"):]
		if j := strings.Index(strings.ToLower(rest), "</title>"); j >= 0 {
			text = rest[:j]
		}
	}
	text = strings.TrimSpace(text)
	if i := strings.IndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	}
	if len(text) > 200 {
		text = text[:200]
	}
	e.Msg = text
	return e
}

// clip keeps a recorded body small enough for the delivery log.
func clip(b []byte) string {
	if len(b) <= maxRecordedBodyBytes {
		return string(b)
	}
	return string(b[:maxRecordedBodyBytes]) + "…[truncated]"
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}
