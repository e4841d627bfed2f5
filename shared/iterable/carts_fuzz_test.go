package iterable

import (
	"errors"
	"testing"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// FuzzDecodeCart: whatever a page posts as its cart is refused with a *CartError, or is a cart
// within the limits whose total is the sum of its lines.
func FuzzDecodeCart(f *testing.F) {
	f.Add(`{"currency":"USD","url":"https://shop.example.com/cart","items":[{"sku":"TEE-1","name":"T","price":1500,"quantity":2,"image":"https://cdn.example.net/t.jpg"}]}`)
	f.Add(`{"currency":"jpy","items":[]}`)
	f.Add(`{"currency":"USD","items":[{"sku":"A","price":1e3,"quantity":1}]}`)
	f.Add(`{"currency":"USD","items":[{"sku":"A","price":9223372036854775807,"quantity":10000}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		c, err := DecodeCart([]byte(body))
		if err != nil {
			var ce *CartError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a CartError", err)
			}
			return
		}
		if !domain.KnownCurrency(c.Total.Currency) || len(c.Items) > MaxCartItems || c.Items == nil {
			t.Fatalf("accepted %+v", c)
		}
		sum := domain.Money{Currency: c.Total.Currency}
		for _, li := range c.Items {
			if li.SKU == "" || li.Name == "" || li.Quantity < 1 || li.Quantity > maxCartQuantity || li.UnitPrice.Minor < 0 ||
				li.UnitPrice.Minor > maxCartPrice || li.UnitPrice.Currency != c.Total.Currency || len(li.Name) > maxTitleLen {
				t.Fatalf("line %+v", li)
			}
			if sum, err = sum.Add(li.Total); err != nil {
				t.Fatal(err)
			}
		}
		if sum != c.Total {
			t.Fatalf("total %v, lines add up to %v", c.Total, sum)
		}
	})
}
