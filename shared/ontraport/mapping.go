package ontraport

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// Pseudo-products carry what ONTRAPORT's offer cannot hold exactly (its shipping, tax and coupon
// support over the API is weak): each is an ONTRAPORT product created on first use, matched by
// these SKUs like any other.
const (
	skuShipping   = "cartrelay-shipping"
	skuHandling   = "cartrelay-handling"
	skuTax        = "cartrelay-tax"
	skuAdjustment = "cartrelay-adjustment"
	skuRefund     = "cartrelay-refund"
	skuChargeback = "cartrelay-chargeback"
	skuReversal   = "cartrelay-reversal"
	// skuCouponPrefix starts the SKU of a coupon's line: one zero-priced pseudo-product per code.
	skuCouponPrefix = "cartrelay-coupon-"
)

func pseudoName(sku string) string {
	switch sku {
	case skuShipping:
		return "Shipping"
	case skuHandling:
		return "Handling"
	case skuTax:
		return "Tax"
	case skuAdjustment:
		return "Order adjustment"
	case skuRefund:
		return "Refund"
	case skuChargeback:
		return "Chargeback"
	case skuReversal:
		return "Order reversal"
	}
	if code, ok := strings.CutPrefix(sku, skuCouponPrefix); ok {
		return "Coupon " + code
	}
	return sku
}

// ErrNothingToLog: an order with no amount and no items; ONTRAPORT needs at least one product.
var ErrNothingToLog = errors.New("the order has no items and no amount to log")

// line is one product line of the transaction to log: qty units at unit each.
type line struct {
	SKU  string
	Name string
	Qty  int64
	Unit domain.Money
}

// amount is qty × unit in minor units.
func (l line) amount() int64 { return l.Qty * l.Unit.Minor }

