package domain

import "time"

// Contact is the profile of one email address within one account, with aggregates recomputed
// from the contact's stored orders (never incremented blindly, so a replay cannot inflate them).
type Contact struct {
	Account   string  `json:"account"`
	Email     string  `json:"email"`
	FirstName string  `json:"first_name,omitempty"`
	LastName  string  `json:"last_name,omitempty"`
	Phone     string  `json:"phone,omitempty"` // E.164
	Address   Address `json:"address"`
	// ShipTo is where the contact's latest order that names a ship-to address was sent (or the
	// customer profile's default shipping address).
	ShipTo     Address `json:"ship_to,omitzero"`
	EmailOptIn *bool   `json:"email_opt_in,omitempty"`
	SMSOptIn   *bool   `json:"sms_opt_in,omitempty"`

	// Revenue aggregates over paid, non-test, non-rejected orders, in the base currency.
	LTV          Money `json:"ltv"`           // net of refunds and standing chargebacks
	GrossRevenue Money `json:"gross_revenue"` // before refunds
	Refunded     Money `json:"refunded"`      // total refunded
	// ChargedBack is the total of the chargebacks that stand on the counted orders; LTV is net
	// of it, as of refunds. Zero when none stands.
	ChargedBack     Money     `json:"charged_back,omitzero"`
	PurchaseCount   int       `json:"purchase_count"` // orders counted in LTV
	AOV             Money     `json:"aov"`            // gross revenue / purchase count
	FirstPurchaseAt time.Time `json:"first_purchase_at,omitzero"`
	LastPurchaseAt  time.Time `json:"last_purchase_at,omitzero"`
	FirstTouch      *UTM      `json:"first_touch,omitempty"`
	LastTouch       *UTM      `json:"last_touch,omitempty"`

	// Subscriptions maps subscription key to its current status.
	Subscriptions map[string]SubscriptionStatus `json:"subscriptions,omitempty"`
	// NextRebillAt is the soonest next charge of the contact's active subscriptions, as the
	// sources schedule it; zero when none is scheduled.
	NextRebillAt time.Time `json:"next_rebill_at,omitzero"`
	// CustomerIDs are the source customer profile ids seen for this email ("ultracart:123").
	CustomerIDs []string `json:"customer_ids,omitempty"`
	// CustomerProfile is the last source customer profile applied to this contact. Kept apart
	// from the fields above so that they can be recomputed at any time: the profile's values
	// first, the latest order's where the profile has none.
	CustomerProfile *Customer `json:"customer_profile,omitempty"`
	// PreviousEmails are the emails this contact had before an email change.
	PreviousEmails []string `json:"previous_emails,omitempty"`
	// DestinationIDs remembers each destination's id for the contact ("ontraport": "42").
	DestinationIDs map[string]string `json:"destination_ids,omitempty"`
	// ErasedAt is set on a pseudonym's profile (see Erasure): when a contact was last erased
	// into it.
	ErasedAt time.Time `json:"erased_at,omitzero"`
}
