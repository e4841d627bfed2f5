package ontraport

import (
	"testing"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver/delivertest"
	"github.com/cartrelay/cartrelay/shared/domain"
)

// TestContract holds ONTRAPORT to the contract every destination passes, with its contact
// cache, rate window and transaction markers in SQLite and in DynamoDB.
func TestContract(t *testing.T) {
	delivertest.RunOnBothBackends(t, func(t *testing.T, open delivertest.OpenStore) delivertest.Env {
		e := newEnv(t)
		o := e.dest.o
		o.Store = open(t, e.clk)
		return delivertest.Env{
			Dest: New(o), Account: e.acct, API: e.fake.URL,
			At: func(a accounts.Account, base string) accounts.Account { set(&a, keyBaseURL, base); return a },
			WithoutKey: func(a accounts.Account) accounts.Account {
				set(&a, keyAPIKey, accounts.Secret{})
				return a
			},
			Placed: orderFact("C-1", "ann@example.com", []domain.LineItem{lineItem("MUG", 1, "10.00")}, "0", "0", "0", "10.00"),
			Held:   func(f domain.Fact) int { return len(e.fake.TransactionsFor(f.Order.Key)) },
		}
	})
}