// planOrder turns an order into transaction lines whose sum is the order total to the minor
// unit. Items keep their quantity; their unit price carries the item's own discount and its
// share of any order-level discount (coupon), because ONTRAPORT's coupon over the API would
// apply its own discount rather than the cart's. Shipping, handling and tax become
// pseudo-product lines. Whatever the components do not explain is derived from the source total:
// a shortfall is discount (spread over the items in proportion to their amounts, then over
// shipping, handling and tax), an excess is an adjustment line. Where a discounted line does not
// divide evenly by its quantity, it is split into two lines one minor unit apart.
func planOrder(o domain.Order) ([]line, error) {
	cur := o.Total.Currency
	if cur == "" {
		cur = o.Currency
	}
	money := func(what string, m domain.Money) (int64, error) {
		if m.Currency != "" && m.Currency != cur && m.Minor != 0 {
			return 0, fmt.Errorf("%w: %s is in %s, the order total in %s", ErrBadFact, what, m.Currency, cur)
		}
		return m.Minor, nil
	}
	total, _ := money("total", o.Total)
	if total < 0 {
		return nil, fmt.Errorf("%w: order %s has a negative total %s", ErrBadFact, o.Key, o.Total)
	}
	type part struct {
		sku, name string
		qty, net  int64
	}
	var items []part
	var positive int64
	for i, it := range o.Items {
		if it.Quantity <= 0 {
			continue
		}
		unit, err := money("item "+it.SKU+" unit price", it.UnitPrice)
		if err != nil {
			return nil, err
		}
		disc, err := money("item "+it.SKU+" discount", it.Discount)
		if err != nil {
			return nil, err
		}
		gross, ok := mul(unit, it.Quantity)
		if !ok {
			return nil, fmt.Errorf("%w: item %s amount overflows", ErrBadFact, it.SKU)
		}
		net := gross - max(min(disc, gross), 0)
		if net < 0 {
			// A negative line (a coupon sent as an item) is discount: the shortfall below
			// spreads it over the other lines.
			continue
		}
		sku := it.SKU
		if sku == "" {
			sku = fmt.Sprintf("%s#%d", o.Key, i+1)
		}
		name := it.Name
		if name == "" {
			name = sku
		}
		items = append(items, part{sku: sku, name: name, qty: it.Quantity, net: net})
		positive += net
	}
	extras := make([]part, 0, 3)
	for _, x := range []struct {
		sku string
		m   domain.Money
	}{{skuShipping, o.Shipping}, {skuHandling, o.Handling}, {skuTax, o.Tax}} {
		v, err := money(pseudoName(x.sku), x.m)
		if err != nil {
			return nil, err
		}
		if v > 0 {
			extras = append(extras, part{sku: x.sku, name: pseudoName(x.sku), qty: 1, net: v})
			positive += v
		}
	}
	if len(items) == 0 && len(extras) == 0 {
		if total == 0 {
			return nil, ErrNothingToLog
		}
	}
	shortfall := positive - total
	if shortfall > 0 {
		// Items first, in proportion; then shipping, handling, tax in that order.
		var itemSum int64
		for _, p := range items {
			itemSum += p.net
		}
		take := min(shortfall, itemSum)
		nets := make([]int64, len(items))
		for i, p := range items {
			nets[i] = p.net
		}
		cut := allocate(take, nets)
		for i := range items {
			items[i].net -= cut[i]
		}
		rest := shortfall - take
		for i := range extras {
			c := min(rest, extras[i].net)
			extras[i].net -= c
			rest -= c
		}
	}
	var out []line
	unit := func(minor int64) domain.Money { return domain.Money{Minor: minor, Currency: cur} }
	for _, p := range items {
		f, r := p.net/p.qty, p.net%p.qty
		if p.qty-r > 0 {
			out = append(out, line{SKU: p.sku, Name: p.name, Qty: p.qty - r, Unit: unit(f)})
		}
		if r > 0 {
			out = append(out, line{SKU: p.sku, Name: p.name, Qty: r, Unit: unit(f + 1)})
		}
	}
	for _, p := range extras {
		if p.net > 0 {
			out = append(out, line{SKU: p.sku, Name: p.name, Qty: 1, Unit: unit(p.net)})
		}
	}
	if shortfall < 0 {
		out = append(out, line{SKU: skuAdjustment, Name: pseudoName(skuAdjustment), Qty: 1, Unit: unit(-shortfall)})
	}
	out = append(out, couponLines(o.Coupons, cur)...)
	var sum int64
	for _, l := range out {
		sum += l.amount()
	}
	if sum != total {
		// Unreachable by construction; a wrong total must never reach ONTRAPORT.
		return nil, fmt.Errorf("%w: order %s lines add up to %d, total is %d", ErrBadFact, o.Key, sum, total)
	}
	return out, nil
}

// couponLines carry the order's coupon codes on the transaction: one line per code, of the
// zero-priced pseudo-product "Coupon <code>". The discount itself is in the item prices already;
// ONTRAPORT's own offer coupon would apply ONTRAPORT's discount on top, so it is not used.
func couponLines(codes []string, cur string) []line {
	var out []line
	seen := map[string]bool{}
	for _, c := range codes {
		c = strings.TrimSpace(c)
		if c == "" || seen[strings.ToUpper(c)] {
			continue
		}
		seen[strings.ToUpper(c)] = true
		sku := skuCouponPrefix + c
		out = append(out, line{SKU: sku, Name: pseudoName(sku), Qty: 1, Unit: domain.Money{Currency: cur}})
	}
	return out
}

// isCouponLine reports whether l is one of couponLines.
func isCouponLine(l line) bool { return strings.HasPrefix(l.SKU, skuCouponPrefix) }

// mul is a × n, reporting overflow.
func mul(a, n int64) (int64, bool) {
	m, err := domain.Money{Minor: a}.Mul(n)
	return m.Minor, err == nil
}

