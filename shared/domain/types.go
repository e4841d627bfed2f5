// Package domain holds cartrelay's model of what happens in a merchant's carts: orders,
// subscriptions, contacts and the facts sent to destinations. It is pure: no I/O, no clock,
// no logging. Sources map into it (shared/ultracart, shared/thrivecart); destinations map out
// of it (shared/ontraport, shared/iterable).
package domain

import "time"

// Source names where an event came from.
type Source string

// Sources cartrelay reads.
const (
	UltraCart  Source = "ultracart"
	ThriveCart Source = "thrivecart"
	// Storefront is the store's own pages, through cartrelay's tracking snippet: carts while
	// the shopper is still in them, which neither cart platform reports.
	Storefront Source = "storefront"
)

// Address is a postal address.
type Address struct {
	FirstName   string `json:"first_name,omitempty"`
	LastName    string `json:"last_name,omitempty"`
	Company     string `json:"company,omitempty"`
	Address1    string `json:"address1,omitempty"`
	Address2    string `json:"address2,omitempty"`
	City        string `json:"city,omitempty"`
	Region      string `json:"region,omitempty"`
	PostalCode  string `json:"postal_code,omitempty"`
	CountryCode string `json:"country_code,omitempty"`
}

// UTM is one marketing touch.
type UTM struct {
	Source   string            `json:"source,omitempty"`
	Medium   string            `json:"medium,omitempty"`
	Campaign string            `json:"campaign,omitempty"`
	Term     string            `json:"term,omitempty"`
	Content  string            `json:"content,omitempty"`
	ID       string            `json:"id,omitempty"`
	ClickIDs map[string]string `json:"click_ids,omitempty"` // fbclid, gclid, msclkid, ...
	// Iterable campaign/template ids when the touch came from an Iterable message.
	IterableCampaignID string    `json:"iterable_campaign_id,omitempty"`
	IterableTemplateID string    `json:"iterable_template_id,omitempty"`
	At                 time.Time `json:"at,omitzero"`
}

// HasPlace reports whether the address says where: a street, a city or a postal code. A name
// alone (a digital order's ship-to, say) is no address to send.
func (a Address) HasPlace() bool { return a.Address1 != "" || a.City != "" || a.PostalCode != "" }

// Empty reports whether the touch carries nothing.
func (u UTM) Empty() bool {
	return u.Source == "" && u.Medium == "" && u.Campaign == "" && u.Term == "" && u.Content == "" &&
		u.ID == "" && len(u.ClickIDs) == 0 && u.IterableCampaignID == "" && u.IterableTemplateID == ""
}

