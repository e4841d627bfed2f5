package signedhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/outbound"
)

// Timeout bounds one request; a receiver that takes longer is retried.
const Timeout = 15 * time.Second

// maxResponseBytes is as much of an answer as the delivery log keeps.
const maxResponseBytes = 4 << 10

// userAgent names cartrelay to receivers.
const userAgent = "cartrelay-webhooks/1"

// Options build a Destination.
type Options struct {
	Clock clock.Clock
	Log   *slog.Logger
	// HTTP sends the requests (nil: a client with Timeout); redirects are never followed.
	HTTP *http.Client
}

// Destination delivers facts to an account's webhook endpoints.
type Destination struct {
	clk  clock.Clock
	log  *slog.Logger
	http *http.Client
}

// New builds the destination.
func New(o Options) *Destination {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	c := outbound.Guard(o.HTTP, Timeout)
	// A receiver that redirects is misconfigured: following it would send the customer's
	// details, signed, to an address the merchant did not give.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Destination{clk: o.Clock, log: o.Log, http: c}
}

// Name implements deliver.Destination.
func (d *Destination) Name() string { return Name }

// EndpointError is a receiver's refusal or failure.
type EndpointError struct {
	Endpoint string
	URL      string
	Status   int // 0: no answer
	Err      error
}

func (e *EndpointError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("webhook endpoint %s (%s) did not answer: %v", e.Endpoint, e.URL, e.Err)
	}
	return fmt.Sprintf("webhook endpoint %s (%s) answered %d: %v", e.Endpoint, e.URL, e.Status, e.Err)
}

func (e *EndpointError) Unwrap() error { return e.Err }

// Deliver sends f to every endpoint that takes its kind. An endpoint without a secret runs dry:
// its request is recorded, not sent. The first endpoint that fails ends the delivery; the
// forwarder retries it whole, and the endpoints that had taken it get it again under the same
// webhook-id, which receivers use to take it once.
func (d *Destination) Deliver(ctx context.Context, acct accounts.Account, f domain.Fact) (deliver.Outcome, error) {
	log := d.log.With(slog.String("account", acct.ID), slog.String("fact", f.ID), slog.String("destination", Name), slog.String("kind", string(f.Kind)))
	s, err := ParseSettings(acct)
	if err != nil {
		return deliver.Outcome{}, deliver.Permanent(err)
	}
	var eps []Endpoint
	for _, e := range s.Endpoints {
		if e.Takes(f.Kind) {
			eps = append(eps, e)
		}
	}
	if len(eps) == 0 {
		return deliver.Outcome{Status: history.DeliverySkipped,
			Note: fmt.Sprintf("no webhook endpoint takes %s (each endpoint's kinds setting lists what it takes)", f.Kind)}, nil
	}
	body, err := Encode(f)
	if err != nil {
		return deliver.Outcome{}, deliver.Permanent(fmt.Errorf("encode %s as JSON: %w", f.ID, err))
	}
	now := d.clk.Now()
	out := deliver.Outcome{Status: history.DeliveryDryRun}
	var notes []string
	for _, e := range eps {
		req, x, err := d.request(ctx, e, f.ID, now, body)
		if err != nil {
			return out, deliver.Permanent(err)
		}
		if e.Dry() {
			out.Exchanges = append(out.Exchanges, x)
			notes = append(notes, e.Name+": dry run, no secret")
			log.Info("dry run: would send a signed webhook", slog.String("endpoint", e.Name))
			continue
		}
		out.Status = history.DeliverySent
		x, err = d.send(req, x, e, log)
		out.Exchanges = append(out.Exchanges, x)
		if err != nil {
			return out, err
		}
		notes = append(notes, e.Name+": sent")
	}
	out.Note = strings.Join(notes, "; ")
	if out.Status == history.DeliveryDryRun {
		out.Note = "no webhook secret configured: recorded " + string(f.Kind) + " without sending (" + out.Note + ")"
	}
	return out, nil
}

