package tcsource_test

import (
	"testing"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/thrivecart/tcsource"
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
