package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/thrivecart"
	"github.com/cartrelay/cartrelay/shared/ultracart"
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
		return jsonError(http.StatusNotFound, "webhook URLs look like /webhooks/ultracart/ACCOUNT or /webhooks/thrivecart/ACCOUNT; got %s", path), nil
	}
	method := req.RequestContext.HTTP.Method
	log := a.d.Log.With(slog.String("account", account), slog.String("source", source), slog.String("request_id", req.RequestContext.RequestID))

	switch domain.Source(source) {
	case domain.UltraCart:
		if method != http.MethodPost {
			return methodNotAllowed("POST"), nil
		}
		return a.ultracartWebhook(ctx, log, account, req)
	case domain.ThriveCart:
		// ThriveCart checks a new webhook URL with HEAD (and GET on some accounts) before saving it.
		if method == http.MethodHead || method == http.MethodGet {
			return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK}, nil
		}
		if method != http.MethodPost {
			return methodNotAllowed("POST, HEAD"), nil
		}
		return a.thrivecartWebhook(ctx, log, account, req)
	}
	return jsonError(http.StatusNotFound, "unknown source %q: webhook URLs are /webhooks/ultracart/ACCOUNT or /webhooks/thrivecart/ACCOUNT", source), nil
}

func (a *App) ultracartWebhook(ctx context.Context, log *slog.Logger, account string, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	// Only the webhook password is decrypted: the webhook function holds no other secret.
	acct, err := a.d.Accounts.Get(ctx, account, accounts.UltraCartWebhookPassword)
	user, pass, hasAuth := basicAuth(header(req, "authorization"))
	switch {
	case errors.Is(err, accounts.ErrNotFound):
		// The same answer as a wrong password, so the URL does not reveal which accounts exist.
		log.Warn("webhook for an unknown account")
		return unauthorized(), nil
	case err != nil:
		log.Error("read account", slog.Any("error", err))
		return jsonError(http.StatusServiceUnavailable, "cannot read the account settings right now; the delivery will be retried"), nil
	case !hasAuth || !acct.CheckUltraCartBasic(user, pass):
		log.Warn("webhook with wrong or missing credentials", slog.Bool("had_credentials", hasAuth))
		return unauthorized(), nil
	}
	body, resp, ok := a.readBody(req)
	if !ok {
		return resp, nil
	}
	raws, err := ultracart.DecodeDelivery(body)
	if errors.Is(err, ultracart.ErrTooLarge) {
		log.Warn("compressed UltraCart delivery too large once inflated", slog.Any("error", err))
		return jsonError(http.StatusRequestEntityTooLarge, "%v", err), nil
	}
	if err != nil {
		log.Warn("malformed UltraCart delivery", slog.Any("error", err))
		return jsonError(http.StatusBadRequest, "%v", err), nil
	}
	now := a.d.Clock.Now()
	delivery := deliveryID(req, now)
	evs := make([]SourceEvent, len(raws))
	for i, r := range raws {
		evs[i] = SourceEvent{Account: account, Source: domain.UltraCart, Name: r.Name, Payload: r.Payload,
			ReceivedAt: now, Delivery: delivery, Index: r.Index, Via: "webhook"}
		if r.Err != nil {
			evs[i].Problem = r.Err.Error()
			if len(evs[i].Payload) == 0 || !json.Valid(evs[i].Payload) {
				evs[i].Payload = rawJSONString(r.Payload)
			}
		}
	}
	return a.enqueue(ctx, log, delivery, evs)
}