// allocate splits amount (0 ≤ amount ≤ Σ weights) over the weights in proportion, by largest
// remainder, so the parts add up to amount exactly and none exceeds its weight. Ties go to the
// earlier weight, so the split is deterministic.
func allocate(amount int64, weights []int64) []int64 {
	out := make([]int64, len(weights))
	var sum uint64
	for _, w := range weights {
		sum += uint64(w)
	}
	if amount <= 0 || sum == 0 {
		return out
	}
	rems := make([]uint64, len(weights))
	var given int64
	for i, w := range weights {
		// amount × w ≤ sum², so the 128-bit quotient by sum fits 64 bits.
		hi, lo := bits.Mul64(uint64(amount), uint64(w))
		q, r := bits.Div64(hi, lo, sum)
		out[i], rems[i] = int64(q), r
		given += int64(q)
	}
	order := make([]int, len(weights))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rems[order[a]] > rems[order[b]] })
	for _, i := range order {
		if given == amount {
			break
		}
		if out[i] < weights[i] {
			out[i]++
			given++
		}
	}
	return out
}

// manualTransaction is the body of transaction/processManual with chargeNow "chargeLog": it
// records a sale the cart already charged, without a gateway.
type manualTransaction struct {
	ObjectID        int    `json:"objectID"`
	ContactID       int64  `json:"contact_id"`
	ChargeNow       string `json:"chargeNow"`
	TransDate       int64  `json:"trans_date"` // epoch milliseconds
	InvoiceTemplate int    `json:"invoice_template"`
	ExternalOrderID string `json:"external_order_id"`
	Delay           int    `json:"delay"`
	Offer           offer  `json:"offer"`
}

type offer struct {
	Products   []offerProduct `json:"products"`
	SubTotal   json.Number    `json:"subTotal"`
	GrandTotal json.Number    `json:"grandTotal"`
	// Shipping and tax are lines already; ONTRAPORT must not add its own.
	HasTaxes    bool `json:"hasTaxes"`
	HasShipping bool `json:"hasShipping"`
}

type offerProduct struct {
	ID       int64        `json:"id"`
	Name     string       `json:"name"`
	SKU      string       `json:"sku,omitempty"`
	Quantity int64        `json:"quantity"`
	Type     string       `json:"type"`
	Shipping bool         `json:"shipping"`
	Taxable  bool         `json:"taxable"`
	Price    []offerPrice `json:"price"`
	Total    json.Number  `json:"total"`
}

type offerPrice struct {
	Price        json.Number `json:"price"`
	PaymentCount int         `json:"payment_count"`
	Unit         string      `json:"unit"`
}

// decimal writes minor units of cur as an exact JSON number ("12.50"), never through a float.
func decimal(minor int64, cur string) json.Number {
	return json.Number(domain.Money{Minor: minor, Currency: cur}.Decimal())
}

// buildTransaction assembles processManual's body from planned lines and their product ids.
func buildTransaction(contactID int64, ext string, at time.Time, invoiceTemplate int, lines []line, ids map[string]int64) (manualTransaction, error) {
	t := manualTransaction{
		ContactID: contactID, ChargeNow: "chargeLog", TransDate: at.UnixMilli(),
		InvoiceTemplate: invoiceTemplate, ExternalOrderID: ext,
	}
	var sum int64
	cur := ""
	for _, l := range lines {
		id := ids[l.SKU]
		if id <= 0 {
			return manualTransaction{}, fmt.Errorf("no ONTRAPORT product for SKU %q", l.SKU)
		}
		cur = l.Unit.Currency
		t.Offer.Products = append(t.Offer.Products, offerProduct{
			ID: id, Name: l.Name, SKU: l.SKU, Quantity: l.Qty, Type: "single",
			Price: []offerPrice{{Price: decimal(l.Unit.Minor, cur), PaymentCount: 1, Unit: "day"}},
			Total: decimal(l.amount(), cur),
		})
		sum += l.amount()
	}
	if len(t.Offer.Products) == 0 {
		return manualTransaction{}, ErrNothingToLog
	}
	t.Offer.SubTotal = decimal(sum, cur)
	t.Offer.GrandTotal = decimal(sum, cur)
	return t, nil
}

