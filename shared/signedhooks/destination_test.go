package signedhooks_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/signedhooks"
	"github.com/cartrelay/cartrelay/shared/signedhooks/hookfake"
)

// TestSignedRequest: the request carries the fact id as webhook-id, the signing time, and a
// signature the library verifies; the body is the payload of the fact.
func TestSignedRequest(t *testing.T) {
	e := newEnv(t)
	f := fact(t, domain.FactOrderPlaced)
	out, err := e.dest.Deliver(context.Background(), e.acct, f)
	if err != nil || out.Status != history.DeliverySent {
		t.Fatalf("deliver: %+v, %v", out, err)
	}
	reqs := e.fake.Requests()
	if len(reqs) != 1 || !reqs[0].Verified {
		t.Fatalf("requests %+v, want one that verifies", reqs)
	}
	r := reqs[0]
	if r.ID != f.ID || r.Timestamp != strconv.FormatInt(now.Unix(), 10) {
		t.Errorf("webhook-id %q, timestamp %q; want the fact id %q and the signing time %d", r.ID, r.Timestamp, f.ID, now.Unix())
	}
	want, err := signedhooks.Encode(f)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Body) != string(want) {
		t.Errorf("body %s, want %s", r.Body, want)
	}
	// The delivery log keeps the request, but not a signature that could be replayed.
	if len(out.Exchanges) != 1 || out.Exchanges[0].Status != http.StatusNoContent ||
		strings.Contains(out.Exchanges[0].RequestHeaders["webhook-signature"], strings.Fields(r.Signature)[0][3:]) {
		t.Errorf("exchanges %+v", out.Exchanges)
	}
}

// TestRotation: with a previous secret the request carries two signatures, and a receiver that
// knows only one of the two secrets verifies it.
func TestRotation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		receiver string
	}{
		{"a receiver still on the previous secret", secret("o")},
		{"a receiver already on the new secret", secret("n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.receiver)
			a := endpoint(e.acct, "crm", e.fake.URL, secret("n"), secret("o"), "")
			if _, err := e.dest.Deliver(context.Background(), a, fact(t, domain.FactOrderPlaced)); err != nil {
				t.Fatal(err)
			}
			r := e.fake.Requests()[0]
			if sigs := hookfake.Signatures(r.Signature); len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") {
				t.Errorf("webhook-signature %q, want two space-separated v1 signatures", r.Signature)
			}
			if !r.Verified {
				t.Error("the receiver did not verify the request")
			}
		})
	}
	t.Run("a receiver on neither secret refuses it, and that is permanent", func(t *testing.T) {
		e := newEnv(t, secret("x"))
		a := endpoint(e.acct, "crm", e.fake.URL, secret("n"), secret("o"), "")
		_, err := e.dest.Deliver(context.Background(), a, fact(t, domain.FactOrderPlaced))
		if !deliver.IsPermanent(err) || !strings.Contains(err.Error(), "401") {
			t.Fatalf("%v; want a permanent error naming the 401", err)
		}
	})
}

// TestKindFilter: each endpoint takes only its kinds; a fact no endpoint takes is skipped with
// the reason.
func TestKindFilter(t *testing.T) {
	e := newEnv(t)
	other, err := hookfake.New(hookfake.Options{Secrets: []string{secret("b")}, Clock: e.clk})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	a := endpoint(e.acct, "crm", e.fake.URL, secret("a"), "", "OrderPlaced, OrderRefunded")
	a = endpoint(a, "zap", other.URL, secret("b"), "", "OrderRefunded")
	placed, refunded, shipped := fact(t, domain.FactOrderPlaced), fact(t, domain.FactOrderRefunded), fact(t, domain.FactOrderShipped)
	ctx := context.Background()
	if _, err := e.dest.Deliver(ctx, a, placed); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dest.Deliver(ctx, a, refunded); err != nil {
		t.Fatal(err)
	}
	out, err := e.dest.Deliver(ctx, a, shipped)
	if err != nil || out.Status != history.DeliverySkipped || !strings.Contains(out.Note, "no webhook endpoint takes OrderShipped") {
		t.Errorf("a kind no endpoint takes: %+v, %v; want skipped with the reason", out, err)
	}
	if e.fake.Held(placed.ID) != 1 || e.fake.Held(refunded.ID) != 1 || e.fake.Held(shipped.ID) != 0 {
		t.Errorf("crm holds placed %d, refunded %d, shipped %d", e.fake.Held(placed.ID), e.fake.Held(refunded.ID), e.fake.Held(shipped.ID))
	}
	if other.Held(placed.ID) != 0 || other.Held(refunded.ID) != 1 {
		t.Errorf("zap holds placed %d, refunded %d; want only the refund", other.Held(placed.ID), other.Held(refunded.ID))
	}
}

