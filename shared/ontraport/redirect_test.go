package ontraport

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/ontraport/ontraportfake"
	"github.com/cartrelay/cartrelay/shared/outbound"
	"github.com/cartrelay/cartrelay/shared/outbound/outboundtest"
)

// TestRedirectToAnotherHostKeepsTheKey: a base URL that redirects elsewhere (a compromised
// proxy, a typo'd domain) must not receive the Api-Key on the other host. The delivery is
// parked with a reason that says what to check.
func TestRedirectToAnotherHostKeepsTheKey(t *testing.T) {
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
		trap := outboundtest.NewTrap(t, status)
		e := newEnv(t, func(_ *ontraportfake.Options, _ *Options, a *accounts.Account) { set(a, keyBaseURL, trap.URL) })
		_, err := e.deliver(orderFact("R-1", "ann@example.com", nil, "0", "0", "0", "10.00"))
		if err == nil {
			t.Fatalf("%d: delivered through a redirect to another host", status)
		}
		if !errors.Is(err, outbound.ErrRedirectRefused) || !deliver.IsPermanent(err) {
			t.Errorf("%d: error %v; want a permanent refused redirect", status, err)
		}
		trap.AssertUntouched(t)
	}
}

func TestPlainHTTPBaseURLIsRefused(t *testing.T) {
	a := testAccount()
	set(&a, keyBaseURL, "http://api.ontraport.com/1")
	err := CheckSettings(a)
	if err == nil || !strings.Contains(err.Error(), "https://api.ontraport.com/1") {
		t.Fatalf("CheckSettings with an http base URL: %v; want a refusal naming the https URL", err)
	}
	// An account stored before the check: the delivery is parked, nothing is sent.
	e := newEnv(t, func(_ *ontraportfake.Options, _ *Options, a *accounts.Account) {
		set(a, keyBaseURL, "http://api.ontraport.com/1")
	})
	out, err := e.deliver(orderFact("R-2", "ann@example.com", nil, "0", "0", "0", "10.00"))
	if !errors.Is(err, ErrSettings) || !deliver.IsPermanent(err) || len(out.Exchanges) != 0 {
		t.Fatalf("deliver over http: %v, %d exchanges; want a permanent settings error and no request", err, len(out.Exchanges))
	}
	set(&a, keyBaseURL, "http://127.0.0.1:9000")
	if err := CheckSettings(a); err != nil {
		t.Errorf("a loopback test server over http is refused: %v", err)
	}
}
