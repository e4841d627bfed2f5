package ultracart

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// TestThumbnails: UltraCart's own thumbnails of an item's default image are kept, from a cart
// item (CartItemMultimedia) and from a catalogue item (ItemContentMultimedia, https first); a
// thumbnail without a URL or a readable size is left out, not the event.
func TestThumbnails(t *testing.T) {
	cart := strings.Replace(string(readFixture(t, "checkout_cart_abandon.json")),
		`"default_image_url": "https://cdn.example.com/img/tea-sampler.jpg",`,
		`"default_image_url": "https://cdn.example.com/img/tea-sampler.jpg",
		 "multimedia": [
		   {"type": "Image", "url": "https://cdn.example.com/img/tea-side.jpg", "thumbnails": [{"width": 200, "height": 200, "url": "https://cdn.example.com/t/side-200.jpg"}]},
		   {"type": "Image", "url": "https://cdn.example.com/img/tea-sampler.jpg", "is_default": true, "thumbnails": [
		     {"width": 80, "height": 80, "url": "https://cdn.example.com/t/80.jpg", "png": false, "square": true},
		     {"width": "wide", "height": 200, "url": "https://cdn.example.com/t/bad.jpg"},
		     {"width": 200, "height": 200}
		   ]}],`, 1)
	evs := events(t, cart)
	if len(evs) != 1 || evs[0].Cart == nil {
		t.Fatalf("events %+v", evs)
	}
	want := []domain.Thumbnail{{Width: 80, Height: 80, URL: "https://cdn.example.com/t/80.jpg"}}
	if got := evs[0].Cart.Items[0].Thumbnails; !reflect.DeepEqual(got, want) {
		t.Errorf("cart thumbnails %+v, want %+v", got, want)
	}

	item := strings.Replace(string(readFixture(t, "item_update.json")),
		`"code": "default",`,
		`"code": "default", "is_default": true, "thumbnails": [
		   {"width": 200, "height": 200, "http_url": "http://cdn.example.com/t/200.jpg", "https_url": "https://cdn.example.com/t/200.jpg"},
		   {"width": 100, "height": 100, "http_url": "http://cdn.example.com/t/100.jpg"}],`, 1)
	evs = events(t, item)
	if len(evs) != 1 || evs[0].Item == nil {
		t.Fatalf("events %+v", evs)
	}
	want = []domain.Thumbnail{{Width: 200, Height: 200, URL: "https://cdn.example.com/t/200.jpg"}, {Width: 100, Height: 100, URL: "http://cdn.example.com/t/100.jpg"}}
	if got := evs[0].Item.Thumbnails; !reflect.DeepEqual(got, want) || evs[0].Item.ImageURL != "https://cdn.example.com/img/tea-sampler.jpg" {
		t.Errorf("item image %q thumbnails %+v, want %+v", evs[0].Item.ImageURL, got, want)
	}
}

// events normalizes the one event of a delivery.
func events(t *testing.T, body string) []domain.Event {
	t.Helper()
	rs := normalizeDelivery(t, []byte(body))
	if len(rs) != 1 || rs[0].Error != "" {
		t.Fatalf("results %+v", rs)
	}
	return rs[0].Events
}
