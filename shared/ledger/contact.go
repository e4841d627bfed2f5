package ledger

import (
	"bytes"
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// ApplyCustomer records a source customer profile on the contact: it is kept as
// CustomerProfile and its id is remembered in CustomerIDs ("<src>:<customerId>", sorted). A
// deleted profile is dropped.
//
// The names, phone, address and opt-ins change only at the next Aggregate, which lays the
// profile's non-empty values over what the orders say. Keeping that in one place is what makes
// the result independent of whether the customer or the order events arrived first, and lets
// ContactFacts, comparing the recorded contact with the aggregated one, see the change. A
// customer profile carries no update time, so between two profiles the last one applied wins.
func ApplyCustomer(c domain.Contact, cu domain.Customer) domain.Contact {
	if cu.Deleted {
		if p := c.CustomerProfile; p != nil && p.Source == cu.Source && p.CustomerID == cu.CustomerID {
			c.CustomerProfile = nil
		}
		return c
	}
	if c.Email == "" {
		c.Email = cu.Email
	}
	if cu.CustomerID != "" {
		id := string(cu.Source) + ":" + cu.CustomerID
		if i, found := slices.BinarySearch(c.CustomerIDs, id); !found {
			c.CustomerIDs = slices.Insert(slices.Clip(c.CustomerIDs), i, id)
		}
	}
	p := cu
	c.CustomerProfile = &p
	return c
}

// overlayCustomer lets the customer profile's non-empty values win. Names go as a pair, so a
// first name from one place never meets a last name from another.
func overlayCustomer(c *domain.Contact, cu domain.Customer) {
	if cu.FirstName != "" || cu.LastName != "" {
		c.FirstName, c.LastName = cu.FirstName, cu.LastName
	}
	if cu.Phone != "" {
		c.Phone = cu.Phone
	}
	if cu.Address != (domain.Address{}) {
		c.Address = cu.Address
	}
	if cu.ShipTo.HasPlace() {
		c.ShipTo = cu.ShipTo
	}
	if cu.EmailOptIn != nil {
		c.EmailOptIn = cu.EmailOptIn
	}
	if cu.SMSOptIn != nil {
		c.SMSOptIn = cu.SMSOptIn
	}
}

// purchaseTime is when an order happened, for ordering a contact's orders: paid, else created,
// else the source's last change.
func purchaseTime(o domain.Order) time.Time {
	return firstNonZero(o.PaidAt, o.CreatedAt, o.SourceUpdatedAt).UTC()
}

func cmpPurchase(a, b domain.Order) int {
	return cmp.Or(purchaseTime(a).Compare(purchaseTime(b)), strings.Compare(a.Key, b.Key))
}

// orderCurrency is the currency an order's amounts are in.
func orderCurrency(o domain.Order) string {
	return cmp.Or(o.Total.Currency, o.Currency)
}

func inCurrency(m domain.Money, cur string) domain.Money {
	if m.Currency == "" {
		m.Currency = cur
	}
	return m
}

// Aggregate recomputes a contact from scratch out of its stored orders and subscriptions (never
// by adding to the previous totals, so a replay cannot inflate them). The arguments' order does
// not matter.
//
// Revenue counts placed orders only (see Placed: paid or shipped, not a test, known in full;
// rejected and deleted orders are not revenue), rebills included: GrossRevenue is the sum of
// totals, Refunded of refunded amounts, ChargedBack of standing chargebacks, LTV = GrossRevenue −
// Refunded − ChargedBack, PurchaseCount the number of orders, AOV = GrossRevenue / PurchaseCount
// rounded half to even. A chargeback counts like a refund while it stands, and stops counting
// when its dispute is won or deleted. These are in the contact's base currency, the currency of
// its first placed order; UltraCart amounts are always in the merchant's base currency, so this
// only matters for a ThriveCart merchant selling in several. Orders in another currency are not
// converted (there is no rate to do it exactly) and stay out of these sums, while still counting
// for the purchase dates and touches. An order whose amounts would overflow the sums is left out
// of them too, rather than wrapping around.
//
// FirstPurchaseAt and LastPurchaseAt span the placed orders. FirstTouch is the first UTM of the
// earliest placed order that has one, LastTouch the last UTM of the latest such order.
// Subscriptions maps each subscription key to its current status, and NextRebillAt is the soonest
// NextAttempt of the active ones.
//
// Names, phone, address, ship-to address and opt-ins come from the customer profile (ApplyCustomer) where it has
// them, and otherwise from the latest order that has them (test, rejected and deleted orders
// aside; a pending order still tells who the person is).
func Aggregate(c domain.Contact, orders []domain.Order, subs []domain.Subscription) domain.Contact {
	out := c
	out.LTV, out.GrossRevenue, out.Refunded, out.AOV = domain.Money{}, domain.Money{}, domain.Money{}, domain.Money{}
	out.ChargedBack = domain.Money{}
	out.PurchaseCount = 0
	out.FirstPurchaseAt, out.LastPurchaseAt = time.Time{}, time.Time{}
	out.FirstTouch, out.LastTouch = nil, nil
	out.Subscriptions = nil
	out.FirstName, out.LastName, out.Phone, out.Address, out.ShipTo = "", "", "", domain.Address{}, domain.Address{}
	out.EmailOptIn, out.SMSOptIn = nil, nil

	// Sort pointers rather than the orders themselves: orders are large values.
	sorted := make([]*domain.Order, len(orders))
	for i := range orders {
		sorted[i] = &orders[i]
	}
	slices.SortFunc(sorted, func(a, b *domain.Order) int { return cmpPurchase(*a, *b) })

	var base string
	var baseSet bool
	var firstUTM, lastUTM domain.UTM
	touched := false
	for _, op := range sorted {
		o := *op
		if o.Test || o.Status == domain.OrderRejected || o.Status == domain.OrderDeleted {
			continue
		}
		overlayOrder(&out, o)
		if !Placed(o) {
			continue
		}
		if t := purchaseTime(o); !t.IsZero() {
			if out.FirstPurchaseAt.IsZero() {
				out.FirstPurchaseAt = t
			}
			out.LastPurchaseAt = t
		}
		if u, ok := firstTouch(o.UTMs); ok {
			if !touched {
				firstUTM, touched = u, true
			}
			lastUTM, _ = lastTouch(o.UTMs)
		}
		cur := orderCurrency(o)
		if !baseSet {
			base, baseSet = cur, true
		}
		if cur != base {
			continue
		}
		addRevenue(&out, inCurrency(o.Total, cur), inCurrency(o.Refunded, cur), inCurrency(o.ChargedBack, cur))
	}
	if touched {
		out.FirstTouch, out.LastTouch = &firstUTM, &lastUTM
	}
	if out.PurchaseCount > 0 {
		// Cannot fail: the count is positive and the quotient is no larger than the sum.
		out.AOV, _ = out.GrossRevenue.Div(int64(out.PurchaseCount))
	}
	out.NextRebillAt = time.Time{}
	for _, s := range subs {
		if s.Key == "" || s.Status == "" {
			continue
		}
		if out.Subscriptions == nil {
			out.Subscriptions = make(map[string]domain.SubscriptionStatus, len(subs))
		}
		out.Subscriptions[s.Key] = s.Status
		if n := s.NextAttempt.UTC(); s.Status == domain.SubActive && !n.IsZero() && (out.NextRebillAt.IsZero() || n.Before(out.NextRebillAt)) {
			out.NextRebillAt = n
		}
	}
	if c.CustomerProfile != nil {
		overlayCustomer(&out, *c.CustomerProfile)
	}
	return out
}

// addRevenue adds one order to the sums, all or nothing.
func addRevenue(c *domain.Contact, total, refunded, chargedBack domain.Money) {
	net, err := total.Sub(refunded)
	if err != nil {
		return
	}
	if net, err = net.Sub(chargedBack); err != nil {
		return
	}
	cb, err := c.ChargedBack.Add(chargedBack)
	if err != nil {
		return
	}
	gross, err := c.GrossRevenue.Add(total)
	if err != nil {
		return
	}
	ref, err := c.Refunded.Add(refunded)
	if err != nil {
		return
	}
	ltv, err := c.LTV.Add(net)
	if err != nil {
		return
	}
	c.GrossRevenue, c.Refunded, c.LTV = gross, ref, ltv
	if cb.Minor != 0 {
		c.ChargedBack = cb
	}
	c.PurchaseCount++
}

// overlayOrder lets a later order's non-empty profile values win (orders come oldest first).
func overlayOrder(c *domain.Contact, o domain.Order) {
	if o.Billing.FirstName != "" || o.Billing.LastName != "" {
		c.FirstName, c.LastName = o.Billing.FirstName, o.Billing.LastName
	}
	if o.Phone != "" {
		c.Phone = o.Phone
	}
	// Only an order that carries a postal address replaces it: a later order that names the
	// buyer but has no address (a digital product, a ThriveCart sale) must not erase it.
	if a := o.Billing; a.HasPlace() {
		c.Address = a
	}
	if o.ShipTo.HasPlace() {
		c.ShipTo = o.ShipTo
	}
	if o.EmailOptIn != nil {
		c.EmailOptIn = o.EmailOptIn
	}
	if o.SMSOptIn != nil {
		c.SMSOptIn = o.SMSOptIn
	}
}

func firstTouch(us []domain.UTM) (domain.UTM, bool) {
	for _, u := range us {
		if !u.Empty() {
			return u, true
		}
	}
	return domain.UTM{}, false
}

func lastTouch(us []domain.UTM) (domain.UTM, bool) {
	for i := len(us) - 1; i >= 0; i-- {
		if !us[i].Empty() {
			return us[i], true
		}
	}
	return domain.UTM{}, false
}

// ProfileHash is a short hash of what destinations see of a contact: email, names, phone,
// address, ship-to address, opt-ins, the revenue aggregates (chargebacks included), purchase
// dates, touches, subscription statuses and the next rebill.
// Internal bookkeeping (customer ids and profile, previous emails, destination ids) is left out,
// so it changing sends nothing.
func ProfileHash(c domain.Contact) string {
	e := enc{b: make([]byte, 0, 512)}
	e.visibleProfile(c)
	return e.hash()
}

func (e *enc) visibleProfile(c domain.Contact) {
	e.str(c.Email)
	e.str(c.FirstName)
	e.str(c.LastName)
	e.str(c.Phone)
	e.address(c.Address)
	// Only when there is one, so profiles stored before ship-to addresses were kept hash as they
	// did.
	if c.ShipTo != (domain.Address{}) {
		e.str("ship_to")
		e.address(c.ShipTo)
	}
	e.optBool(c.EmailOptIn)
	e.optBool(c.SMSOptIn)
	e.money(c.LTV)
	e.money(c.GrossRevenue)
	e.money(c.Refunded)
	// Only when non-zero, so profiles stored before chargebacks were counted hash as they did.
	e.boolean(c.ChargedBack.Minor != 0)
	if c.ChargedBack.Minor != 0 {
		e.money(c.ChargedBack)
	}
	e.i64(int64(c.PurchaseCount))
	e.money(c.AOV)
	e.time(c.FirstPurchaseAt)
	e.time(c.LastPurchaseAt)
	e.optUTM(c.FirstTouch)
	e.optUTM(c.LastTouch)
	e.u64(uint64(len(c.Subscriptions)))
	for _, k := range sortedKeys(c.Subscriptions) {
		e.str(k)
		e.str(string(c.Subscriptions[k]))
	}
	// Only when scheduled, so profiles stored before it was kept hash as they did.
	if !c.NextRebillAt.IsZero() {
		e.str("next_rebill")
		e.time(c.NextRebillAt)
	}
}

// ContactFacts returns ContactChanged when something destinations see changed between before
// and after (see ProfileHash); an unchanged profile sends nothing, however often it is
// recomputed. at is the time of the source event behind the change.
//
// The id's hash covers the new profile, the previous one and at. The profile alone would not
// do: a contact that opts out and back in returns to an earlier profile, and an id seen before
// would be dropped by the destinations' idempotency. A retry of the same event still computes the
// same id. One case remains: the same change (same profiles before and after) caused twice by
// two events of the same instant, with a change back in between, gets one id. That needs an
// order whose versions tie on SourceUpdatedAt, so their contents are ranked by encoding and the
// profile drawn from them can go back and forth; sources that send update times never do it.
func ContactFacts(account string, before, after domain.Contact, at time.Time, cut Cutover) []domain.Fact {
	eb, ea := enc{b: make([]byte, 0, 512)}, enc{b: make([]byte, 0, 512)}
	eb.visibleProfile(before)
	ea.visibleProfile(after)
	if bytes.Equal(eb.b, ea.b) {
		return nil
	}
	at = at.UTC()
	id := ea // the new profile, then what it changed from and when
	id.str(eb.hash())
	id.time(at)
	snap := after
	return []domain.Fact{{
		ID:         domain.ContactChangedID(account, after.Email, id.hash()),
		Account:    account,
		Kind:       domain.FactContactChanged,
		Email:      after.Email,
		OccurredAt: at,
		Historical: cut.Historical(at),
		Contact:    &snap,
	}}
}

// EmailChangeFacts returns EmailChanged for a contact whose email moved from oldEmail to
// newEmail (the same source customer profile reporting a new address), at the time of that
// report. Such a report is never a backfilled campaign trigger and only updates profiles, so
// the fact is not marked historical.
func EmailChangeFacts(account, oldEmail, newEmail string, c domain.Contact, at time.Time) []domain.Fact {
	if oldEmail == "" || newEmail == "" || oldEmail == newEmail {
		return nil
	}
	snap := c
	return []domain.Fact{{
		ID:         domain.EmailChangedID(account, oldEmail, newEmail),
		Account:    account,
		Kind:       domain.FactEmailChanged,
		Email:      newEmail,
		OccurredAt: at.UTC(),
		Contact:    &snap,
		OldEmail:   oldEmail,
	}}
}
