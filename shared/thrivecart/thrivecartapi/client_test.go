package thrivecartapi_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartapi"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartfake"
)

func TestPing(t *testing.T) {
	fake := thrivecartfake.New("acme", "good-key")
	defer fake.Close()
	c := thrivecartapi.Client{BaseURL: fake.URL + "/"}
	ctx := context.Background()

	acct, err := c.Ping(ctx, "good-key")
	if err != nil || acct.Name != "acme" {
		t.Fatalf("good key: %+v, %v", acct, err)
	}
	_, err = c.Ping(ctx, "bad-key")
	var ke *thrivecartapi.KeyError
	if !errors.As(err, &ke) || !errors.Is(err, thrivecartapi.ErrKeyRefused) || ke.Status != 401 ||
		!strings.Contains(err.Error(), "invalid_token") {
		t.Fatalf("bad key: %v", err)
	}
	if _, err := c.Ping(ctx, " "); !errors.Is(err, thrivecartapi.ErrKeyRefused) {
		t.Fatalf("empty key: %v", err)
	}
	if fake.Pings() != 2 {
		t.Errorf("pings %d, want 2 (an empty key is not sent)", fake.Pings())
	}
}

func TestPingUnreachable(t *testing.T) {
	fake := thrivecartfake.New("acme", "good-key")
	url := fake.URL
	fake.Close()
	_, err := thrivecartapi.Client{BaseURL: url}.Ping(context.Background(), "good-key")
	if err == nil || errors.Is(err, thrivecartapi.ErrKeyRefused) {
		t.Fatalf("unreachable: %v, want an error that is not a refusal", err)
	}
}

// TestBaseURLWithAPIPath: ThriveCart documents its API base with /api/external, and an operator
// who configures that must not get /api/external/api/external.
func TestBaseURLWithAPIPath(t *testing.T) {
	fake := thrivecartfake.New("acme", "good-key")
	defer fake.Close()
	for _, base := range []string{fake.URL, fake.URL + "/", fake.URL + "/api/external", fake.URL + "/api/external/"} {
		if _, err := (thrivecartapi.Client{BaseURL: base}).Ping(context.Background(), "good-key"); err != nil {
			t.Errorf("base %q: %v", base, err)
		}
	}
}
