package iterable

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/sitehosts"
)

// Carts while the shopper is still in them. UltraCart and ThriveCart report a cart only once it
// is abandoned, so the store's pages report the others: cartrelay.push(["cart", {...}]) makes
// the snippet post the cart's contents to /track/{account} (the same endpoint, checks and rate
// window as page views). A cart is kept only for a browser known by an address (an identity
// token or an order claim, as for page views), since only a profile can receive it; the
// tracker hands it to TrackerDeps.Cart, which stores it on the contact and makes a CartUpdated
// fact of it when its contents changed.

// Limits of a posted cart.
const (
	MaxCartItems    = 100
	maxCartSKULen   = 128
	maxCartQuantity = 10000
	// maxCartPrice is a unit price in minor units: ten million of the currency's units.
	maxCartPrice = 1_000_000_000
)

// cartPost is the cart as the snippet posts it: prices in the currency's minor units (cents),
// so that nothing is lost to floating point on the way.
type cartPost struct {
	Currency string `json:"currency"`
	// URL is the page that shows the cart, where a reminder sends the shopper back.
	URL   string     `json:"url"`
	Items []cartLine `json:"items"`
}

type cartLine struct {
	SKU      string          `json:"sku"`
	Name     string          `json:"name"`
	Price    json.RawMessage `json:"price"`
	Quantity json.RawMessage `json:"quantity"`
	URL      string          `json:"url"`
	Image    string          `json:"image"`
}

// CartError says what is wrong with a posted cart, for the store's developer.
type CartError struct{ Msg string }

func (e *CartError) Error() string { return "the cart " + e.Msg }

func cartErr(format string, a ...any) error { return &CartError{Msg: fmt.Sprintf(format, a...)} }

// DecodeCart reads a cart as the snippet posts it ({"currency":"USD","url":"…","items":[{"sku",
// "name","price" in minor units,"quantity","url","image"}]}) into a cart with its lines and
// total; who it belongs to and when are the caller's. An empty items list is a cart emptied.
// Errors are *CartError and say what to fix.
func DecodeCart(raw []byte) (domain.Cart, error) {
	var p cartPost
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&p); err != nil {
		return domain.Cart{}, cartErr("is not an object with currency and items: %v", err)
	}
	if dec.More() {
		return domain.Cart{}, cartErr("has data after its object")
	}
	cur, err := domain.ParseCurrency(p.Currency)
	if err != nil {
		return domain.Cart{}, cartErr("needs the store's currency: %v", err)
	}
	if len(p.Items) > MaxCartItems {
		return domain.Cart{}, cartErr("has %d lines; at most %d are accepted", len(p.Items), MaxCartItems)
	}
	c := domain.Cart{Total: domain.Money{Currency: cur}, Items: []domain.LineItem{}}
	if p.URL != "" {
		if c.ReturnURL, err = webURL(p.URL); err != nil {
			return domain.Cart{}, cartErr("url %v", err)
		}
	}
	for i, l := range p.Items {
		li, err := cartItem(l, cur)
		if err != nil {
			return domain.Cart{}, cartErr("line %d %v", i+1, err)
		}
		if c.Total, err = c.Total.Add(li.Total); err != nil {
			return domain.Cart{}, cartErr("total is too large: %v", err)
		}
		c.Items = append(c.Items, li)
	}
	return c, nil
}

