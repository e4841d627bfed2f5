package iterable_test

import (
	"context"
	"testing"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/iterable"
)

// TestLineImage: a line shows UltraCart's own thumbnail of the configured size; without one of
// that size, the smallest that covers it; without any that covers it, the image with size
// parameters (or the largest thumbnail when there is no image).
func TestLineImage(t *testing.T) {
	thumbs := []domain.Thumbnail{
		{Width: 80, Height: 80, URL: "https://cdn.example.com/t/80.jpg"},
		{Width: 400, Height: 400, URL: "https://cdn.example.com/t/400.jpg"},
		{Width: 200, Height: 200, URL: "https://cdn.example.com/t/200.jpg"},
		{Width: 250, Height: 250, URL: "https://cdn.example.com/t/250.jpg"},
	}
	cases := []struct {
		name   string
		size   string
		image  string
		thumbs []domain.Thumbnail
		want   string
	}{
		{"exact size", "200x200", "https://cdn.example.com/mug.jpg", thumbs, "https://cdn.example.com/t/200.jpg"},
		{"smallest that covers", "220", "https://cdn.example.com/mug.jpg", thumbs, "https://cdn.example.com/t/250.jpg"},
		{"none covers: the image sized by parameters", "500x500", "https://cdn.example.com/mug.jpg", thumbs, "https://cdn.example.com/mug.jpg?height=500&width=500"},
		{"none covers and no image: the largest", "500x500", "", thumbs, "https://cdn.example.com/t/400.jpg"},
		{"no thumbnails: parameters", "200x200", "https://cdn.example.com/mug.jpg", nil, "https://cdn.example.com/mug.jpg?height=200&width=200"},
		{"no size configured: the image as given", "", "https://cdn.example.com/mug.jpg", thumbs, "https://cdn.example.com/mug.jpg"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, envOpts{noSpec: true})
			e.acct.Set("iterable.thumbnail_size", c.size)
			s, err := iterable.ParseSettings(e.acct)
			if err != nil {
				t.Fatal(err)
			}
			li := domain.LineItem{SKU: "MUG-01", ImageURL: c.image, Thumbnails: c.thumbs}
			if got := iterable.LineImage(li, s); got != c.want {
				t.Errorf("image %q, want %q", got, c.want)
			}
		})
	}
}

// TestPurchaseTakesCatalogueThumbnails: UltraCart's order items carry no thumbnails, so a purchase
// takes them from the stored catalogue item of the same SKU and image; a line whose image is not
// the catalogue's keeps its own.
func TestPurchaseTakesCatalogueThumbnails(t *testing.T) {
	e := newEnv(t, envOpts{})
	var w history.Writes
	w.PutItem("acme", domain.Item{Source: domain.UltraCart, SKU: "MUG-01", ImageURL: "https://cdn.example.com/mug.jpg",
		Thumbnails: []domain.Thumbnail{{Width: 200, Height: 200, URL: "https://cdn.example.com/t/mug-200.jpg"}}})
	w.PutItem("acme", domain.Item{Source: domain.UltraCart, SKU: "TEA-12", ImageURL: "https://cdn.example.com/tea-old.jpg",
		Thumbnails: []domain.Thumbnail{{Width: 200, Height: 200, URL: "https://cdn.example.com/t/tea-200.jpg"}}})
	if err := history.New(e.st).Commit(context.Background(), &w); err != nil {
		t.Fatal(err)
	}
	f := loadFact(t, "order_placed")
	if _, err := e.dest.Deliver(context.Background(), e.acct, f); err != nil {
		t.Fatal(err)
	}
	ps := e.fake.Purchases()
	if len(ps) != 1 {
		t.Fatalf("%d purchases", len(ps))
	}
	items, _ := ps[0].Body["items"].([]any)
	if len(items) != 2 {
		t.Fatalf("items %v", ps[0].Body["items"])
	}
	img := func(i int) any { m, _ := items[i].(map[string]any); return m["imageUrl"] }
	if img(0) != "https://cdn.example.com/t/mug-200.jpg" {
		t.Errorf("mug image %v, want the catalogue's 200x200 thumbnail", img(0))
	}
	if img(1) != "https://cdn.example.com/tea.jpg?height=200&v=3&width=200" {
		t.Errorf("tea image %v: its image is not the catalogue's, so its own sized by parameters", img(1))
	}
	if len(f.Order.Items[0].Thumbnails) != 0 {
		t.Error("the fact's order was changed")
	}
}
