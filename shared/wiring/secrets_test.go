package wiring_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

type params map[string]string

func (p params) Get(_ context.Context, name string) (string, error) {
	v, ok := p[name]
	if !ok {
		return "", errors.New("SSM parameter " + name + " does not exist")
	}
	return v, nil
}

func TestResolveSecrets(t *testing.T) {
	store := params{"/cr/uc": "from-ssm-secret", "/cr/console": strings.Repeat("k", 32)}
	for _, tc := range []struct {
		name       string
		env        map[string]string
		noStore    bool
		wantSecret string
		wantKey    string
		wantErr    string
		wantOpened bool
	}{
		{name: "nothing set"},
		{name: "set directly", env: map[string]string{"ULTRACART_CLIENT_SECRET": "direct", "ULTRACART_CLIENT_SECRET_PARAMETER": "/cr/uc"},
			wantSecret: "direct"},
		{name: "from parameters", env: map[string]string{"ULTRACART_CLIENT_SECRET_PARAMETER": "/cr/uc", "CONSOLE_SESSION_KEY_PARAMETER": "/cr/console"},
			wantSecret: "from-ssm-secret", wantKey: strings.Repeat("k", 32), wantOpened: true},
		{name: "missing parameter", env: map[string]string{"CONSOLE_SESSION_KEY_PARAMETER": "/cr/nope"},
			wantErr: "CONSOLE_SESSION_KEY: SSM parameter /cr/nope does not exist", wantOpened: true},
		{name: "function without parameters", env: map[string]string{"ULTRACART_CLIENT_SECRET_PARAMETER": "/cr/uc"}, noStore: true,
			wantErr: "ULTRACART_CLIENT_SECRET_PARAMETER is set, but this function does not read parameters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opened := false
			var ps func() wiring.ParameterStore
			if !tc.noStore {
				ps = func() wiring.ParameterStore { opened = true; return store }
			}
			var c app.Config
			err := wiring.ResolveSecrets(context.Background(), func(k string) string { return tc.env[k] }, ps, &c)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tc.wantErr == "" && (c.UltraCartClientSecret != tc.wantSecret || c.ConsoleSessionKey != tc.wantKey) {
				t.Errorf("secret %q, key %q; want %q, %q", c.UltraCartClientSecret, c.ConsoleSessionKey, tc.wantSecret, tc.wantKey)
			}
			if opened != tc.wantOpened {
				t.Errorf("parameter store opened: %v, want %v (it costs a client; open it only when needed)", opened, tc.wantOpened)
			}
		})
	}
}

func TestRequiresInvite(t *testing.T) {
	for _, tc := range []struct {
		env     string
		def     bool
		want    bool
		wantErr bool
	}{
		{"", true, true, false}, {"", false, false, false},
		{"true", false, true, false}, {"false", true, false, false},
		{"yes", true, true, true},
	} {
		got, err := wiring.RequiresInvite(func(k string) string { return map[string]string{"CONNECT_REQUIRES_INVITE": tc.env}[k] }, tc.def)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%q (default %t): %t, %v", tc.env, tc.def, got, err)
		}
	}
}
