package domain

import "time"

// FactKind names a change that destinations act on. Destinations never see raw source event
// names, so a duplicate, reordered or replayed source event cannot double-count anything.
type FactKind string

// Fact kinds (docs/architecture.md, Facts and the outbox).
const (
	FactOrderPlaced         FactKind = "OrderPlaced"
	FactOrderRefunded       FactKind = "OrderRefunded"
	FactOrderShipped        FactKind = "OrderShipped"
	FactOrderOutForDelivery FactKind = "OrderOutForDelivery"
	FactOrderDelivered      FactKind = "OrderDelivered"
	// FactOrderChargedBack: the amount of an order's standing chargebacks changed (Chargeback).
	FactOrderChargedBack FactKind = "OrderChargedBack"
	// FactOrderReversed: an order destinations were told about is no longer a sale (rejected or
	// deleted at the source, or marked a test) and must be taken back (Reversal).
	FactOrderReversed FactKind = "OrderReversed"
	// FactOrderPaymentFailed: a payment of an order that is not (yet) a sale was declined.
	FactOrderPaymentFailed  FactKind = "OrderPaymentFailed"
	FactSubscriptionChanged FactKind = "SubscriptionChanged"
	// FactRebillScheduled: an active subscription's next charge is scheduled for a new date (it
	// started, renewed, or was moved); for renewal reminders.
	FactRebillScheduled FactKind = "RebillScheduled"
	FactContactChanged  FactKind = "ContactChanged"
	FactEmailChanged    FactKind = "EmailChanged"
	FactCartAbandoned   FactKind = "CartAbandoned"
	// FactCartUpdated: a shopper's cart changed while they were still shopping, as the store's
	// tracking snippet reported it (Cart, source Storefront).
	FactCartUpdated FactKind = "CartUpdated"
	FactItemChanged FactKind = "ItemChanged"
	// FactAffiliateChanged: a person signed up to the affiliate program, or their approval
	// changed.
	FactAffiliateChanged FactKind = "AffiliateChanged"
)

// FactKinds lists every fact kind, in the order above (then ContactErased). Every destination
// either sends each kind or skips it with a recorded reason (deliver/delivertest checks it).
func FactKinds() []FactKind {
	return []FactKind{
		FactOrderPlaced, FactOrderRefunded, FactOrderShipped, FactOrderOutForDelivery, FactOrderDelivered,
		FactOrderChargedBack, FactOrderReversed, FactOrderPaymentFailed, FactSubscriptionChanged,
		FactRebillScheduled, FactContactChanged, FactEmailChanged, FactCartAbandoned, FactItemChanged,
		FactAffiliateChanged, FactContactErased,
	}
}

// Refund is the payload of OrderRefunded.
type Refund struct {
	// Delta is what this fact refunds: the growth of the cumulative refunded amount.
	Delta Money `json:"delta"`
	// Cumulative is the order's refunded total after this fact; with the order key it is the
	// fact's identity.
	Cumulative Money `json:"cumulative"`
	// Full is true when the order is now refunded in full.
	Full   bool      `json:"full"`
	At     time.Time `json:"at,omitzero"`
	Reason string    `json:"reason,omitempty"`
}

// Chargeback is the payload of OrderChargedBack: the standing chargeback amount of an order
// moved from Standing−Delta to Standing.
type Chargeback struct {
	// Delta is the change of the standing amount: positive when a dispute is raised (revenue
	// leaves), negative when one is won or deleted (revenue returns). Never zero.
	Delta Money `json:"delta"`
	// Standing is the order's standing chargeback amount after this fact (Order.ChargedBack).
	Standing Money `json:"standing"`
	// State identifies the order's disputes as they stand after this fact; with the order key it
	// is the fact's identity, and destinations key their own records by it.
	State string    `json:"state"`
	At    time.Time `json:"at,omitzero"`
	// Disputes are the ids of the disputes whose change this fact reports.
	Disputes []string `json:"disputes,omitempty"`
	Reason   string   `json:"reason,omitempty"`
}

// Reversal is the payload of OrderReversed. Refunded and ChargedBack are what destinations had
// heard of when the order stopped being a sale, and Net what they still count:
// Total − Refunded − ChargedBack, the amount to take back.
type Reversal struct {
	// Why: "rejected", "deleted" or "test".
	Why         string    `json:"why"`
	Net         Money     `json:"net"`
	Refunded    Money     `json:"refunded"`
	ChargedBack Money     `json:"charged_back"`
	At          time.Time `json:"at,omitzero"`
}

// Fact is one change, identified deterministically so that every destination can use the id as
// an idempotency key. IDs start with the account.
type Fact struct {
	ID         string    `json:"id"`
	Account    string    `json:"account"`
	Kind       FactKind  `json:"kind"`
	Email      string    `json:"email"`
	OccurredAt time.Time `json:"occurred_at"`
	// Historical is true when the source event is older than the account's forward_since:
	// destinations then only refresh profiles unless the account opted in to history.
	Historical bool `json:"historical,omitempty"`

	Order  *Order  `json:"order,omitempty"`
	Refund *Refund `json:"refund,omitempty"`
	// Chargeback is set on OrderChargedBack, Reversal on OrderReversed.
	Chargeback *Chargeback   `json:"chargeback,omitempty"`
	Reversal   *Reversal     `json:"reversal,omitempty"`
	Tracking   []Tracking    `json:"tracking,omitempty"` // OrderShipped: the new numbers
	Sub        *Subscription `json:"subscription,omitempty"`
	// FromStatus is the status before a SubscriptionChanged ("" for a new subscription).
	FromStatus SubscriptionStatus `json:"from_status,omitempty"`
	// PreviousRebillAt is the next charge destinations knew before a RebillScheduled (zero when
	// none was scheduled).
	PreviousRebillAt time.Time `json:"previous_rebill_at,omitzero"`
	Contact          *Contact  `json:"contact,omitempty"`
	OldEmail         string    `json:"old_email,omitempty"` // EmailChanged
	Cart             *Cart     `json:"cart,omitempty"`
	Item             *Item     `json:"item,omitempty"`
	// Erasure is set on ContactErased.
	Erasure *Erasure `json:"erasure,omitempty"`
	// AffiliateSignup is the affiliate of an AffiliateChanged; FromAffiliateStatus what
	// destinations knew before ("" for a signup).
	AffiliateSignup     *AffiliateSignup `json:"affiliate_signup,omitempty"`
	FromAffiliateStatus AffiliateStatus  `json:"from_affiliate_status,omitempty"`
}
