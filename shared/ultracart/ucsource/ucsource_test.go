package ucsource_test

import (
	"testing"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucsource"
)

func TestCheckBasic(t *testing.T) {
	configured := accounts.Account{UltraCart: accounts.UltraCartSettings{WebhookUsername: "user", WebhookPassword: accounts.NewSecret("pass")}}
	for _, tc := range []struct {
		name       string
		a          accounts.Account
		user, pass string
		want       bool
	}{
		{"match", configured, "user", "pass", true},
		{"wrong password", configured, "user", "pasS", false},
		{"wrong user", configured, "usr", "pass", false},
		{"both wrong", configured, "x", "y", false},
		{"password prefix", configured, "user", "pas", false},
		{"password longer", configured, "user", "password", false},
		{"swapped", configured, "pass", "user", false},
		{"empty given", configured, "", "", false},
		{"nothing configured", accounts.Account{}, "", "", false},
		{"only username configured", accounts.Account{UltraCart: accounts.UltraCartSettings{WebhookUsername: "user"}}, "user", "", false},
		{"only password configured", accounts.Account{UltraCart: accounts.UltraCartSettings{WebhookPassword: accounts.NewSecret("pass")}}, "", "pass", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ucsource.CheckBasic(tc.a, tc.user, tc.pass); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
