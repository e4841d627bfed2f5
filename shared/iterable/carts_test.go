package iterable_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
)

func TestDecodeCart(t *testing.T) {
	usd := func(minor int64) domain.Money { return domain.Money{Minor: minor, Currency: "USD"} }
	cases := []struct {
		name  string
		body  string
		total domain.Money
		lines int
		err   string // part of the message; "" when accepted
	}{
		{"two lines", `{"currency":"usd","url":"https://shop.example.com/cart","items":[{"sku":"TEE-1","name":"T-shirt","price":1500,"quantity":2},{"sku":"MUG-1","price":899,"quantity":1}]}`, usd(3899), 2, ""},
		{"emptied", `{"currency":"USD","items":[]}`, usd(0), 0, ""},
		{"no items member", `{"currency":"USD"}`, usd(0), 0, ""},
		{"yen has no minor unit", `{"currency":"JPY","items":[{"sku":"A","price":1200,"quantity":3}]}`, domain.Money{Minor: 3600, Currency: "JPY"}, 1, ""},
		{"not an object", `[1,2]`, domain.Money{}, 0, "not an object"},
		{"two objects", `{"currency":"USD"}{}`, domain.Money{}, 0, "after its object"},
		{"no currency", `{"items":[]}`, domain.Money{}, 0, "currency"},
		{"unknown currency", `{"currency":"XYZ","items":[]}`, domain.Money{}, 0, "ISO 4217"},
		{"decimal price", `{"currency":"USD","items":[{"sku":"A","price":15.00,"quantity":1}]}`, domain.Money{}, 0, "minor units"},
		{"price as text", `{"currency":"USD","items":[{"sku":"A","price":"1500","quantity":1}]}`, domain.Money{}, 0, "minor units"},
		{"negative price", `{"currency":"USD","items":[{"sku":"A","price":-1,"quantity":1}]}`, domain.Money{}, 0, "minor units"},
		{"zero quantity", `{"currency":"USD","items":[{"sku":"A","price":1,"quantity":0}]}`, domain.Money{}, 0, "quantity"},
		{"fractional quantity", `{"currency":"USD","items":[{"sku":"A","price":1,"quantity":1.5}]}`, domain.Money{}, 0, "quantity"},
		{"no sku", `{"currency":"USD","items":[{"sku":" ","price":1,"quantity":1}]}`, domain.Money{}, 0, "line 1 needs a sku"},
		{"script link", `{"currency":"USD","items":[{"sku":"A","price":1,"quantity":1,"url":"javascript:alert(1)"}]}`, domain.Money{}, 0, "line 1 url"},
		{"relative image", `{"currency":"USD","items":[{"sku":"A","price":1,"quantity":1,"image":"/tee.jpg"}]}`, domain.Money{}, 0, "line 1 image"},
		{"too many lines", `{"currency":"USD","items":[` + strings.Repeat(`{"sku":"A","price":1,"quantity":1},`, iterable.MaxCartItems) + `{"sku":"A","price":1,"quantity":1}]}`, domain.Money{}, 0, "at most 100"},
	}
	for _, c := range cases {
		got, err := iterable.DecodeCart([]byte(c.body))
		if c.err != "" {
			var ce *iterable.CartError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want one saying %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || got.Total != c.total || len(got.Items) != c.lines || got.Items == nil {
			t.Errorf("%s: %+v %v", c.name, got, err)
		}
	}
	c, _ := iterable.DecodeCart([]byte(`{"currency":"USD","items":[{"sku":"MUG-1","price":899,"quantity":2}]}`))
	if li := c.Items[0]; li.Name != "MUG-1" || li.UnitPrice != usd(899) || li.Total != usd(1798) || li.Quantity != 2 {
		t.Errorf("line %+v: a line without a name is named by its sku, its total is quantity × price", li)
	}
}

// TestCartUpdates: the snippet's cart posts, through the webhook function's /track route in
// process, reach Iterable's commerce/updateCart for a known shopper only, once per change, and a
// late fact never overwrites a newer cart.
func TestCartUpdates(t *testing.T) {
	tk := newTracking(t, 1000)
	ctx := context.Background()
	post := func(body string) events.APIGatewayV2HTTPResponse {
		t.Helper()
		resp, err := tk.rt.App.Webhook(ctx, trackReq("POST", "/track/acme", "10.0.0.7", body))
		if err != nil {
			t.Fatal(err)
		}
		tk.pump()
		return resp
	}
	cart := func(items ...string) string {
		return `{"currency":"USD","url":"https://shop.example.com/cart","items":[` + strings.Join(items, ",") + `]}`
	}
	tee := `{"sku":"TEE-1","name":"T-shirt","price":1500,"quantity":2,"url":"https://shop.example.com/tee","image":"https://cdn.example.net/tee.jpg"}`
	mug := `{"sku":"MUG-1","name":"Mug","price":899,"quantity":1}`
	facts := func() []domain.Fact {
		t.Helper()
		v, err := history.New(tk.rt.Store).View(ctx, "acme", "ann@example.com")
		if err != nil {
			t.Fatal(err)
		}
		var out []domain.Fact
		for _, f := range v.Facts {
			if f.Kind == domain.FactCartUpdated {
				out = append(out, f)
			}
		}
		return out
	}
	cartAt := func() []any { return tk.fake.Cart("ann@example.com") }

	steps := []struct {
		name   string
		body   string
		status int
		facts  int
		lines  int // lines of the profile's shoppingCartItems afterwards
	}{
		{"an unknown browser's cart is not kept", `{"visitor":"` + visitorB + `","cart":` + cart(tee) + `}`, 204, 0, 0},
		{"identified in the same request", `{"visitor":"` + visitorA + `","identity":"` + tk.token("ann@example.com", time.Hour) + `","cart":` + cart(tee) + `}`, 204, 1, 1},
		{"the same cart from the next page", `{"visitor":"` + visitorA + `","cart":` + cart(tee) + `}`, 204, 1, 1},
		{"a mug added, known by the visitor id", `{"visitor":"` + visitorA + `","cart":` + cart(tee, mug) + `}`, 204, 2, 2},
		{"a price in dollars is refused", `{"visitor":"` + visitorA + `","cart":{"currency":"USD","items":[{"sku":"A","price":8.99,"quantity":1}]}}`, 400, 2, 2},
		{"a product page elsewhere is refused", `{"visitor":"` + visitorA + `","cart":{"currency":"USD","items":[{"sku":"A","price":899,"quantity":1,"url":"https://evil.example.org/a"}]}}`, 403, 2, 2},
		{"a null cart is no request", `{"visitor":"` + visitorA + `","cart":null}`, 400, 2, 2},
		{"emptied", `{"visitor":"` + visitorA + `","cart":` + cart() + `}`, 204, 3, 0},
	}
	for _, st := range steps {
		tk.clk.Advance(time.Minute)
		resp := post(st.body)
		if resp.StatusCode != st.status {
			t.Fatalf("%s: %d %s, want %d", st.name, resp.StatusCode, resp.Body, st.status)
		}
		if st.status >= 400 && !strings.Contains(resp.Body, "cart") && !strings.Contains(resp.Body, "url") {
			t.Errorf("%s: the refusal does not say what is wrong: %s", st.name, resp.Body)
		}
		if n := len(facts()); n != st.facts {
			t.Fatalf("%s: %d CartUpdated facts, want %d", st.name, n, st.facts)
		}
		if n := len(cartAt()); n != st.lines {
			t.Fatalf("%s: Iterable's cart has %d lines, want %d: %v", st.name, n, st.lines, cartAt())
		}
		if st.name == "a mug added, known by the visitor id" {
			first := cartAt()[0].(map[string]any)
			if first["id"] != "TEE-1" || first["sku"] != "TEE-1" || fmt.Sprint(first["price"]) != "15.00" || fmt.Sprint(first["quantity"]) != "2" ||
				first["url"] != "https://shop.example.com/tee" || first["imageUrl"] != "https://cdn.example.net/tee.jpg" {
				t.Fatalf("updateCart item %v", first)
			}
		}
	}
	if errs := tk.fake.SpecErrors(); len(errs) > 0 {
		t.Fatal(errs)
	}

	// A late or replayed fact of an older cart is not sent over the newer one.
	fs := facts()
	calls := len(tk.fake.Calls())
	out, err := tk.dest.Deliver(ctx, tk.account(), fs[0])
	if err != nil || out.Status != history.DeliverySkipped || !strings.Contains(out.Note, "newer") || len(tk.fake.Calls()) != calls {
		t.Fatalf("an old cart delivered again: %+v %v", out, err)
	}
}

// TestCartsShareThePageViewLimits: a cart post is a request of the tracking endpoint like a page
// view: the same per-IP window and the same domain checks.
func TestCartsShareThePageViewLimits(t *testing.T) {
	tk := newTracking(t, 0)
	var kept []domain.Cart
	tr, err := iterable.NewTracker(iterable.TrackerDeps{Store: tk.rt.Store, Queue: tk.rt.Queue, Accounts: tk.rt.Accounts, Keys: tk.rt.Keys,
		Clock: tk.clk, PerIP: ratelimit.Limit{Requests: 2, Window: time.Minute},
		Cart: func(_ context.Context, _ accounts.Account, c domain.Cart) error { kept = append(kept, c); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tok := tk.token("ann@example.com", time.Hour)
	body := `{"visitor":"` + visitorA + `","identity":"` + tok + `","cart":{"currency":"USD","items":[{"sku":"A","price":100,"quantity":1}]}}`
	for i, want := range []int{204, 204, 429} {
		req := trackReq("POST", "/track/acme", "10.0.0.8", body)
		if i == 0 {
			req.Body = view(visitorA, "/a", `,"identity":"`+tok+`"`)
		}
		if resp := tr.Handle(ctx, req); resp.StatusCode != want {
			t.Fatalf("request %d: %d %s, want %d", i+1, resp.StatusCode, resp.Body, want)
		}
	}
	req := trackReq("POST", "/track/acme", "10.0.0.9", body)
	req.Headers = map[string]string{"origin": "https://evil.example.org"}
	if resp := tr.Handle(ctx, req); resp.StatusCode != 403 {
		t.Fatalf("a cart posted from another site: %d", resp.StatusCode)
	}
	if len(kept) != 1 || kept[0].Email != "ann@example.com" || kept[0].Source != domain.Storefront || kept[0].CartID != iterable.CartID("acme", visitorA) ||
		strings.Contains(kept[0].CartID, visitorA) || !kept[0].At.Equal(tk.clk.Now()) {
		t.Fatalf("kept %+v", kept)
	}
}