// request builds the signed request to e and its record for the delivery log, whose
// webhook-signature is redacted (it would let anyone replay the request for five minutes).
func (d *Destination) request(ctx context.Context, e Endpoint, id string, at time.Time, body []byte) (*http.Request, history.HTTPExchange, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(body))
	if err != nil {
		return nil, history.HTTPExchange{}, fmt.Errorf("webhook endpoint %s: %w", e.Name, err)
	}
	var sigs []string
	for _, sec := range e.Secrets {
		wh, err := standardwebhooks.NewWebhook(sec.Reveal())
		if err != nil {
			return nil, history.HTTPExchange{}, fmt.Errorf("webhook endpoint %s: its secret is unusable (%w); set a new one with `cartrelay accounts put`", e.Name, err)
		}
		sig, err := wh.Sign(id, at, body)
		if err != nil {
			return nil, history.HTTPExchange{}, fmt.Errorf("webhook endpoint %s: sign: %w", e.Name, err)
		}
		sigs = append(sigs, sig)
	}
	req.Header.Set(standardwebhooks.HeaderWebhookID, id)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(at.Unix(), 10))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	shown := "[not signed: no secret]"
	if len(sigs) > 0 {
		// Space-separated, as the specification writes several signatures.
		req.Header.Set(standardwebhooks.HeaderWebhookSignature, strings.Join(sigs, " "))
		shown = strings.TrimSpace(strings.Repeat("v1,[redacted] ", len(sigs)))
	}
	x := history.HTTPExchange{Method: http.MethodPost, URL: e.URL, RequestBody: string(body), RequestHeaders: map[string]string{
		standardwebhooks.HeaderWebhookID:        id,
		standardwebhooks.HeaderWebhookTimestamp: req.Header.Get(standardwebhooks.HeaderWebhookTimestamp),
		standardwebhooks.HeaderWebhookSignature: shown,
		"Content-Type":                          "application/json",
	}}
	return req, x, nil
}

// send makes the request and classifies the answer: 2xx taken; 408, 429 and 5xx (and no
// answer) retried, a 429's Retry-After honoured; any other status permanent, since sending the
// same request again will be refused the same way.
func (d *Destination) send(req *http.Request, x history.HTTPExchange, e Endpoint, log *slog.Logger) (history.HTTPExchange, error) {
	resp, err := d.http.Do(req)
	if err != nil {
		log.Warn("webhook endpoint did not answer", slog.String("endpoint", e.Name), slog.Any("error", err))
		return x, &EndpointError{Endpoint: e.Name, URL: e.URL, Err: err}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	x.Status, x.ResponseBody = resp.StatusCode, string(raw)
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return x, nil
	case code == http.StatusTooManyRequests:
		after := deliver.RetryAfter(resp.Header.Get("Retry-After"), d.clk.Now())
		log.Warn("webhook endpoint asked to slow down", slog.String("endpoint", e.Name), slog.Duration("retry_after", after))
		return x, &deliver.RetryAfterError{After: after, Err: &EndpointError{Endpoint: e.Name, URL: e.URL, Status: code, Err: errors.New("too many requests")}}
	case code == http.StatusRequestTimeout || code >= 500:
		log.Warn("webhook endpoint failed", slog.String("endpoint", e.Name), slog.Int("status", code))
		return x, &EndpointError{Endpoint: e.Name, URL: e.URL, Status: code, Err: errors.New("the receiver failed; retrying")}
	case code >= 300 && code < 400:
		return x, deliver.Permanent(&EndpointError{Endpoint: e.Name, URL: e.URL, Status: code,
			Err: fmt.Errorf("a redirect to %q, which cartrelay does not follow; set the endpoint's url to the address itself", resp.Header.Get("Location"))})
	}
	return x, deliver.Permanent(&EndpointError{Endpoint: e.Name, URL: e.URL, Status: code,
		Err: errors.New("the receiver refused the request; check its url and that it verifies with this endpoint's secret, then replay the delivery")})
}
