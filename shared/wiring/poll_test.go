package wiring_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

func TestPollOptionsFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		check   func(ucpoll.Options) bool
		wantErr string
	}{
		{name: "defaults", check: func(o ucpoll.Options) bool { return o.Hour.Requests == 0 && o.Scope == "" }},
		{name: "scaled", env: map[string]string{"ULTRACART_RATE_PER_HOUR": "60", "ULTRACART_RATE_PER_DAY": "600", "ULTRACART_RATE_SCOPE": "app"},
			check: func(o ucpoll.Options) bool {
				return o.Hour.Requests == 60 && o.Hour.Window == time.Hour && o.Day.Requests == 600 && o.Scope == ucpoll.ScopeApp
			}},
		{name: "bad number", env: map[string]string{"ULTRACART_RATE_PER_HOUR": "lots"}, wantErr: "ULTRACART_RATE_PER_HOUR must be a whole number"},
		{name: "bad scope", env: map[string]string{"ULTRACART_RATE_SCOPE": "ip"}, wantErr: `ULTRACART_RATE_SCOPE must be "account"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := wiring.PollOptionsFromEnv(func(k string) string { return tc.env[k] }, ucpoll.Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(o) {
				t.Fatalf("%+v, %v", o, err)
			}
		})
	}
}
