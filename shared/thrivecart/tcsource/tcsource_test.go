package tcsource_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/thrivecart/tcsource"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartapi"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartfake"
)

func TestCheckSecret(t *testing.T) {
	configured := accounts.Account{ThriveCart: accounts.ThriveCartSettings{Secret: accounts.NewSecret("VQ2XK7M4ZB9T")}}
	for _, tc := range []struct {
		name string
		a    accounts.Account
		s    string
		want bool
	}{
		{"match", configured, "VQ2XK7M4ZB9T", true},
		{"case differs", configured, "vq2xk7m4zb9t", false},
		{"prefix", configured, "VQ2XK7", false},
		{"empty", configured, "", false},
		{"nothing configured", accounts.Account{}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tcsource.CheckSecret(tc.a, tc.s); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestConnectCheck: ThriveCart's registered key check asks ThriveCart's API and tells a refused
// key (source.ErrRefused, with ThriveCart's answer) from one it could not check.
func TestConnectCheck(t *testing.T) {
	fake := thrivecartfake.New("acme", "good-key")
	defer fake.Close()
	check := tcsource.Registration().Connect.Check
	if check == nil {
		t.Fatal("ThriveCart registers no key check")
	}
	ports := source.Ports{APIBase: map[domain.Source]string{domain.ThriveCart: fake.URL}}
	conn := func(key string) connections.Connection {
		return connections.Connection{Account: "acme", Provider: string(domain.ThriveCart), Kind: connections.KindSimpleKey, SimpleKey: key}
	}
	ctx := context.Background()
	if err := check(ctx, ports, conn("good-key")); err != nil {
		t.Fatalf("good key: %v", err)
	}
	err := check(ctx, ports, conn("bad-key"))
	if !errors.Is(err, source.ErrRefused) || !errors.Is(err, thrivecartapi.ErrKeyRefused) || !strings.Contains(err.Error(), "invalid_token") {
		t.Fatalf("bad key: %v; want a refusal carrying ThriveCart's answer", err)
	}
	if fake.Pings() != 2 {
		t.Errorf("pings %d, want one per check", fake.Pings())
	}
	fake.Close()
	if err := check(ctx, ports, conn("good-key")); err == nil || errors.Is(err, source.ErrRefused) {
		t.Fatalf("ThriveCart unreachable: %v; want an error that is not a refusal", err)
	}
}
