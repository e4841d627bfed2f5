package ultracartapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/outbound"
	"github.com/cartrelay/cartrelay/shared/outbound/outboundtest"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

// TestRedirectToAnotherHostIsRefused: the simple key rides in x-ultracart-simple-key, which Go
// keeps on a redirect to another host, and the token endpoint's form carries the refresh token,
// which a 307 re-sends. Neither may reach the other host.
func TestRedirectToAnotherHostIsRefused(t *testing.T) {
	trap := outboundtest.NewTrap(t, http.StatusTemporaryRedirect)
	ctx := context.Background()

	c := ultracartapi.New(trap.URL, ultracartapi.Credentials{SimpleKey: "uc-simple-key"}, &http.Client{Timeout: 5 * time.Second})
	_, err := c.QueryOrders(ctx, ultracartapi.OrderFilter{PaymentDateBegin: time.Now().Add(-time.Hour)}, 10, 0)
	if !errors.Is(err, outbound.ErrRedirectRefused) {
		t.Errorf("order query through a redirect: %v; want it refused", err)
	}
	if ultracartapi.Retryable(err) {
		t.Errorf("a refused redirect is retryable: %v", err)
	}

	o := ultracartapi.OAuth{BaseURL: trap.URL, ClientID: "cid", ClientSecret: "client-secret"}
	if _, err := o.Refresh(ctx, "refresh-token-value"); !errors.Is(err, outbound.ErrRedirectRefused) {
		t.Errorf("token refresh through a redirect: %v; want it refused", err)
	}
	trap.AssertUntouched(t)
}

func TestPlainHTTPBaseURLIsRefused(t *testing.T) {
	ctx := context.Background()
	c := ultracartapi.New("http://secure.ultracart.com", ultracartapi.Credentials{SimpleKey: "k"}, nil)
	if _, err := c.ListWebhooks(ctx); !errors.Is(err, outbound.ErrInsecureURL) || !strings.Contains(err.Error(), "https://secure.ultracart.com") {
		t.Errorf("API call over plain http: %v; want a refusal naming the https URL", err)
	}
	o := ultracartapi.OAuth{BaseURL: "http://secure.ultracart.com", ClientID: "cid", ClientSecret: "s"}
	if _, err := o.Exchange(ctx, "code", "https://hub.example.com/cb"); !errors.Is(err, outbound.ErrInsecureURL) {
		t.Errorf("token exchange over plain http: %v; want a refusal", err)
	}
}
