package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// TestPlainHTTPSourceBaseURLsAreRefusedAtStart: tokens, the client secret and API keys go to
// these hosts, so a deployment configured with plain http fails at start, saying what to set.
func TestPlainHTTPSourceBaseURLsAreRefusedAtStart(t *testing.T) {
	for _, tc := range []struct {
		cfg  app.Config
		want string
	}{
		{app.Config{UltraCartBaseURL: "http://secure.ultracart.com"}, "ULTRACART_BASE_URL"},
		{app.Config{ThriveCartBaseURL: "http://thrivecart.com"}, "THRIVECART_BASE_URL"},
	} {
		env, err := operator.Embedded(context.Background(), t.TempDir(), wiring.Options{Config: tc.cfg})
		if err == nil {
			env.Close()
			t.Errorf("%+v: the runtime started", tc.cfg)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "https://") {
			t.Errorf("%+v: %v; want it to name %s and the https URL", tc.cfg, err, tc.want)
		}
	}
	env, err := operator.Embedded(context.Background(), t.TempDir(), wiring.Options{Config: app.Config{
		UltraCartBaseURL: "http://127.0.0.1:9000", ThriveCartBaseURL: "https://thrivecart.com"}})
	if err != nil {
		t.Fatalf("a loopback fake and the https default are refused: %v", err)
	}
	env.Close()
}