func cartItem(l cartLine, cur string) (domain.LineItem, error) {
	sku := strings.TrimSpace(l.SKU)
	if sku == "" || len(sku) > maxCartSKULen {
		return domain.LineItem{}, fmt.Errorf("needs a sku of 1 to %d characters", maxCartSKULen)
	}
	// A JSON string is not a number here, however it reads: the store's developer should learn
	// that prices are numbers before a currency symbol ends up in one.
	price, err := strconv.ParseInt(string(l.Price), 10, 64)
	if err != nil || price < 0 || price > maxCartPrice {
		return domain.LineItem{}, fmt.Errorf("price %s must be a whole number of minor units (cents), 0 to %d", clipText(string(l.Price), 40), int64(maxCartPrice))
	}
	qty, err := strconv.ParseInt(string(l.Quantity), 10, 64)
	if err != nil || qty < 1 || qty > maxCartQuantity {
		return domain.LineItem{}, fmt.Errorf("quantity %s must be a whole number from 1 to %d", clipText(string(l.Quantity), 40), maxCartQuantity)
	}
	unit := domain.Money{Minor: price, Currency: cur}
	total, err := unit.Mul(qty)
	if err != nil {
		return domain.LineItem{}, err
	}
	name := clipText(strings.TrimSpace(l.Name), maxTitleLen)
	if name == "" {
		name = sku
	}
	li := domain.LineItem{SKU: sku, Name: name, Quantity: qty, UnitPrice: unit, Total: total,
		Discount: domain.Money{Currency: cur}, Refunded: domain.Money{Currency: cur}}
	if l.URL != "" {
		if li.URL, err = webURL(l.URL); err != nil {
			return domain.LineItem{}, fmt.Errorf("url %w", err)
		}
	}
	if l.Image != "" {
		if li.ImageURL, err = webURL(l.Image); err != nil {
			return domain.LineItem{}, fmt.Errorf("image %w", err)
		}
	}
	return li, nil
}

// webURL accepts an absolute http(s) URL of reasonable length.
func webURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(s) > maxTrackURLLen {
		return "", fmt.Errorf("%q is not an absolute http(s) URL of at most %d characters", clipText(s, 80), maxTrackURLLen)
	}
	return s, nil
}

// checkCartLinks refuses a cart whose own pages (the cart page, the products) are off the
// account's allowed_domains: a reminder would send the shopper there. Images may live on a CDN.
func checkCartLinks(hosts sitehosts.List, c domain.Cart) error {
	links := []string{c.ReturnURL}
	for _, li := range c.Items {
		links = append(links, li.URL)
	}
	for _, l := range links {
		if l == "" {
			continue
		}
		if err := hosts.URL(l); err != nil {
			return fmt.Errorf("the cart links to a page that is not on this store's domains: %w", err)
		}
	}
	return nil
}

// CartID is the id of a browser's cart: a hash of the visitor id, which must stay in the
// browser (whoever knows it can post as that browser).
func CartID(account, visitor string) string { return shortHash("cart|" + account + "|" + visitor)[:16] }

// keepCart hands the cart of a browser known by email to TrackerDeps.Cart.
func (t *Tracker) keepCart(ctx context.Context, log *slog.Logger, acct accounts.Account, visitor, email string, c domain.Cart, now time.Time) error {
	if email == "" {
		log.Info("cart not kept: the browser is not identified (an identity token or an order claim names it)")
		return nil
	}
	if t.d.Cart == nil {
		return errors.New("carts are not accepted by this process")
	}
	c.Source, c.CartID, c.Email, c.At = domain.Storefront, CartID(acct.ID, visitor), email, now
	return t.d.Cart(ctx, acct, c)
}

// cartUpdated sets the profile's shoppingCartItems to a cart's contents (commerce/updateCart).
// A replayed or late fact whose cart was followed by a newer report of the same cart is not
// sent, so an older cart never overwrites a newer one.
func (d *Destination) cartUpdated(ctx context.Context, sess *session, acct accounts.Account, s Settings, f domain.Fact) (deliver.Outcome, error) {
	if f.Cart == nil {
		return skipped("CartUpdated without a cart")
	}
	if !s.ReturnCartEvents {
		return skipped("cart events are off (iterable.disable_return_cart_events)")
	}
	c := *f.Cart
	stored, err := history.New(d.store).Cart(ctx, acct.ID, f.Email, c.Source, c.CartID)
	if err != nil {
		return deliver.Outcome{}, fmt.Errorf("read the stored cart of %s: %w", f.Email, err)
	}
	if stored != nil && stored.At.After(c.At) {
		return skipped("a newer report of this cart is stored; its own fact sends it")
	}
	if err := sess.post(ctx, PathUpdateCart, CartUpdate(f.Email, c, s), nil); err != nil {
		return deliver.Outcome{}, err
	}
	return deliver.Outcome{Note: fmt.Sprintf("shoppingCartItems set to %d line(s)", len(c.Items))}, nil
}
