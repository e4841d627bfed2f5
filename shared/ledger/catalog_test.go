package ledger

import (
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/domain"
)

func TestItemFacts(t *testing.T) {
	item := domain.Item{Source: domain.UltraCart, SKU: "SKU-1", Name: "Widget", Price: usd(1000), UpdatedAt: mins(1)}
	touched := item
	touched.UpdatedAt = mins(2) // only the update time moved
	cheaper := item
	cheaper.Price, cheaper.UpdatedAt = usd(800), mins(3)
	back := item
	back.UpdatedAt = mins(4) // the price returns to what it was
	deleted := back
	deleted.Deleted, deleted.UpdatedAt = true, mins(5)

	cases := []struct {
		name   string
		before *domain.Item
		after  domain.Item
		want   int
	}{
		{"new item", nil, item, 1},
		{"unchanged", &item, item, 0},
		{"only the update time", &item, touched, 0},
		{"price change", &touched, cheaper, 1},
		{"price back", &cheaper, back, 1},
		{"deleted", &back, deleted, 1},
	}
	ids := map[string]string{}
	for _, c := range cases {
		fs := ItemFacts(acct, c.before, c.after, Cutover{})
		if len(fs) != c.want {
			t.Fatalf("%s: %d facts", c.name, len(fs))
		}
		for _, f := range fs {
			if f.Kind != domain.FactItemChanged || f.Item == nil || f.Item.SKU != "SKU-1" || !f.OccurredAt.Equal(c.after.UpdatedAt) ||
				!strings.HasPrefix(f.ID, "acct1:ItemChanged:ultracart:SKU-1:") {
				t.Errorf("%s: fact %+v", c.name, f)
			}
			if prev, ok := ids[f.ID]; ok {
				t.Errorf("%s reuses the id of %s", c.name, prev)
			}
			ids[f.ID] = c.name
		}
	}
	// The same state delivered again (a retry) has the same id.
	a, b := ItemFacts(acct, nil, item, Cutover{}), ItemFacts(acct, nil, item, Cutover{})
	if a[0].ID != b[0].ID {
		t.Error("item fact id is not deterministic")
	}
}

func TestCartFacts(t *testing.T) {
	cart := domain.Cart{Source: domain.UltraCart, CartID: "C-1", Email: "ann@example.com", Total: usd(4500), At: mins(10)}
	fs := CartFacts(acct, cart, Cutover{ForwardSince: mins(5)})
	if len(fs) != 1 {
		t.Fatalf("%d facts", len(fs))
	}
	f := fs[0]
	if f.ID != "acct1:CartAbandoned:ultracart:C-1:"+itoa(mins(10).Unix()) || f.Kind != domain.FactCartAbandoned ||
		f.Email != "ann@example.com" || f.Cart.Total != usd(4500) || f.Historical || !f.OccurredAt.Equal(mins(10)) {
		t.Errorf("fact %+v", f)
	}
	if h := CartFacts(acct, cart, Cutover{ForwardSince: mins(11)}); !h[0].Historical {
		t.Error("a cart abandoned before forward_since is historical")
	}
	for _, c := range []domain.Cart{{CartID: "C-1"}, {Email: "ann@example.com"}} {
		if fs := CartFacts(acct, c, Cutover{}); fs != nil {
			t.Errorf("cart %+v cannot be addressed but produced %d facts", c, len(fs))
		}
	}
}

func TestCartUpdateFacts(t *testing.T) {
	line := func(sku string, qty int64) domain.LineItem {
		return domain.LineItem{SKU: sku, Name: sku, Quantity: qty, UnitPrice: usd(1500), Total: usd(1500 * qty)}
	}
	one := domain.Cart{Source: domain.Storefront, CartID: "b1", Email: "ann@example.com", Items: []domain.LineItem{line("A", 1)},
		Total: usd(1500), At: mins(10)}
	two := one
	two.Items, two.Total, two.At = []domain.LineItem{line("A", 2)}, usd(3000), mins(11)
	repeat := two
	repeat.At = mins(12) // posted again from the next page, nothing changed
	back := one
	back.At = mins(11) // back to one of A, at the clock reading of the change to two

	empty := one
	empty.Items, empty.Total, empty.At = nil, usd(0), mins(14)

	ids := map[string]bool{}
	steps := []struct {
		name          string
		before, after *domain.Cart
		want          bool
	}{
		{"first cart", nil, &one, true},
		{"quantity changed", &one, &two, true},
		{"same contents again", &two, &repeat, false},
		{"back to earlier contents", &repeat, &back, true},
		{"emptied", &back, &empty, true},
	}
	for _, s := range steps {
		fs := CartUpdateFacts(acct, s.before, *s.after, Cutover{})
		if (len(fs) == 1) != s.want || len(fs) > 1 {
			t.Fatalf("%s: %d facts, want a fact: %t", s.name, len(fs), s.want)
		}
		if !s.want {
			continue
		}
		f := fs[0]
		if f.Kind != domain.FactCartUpdated || f.Email != "ann@example.com" || f.Cart == nil || !f.OccurredAt.Equal(s.after.At) ||
			!strings.HasPrefix(f.ID, "acct1:CartUpdated:storefront:b1:") {
			t.Errorf("%s: fact %+v", s.name, f)
		}
		if ids[f.ID] {
			t.Errorf("%s: id %s was already used by an earlier change", s.name, f.ID)
		}
		ids[f.ID] = true
		if again := CartUpdateFacts(acct, s.before, *s.after, Cutover{}); again[0].ID != f.ID {
			t.Errorf("%s: the same report gave another id", s.name)
		}
	}
	if fs := CartUpdateFacts(acct, nil, domain.Cart{CartID: "b1", At: mins(1)}, Cutover{}); fs != nil {
		t.Error("a cart without an address produced a fact")
	}
}
