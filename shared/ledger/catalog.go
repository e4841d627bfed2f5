package ledger

import (
	"bytes"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// ItemFacts returns ItemChanged when a catalogue item is new or its content changed (anything
// but UpdatedAt); before is nil for a new item. The id hashes the content together with
// UpdatedAt: a price that goes back to an earlier value is a new change with a new update time,
// and must not reuse the id of the first time. (A source that sends no update time cannot be told
// apart that way; its revert is then taken for the earlier state.)
func ItemFacts(account string, before *domain.Item, after domain.Item, cut Cutover) []domain.Fact {
	var ea enc
	ea.itemContents(after)
	if before != nil {
		var eb enc
		eb.itemContents(*before)
		if bytes.Equal(ea.b, eb.b) {
			return nil
		}
	}
	at := after.UpdatedAt.UTC()
	ea.time(at)
	snap := after
	return []domain.Fact{{
		ID:         domain.ItemChangedID(account, after.Source, after.SKU, ea.hash()),
		Account:    account,
		Kind:       domain.FactItemChanged,
		OccurredAt: at,
		Historical: cut.Historical(at),
		Item:       &snap,
	}}
}

func (e *enc) itemContents(it domain.Item) {
	e.str(string(it.Source))
	e.str(it.SKU)
	e.str(it.Name)
	e.str(it.Description)
	e.money(it.Price)
	e.str(it.ImageURL)
	e.thumbnails(it.Thumbnails)
	e.str(it.URL)
	e.strs(it.Categories)
	e.boolean(it.Deleted)
}

// CartFacts returns CartAbandoned for an abandoned cart that can be addressed (it has an email
// and an id). The id holds the cart and the abandonment time, so a redelivery is one fact and a
// cart abandoned again later is another. When to act on it (the wait before a recovery
// message) is the destination's concern.
func CartFacts(account string, c domain.Cart, cut Cutover) []domain.Fact {
	if c.Email == "" || c.CartID == "" {
		return nil
	}
	at := c.At.UTC()
	snap := c
	return []domain.Fact{{
		ID:         domain.CartAbandonedID(account, c.Source, c.CartID, at),
		Account:    account,
		Kind:       domain.FactCartAbandoned,
		Email:      c.Email,
		OccurredAt: at,
		Historical: cut.Historical(at),
		Cart:       &snap,
	}}
}

// CartUpdateFacts returns CartUpdated when a storefront cart's contents differ from the stored
// ones (before is nil for a cart not seen yet): the snippet posts again on every page and on
// retries, and only a change is a fact. The id holds the contents before and after and the time
// of the report, so a cart that returns to earlier contents is a new change.
func CartUpdateFacts(account string, before *domain.Cart, after domain.Cart, cut Cutover) []domain.Fact {
	if after.Email == "" || after.CartID == "" {
		return nil
	}
	var ea enc
	ea.cartContents(after)
	prev := ""
	if before != nil {
		var eb enc
		eb.cartContents(*before)
		if bytes.Equal(ea.b, eb.b) {
			return nil
		}
		prev = eb.hash()
	}
	at := after.At.UTC()
	snap := after
	return []domain.Fact{{
		ID:         domain.CartUpdatedID(account, after.Source, after.CartID, prev, ea.hash(), at),
		Account:    account,
		Kind:       domain.FactCartUpdated,
		Email:      after.Email,
		OccurredAt: at,
		Historical: cut.Historical(at),
		Cart:       &snap,
	}}
}

func (e *enc) cartContents(c domain.Cart) {
	e.money(c.Total)
	e.u64(uint64(len(c.Items)))
	for _, li := range c.Items {
		e.lineItem(li)
	}
	e.str(c.ReturnURL)
}
