package iterable_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/outbound"
	"github.com/cartrelay/cartrelay/shared/outbound/outboundtest"
)

// TestRedirectToAnotherHostKeepsTheKey: Go keeps the Api-Key header on a redirect to another
// host and re-sends the body on 307/308; cartrelay must not follow, and parks the delivery.
func TestRedirectToAnotherHostKeepsTheKey(t *testing.T) {
	for _, status := range []int{http.StatusMovedPermanently, http.StatusPermanentRedirect} {
		e := newEnv(t, envOpts{noSpec: true})
		trap := outboundtest.NewTrap(t, status)
		a := e.acct
		a.Set("iterable.base_url", trap.URL)
		out, err := e.dest.Deliver(context.Background(), a, loadFact(t, "contact_changed"))
		if err == nil {
			t.Fatalf("%d: delivered through a redirect to another host", status)
		}
		if !errors.Is(err, outbound.ErrRedirectRefused) || !deliver.IsPermanent(err) {
			t.Errorf("%d: error %v; want a permanent refused redirect", status, err)
		}
		if len(out.Exchanges) == 0 {
			t.Errorf("%d: the refused request is missing from the delivery log", status)
		}
		trap.AssertUntouched(t)
	}
}

func TestPlainHTTPBaseURLIsRefused(t *testing.T) {
	e := newEnv(t, envOpts{noSpec: true})
	a := e.acct
	a.Set("iterable.base_url", "http://api.iterable.com")
	if err := iterable.CheckSettings(a); err == nil || !strings.Contains(err.Error(), "iterable.base_url") || !strings.Contains(err.Error(), "https://api.iterable.com") {
		t.Fatalf("CheckSettings with an http base URL: %v; want a refusal naming iterable.base_url and the https URL", err)
	}
	out, err := e.dest.Deliver(context.Background(), a, loadFact(t, "contact_changed"))
	if !deliver.IsPermanent(err) || len(out.Exchanges) != 0 {
		t.Fatalf("deliver over http: %v, %d exchanges; want a permanent error and no request", err, len(out.Exchanges))
	}
}