// TestAnswers: how each answer of a receiver is taken.
func TestAnswers(t *testing.T) {
	for _, tc := range []struct {
		status     int
		retryAfter string
		permanent  bool
		after      time.Duration
	}{
		{http.StatusInternalServerError, "", false, 0},
		{http.StatusBadGateway, "", false, 0},
		{http.StatusRequestTimeout, "", false, 0},
		{http.StatusTooManyRequests, "30", false, 30 * time.Second},
		{http.StatusTooManyRequests, now.Add(2 * time.Minute).Format(http.TimeFormat), false, 2 * time.Minute},
		{http.StatusBadRequest, "", true, 0},
		{http.StatusNotFound, "", true, 0},
		{http.StatusGone, "", true, 0},
		{http.StatusMovedPermanently, "", true, 0},
	} {
		t.Run(strconv.Itoa(tc.status)+" "+tc.retryAfter, func(t *testing.T) {
			e := newEnv(t)
			e.fake.Inject(hookfake.Fault{Status: tc.status, RetryAfter: tc.retryAfter, Times: 1})
			out, err := e.dest.Deliver(context.Background(), e.acct, fact(t, domain.FactOrderPlaced))
			if err == nil {
				t.Fatal("no error")
			}
			if deliver.IsPermanent(err) != tc.permanent {
				t.Errorf("%v: permanent %v, want %v", err, deliver.IsPermanent(err), tc.permanent)
			}
			var ra *deliver.RetryAfterError
			if got := errors.As(err, &ra); got != (tc.after > 0) || (got && ra.After != tc.after) {
				t.Errorf("%v: retry after %v, want %v", err, ra, tc.after)
			}
			if len(out.Exchanges) != 1 || out.Exchanges[0].Status != tc.status {
				t.Errorf("the delivery log has %+v, want the exchange with its %d", out.Exchanges, tc.status)
			}
		})
	}
	t.Run("no answer is retried", func(t *testing.T) {
		e := newEnv(t)
		e.fake.Close()
		_, err := e.dest.Deliver(context.Background(), e.acct, fact(t, domain.FactOrderPlaced))
		var ee *signedhooks.EndpointError
		if err == nil || deliver.IsPermanent(err) || !errors.As(err, &ee) || ee.Endpoint != "crm" {
			t.Fatalf("%v; want a retryable *EndpointError naming crm", err)
		}
	})
}

// TestDryRun: an endpoint without a secret records the exact request and sends nothing; beside
// one with a secret, only that one is sent.
func TestDryRun(t *testing.T) {
	e := newEnv(t)
	f := fact(t, domain.FactOrderRefunded)
	dry := with(e.acct, "webhooks.endpoints.crm.secret", accounts.Secret{})
	out, err := e.dest.Deliver(context.Background(), dry, f)
	if err != nil || out.Status != history.DeliveryDryRun || !strings.Contains(out.Note, "no webhook secret configured") {
		t.Fatalf("%+v, %v", out, err)
	}
	body, _ := signedhooks.Encode(f)
	x := out.Exchanges[0]
	if x.Method != http.MethodPost || x.URL != e.fake.URL || x.RequestBody != string(body) ||
		x.RequestHeaders[standardwebhooks.HeaderWebhookID] != f.ID || x.RequestHeaders[standardwebhooks.HeaderWebhookTimestamp] != strconv.FormatInt(now.Unix(), 10) {
		t.Errorf("recorded %+v", x)
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Fatalf("a dry run sent %d requests", n)
	}

	mixed := endpoint(dry, "zap", e.fake.URL+"/zap", secret("a"), "", "")
	out, err = e.dest.Deliver(context.Background(), mixed, f)
	if err != nil || out.Status != history.DeliverySent || len(out.Exchanges) != 2 || !strings.Contains(out.Note, "crm: dry run") {
		t.Fatalf("%+v, %v", out, err)
	}
	if n := len(e.fake.Requests()); n != 1 {
		t.Errorf("%d requests, want only zap's", n)
	}
}

func TestSettingsChecks(t *testing.T) {
	base := accounts.Account{ID: "acme"}
	for _, tc := range []struct {
		name string
		acct accounts.Account
		want string
	}{
		{"plain http to another host", endpoint(base, "crm", "http://crm.example.com/in", secret("a"), "", ""), "endpoints must be https"},
		{"no url", endpoint(base, "crm", "", secret("a"), "", ""), "webhooks.endpoints.crm.url is missing"},
		{"a secret without the prefix", endpoint(base, "crm", "https://crm.example.com/in", "hunter2", "", ""), `must start with "whsec_"`},
		{"a short secret", endpoint(base, "crm", "https://crm.example.com/in", "whsec_c2hvcnQ=", "", ""), "24 to 64 random bytes"},
		{"an unknown kind", endpoint(base, "crm", "https://crm.example.com/in", secret("a"), "", "OrderPlaced, Orderplaced"), `"Orderplaced", which is not a fact kind`},
		{"a previous secret alone", endpoint(base, "crm", "https://crm.example.com/in", "", secret("b"), ""), "previous_secret is set without a secret"},
		{"enabled without endpoints", with(base, "webhooks.enabled", true), "no endpoint is configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := signedhooks.CheckSettings(tc.acct)
			if !errors.Is(err, signedhooks.ErrSettings) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "cartrelay accounts put") {
				t.Fatalf("%v; want a settings error saying %q and how to fix it", err, tc.want)
			}
		})
	}
	ok := endpoint(base, "crm", "http://127.0.0.1:9000/in", secret("a"), secret("b"), "OrderPlaced")
	if err := signedhooks.CheckSettings(ok); err != nil {
		t.Errorf("a local receiver during a rotation: %v", err)
	}
}
