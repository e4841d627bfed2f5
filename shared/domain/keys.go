package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// MaxFactIDLen is the longest fact id: SQS FIFO's MessageDeduplicationId takes at most 128
// characters, and a fact id is used as one.
const MaxFactIDLen = 128

// factIDHashLen is how many hex digits of SHA-256 replace the tail of an overlong id: 96 bits,
// far beyond any account's number of facts.
const factIDHashLen = 24

// OrderKey is an order's identity everywhere (stored order, fact ids, Iterable's purchase id,
// ONTRAPORT's external_order_id): "ultracart:<orderId>". ThriveCart rebills share their order
// id, so their mapper passes the invoice id too and the key becomes
// "thrivecart:<orderId>:<invoiceId>"; an empty invoiceID leaves the order id alone. Which orders
// need the invoice id is the source mapper's decision, not this function's.
//
// Each part is escaped (see keyPart), so ids that contain ':' cannot make two orders collide.
func OrderKey(src Source, orderID, invoiceID string) string {
	k := keyPart(string(src)) + ":" + keyPart(orderID)
	if invoiceID != "" {
		k += ":" + keyPart(invoiceID)
	}
	return k
}

// SubscriptionKey is a subscription's identity: "<src>:<id>" (UltraCart auto order code,
// ThriveCart subscription id).
func SubscriptionKey(src Source, id string) string {
	return keyPart(string(src)) + ":" + keyPart(id)
}

// OrderPlacedID identifies the one OrderPlaced fact of an order.
func OrderPlacedID(account, orderKey string) string {
	return factID(account, FactOrderPlaced, idPart(orderKey))
}

// OrderRefundedID identifies a refund by the order and its cumulative refunded amount
// (docs/architecture.md, Identity): a replayed refund event reports the same cumulative amount and so maps
// to the same fact, while a further refund grows it and gets a new one.
func OrderRefundedID(account, orderKey string, cumulative Money) string {
	amt := strconv.FormatInt(cumulative.Minor, 10) + keyPart(cumulative.Currency)
	return factID(account, FactOrderRefunded, idPart(orderKey), amt)
}

// OrderShippedID identifies a shipment by the order and its tracking number.
func OrderShippedID(account, orderKey, trackingNumber string) string {
	return factID(account, FactOrderShipped, idPart(orderKey), keyPart(trackingNumber))
}

// OrderUntrackedShipmentID identifies the shipment of an order that shipped with no tracking
// number known at the time: at most one per order. It is the shipment id with an empty number,
// which no tracked shipment has (orders drop empty numbers), so the two kinds never collide.
func OrderUntrackedShipmentID(account, orderKey string) string {
	return OrderShippedID(account, orderKey, "")
}

// OrderOutForDeliveryID and OrderDeliveredID identify an order's first report of each: one per
// order, however many parcels it ships in.
func OrderOutForDeliveryID(account, orderKey string) string {
	return factID(account, FactOrderOutForDelivery, idPart(orderKey))
}

// OrderDeliveredID: see OrderOutForDeliveryID.
func OrderDeliveredID(account, orderKey string) string {
	return factID(account, FactOrderDelivered, idPart(orderKey))
}

// OrderPaymentFailedID identifies the declined payment of an order: one per order, its first
// decline (UltraCart does not date its declines, so later ones cannot be told from a redelivery).
func OrderPaymentFailedID(account, orderKey string) string {
	return factID(account, FactOrderPaymentFailed, idPart(orderKey))
}

// OrderChargedBackID identifies a change of an order's standing chargebacks by the order, the
// amount now standing and a hash of its disputes' states (which the caller computes). A dispute's
// state only moves forward (open, lost, won, deleted), so an order's disputes never return to a
// state they left, and a replayed report maps to an id destinations have seen; the amount alone
// would not do, since it can go down and up again (one dispute won, another raised).
func OrderChargedBackID(account, orderKey string, standing Money, stateHash string) string {
	amt := strconv.FormatInt(standing.Minor, 10) + keyPart(standing.Currency)
	return factID(account, FactOrderChargedBack, idPart(orderKey), amt, keyPart(stateHash))
}

// OrderReversedID identifies the reversal of an order: an order is a sale during at most one
// stretch of its history, so it is reversed at most once.
func OrderReversedID(account, orderKey string) string {
	return factID(account, FactOrderReversed, idPart(orderKey))
}

// SubscriptionChangedID identifies a subscription reaching a status at a time. The time is part
// of it because a subscription can return to a status (active, paused, active again).
func SubscriptionChangedID(account, subKey string, status SubscriptionStatus, at time.Time) string {
	return factID(account, FactSubscriptionChanged, idPart(subKey), keyPart(string(status)),
		strconv.FormatInt(at.Unix(), 10))
}

