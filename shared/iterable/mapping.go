package iterable

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/ledger"
)

// The mapping from facts to request bodies is pure: the same fact and settings give the same
// bytes, which is what the golden tests in testdata/ pin. Field types never depend on the
// values (money is always a Double, counts a long, times a Date, flags a bool), and a field
// with nothing to say is left out rather than sent empty, so that an empty string can never
// make a date field a string.

// ProfileUpdate is the users/update body for a contact.
func ProfileUpdate(c domain.Contact) UserUpdate {
	f := Fields{
		"ltv":                     MoneyDouble(c.LTV),
		"grossRevenue":            MoneyDouble(c.GrossRevenue),
		"refundedTotal":           MoneyDouble(c.Refunded),
		"chargedBackTotal":        MoneyDouble(c.ChargedBack),
		"purchaseCount":           int64(c.PurchaseCount),
		"aov":                     MoneyDouble(c.AOV),
		"subscriptionStatus":      subscriptionSummary(c.Subscriptions),
		"hasActiveSubscription":   subscriptionSummary(c.Subscriptions) == string(domain.SubActive),
		"activeSubscriptionCount": activeSubscriptions(c.Subscriptions),
	}
	if cur := c.LTV.Currency; cur != "" {
		f["currency"] = cur
	}
	setString(f, "firstName", c.FirstName)
	setString(f, "lastName", c.LastName)
	if strings.HasPrefix(c.Phone, "+") {
		// Iterable's SMS channel reads phoneNumber, in E.164 only.
		f["phoneNumber"] = c.Phone
	}
	if a := address(c.Address); len(a) > 0 {
		f["address"] = a
	}
	if c.ShipTo.HasPlace() {
		f["shippingAddress"] = address(c.ShipTo)
	}
	setDate(f, "firstPurchaseDate", c.FirstPurchaseAt)
	setDate(f, "lastPurchaseDate", c.LastPurchaseAt)
	switch {
	case !c.NextRebillAt.IsZero():
		f["nextRebillDate"] = Date(c.NextRebillAt)
		f["hasScheduledRebill"] = true
	case len(c.Subscriptions) > 0:
		// Nothing is scheduled any more. users/update merges, so a date left out would keep the
		// old one and renewal reminders would still fire: null clears it. Iterable's spec does not
		// say that null clears a field, so the flag says it too, and campaigns can test it.
		f["nextRebillDate"] = nil
		f["hasScheduledRebill"] = false
	}
	if c.EmailOptIn != nil {
		f["emailOptIn"] = *c.EmailOptIn
	}
	if c.SMSOptIn != nil {
		f["smsOptIn"] = *c.SMSOptIn
	}
	if t := touch(c.FirstTouch); len(t) > 0 {
		f["firstTouch"] = t
	}
	if t := touch(c.LastTouch); len(t) > 0 {
		f["lastTouch"] = t
	}
	return UserUpdate{Email: c.Email, DataFields: f}
}

func subscriptionSummary(subs map[string]domain.SubscriptionStatus) string {
	if st, ok := ledger.LeadingStatus(subs); ok {
		return string(st)
	}
	return "none"
}

func activeSubscriptions(subs map[string]domain.SubscriptionStatus) int64 {
	var n int64
	for _, s := range subs {
		if s == domain.SubActive {
			n++
		}
	}
	return n
}

func setString(f Fields, k, v string) {
	if v != "" {
		f[k] = v
	}
}

func setDate(f Fields, k string, t time.Time) {
	if !t.IsZero() {
		f[k] = Date(t)
	}
}

func address(a domain.Address) Fields {
	f := Fields{}
	setString(f, "firstName", a.FirstName)
	setString(f, "lastName", a.LastName)
	setString(f, "company", a.Company)
	setString(f, "address1", a.Address1)
	setString(f, "address2", a.Address2)
	setString(f, "city", a.City)
	setString(f, "region", a.Region)
	setString(f, "postalCode", a.PostalCode)
	setString(f, "countryCode", a.CountryCode)
	return f
}

