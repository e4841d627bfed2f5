package ultracart

import (
	"fmt"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// customerEvent maps customer_create, customer_update and customer_delete. Every customer event
// needs customer_profile_oid (an email change is recognised by the profile id); create and
// update also need the email. The profile's default billing address (else its first) gives
// the name, address and phone; its default shipping address (else its first) the ship-to. UltraCart's customer model has no marketing opt-ins, so they
// stay unknown (nil).
func (n *normalizer) customerEvent(c *Customer) (domain.Event, error) {
	oid := strings.TrimSpace(string(c.CustomerProfileOID))
	if oid == "" {
		return domain.Event{}, missing("customer_profile_oid")
	}
	del := n.name == "customer_delete"
	var mail string
	if text(c.Email) != "" || !del {
		var err error
		if mail, err = email("email", c.Email); err != nil {
			return domain.Event{}, err
		}
	}
	modified, err := timeField("last_modified_dts", c.LastModifiedDTS)
	if err != nil {
		return domain.Event{}, err
	}
	signup, err := timeField("signup_dts", c.SignupDTS)
	if err != nil {
		return domain.Event{}, err
	}
	out := &domain.Customer{Source: domain.UltraCart, CustomerID: oid, Email: mail, Deleted: del}
	if b := defaultAddress(c.Billing); b != nil {
		out.FirstName, out.LastName = text(b.FirstName), text(b.LastName)
		out.Address = address(b.FirstName, b.LastName, b.Company, b.Address1, b.Address2, b.City, b.StateRegion, b.PostalCode, b.CountryCode)
		out.Phone = n.phone(b.CountryCode, b.DayPhone, b.EveningPhone)
	}
	if sh := defaultShipping(c.Shipping); sh != nil {
		out.ShipTo = address(sh.FirstName, sh.LastName, sh.Company, sh.Address1, sh.Address2, sh.City, sh.StateRegion, sh.PostalCode, sh.CountryCode)
	}
	at := firstNonZero(modified, signup)
	if del {
		at = time.Time{} // a deletion is not dated in the payload
	}
	e := n.event(domain.KindCustomer, at)
	e.Customer = out
	return e, nil
}

// defaultShipping is the profile's default shipping address, else its first.
func defaultShipping(as []CustomerAddress) *CustomerAddress {
	for i := range as {
		if as[i].DefaultShip.True() {
			return &as[i]
		}
	}
	if len(as) > 0 {
		return &as[0]
	}
	return nil
}

func defaultAddress(as []CustomerAddress) *CustomerAddress {
	for i := range as {
		if as[i].DefaultBilling.True() {
			return &as[i]
		}
	}
	if len(as) > 0 {
		return &as[0]
	}
	return nil
}

// itemEvent maps item_create, item_update and item_delete. The item's name is UltraCart's
// description (its short title), the description its extended description, the price
// pricing.cost in pricing.currency_code (else the base currency), the image the first
// multimedia file of type Image, and the category its folder path.
func (n *normalizer) itemEvent(it *Item) (domain.Event, error) {
	sku := text(it.MerchantItemID)
	if sku == "" {
		return domain.Event{}, missing("merchant_item_id")
	}
	modified, err := timeField("last_modified_dts", it.LastModifiedDTS)
	if err != nil {
		return domain.Event{}, err
	}
	created, err := timeField("creation_dts", it.CreationDTS)
	if err != nil {
		return domain.Event{}, err
	}
	out := &domain.Item{Source: domain.UltraCart, SKU: sku, Name: text(it.Description),
		Deleted: n.name == "item_delete", UpdatedAt: firstNonZero(modified, created)}
	cur, _ := n.baseCurrency("", "", "", nil) // nothing to read: cannot fail
	if p := it.Pricing; p != nil {
		c, err := n.currencyField("pricing.currency_code", p.CurrencyCode)
		if err != nil {
			return domain.Event{}, err
		}
		if c != "" {
			cur = c
		}
		if out.Price, err = plainMoney("pricing.cost", p.Cost, cur); err != nil {
			return domain.Event{}, err
		}
	} else {
		out.Price = domain.Money{Currency: cur}
	}
	if c := it.Content; c != nil {
		out.Description = text(c.ExtendedDescription)
		out.URL = text(c.ViewURL)
		var img *ItemMultimedia
		for i, m := range c.Multimedia {
			if strings.EqualFold(text(m.Type), "image") && first(m.URL, m.CloudURL) != "" &&
				(img == nil || (m.IsDefault.True() && !img.IsDefault.True())) {
				img = &c.Multimedia[i]
			}
		}
		if img != nil {
			out.ImageURL = first(img.URL, img.CloudURL)
			for _, t := range img.Thumbnails {
				out.Thumbnails = appendThumbnail(out.Thumbnails, t.Width, t.Height, first(t.HTTPSURL, t.HTTPURL))
			}
		}
	}
	if p := strings.Trim(text(it.ParentCategoryPath), "/"); p != "" {
		out.Categories = []string{p}
	}
	at := out.UpdatedAt
	if out.Deleted {
		at = time.Time{}
	}
	e := n.event(domain.KindItem, at)
	e.Item = out
	return e, nil
}

// cartEvent maps checkout_cart_abandon and checkout_cart_send_return_email. A cart needs its
// cart_id and an email (billing.email, else the logged-in profile's). Amounts are in the cart's
// base_currency_code. A cart carries no timestamp, so At is the receipt time.
func (n *normalizer) cartEvent(c *Cart) (domain.Event, error) {
	id := text(c.CartID)
	if id == "" {
		return domain.Event{}, missing("cart_id")
	}
	var (
		mail string
		err  error
	)
	switch {
	case c.Billing != nil && text(c.Billing.Email) != "":
		mail, err = email("billing.email", c.Billing.Email)
	case c.CustomerProfile != nil && text(c.CustomerProfile.Email) != "":
		mail, err = email("customer_profile.email", c.CustomerProfile.Email)
	default:
		err = missing("billing.email")
	}
	if err != nil {
		return domain.Event{}, err
	}
	cur, err := n.currencyField("base_currency_code", c.BaseCurrencyCode)
	if err != nil {
		return domain.Event{}, err
	}
	if n.opt.BaseCurrency != "" || cur == "" {
		if cur, err = n.baseCurrency("currency_code", c.CurrencyCode, c.ExchangeRate, nil); err != nil {
			return domain.Event{}, err
		}
	}
	out := &domain.Cart{Source: domain.UltraCart, CartID: id, Email: mail, At: n.receivedAt, UTMs: utms(c.UTMs)}
	if c.Summary != nil {
		if out.Total, err = money("summary.total", c.Summary.Total, cur); err != nil {
			return domain.Event{}, err
		}
	} else {
		out.Total = domain.Money{Currency: cur}
	}
	for i, it := range c.Items {
		field := fmt.Sprintf("items[%d]", i)
		sku := text(it.ItemID)
		if sku == "" {
			return domain.Event{}, missing(field + ".item_id")
		}
		qty, err := wholeNumber(field+".quantity", it.Quantity)
		if err != nil {
			return domain.Event{}, err
		}
		li := domain.LineItem{SKU: sku, Name: text(it.Description), Quantity: qty,
			ImageURL: text(it.DefaultImageURL), URL: text(it.ViewURL), Thumbnails: cartThumbnails(it)}
		if li.UnitPrice, err = money(field+".unit_cost", it.UnitCost, cur); err != nil {
			return domain.Event{}, err
		}
		if li.Discount, err = money(field+".discount", it.Discount, cur); err != nil {
			return domain.Event{}, err
		}
		li.Refunded = domain.Money{Currency: cur}
		switch {
		case it.TotalCostWithDiscount != nil && it.TotalCostWithDiscount.Value != "":
			li.Total, err = money(field+".total_cost_with_discount", it.TotalCostWithDiscount, cur)
		default:
			li.Total, err = lineTotal(li)
			if err != nil {
				err = &fieldError{field: field, reason: "total cannot be computed: " + err.Error(), err: err}
			}
		}
		if err != nil {
			return domain.Event{}, err
		}
		if it.Upsell.True() {
			li.Kind = "upsell"
		} else if it.Kit.True() {
			li.Kind = "kit"
		}
		out.Items = append(out.Items, li)
	}
	if b := c.Billing; b != nil {
		out.Billing = address(b.FirstName, b.LastName, b.Company, b.Address1, b.Address2, b.City, b.StateRegion, b.PostalCode, b.CountryCode)
		out.Phone = n.phone(b.CountryCode, b.CellPhoneE164, b.CellPhone, b.DayPhoneE164, b.DayPhone, b.EveningPhoneE164, b.EveningPhone)
	}
	if ch := c.Checkout; ch != nil {
		out.ReturnURL = text(ch.ReturnURL)
	}
	e := n.event(domain.KindCart, n.receivedAt)
	e.Cart = out
	return e, nil
}

// cartThumbnails are the thumbnails of a cart item's default image: the multimedia entry marked
// default, else the one at default_image_url, else its first image.
func cartThumbnails(it CartItem) []domain.Thumbnail {
	var img *CartMultimedia
	for i, m := range it.Multimedia {
		if !strings.EqualFold(text(m.Type), "image") {
			continue
		}
		switch {
		case img == nil:
			img = &it.Multimedia[i]
		case m.IsDefault.True() && !img.IsDefault.True():
			img = &it.Multimedia[i]
		case !img.IsDefault.True() && text(img.URL) != text(it.DefaultImageURL) && text(m.URL) == text(it.DefaultImageURL):
			img = &it.Multimedia[i]
		}
	}
	if img == nil {
		return nil
	}
	var out []domain.Thumbnail
	for _, t := range img.Thumbnails {
		out = appendThumbnail(out, t.Width, t.Height, text(t.URL))
	}
	return out
}

// appendThumbnail adds a thumbnail with a URL and a readable size. A thumbnail without them is
// left out rather than failing the event: the image itself still travels, and a destination
// then sizes it its own way.
func appendThumbnail(out []domain.Thumbnail, w, h Decimal, url string) []domain.Thumbnail {
	width, errW := wholeNumber("width", w)
	height, errH := wholeNumber("height", h)
	if url == "" || errW != nil || errH != nil || width <= 0 || height <= 0 || width > 1<<16 || height > 1<<16 {
		return out
	}
	return append(out, domain.Thumbnail{Width: int(width), Height: int(height), URL: url})
}