// refundExternalID links a partial refund to its order: "<order key>:refund:<cumulative minor
// units><currency>", the same identity as the refund fact, so a redelivery finds it.
func refundExternalID(orderKey string, cumulative domain.Money) string {
	return orderKey + ":refund:" + strconv.FormatInt(cumulative.Minor, 10) + cumulative.Currency
}

// takeBack is the one line of a pseudo-product that takes amount out of the order's revenue
// (a negative line; a negative amount puts it back).
func takeBack(sku string, amount domain.Money) []line {
	return []line{{SKU: sku, Name: pseudoName(sku), Qty: 1, Unit: domain.Money{Minor: -amount.Minor, Currency: amount.Currency}}}
}

// chargebackExternalID links a change of an order's chargebacks to the order:
// "<order key>:chargeback:<state>", the fact's own identity (see domain.OrderChargedBackID).
func chargebackExternalID(orderKey, state string) string { return orderKey + ":chargeback:" + state }

// reversalExternalID is the negative transaction that takes back what remained of a reversed
// order: one per order, as the reversal is.
func reversalExternalID(orderKey string) string { return orderKey + ":reversal" }

// person is what a contact record is built from, whether from an order or a profile.
type person struct {
	Email      string
	FirstName  string
	LastName   string
	Company    string
	Phone      string
	Address    domain.Address
	EmailOptIn *bool
	SMSOptIn   *bool
}

func orderPerson(o domain.Order) person {
	return person{Email: o.Email, FirstName: o.Billing.FirstName, LastName: o.Billing.LastName, Company: o.Billing.Company,
		Phone: o.Phone, Address: o.Billing, EmailOptIn: o.EmailOptIn, SMSOptIn: o.SMSOptIn}
}

func contactPerson(c domain.Contact) person {
	return person{Email: c.Email, FirstName: c.FirstName, LastName: c.LastName, Company: c.Address.Company,
		Phone: c.Phone, Address: c.Address, EmailOptIn: c.EmailOptIn, SMSOptIn: c.SMSOptIn}
}

// contactFields are the standard fields of saveorupdate. Empty values are left out, so a source
// that lacks a name never blanks one ONTRAPORT has. Opt-ins map to bulk_mail (1 opted in, 0
// transactional only) and bulk_sms (1 opted in, 0 not); the phone goes to office_phone, and to
// sms_number when the contact opted in to SMS.
func contactFields(p person) map[string]any {
	f := map[string]any{"email": p.Email}
	set := func(k, v string) {
		if v = strings.TrimSpace(v); v != "" {
			f[k] = v
		}
	}
	set("firstname", p.FirstName)
	set("lastname", p.LastName)
	set("company", p.Company)
	set("address", p.Address.Address1)
	set("address2", p.Address.Address2)
	set("city", p.Address.City)
	set("state", p.Address.Region)
	set("zip", p.Address.PostalCode)
	set("country", p.Address.CountryCode)
	set("office_phone", p.Phone)
	if p.EmailOptIn != nil {
		f["bulk_mail"] = boolInt(*p.EmailOptIn)
	}
	if p.SMSOptIn != nil {
		f["bulk_sms"] = boolInt(*p.SMSOptIn)
		if *p.SMSOptIn {
			set("sms_number", p.Phone)
		}
	}
	return f
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// affiliateLabel is how the referring affiliate reads in the contact's affiliate field.
func affiliateLabel(a domain.Affiliate) string {
	switch {
	case a.Name != "" && a.ID != "":
		return a.Name + " (" + a.ID + ")"
	case a.Name != "":
		return a.Name
	}
	return a.ID
}
