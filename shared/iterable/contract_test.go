package iterable_test

import (
	"testing"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver/delivertest"
	"github.com/cartrelay/cartrelay/shared/domain"
)

// TestContract holds Iterable to the contract every destination passes.
func TestContract(t *testing.T) {
	delivertest.Run(t, func(t *testing.T) delivertest.Env {
		e := newEnv(t, envOpts{})
		return delivertest.Env{
			Dest: e.dest, Account: e.acct, API: e.fake.URL, Transport: e.fake.Client().Transport,
			At: func(a accounts.Account, base string) accounts.Account { a.Iterable.BaseURL = base; return a },
			WithoutKey: func(a accounts.Account) accounts.Account {
				a.Iterable.APIKey = accounts.Secret{}
				return a
			},
			Placed: loadFact(t, "order_placed"),
			Held: func(f domain.Fact) int {
				n := 0
				for _, p := range e.fake.Purchases() {
					if p.ID == f.Order.Key {
						n++
					}
				}
				return n
			},
		}
	})
}