// RebillScheduledID identifies the move of a subscription's next charge from one date to another
// (prev zero when none was scheduled). Both dates are in it, so a charge moved back to an earlier
// date is a new fact, unless it makes exactly the same move again.
func RebillScheduledID(account, subKey string, prev, next time.Time) string {
	var p int64
	if !prev.IsZero() {
		p = prev.Unix()
	}
	return factID(account, FactRebillScheduled, idPart(subKey), strconv.FormatInt(p, 10), strconv.FormatInt(next.Unix(), 10))
}

// AffiliateChangedID identifies an affiliate reaching a status at a time, so a status reported
// twice is one fact and a return to an earlier status later is another.
func AffiliateChangedID(account string, src Source, affiliateID string, status AffiliateStatus, at time.Time) string {
	return factID(account, FactAffiliateChanged, keyPart(string(src)), keyPart(affiliateID), keyPart(string(status)),
		strconv.FormatInt(at.Unix(), 10))
}

// ContactChangedID identifies a profile change by the contact's email and a hash the caller
// computes over what destinations see (shared/ledger decides which fields those are).
func ContactChangedID(account, email, profileHash string) string {
	return factID(account, FactContactChanged, keyPart(email), keyPart(profileHash))
}

// EmailChangedID identifies an email change from one address to another.
func EmailChangedID(account, oldEmail, newEmail string) string {
	return factID(account, FactEmailChanged, keyPart(oldEmail), keyPart(newEmail))
}

// CartAbandonedID identifies one abandonment of a cart; the time tells a cart abandoned again
// later from a redelivery of the same abandonment.
func CartAbandonedID(account string, src Source, cartID string, at time.Time) string {
	return factID(account, FactCartAbandoned, keyPart(string(src)), keyPart(cartID),
		strconv.FormatInt(at.Unix(), 10))
}

// CartUpdatedID identifies one change of a cart: from the contents before to the contents after
// (hashes the caller computes; before is "" for a new cart) at a time. A cart that returns to
// earlier contents is a new change, even within the same clock reading.
func CartUpdatedID(account string, src Source, cartID, before, after string, at time.Time) string {
	return factID(account, FactCartUpdated, keyPart(string(src)), keyPart(cartID), keyPart(before)+"-"+keyPart(after),
		strconv.FormatInt(at.UnixNano(), 10))
}

// ItemChangedID identifies a catalogue item in one state, by a hash of its content the caller
// computes.
func ItemChangedID(account string, src Source, sku, contentHash string) string {
	return factID(account, FactItemChanged, keyPart(string(src)), keyPart(sku), keyPart(contentHash))
}

// factID joins the account, the kind and the already-escaped parts, and keeps the result within
// MaxFactIDLen: an overlong id keeps a readable prefix and ends in "~" plus a hash of the whole
// id, so it stays deterministic and distinct ids stay distinct.
func factID(account string, kind FactKind, parts ...string) string {
	n := len(account) + len(kind) + 1
	for _, p := range parts {
		n += 1 + len(p)
	}
	var b strings.Builder
	b.Grow(n + 8)
	b.WriteString(keyPart(account))
	b.WriteByte(':')
	b.WriteString(string(kind))
	for _, p := range parts {
		b.WriteByte(':')
		b.WriteString(p)
	}
	id := b.String()
	if len(id) <= MaxFactIDLen {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return id[:MaxFactIDLen-1-factIDHashLen] + "~" + hex.EncodeToString(sum[:])[:factIDHashLen]
}

// KeyPart is how a component (an address, a source id) is written inside a key or a fact id.
func KeyPart(s string) string { return keyPart(s) }

// keyPart escapes one component of a key or id: '%', ':' and every byte outside printable
// ASCII become %XX. ':' separates components, and SQS accepts only printable ASCII without
// spaces in a deduplication id, so an email with a non-ASCII local part or a tracking number with
// a space still yields a valid, unambiguous id. Ordinary ids pass through unchanged.
func keyPart(s string) string {
	return escape(s, func(c byte) bool { return c == '%' || c == ':' })
}

// idPart makes an already built key (an OrderKey or SubscriptionKey) safe inside a fact id. Such
// keys are escaped already, so only bytes SQS would refuse are escaped here; a key built by hand
// with stray spaces still cannot produce an invalid id.
func idPart(key string) string {
	return escape(key, func(byte) bool { return false })
}

func escape(s string, special func(byte) bool) string {
	need := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || special(c) {
			need = true
			break
		}
	}
	if !need {
		return s
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || special(c) {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
