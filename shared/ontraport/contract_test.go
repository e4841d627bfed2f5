package ontraport

import (
	"testing"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver/delivertest"
	"github.com/cartrelay/cartrelay/shared/domain"
)

// TestContract holds ONTRAPORT to the contract every destination passes.
func TestContract(t *testing.T) {
	delivertest.Run(t, func(t *testing.T) delivertest.Env {
		e := newEnv(t)
		return delivertest.Env{
			Dest: e.dest, Account: e.acct, API: e.fake.URL,
			At: func(a accounts.Account, base string) accounts.Account { a.Ontraport.BaseURL = base; return a },
			WithoutKey: func(a accounts.Account) accounts.Account {
				a.Ontraport.APIKey = accounts.Secret{}
				return a
			},
			Placed: orderFact("C-1", "ann@example.com", []domain.LineItem{lineItem("MUG", 1, "10.00")}, "0", "0", "0", "10.00"),
			Held:   func(f domain.Fact) int { return len(e.fake.TransactionsFor(f.Order.Key)) },
		}
	})
}