// thrivecartWebhook authenticates before it decodes. ThriveCart sends its secret word inside
// the body, so the body's size and encoding are checked and the secret is found by one linear
// pass that keeps nothing (thrivecart.ScanSecret); only a body carrying the account's secret
// word is decoded. Every failure before that (an unknown account, a missing, oversized or
// unreadable body, a wrong or missing secret word) gets the same 401 with the same body, so
// the answer reveals neither which accounts exist nor anything about the body. What went
// wrong is in the log.
func (a *App) thrivecartWebhook(ctx context.Context, log *slog.Logger, account string, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	body, resp, ok := a.readBody(req)
	if !ok {
		log.Warn("ThriveCart webhook refused before authentication", slog.Int("would_answer", resp.StatusCode), slog.String("reason", resp.Body))
		return thrivecartDenied(), nil
	}
	ctype := header(req, "content-type")
	secret, scanErr := thrivecart.ScanSecret(ctype, body)
	acct, err := a.d.Accounts.Get(ctx, account, accounts.ThriveCartSecretWord)
	switch {
	case errors.Is(err, accounts.ErrNotFound):
		log.Warn("webhook for an unknown account")
		return thrivecartDenied(), nil
	case err != nil:
		log.Error("read account", slog.Any("error", err))
		return jsonError(http.StatusServiceUnavailable, "cannot read the account settings right now; the delivery will be retried"), nil
	case scanErr != nil:
		log.Warn("ThriveCart webhook body unreadable before authentication", slog.Any("error", scanErr))
		return thrivecartDenied(), nil
	case !acct.CheckThriveCartSecret(secret):
		log.Warn("webhook with a wrong or missing secret word", slog.Bool("had_secret", secret != ""))
		return thrivecartDenied(), nil
	}
	d, err := thrivecart.Decode(ctype, body)
	if err != nil {
		log.Warn("malformed ThriveCart delivery", slog.Any("error", err))
		return jsonError(http.StatusBadRequest, "%v", err), nil
	}
	payload, err := d.Payload()
	if err != nil {
		return jsonError(http.StatusBadRequest, "%v", err), nil
	}
	now := a.d.Clock.Now()
	delivery := deliveryID(req, now)
	ev := SourceEvent{Account: account, Source: domain.ThriveCart, Name: d.Event, Payload: payload,
		ReceivedAt: now, Delivery: delivery, Via: "webhook"}
	return a.enqueue(ctx, log, delivery, []SourceEvent{ev})
}

// thrivecartDenied is the one answer to every ThriveCart webhook that did not prove it knows
// the account's secret word.
func thrivecartDenied() events.APIGatewayV2HTTPResponse {
	return jsonError(http.StatusUnauthorized, "unknown account, or a wrong or missing secret word; check the webhook URL and that the secret word in ThriveCart (Settings > API & webhooks) is the account's thrivecart.secret")
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

// readBody applies the size cap and undoes API Gateway's base64 encoding.
func (a *App) readBody(req events.APIGatewayV2HTTPRequest) ([]byte, events.APIGatewayV2HTTPResponse, bool) {
	limit := a.d.Config.MaxBodyBytes
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		if int64(base64.StdEncoding.DecodedLen(len(req.Body))) > limit+3 {
			return nil, tooLarge(limit), false
		}
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return nil, jsonError(http.StatusBadRequest, "the request body is marked base64 but is not: %v", err), false
		}
		body = b
	}
	if int64(len(body)) > limit {
		return nil, tooLarge(limit), false
	}
	if len(body) == 0 {
		return nil, jsonError(http.StatusBadRequest, "the request body is empty; expected the source's webhook JSON"), false
	}
	return body, events.APIGatewayV2HTTPResponse{}, true
}

func deliveryID(req events.APIGatewayV2HTTPRequest, now interface{ UnixMilli() int64 }) string {
	if id := req.RequestContext.RequestID; id != "" {
		return id
	}
	return fmt.Sprintf("d%d", now.UnixMilli())
}

func rawJSONString(b []byte) json.RawMessage {
	s, _ := json.Marshal(string(b))
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func basicAuth(h string) (user, pass string, ok bool) {
	const prefix = "basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", "", false
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[len(prefix):]))
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(dec), ":")
	return user, pass, ok
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

func unauthorized() events.APIGatewayV2HTTPResponse {
	r := jsonError(http.StatusUnauthorized, "wrong or missing webhook credentials for this account")
	r.Headers["www-authenticate"] = `Basic realm="cartrelay", charset="UTF-8"`
	return r
}

func tooLarge(limit int64) events.APIGatewayV2HTTPResponse {
	return jsonError(http.StatusRequestEntityTooLarge, "the request body is over the %d-byte limit; lower the webhook's maximum size", limit)
}

func methodNotAllowed(allow string) events.APIGatewayV2HTTPResponse {
	r := jsonError(http.StatusMethodNotAllowed, "use %s", allow)
	r.Headers["allow"] = allow
	return r
}
