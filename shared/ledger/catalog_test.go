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
