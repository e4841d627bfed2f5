package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/ledger"
)

// storefrontCart keeps a cart the store's tracking snippet reported for a known shopper: the
// cart is stored on the contact and, when its contents changed, a CartUpdated fact is written to
// the contact's log and outbox in the same transaction and then routed like every other fact.
// The tracker answers the browser only after this returns, so an acknowledged cart is durable;
// a crash between the commit and the routing leaves the fact in the outbox, which the next
// flush of the contact sends.
func (a *App) storefrontCart(ctx context.Context, acct accounts.Account, c domain.Cart) error {
	repo := history.New(a.d.Store)
	email, err := repo.ResolveEmail(ctx, acct.ID, c.Email)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", c.Email, err)
	}
	c.Email = email
	stored, err := repo.Cart(ctx, acct.ID, email, c.Source, c.CartID)
	if err != nil {
		return fmt.Errorf("read the stored cart: %w", err)
	}
	facts := ledger.CartUpdateFacts(acct.ID, stored, c, ledger.Cutover{ForwardSince: acct.ForwardSince})
	if len(facts) == 0 {
		return nil
	}
	st := &history.ContactState{Account: acct.ID, Email: email}
	w := &history.Writes{}
	w.PutCart(st, c)
	w.AddFacts(st, facts)
	if err := repo.Commit(ctx, w); err != nil {
		return fmt.Errorf("store the cart of %s: %w", email, err)
	}
	a.d.Log.Info("cart updated", slog.String("account", acct.ID), slog.String("fact_id", facts[0].ID),
		slog.Int("lines", len(c.Items)))
	return a.flush(ctx, acct, email, facts)
}
