package ontraport

import (
	"context"
	"fmt"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// productDone is remembered with an ItemChanged.
type productDone struct {
	ProductID int64 `json:"product_id"`
	Created   bool  `json:"created,omitempty"`
}

// itemChanged creates or updates the ONTRAPORT product with the item's SKU. A deleted item's
// product stays: logged transactions refer to it.
func (s *session) itemChanged(ctx context.Context, f domain.Fact) (result, error) {
	if !s.cfg.products {
		return s.skip("product updates are off (ontraport.disable_products)")
	}
	it := f.Item
	if it == nil || it.SKU == "" {
		return result{}, fmt.Errorf("%w: ItemChanged without an item SKU", ErrBadFact)
	}
	if it.Deleted {
		return s.skip("item %s was deleted at the source; its ONTRAPORT product is kept because transactions refer to it", it.SKU)
	}
	p := product{Name: firstNonEmpty(it.Name, it.SKU), SKU: it.SKU, Price: decimal(it.Price.Minor, it.Price.Currency)}
	id, created, err := s.productID(ctx, it.SKU, p)
	if err != nil {
		return result{}, err
	}
	if !created {
		if err := s.c.updateProduct(ctx, id, p); err != nil {
			return result{}, err
		}
	}
	return sent(productDone{ProductID: id, Created: created}), nil
}
