package signedhooks_test

import (
	"testing"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver/delivertest"
	"github.com/cartrelay/cartrelay/shared/domain"
)

// TestContract holds the signed webhooks to the contract every destination passes, over a
// receiver that verifies each signature with the Standard Webhooks library. The destination
// keeps no state in the table, so unlike ONTRAPORT and Iterable it has no backend to run the
// contract on twice; the state a redelivery depends on (the forwarder's done marker and the
// delivery log) is checked on both backends for every destination by shared/app's
// TestARedeliveredFactIsTakenOnceOnBothBackends.
func TestContract(t *testing.T) {
	delivertest.Run(t, func(t *testing.T) delivertest.Env {
		e := newEnv(t)
		return delivertest.Env{
			Dest: e.dest, Account: e.acct, API: e.fake.URL, Transport: e.fake.Client().Transport,
			At: func(a accounts.Account, base string) accounts.Account {
				return with(a, "webhooks.endpoints.crm.url", base)
			},
			WithoutKey: func(a accounts.Account) accounts.Account {
				return with(a, "webhooks.endpoints.crm.secret", accounts.Secret{})
			},
			Placed: fact(t, domain.FactOrderPlaced),
			Held:   func(f domain.Fact) int { return e.fake.Held(f.ID) },
		}
	})
}