func touch(u *domain.UTM) Fields {
	if u == nil || u.Empty() {
		return nil
	}
	f := Fields{}
	setString(f, "source", u.Source)
	setString(f, "medium", u.Medium)
	setString(f, "campaign", u.Campaign)
	setString(f, "term", u.Term)
	setString(f, "content", u.Content)
	setString(f, "id", u.ID)
	setString(f, "iterableCampaignId", u.IterableCampaignID)
	setString(f, "iterableTemplateId", u.IterableTemplateID)
	setDate(f, "at", u.At)
	return f
}

// utmFields flattens an order's last touch into purchase data fields (utmSource, ...).
func utmFields(f Fields, utms []domain.UTM) {
	if len(utms) == 0 {
		return
	}
	u := utms[len(utms)-1]
	setString(f, "utmSource", u.Source)
	setString(f, "utmMedium", u.Medium)
	setString(f, "utmCampaign", u.Campaign)
	setString(f, "utmTerm", u.Term)
	setString(f, "utmContent", u.Content)
	setString(f, "utmId", u.ID)
}

// iterableAttribution finds the Iterable campaign and template ids of the latest touch that came
// from an Iterable message, for purchase attribution.
func iterableAttribution(utms []domain.UTM) (campaign, template *int32) {
	for i := len(utms) - 1; i >= 0; i-- {
		u := utms[i]
		if u.IterableCampaignID == "" && u.IterableTemplateID == "" {
			continue
		}
		if v, err := strconv.ParseInt(strings.TrimSpace(u.IterableCampaignID), 10, 32); err == nil && v > 0 {
			c := int32(v)
			campaign = &c
		}
		if v, err := strconv.ParseInt(strings.TrimSpace(u.IterableTemplateID), 10, 32); err == nil && v > 0 {
			t := int32(v)
			template = &t
		}
		return campaign, template
	}
	return nil, nil
}

