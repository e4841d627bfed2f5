package domain

import "time"

// FactKind names a change that destinations act on. Destinations never see raw source event
// names, so a duplicate, reordered or replayed source event cannot double-count anything.
type FactKind string

// Fact kinds (DESIGN.md, Flow).
const (
	FactOrderPlaced         FactKind = "OrderPlaced"
	FactOrderRefunded       FactKind = "OrderRefunded"
	FactOrderShipped        FactKind = "OrderShipped"
	FactSubscriptionChanged FactKind = "SubscriptionChanged"
	FactContactChanged      FactKind = "ContactChanged"
	FactEmailChanged        FactKind = "EmailChanged"
	FactCartAbandoned       FactKind = "CartAbandoned"
	FactItemChanged         FactKind = "ItemChanged"
)

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

	Order    *Order        `json:"order,omitempty"`
	Refund   *Refund       `json:"refund,omitempty"`
	Tracking []Tracking    `json:"tracking,omitempty"` // OrderShipped: the new numbers
	Sub      *Subscription `json:"subscription,omitempty"`
	// FromStatus is the status before a SubscriptionChanged ("" for a new subscription).
	FromStatus SubscriptionStatus `json:"from_status,omitempty"`
	Contact    *Contact           `json:"contact,omitempty"`
	OldEmail   string             `json:"old_email,omitempty"` // EmailChanged
	Cart       *Cart              `json:"cart,omitempty"`
	Item       *Item              `json:"item,omitempty"`
}