// Affiliate credits an order to a partner.
type Affiliate struct {
	ID    string `json:"id"`
	SubID string `json:"sub_id,omitempty"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// LineItem is one product line of an order.
type LineItem struct {
	SKU         string   `json:"sku"`
	Name        string   `json:"name,omitempty"`
	Quantity    int64    `json:"quantity"`
	UnitPrice   Money    `json:"unit_price"`
	Discount    Money    `json:"discount"` // total discount on the line
	Total       Money    `json:"total"`    // quantity × unit price − discount
	ImageURL    string   `json:"image_url,omitempty"`
	URL         string   `json:"url,omitempty"`
	Categories  []string `json:"categories,omitempty"`
	Kind        string   `json:"kind,omitempty"` // ThriveCart: product, bump, upsell, downsell
	Refunded    Money    `json:"refunded"`
	QtyRefunded int64    `json:"quantity_refunded,omitempty"`
	// SubscriptionID links the line to the subscription it starts or renews.
	SubscriptionID string `json:"subscription_id,omitempty"`
	// Thumbnails are the source's own resized copies of the image (UltraCart makes them), so a
	// destination can pick the size it is configured for.
	Thumbnails []Thumbnail `json:"thumbnails,omitempty"`
}

// Thumbnail is one resized copy of a product image.
type Thumbnail struct {
	Width  int    `json:"width"`
	Height int    `json:"height"`
	URL    string `json:"url"`
}

// Tracking is one shipment tracking number.
type Tracking struct {
	Number  string `json:"number"`
	Carrier string `json:"carrier,omitempty"`
	URL     string `json:"url,omitempty"`
}

// OrderStatus is where an order is in its life.
type OrderStatus string

// Order statuses, in the order they normally advance. Rank gives the precedence used to
// merge out-of-order events.
const (
	OrderPending  OrderStatus = "pending"  // created, not paid
	OrderPaid     OrderStatus = "paid"     // payment processed
	OrderShipped  OrderStatus = "shipped"  // paid and at least partly shipped
	OrderRejected OrderStatus = "rejected" // rejected (fraud, decline); never revenue
	OrderDeleted  OrderStatus = "deleted"  // deleted at the source
)

// Order is a normalized order. Amounts are in the merchant's base currency; CustomerTotal keeps
// the amount in the customer's currency when it differs.
type Order struct {
	Key       string      `json:"key"` // see OrderKey
	Source    Source      `json:"source"`
	OrderID   string      `json:"order_id"`
	InvoiceID string      `json:"invoice_id,omitempty"`
	Email     string      `json:"email"`
	Status    OrderStatus `json:"status"`
	Stage     string      `json:"stage,omitempty"` // the source's own stage name
	Test      bool        `json:"test"`

	CreatedAt  time.Time `json:"created_at,omitzero"`
	PaidAt     time.Time `json:"paid_at,omitzero"`
	RefundedAt time.Time `json:"refunded_at,omitzero"`

	Currency      string `json:"currency"`
	Subtotal      Money  `json:"subtotal"`
	Discount      Money  `json:"discount"`
	Shipping      Money  `json:"shipping"`
	Handling      Money  `json:"handling"`
	Tax           Money  `json:"tax"`
	Total         Money  `json:"total"`
	Refunded      Money  `json:"refunded"` // cumulative; only grows
	CustomerTotal Money  `json:"customer_total"`
	// Refunds lists individual refunds for sources that report each refund's own amount rather
	// than a running total (ThriveCart). A version of the order carries only the refunds its
	// event reported, and its Refunded is their sum; merging versions takes the union of the
	// lines by ID, and the merged Refunded is the sum of that union (never less than the
	// largest Refunded seen). Empty for sources that report the total (UltraCart).
	Refunds []RefundLine `json:"refunds,omitempty"`
	// Partial is true when this version carries only part of the order: amounts, items and
	// status it does not report are zero-valued rather than known to be zero (an UltraCart
	// order without its summary expansion; a ThriveCart refund or rebill-failure event). Merge
	// it into the stored order field by field instead of replacing the stored order.
	Partial bool `json:"partial,omitempty"`

	// Chargebacks are the card disputes raised against the order, one line per dispute (see
	// ChargebackLine). ChargedBack and ChargedBackAt are derived from them and from the order's
	// amounts whenever a version is merged (shared/ledger), never reported by a source.
	Chargebacks []ChargebackLine `json:"chargebacks,omitempty"`
	// ChargedBack is the amount of the disputes that stand (open or lost), in the order's
	// currency and at most its Total. Like Refunded it is taken out of the order's revenue while
	// it stands; unlike Refunded it can shrink again, when a dispute is won or deleted. Zero
	// (the zero Money) when no dispute stands.
	ChargedBack Money `json:"charged_back,omitzero"`
	// ChargedBackAt is when the latest standing dispute was raised (its ChargebackLine.At); zero
	// when none stands.
	ChargedBackAt time.Time `json:"charged_back_at,omitzero"`

	Items    []LineItem `json:"items,omitempty"`
	Coupons  []string   `json:"coupons,omitempty"`
	Tracking []Tracking `json:"tracking,omitempty"`
	// ShippedAt, OutForDeliveryAt and DeliveredAt are when the order first shipped (with or
	// without a tracking number), was first out for delivery and was first delivered, as the
	// source reported; zero when it has not (or did not say when, for ShippedAt: Status shipped
	// still says it shipped).
	ShippedAt        time.Time `json:"shipped_at,omitzero"`
	OutForDeliveryAt time.Time `json:"out_for_delivery_at,omitzero"`
	DeliveredAt      time.Time `json:"delivered_at,omitzero"`
	// PaymentFailedAt is when a payment of the order was first declined (UltraCart's
	// order_payment_failed, or a payment status Declined or Capture Failed); zero when none was.
	// A later successful payment leaves it set: it records that a decline happened.
	PaymentFailedAt time.Time `json:"payment_failed_at,omitzero"`

	Billing Address `json:"billing"`
	ShipTo  Address `json:"ship_to"`
	Phone   string  `json:"phone,omitempty"` // E.164 when it could be parsed
	// EmailOptIn and SMSOptIn are nil when the source did not say.
	EmailOptIn *bool `json:"email_opt_in,omitempty"`
	SMSOptIn   *bool `json:"sms_opt_in,omitempty"`

	// UTMs in click order: first touch first, last touch last.
	UTMs      []UTM      `json:"utms,omitempty"`
	Affiliate *Affiliate `json:"affiliate,omitempty"`

	// Subscription facts: an original subscription order starts SubscriptionID; a rebill renews it.
	SubscriptionID string `json:"subscription_id,omitempty"`
	Rebill         bool   `json:"rebill"`
	// CustomerID is the source's customer profile id, when it has one.
	CustomerID string `json:"customer_id,omitempty"`
	// SourceUpdatedAt is the source's own last-change time, used to pick the newer of two
	// versions of the same order.
	SourceUpdatedAt time.Time `json:"source_updated_at,omitzero"`
}

// RefundLine is one refund as the source reported it (see Order.Refunds).
type RefundLine struct {
	// ID identifies the refund within its order, stable across redeliveries of the same event.
	ID     string    `json:"id"`
	Amount Money     `json:"amount"`
	At     time.Time `json:"at,omitzero"`
	Reason string    `json:"reason,omitempty"`
	// SKU is the refunded product line, when the source names one.
	SKU string `json:"sku,omitempty"`
}

// ChargebackStatus is where a card dispute stands, in the domain's words. Sources name their
// own statuses (UltraCart's are free text); their mappers choose one of these.
type ChargebackStatus string

// Chargeback statuses. Open and lost disputes stand: their amount is out of the order's revenue.
// A won dispute (the merchant kept the money, or the cardholder withdrew it) and a deleted one (the
// record was removed at the source) no longer stand.
//
// They are ranked for merging out-of-order reports of one dispute: open < lost < won < deleted.
// lost is above open because a decision follows the opening; won is above lost because a lost
// dispute can still be won on appeal (pre-arbitration, arbitration) while a win is final in
// practice; deleted is the source's last word on the record.
const (
	ChargebackOpen    ChargebackStatus = "open"
	ChargebackLost    ChargebackStatus = "lost"
	ChargebackWon     ChargebackStatus = "won"
	ChargebackDeleted ChargebackStatus = "deleted"
)

// Stands reports whether a dispute in this status holds the money back from the merchant.
func (s ChargebackStatus) Stands() bool { return s == ChargebackOpen || s == ChargebackLost }

// ChargebackLine is one card dispute against an order, as its source last reported it.
type ChargebackLine struct {
	// ID identifies the dispute within the account (UltraCart's chargeback_dispute_oid).
	ID string `json:"id"`
	// Amount is the disputed amount. It is in the order's currency, or in the customer's
	// currency (the order's CustomerTotal), which the ledger converts at the order's own rate.
	Amount Money            `json:"amount"`
	Status ChargebackStatus `json:"status"`
	// SourceStatus is the source's own word for the status, for the record.
	SourceStatus string `json:"source_status,omitempty"`
	// At is when the dispute was raised (UltraCart's chargeback_dts).
	At time.Time `json:"at,omitzero"`
	// ResolvedAt is when cartrelay learned that the dispute was won or deleted (sources do not
	// date that); zero while it stands.
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	Reason     string    `json:"reason,omitempty"`
}

// SubscriptionStatus is the domain's subscription state (docs/architecture.md, Subscription statuses). Each destination maps it to
// its own words.
type SubscriptionStatus string

// Subscription statuses.
const (
	SubActive        SubscriptionStatus = "active"
	SubPaused        SubscriptionStatus = "paused"
	SubPaymentFailed SubscriptionStatus = "payment_failed"
	SubCancelled     SubscriptionStatus = "cancelled"
	SubMerged        SubscriptionStatus = "merged" // replaced by an upgrade, or merged into another
	// SubDowngraded: cancelled because the customer bought a downgrade item (UltraCart's
	// cancel_downgrade), which runs as a subscription of its own.
	SubDowngraded SubscriptionStatus = "downgraded"
	SubDisabled   SubscriptionStatus = "disabled"
)

// StatusChange is one entry of a subscription's history.
type StatusChange struct {
	Status SubscriptionStatus `json:"status"`
	At     time.Time          `json:"at"`
	Reason string             `json:"reason,omitempty"`
	Event  string             `json:"event,omitempty"` // the source event name
}

// Subscription is a recurring order (UltraCart auto order, ThriveCart subscription).
type Subscription struct {
	Key             string             `json:"key"` // see SubscriptionKey
	Source          Source             `json:"source"`
	ID              string             `json:"id"`
	Email           string             `json:"email"`
	OriginalOrderID string             `json:"original_order_id,omitempty"`
	Status          SubscriptionStatus `json:"status"`
	StatusAt        time.Time          `json:"status_at"`
	Products        []string           `json:"products,omitempty"` // SKUs
	Amount          Money              `json:"amount"`
	Frequency       string             `json:"frequency,omitempty"`
	NextAttempt     time.Time          `json:"next_attempt,omitzero"`
	Reason          string             `json:"reason,omitempty"`
	History         []StatusChange     `json:"history,omitempty"`
}

// Customer is a source's customer profile (UltraCart customer_* events).
type Customer struct {
	Source     Source  `json:"source"`
	CustomerID string  `json:"customer_id"`
	Email      string  `json:"email"`
	FirstName  string  `json:"first_name,omitempty"`
	LastName   string  `json:"last_name,omitempty"`
	Phone      string  `json:"phone,omitempty"`
	Address    Address `json:"address"`
	// ShipTo is the profile's default shipping address.
	ShipTo     Address `json:"ship_to,omitzero"`
	EmailOptIn *bool   `json:"email_opt_in,omitempty"`
	SMSOptIn   *bool   `json:"sms_opt_in,omitempty"`
	Deleted    bool    `json:"deleted,omitempty"`
}

// Item is a catalogue product (UltraCart item_* events).
type Item struct {
	Source      Source    `json:"source"`
	SKU         string    `json:"sku"`
	Name        string    `json:"name,omitempty"`
	Description string    `json:"description,omitempty"`
	Price       Money     `json:"price"`
	ImageURL    string    `json:"image_url,omitempty"`
	URL         string    `json:"url,omitempty"`
	Categories  []string  `json:"categories,omitempty"`
	Deleted     bool      `json:"deleted,omitempty"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
	// Thumbnails of the item's default image, as the source made them.
	Thumbnails []Thumbnail `json:"thumbnails,omitempty"`
}

