package iterable_test

import (
	"testing"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/deliver/delivertest"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/store"
)

// TestContract holds Iterable to the contract every destination passes, with its rate windows,
// catalogue and review keys in SQLite and in DynamoDB.
func TestContract(t *testing.T) {
	delivertest.RunOnBothBackends(t, func(t *testing.T, open delivertest.OpenStore) delivertest.Env {
		e := newEnv(t, envOpts{store: func(clk clock.Clock) store.Store { return open(t, clk) }})
		return delivertest.Env{
			Dest: e.dest, Account: e.acct, API: e.fake.URL, Transport: e.fake.Client().Transport,
			At: func(a accounts.Account, base string) accounts.Account {
				a.Set("iterable.base_url", base)
				return a
			},
			WithoutKey: func(a accounts.Account) accounts.Account {
				a.Set("iterable.api_key", accounts.Secret{})
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
