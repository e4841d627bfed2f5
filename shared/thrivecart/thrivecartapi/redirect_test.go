package thrivecartapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/outbound"
	"github.com/cartrelay/cartrelay/shared/outbound/outboundtest"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartapi"
)

// TestRedirectToAnotherHostIsRefused: nothing of a call with the API key goes to another host.
func TestRedirectToAnotherHostIsRefused(t *testing.T) {
	trap := outboundtest.NewTrap(t, http.StatusTemporaryRedirect)
	for _, c := range []thrivecartapi.Client{{BaseURL: trap.URL}, {BaseURL: trap.URL, HTTP: &http.Client{}}} {
		_, err := c.Ping(context.Background(), "tc-api-key")
		if !errors.Is(err, outbound.ErrRedirectRefused) {
			t.Errorf("ping through a redirect to another host: %v; want it refused", err)
		}
	}
	trap.AssertUntouched(t)
}

func TestPlainHTTPBaseURLIsRefused(t *testing.T) {
	_, err := thrivecartapi.Client{BaseURL: "http://thrivecart.com"}.Ping(context.Background(), "tc-api-key")
	if !errors.Is(err, outbound.ErrInsecureURL) || !strings.Contains(err.Error(), "https://thrivecart.com") {
		t.Fatalf("ping over plain http: %v; want a refusal that names the https URL", err)
	}
}
