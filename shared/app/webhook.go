package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/queue"
	src "github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/sources"
)

// webhook serves POST /webhooks/{source}/{account} (and /track/{account}, the page views). It authenticates, splits a delivery into
// single events and answers 200 only once every event is durably on the ingest queue (5xx
// otherwise, so the sender retries). It does no other work: UltraCart wants an answer within
// 30 s.
func (a *App) webhook(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	path := req.RawPath
	if path == "" {
		path = req.RequestContext.HTTP.Path
	}
	if strings.HasPrefix(path, "/track/") {
		// Page views for browse abandonment (shared/iterable, pageviews.go).
		return a.tracker.Handle(ctx, req), nil
	}
	rest, ok := strings.CutPrefix(path, "/webhooks/")
	if !ok {
		return jsonError(http.StatusNotFound, "no such route: %s", path), nil
	}
	source, account, _ := strings.Cut(strings.Trim(rest, "/"), "/")
	if account == "" || strings.Contains(account, "/") {
		return jsonError(http.StatusNotFound, "webhook URLs look like /webhooks/SOURCE/ACCOUNT, SOURCE one of %s; got %s", strings.Join(sources.Names(), ", "), path), nil
	}
	log := a.d.Log.With(slog.String("account", account), slog.String("source", source), slog.String("request_id", req.RequestContext.RequestID))
	reg, err := sources.Lookup(source)
	if err != nil {
		return jsonError(http.StatusNotFound, "%v; webhook URLs look like /webhooks/SOURCE/ACCOUNT", err), nil
	}
	d := src.Delivery{Account: account, Method: req.RequestContext.HTTP.Method,
		Header: func(name string) string { return header(req, name) }}
	d.Body, d.Unreadable = a.readBody(req)
	evs, ans := src.Receive(ctx, reg, a.d.Accounts, d)
	if ans != nil {
		return a.webhookAnswer(log, ans), nil
	}
	now := a.d.Clock.Now()
	delivery := deliveryID(req, now)
	out := make([]SourceEvent, len(evs))
	for i, e := range evs {
		out[i] = SourceEvent{Account: account, Source: reg.Name, Name: e.Name, Payload: e.Payload, Problem: e.Problem,
			ReceivedAt: now, Delivery: delivery, Index: e.Index, Via: "webhook"}
	}
	return a.enqueue(ctx, log, delivery, out)
}

// webhookAnswer logs why a delivery was not accepted and answers it.
func (a *App) webhookAnswer(log *slog.Logger, ans *src.Answer) events.APIGatewayV2HTTPResponse {
	switch {
	case ans.Status == http.StatusOK:
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK}
	case ans.Status >= 500:
		log.Error("webhook not accepted; the sender retries", slog.Int("status", ans.Status), slog.String("reason", ans.Reason))
	default:
		log.Warn("webhook refused", slog.Int("status", ans.Status), slog.String("reason", ans.Reason))
	}
	r := jsonError(ans.Status, "%s", ans.Message)
	for k, v := range ans.Header {
		r.Headers[k] = v
	}
	return r
}

// enqueue puts every event on the ingest queue and answers 200 only if all of them are there.
func (a *App) enqueue(ctx context.Context, log *slog.Logger, delivery string, evs []SourceEvent) (events.APIGatewayV2HTTPResponse, error) {
	now := a.d.Clock.Now()
	msgs := make([]queue.Message, 0, len(evs))
	for i, e := range evs {
		body, err := EncodeSourceEvent(ctx, a.d.Store, now, e)
		if err != nil {
			log.Error("encode event", slog.Int("index", e.Index), slog.Any("error", err))
			return jsonError(http.StatusServiceUnavailable, "could not store event %d; the delivery will be retried", e.Index), nil
		}
		attrs := map[string]string{"account": e.Account, "source": string(e.Source)}
		if e.Name != "" {
			// SQS refuses empty attribute values; a malformed event may have no name.
			attrs["event"] = truncate(e.Name, 200)
		}
		msgs = append(msgs, queue.Message{ID: fmt.Sprintf("e%d", i), Body: body, Attributes: attrs})
	}
	if len(msgs) > 0 {
		if err := a.d.Queue.Send(ctx, queue.Ingest, msgs); err != nil {
			// Some events may be queued already; the sender retries the whole delivery and
			// ingest recognises the repeats by content.
			log.Error("enqueue delivery", slog.String("delivery", delivery), slog.Any("error", err))
			return jsonError(http.StatusServiceUnavailable, "the events could not be queued; the delivery will be retried"), nil
		}
	}
	log.Info("delivery accepted", slog.String("delivery", delivery), slog.Int("events", len(msgs)))
	return jsonResponse(http.StatusOK, map[string]any{"accepted": len(msgs), "delivery": delivery}), nil
}

// readBody applies the size cap and undoes API Gateway's base64 encoding; the answer says why a
// body cannot be read.
func (a *App) readBody(req events.APIGatewayV2HTTPRequest) ([]byte, *src.Answer) {
	limit := a.d.Config.MaxBodyBytes
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		if int64(base64.StdEncoding.DecodedLen(len(req.Body))) > limit+3 {
			return nil, tooLarge(limit)
		}
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return nil, unreadable(http.StatusBadRequest, fmt.Sprintf("the request body is marked base64 but is not: %v", err))
		}
		body = b
	}
	if int64(len(body)) > limit {
		return nil, tooLarge(limit)
	}
	if len(body) == 0 {
		return nil, unreadable(http.StatusBadRequest, "the request body is empty; expected the source's webhook JSON")
	}
	return body, nil
}

func unreadable(status int, msg string) *src.Answer {
	return &src.Answer{Status: status, Message: msg, Reason: msg}
}

func tooLarge(limit int64) *src.Answer {
	return unreadable(http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is over the %d-byte limit; lower the webhook's maximum size", limit))
}

func deliveryID(req events.APIGatewayV2HTTPRequest, now interface{ UnixMilli() int64 }) string {
	if id := req.RequestContext.RequestID; id != "" {
		return id
	}
	return fmt.Sprintf("d%d", now.UnixMilli())
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// header reads a request header; API Gateway v2 lower-cases header names.
func header(req events.APIGatewayV2HTTPRequest, name string) string {
	if v, ok := req.Headers[name]; ok {
		return v
	}
	for k, v := range req.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func jsonResponse(status int, v any) events.APIGatewayV2HTTPResponse {
	b, _ := json.Marshal(v)
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Body: string(b),
		Headers: map[string]string{"content-type": "application/json"}}
}

func jsonError(status int, format string, args ...any) events.APIGatewayV2HTTPResponse {
	return jsonResponse(status, map[string]string{"error": fmt.Sprintf(format, args...)})
}