// Cart is a checkout cart (abandoned or with a return email sent).
type Cart struct {
	Source    Source     `json:"source"`
	CartID    string     `json:"cart_id"`
	Email     string     `json:"email"`
	Items     []LineItem `json:"items,omitempty"`
	Total     Money      `json:"total"`
	ReturnURL string     `json:"return_url,omitempty"`
	UTMs      []UTM      `json:"utms,omitempty"`
	At        time.Time  `json:"at"`
	Phone     string     `json:"phone,omitempty"`
	Billing   Address    `json:"billing"`
}

// AffiliateStatus is where a person stands in the merchant's affiliate program.
type AffiliateStatus string

// Affiliate statuses.
const (
	AffiliatePending  AffiliateStatus = "pending"
	AffiliateApproved AffiliateStatus = "approved"
	AffiliateRejected AffiliateStatus = "rejected"
)

// AffiliateSignup is a person who signed up to the merchant's affiliate program, and whether
// they are approved (ThriveCart's affiliate_approved and affiliate_rejected). Email is the
// affiliate's own address, which is the contact it belongs to.
type AffiliateSignup struct {
	Source      Source          `json:"source"`
	AffiliateID string          `json:"affiliate_id"`
	Email       string          `json:"email"`
	FirstName   string          `json:"first_name,omitempty"`
	LastName    string          `json:"last_name,omitempty"`
	Status      AffiliateStatus `json:"status"`
	// At is when the status was reported.
	At time.Time `json:"at"`
}

// EventKind says which part of an Event is set.
type EventKind string

// Event kinds.
const (
	KindOrder        EventKind = "order"
	KindSubscription EventKind = "subscription"
	KindCustomer     EventKind = "customer"
	KindItem         EventKind = "item"
	KindCart         EventKind = "cart"
	KindAffiliate    EventKind = "affiliate"
)

// Event is one source event after decoding and normalization: exactly one of the pointers is
// set, as Kind says. Name keeps the source's own event name for the record.
type Event struct {
	Source     Source        `json:"source"`
	Name       string        `json:"name"`
	Kind       EventKind     `json:"kind"`
	OccurredAt time.Time     `json:"occurred_at"`
	Order      *Order        `json:"order,omitempty"`
	Sub        *Subscription `json:"subscription,omitempty"`
	Customer   *Customer     `json:"customer,omitempty"`
	Item       *Item         `json:"item,omitempty"`
	Cart       *Cart         `json:"cart,omitempty"`
	// AffiliateSignup is set for KindAffiliate.
	AffiliateSignup *AffiliateSignup `json:"affiliate_signup,omitempty"`
}