// Thumbnail sizes an image URL by adding width and height query parameters, which image CDNs
// resize by. A URL that does not parse is left as it is.
func Thumbnail(raw string, w, h int) string {
	if raw == "" || w <= 0 {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	q := u.Query()
	q.Set("width", strconv.Itoa(w))
	q.Set("height", strconv.Itoa(h))
	u.RawQuery = q.Encode()
	return u.String()
}

// LineImage is the image a line is shown with at the configured thumbnail size: the source's own
// thumbnail of exactly that size when it made one (UltraCart does), else the smallest of its
// thumbnails that covers the size, else the image with width and height parameters (Thumbnail).
// Whether UltraCart makes a thumbnail of every size a merchant configures is not documented, so
// both cases are handled. Without a size the image goes as given.
func LineImage(li domain.LineItem, s Settings) string {
	if s.ThumbWidth <= 0 || len(li.Thumbnails) == 0 {
		return Thumbnail(li.ImageURL, s.ThumbWidth, s.ThumbHeight)
	}
	var best *domain.Thumbnail
	for i, t := range li.Thumbnails {
		if t.Width == s.ThumbWidth && t.Height == s.ThumbHeight {
			return t.URL
		}
		if t.Width >= s.ThumbWidth && t.Height >= s.ThumbHeight &&
			(best == nil || t.Width*t.Height < best.Width*best.Height) {
			best = &li.Thumbnails[i]
		}
	}
	if best != nil {
		return best.URL
	}
	if li.ImageURL == "" {
		// Every thumbnail is smaller than the size asked: the largest is the best there is.
		big := li.Thumbnails[0]
		for _, t := range li.Thumbnails[1:] {
			if t.Width*t.Height > big.Width*big.Height {
				big = t
			}
		}
		return big.URL
	}
	return Thumbnail(li.ImageURL, s.ThumbWidth, s.ThumbHeight)
}

// Items maps order or cart lines to commerce items. A line without a SKU gets a positional id,
// since Iterable requires one.
func Items(lines []domain.LineItem, s Settings) []CommerceItem {
	out := make([]CommerceItem, 0, len(lines))
	for i, li := range lines {
		id := li.SKU
		if id == "" {
			id = "line-" + strconv.Itoa(i+1)
		}
		name := li.Name
		if name == "" {
			name = id
		}
		it := CommerceItem{ID: id, SKU: li.SKU, Name: name, Price: MoneyDouble(li.UnitPrice), Quantity: li.Quantity,
			ImageURL: LineImage(li, s), URL: li.URL, Categories: li.Categories}
		if li.SubscriptionID != "" {
			it.DataFields = Fields{"subscriptionId": li.SubscriptionID}
		}
		out = append(out, it)
	}
	return out
}

func purchaseUser(email string, o domain.Order) UserUpdate {
	f := Fields{}
	setString(f, "firstName", o.Billing.FirstName)
	setString(f, "lastName", o.Billing.LastName)
	if strings.HasPrefix(o.Phone, "+") {
		f["phoneNumber"] = o.Phone
	}
	if len(f) == 0 {
		f = nil
	}
	return UserUpdate{Email: email, DataFields: f}
}

// isSubscription reports whether an order starts or renews a subscription.
func isSubscription(o domain.Order) bool {
	if o.SubscriptionID != "" || o.Rebill {
		return true
	}
	return slices.ContainsFunc(o.Items, func(li domain.LineItem) bool { return li.SubscriptionID != "" })
}

// PurchaseID is Iterable's purchase id for an order: the order key (Iterable updates the
// purchase with an id it has seen, so a redelivery never counts twice), shortened only when it
// exceeds Iterable's 512 bytes.
func PurchaseID(orderKey string) string { return boundedID(orderKey) }

func boundedID(id string) string {
	if len(id) <= maxIterableIDBytes {
		return id
	}
	return id[:maxIterableIDBytes-25] + "~" + shortHash(id)
}

func orderTime(o domain.Order, fallback time.Time) time.Time {
	for _, t := range []time.Time{o.PaidAt, o.CreatedAt, fallback} {
		if !t.IsZero() {
			return t
		}
	}
	return fallback
}

// Purchase is the commerce/trackPurchase body for an OrderPlaced fact.
func Purchase(email string, o domain.Order, s Settings, occurred time.Time) TrackPurchase {
	f := Fields{
		"orderId":        o.OrderID,
		"orderKey":       o.Key,
		"source":         string(o.Source),
		"subtotal":       MoneyDouble(o.Subtotal),
		"discount":       MoneyDouble(o.Discount),
		"shipping":       MoneyDouble(o.Shipping),
		"handling":       MoneyDouble(o.Handling),
		"tax":            MoneyDouble(o.Tax),
		"isSubscription": isSubscription(o),
		"isRebill":       o.Rebill,
	}
	setString(f, "currency", orderCurrency(o))
	setString(f, "subscriptionId", o.SubscriptionID)
	if o.ShipTo.HasPlace() {
		f["shippingAddress"] = address(o.ShipTo)
	}
	if len(o.Coupons) > 0 {
		f["coupons"] = o.Coupons
	}
	utmFields(f, o.UTMs)
	if o.Affiliate != nil {
		setString(f, "affiliateId", o.Affiliate.ID)
	}
	at := orderTime(o, occurred)
	setDate(f, "purchaseDate", at)
	p := TrackPurchase{ID: PurchaseID(o.Key), User: purchaseUser(email, o), Items: Items(o.Items, s), Total: MoneyDouble(o.Total),
		CreatedAt: unix(at), DataFields: f}
	p.CampaignID, p.TemplateID = iterableAttribution(o.UTMs)
	return p
}

func orderCurrency(o domain.Order) string {
	if o.Total.Currency != "" {
		return o.Total.Currency
	}
	return o.Currency
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// CartUpdate is the commerce/updateCart body for an abandoned cart: it sets the profile's
// shoppingCartItems, which cart-recovery templates read.
func CartUpdate(email string, c domain.Cart, s Settings) UpdateCart {
	u := UserUpdate{Email: email}
	if strings.HasPrefix(c.Phone, "+") {
		u.DataFields = Fields{"phoneNumber": c.Phone}
	}
	return UpdateCart{User: u, Items: Items(c.Items, s)}
}

// CartAbandonedEvent is the cartAbandoned event, sent once the cart's wait is over and no order
// followed it.
func CartAbandonedEvent(id, email string, c domain.Cart, s Settings, at time.Time) Track {
	f := Fields{
		"cartId":    c.CartID,
		"source":    string(c.Source),
		"items":     Items(c.Items, s),
		"itemCount": int64(len(c.Items)),
		"total":     MoneyDouble(c.Total),
	}
	setString(f, "currency", c.Total.Currency)
	setString(f, "returnUrl", c.ReturnURL)
	setDate(f, "abandonedAt", c.At)
	utmFields(f, c.UTMs)
	return Track{ID: boundedID(id), Email: email, EventName: EventCartAbandoned, CreatedAt: unix(at), DataFields: f}
}

func orderFields(o domain.Order) Fields {
	f := Fields{"orderId": o.OrderID, "orderKey": o.Key}
	setString(f, "currency", orderCurrency(o))
	return f
}

// ShippedEvent is the orderShipped event for an OrderShipped fact.
func ShippedEvent(f domain.Fact, s Settings) Track {
	o := *f.Order
	df := orderFields(o)
	var numbers, urls []string
	carrier := ""
	for _, t := range f.Tracking {
		numbers = append(numbers, t.Number)
		if t.URL != "" {
			urls = append(urls, t.URL)
		}
		if carrier == "" {
			carrier = t.Carrier
		}
	}
	// A shipment without a tracking number is still a shipment: the numbers are left out
	// rather than sent empty, so the field keeps its type.
	df["tracked"] = len(numbers) > 0
	if len(numbers) > 0 {
		df["trackingNumbers"] = numbers
	}
	if len(urls) > 0 {
		df["trackingUrls"] = urls
	}
	setString(df, "carrier", carrier)
	df["items"] = Items(o.Items, s)
	df["isSubscription"] = isSubscription(o)
	df["isRebill"] = o.Rebill
	df["orderTotal"] = MoneyDouble(o.Total)
	setDate(df, "shippedAt", f.OccurredAt)
	return Track{ID: boundedID(f.ID), Email: f.Email, EventName: EventOrderShipped, CreatedAt: unix(f.OccurredAt), DataFields: df}
}

// DeliveryEvent is the orderOutForDelivery or orderDelivered event: the order with its items and
// every tracking number it has, for delivery follow-ups.
func DeliveryEvent(f domain.Fact, s Settings) Track {
	o := *f.Order
	df := orderFields(o)
	var numbers []string
	carrier := ""
	for _, t := range o.Tracking {
		numbers = append(numbers, t.Number)
		if carrier == "" {
			carrier = t.Carrier
		}
	}
	if len(numbers) > 0 {
		df["trackingNumbers"] = numbers
	}
	setString(df, "carrier", carrier)
	df["items"] = Items(o.Items, s)
	df["isSubscription"] = isSubscription(o)
	df["orderTotal"] = MoneyDouble(o.Total)
	name, at := EventOrderDelivered, "deliveredAt"
	if f.Kind == domain.FactOrderOutForDelivery {
		name, at = EventOrderOutForDelivery, "outForDeliveryAt"
	}
	setDate(df, at, f.OccurredAt)
	setDate(df, "shippedAt", o.ShippedAt)
	return Track{ID: boundedID(f.ID), Email: f.Email, EventName: name, CreatedAt: unix(f.OccurredAt), DataFields: df}
}

// PaymentFailedEvent is the orderPaymentFailed event: a one-off order's payment was declined, with
// the order's items and total, for a payment-recovery message.
func PaymentFailedEvent(f domain.Fact, s Settings) Track {
	o := *f.Order
	df := orderFields(o)
	df["items"] = Items(o.Items, s)
	df["orderTotal"] = MoneyDouble(o.Total)
	setDate(df, "paymentFailedAt", f.OccurredAt)
	return Track{ID: boundedID(f.ID), Email: f.Email, EventName: EventOrderPaymentFailed, CreatedAt: unix(f.OccurredAt), DataFields: df}
}

// ChargebackEvent is the event for an OrderChargedBack fact: orderChargedBack when a dispute
// takes money back, orderChargebackReversed when a won or deleted one returns it. amount is the
// change (always positive; the event name says which way), chargedBackTotal what stands on the
// order now, ltv the contact's lifetime value after it, when known.
func ChargebackEvent(f domain.Fact, ltv *domain.Money) Track {
	o, cb := *f.Order, *f.Chargeback
	df := orderFields(o)
	name, amount := EventOrderChargedBack, cb.Delta
	if cb.Delta.Minor < 0 {
		name = EventChargebackReversed
		amount, _ = cb.Delta.Neg()
	}
	df["amount"] = MoneyDouble(amount)
	df["chargedBackTotal"] = MoneyDouble(cb.Standing)
	df["orderTotal"] = MoneyDouble(o.Total)
	if len(cb.Disputes) > 0 {
		df["disputeIds"] = cb.Disputes
	}
	setString(df, "reason", cb.Reason)
	setDate(df, "chargebackAt", f.OccurredAt)
	if ltv != nil {
		df["ltv"] = MoneyDouble(*ltv)
	}
	return Track{ID: boundedID(f.ID), Email: f.Email, EventName: name, CreatedAt: unix(f.OccurredAt), DataFields: df}
}

// ReversalEvent is the orderReversed event for an order that stopped being a sale after it was
// sent (reason: rejected, deleted or test). amount is what Iterable still counted of it (total
// less what was refunded and charged back), ltv the contact's lifetime value without it. The
// purchase itself is not re-posted, for the reason refunds are not (see docs/iterable.md).
func ReversalEvent(f domain.Fact, ltv *domain.Money) Track {
	o, r := *f.Order, *f.Reversal
	df := orderFields(o)
	df["reason"] = r.Why
	df["amount"] = MoneyDouble(r.Net)
	df["orderTotal"] = MoneyDouble(o.Total)
	df["refundedTotal"] = MoneyDouble(r.Refunded)
	df["chargedBackTotal"] = MoneyDouble(r.ChargedBack)
	setDate(df, "reversedAt", f.OccurredAt)
	if ltv != nil {
		df["ltv"] = MoneyDouble(*ltv)
	}
	return Track{ID: boundedID(f.ID), Email: f.Email, EventName: EventOrderReversed, CreatedAt: unix(f.OccurredAt), DataFields: df}
}

// RefundEvent is the orderRefunded event for an OrderRefunded fact. ltv is the contact's
// lifetime value after the refund, when known.
func RefundEvent(f domain.Fact, ltv *domain.Money) Track {
	o := *f.Order
	r := *f.Refund
	df := orderFields(o)
	df["amount"] = MoneyDouble(r.Delta)
	df["refundedTotal"] = MoneyDouble(r.Cumulative)
	df["orderTotal"] = MoneyDouble(o.Total)
	df["full"] = r.Full
	if r.Full {
		df["refundType"] = "full"
	} else {
		df["refundType"] = "partial"
	}
	setString(df, "reason", r.Reason)
	setDate(df, "refundedAt", f.OccurredAt)
	if ltv != nil {
		df["ltv"] = MoneyDouble(*ltv)
	}
	return Track{ID: boundedID(f.ID), Email: f.Email, EventName: EventOrderRefunded, CreatedAt: unix(f.OccurredAt), DataFields: df}
}

// SubscriptionEventName names the event for a subscription moving from one status to another;
// "" when the move is not one Iterable hears about. Renewals are rebill orders, not statuses
// (RenewalEvent).
func SubscriptionEventName(from, to domain.SubscriptionStatus) string {
	switch to {
	case domain.SubActive:
		if from == "" {
			return EventSubscriptionStarted
		}
		if from == domain.SubActive {
			return ""
		}
		// Back from a pause, a failed payment or a cancellation.
		return EventSubscriptionResumed
	case domain.SubPaused:
		return EventSubscriptionPaused
	case domain.SubPaymentFailed:
		return EventSubscriptionPaymentFailed
	case domain.SubCancelled, domain.SubMerged, domain.SubDowngraded, domain.SubDisabled:
		return EventSubscriptionCancelled
	}
	return ""
}

// SubscriptionEvent is the event for a SubscriptionChanged fact; ok is false when the change
// sends nothing.
func SubscriptionEvent(f domain.Fact) (Track, bool) {
	sub := *f.Sub
	name := SubscriptionEventName(f.FromStatus, sub.Status)
	if name == "" {
		return Track{}, false
	}
	df := Fields{"subscriptionId": sub.Key, "status": string(sub.Status), "source": string(sub.Source),
		"amount": MoneyDouble(sub.Amount)}
	setString(df, "previousStatus", string(f.FromStatus))
	setString(df, "currency", sub.Amount.Currency)
	setString(df, "frequency", sub.Frequency)
	setString(df, "reason", sub.Reason)
	setString(df, "originalOrderId", sub.OriginalOrderID)
	if len(sub.Products) > 0 {
		df["products"] = sub.Products
	}
	setDate(df, "nextAttemptAt", sub.NextAttempt)
	setDate(df, "statusAt", sub.StatusAt)
	return Track{ID: boundedID(f.ID), Email: f.Email, EventName: name, CreatedAt: unix(f.OccurredAt), DataFields: df}, true
}

// RenewalScheduledEvent is the renewalScheduled event of a RebillScheduled fact: an active
// subscription's next charge was set or moved, for renewal reminders.
func RenewalScheduledEvent(f domain.Fact) Track {
	sub := *f.Sub
	df := Fields{"subscriptionId": sub.Key, "source": string(sub.Source), "amount": MoneyDouble(sub.Amount)}
	setDate(df, "nextRebillDate", sub.NextAttempt)
	setDate(df, "previousRebillDate", f.PreviousRebillAt)
	setString(df, "currency", sub.Amount.Currency)
	setString(df, "frequency", sub.Frequency)
	setString(df, "originalOrderId", sub.OriginalOrderID)
	if len(sub.Products) > 0 {
		df["products"] = sub.Products
	}
	return Track{ID: boundedID(f.ID), Email: f.Email, EventName: EventRenewalScheduled, CreatedAt: unix(f.OccurredAt), DataFields: df}
}

// RenewalEvent is the subscriptionRenewed event that accompanies a rebill's purchase; ok is
// false for an order that renews nothing.
func RenewalEvent(f domain.Fact) (Track, bool) {
	o := *f.Order
	if !o.Rebill {
		return Track{}, false
	}
	df := orderFields(o)
	df["amount"] = MoneyDouble(o.Total)
	setString(df, "subscriptionId", o.SubscriptionID)
	at := orderTime(o, f.OccurredAt)
	setDate(df, "renewedAt", at)
	return Track{ID: boundedID(f.ID + "#renewed"), Email: f.Email, EventName: EventSubscriptionRenewed, CreatedAt: unix(at), DataFields: df}, true
}

// ReviewLink is one product of a review request with its signed link.
type ReviewLink struct {
	SKU, Name, ImageURL, URL, ReviewURL string
}

// ReviewEvent is the reviewRequest event: one signed link per product not asked about before.
func ReviewEvent(id, email string, o domain.Order, links []ReviewLink, expires, at time.Time) Track {
	items := make([]Fields, 0, len(links))
	for _, l := range links {
		it := Fields{"sku": l.SKU, "name": l.Name, "reviewUrl": l.ReviewURL}
		setString(it, "imageUrl", l.ImageURL)
		setString(it, "url", l.URL)
		items = append(items, it)
	}
	df := orderFields(o)
	df["items"] = items
	df["itemCount"] = int64(len(items))
	setDate(df, "reviewLinksExpireAt", expires)
	return Track{ID: boundedID(id), Email: email, EventName: EventReviewRequest, CreatedAt: unix(at), DataFields: df}
}

// EmailChange is the users/updateEmail body for an EmailChanged fact.
func EmailChange(f domain.Fact) UpdateEmail {
	return UpdateEmail{CurrentEmail: f.OldEmail, NewEmail: f.Email}
}

// describe is a short human name of a request, for notes.
func describe(path string, body any) string {
	switch b := body.(type) {
	case Track:
		return b.EventName
	case Subscribe:
		return fmt.Sprintf("lists/subscribe %d", b.ListID)
	case Unsubscribe:
		return fmt.Sprintf("lists/unsubscribe %d", b.ListID)
	}
	return strings.TrimPrefix(path, "/api/")
}
