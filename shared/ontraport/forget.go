package ontraport

import (
	"context"
	"fmt"

	"github.com/cartrelay/cartrelay/shared/store"
)

// ForgetLocal deletes what this destination keeps in the table about an erased contact's
// addresses (the contact id it remembered for each; see shared/erasure) and returns how many
// items it deleted. Transactions and products it remembers name no person.
func ForgetLocal(ctx context.Context, st store.Store, account string, emails []string) (int, error) {
	n := 0
	for _, e := range emails {
		ok, err := store.DeleteIfExists(ctx, st, store.Key{PK: contactPK(account, e), SK: skDash})
		if err != nil {
			return n, fmt.Errorf("forget the ONTRAPORT contact id of an erased address of %s: %w", account, err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}
