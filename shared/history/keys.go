// Package history keeps an account's stored history in the one table: contacts, their orders,
// subscriptions, carts, facts and deliveries, email aliases, dedupe markers and quarantined
// events. It owns every key layout (docs/architecture.md, Storage), so no other package builds keys.
package history

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// Sort keys and prefixes inside a contact's partition.
const (
	skProfile = "PROFILE"
	skAlias   = "ALIAS"
	// skFirstView sorts between PROFILE and S#, so one range read of a contact's orders,
	// profile and subscriptions takes it too.
	skFirstView = "PV"
	prefOrder   = "O#"
	prefSub     = "S#"
	prefCart    = "CART#"
	prefFact    = "F#"
	prefOutbox  = "OUT#"
	prefDeliv   = "DL#"
	prefFailed  = "FAILED#"
	dash        = "-"
)

// ContactPK is the partition of one contact: its profile, orders, subscriptions, carts, facts
// and deliveries live together so one query reads the whole contact.
func ContactPK(account, email string) string { return "A#" + account + "#E#" + email }

// contactEmail recovers the email from a contact partition key.
func contactEmail(account, pk string) (string, bool) {
	return strings.CutPrefix(pk, "A#"+account+"#E#")
}

func orderSK(orderKey string) string { return prefOrder + orderKey }

// ContactIndexShards is how many partitions the contact index spreads an account over, so that
// creating contacts fast does not make one index partition hot.
const ContactIndexShards = 16

// contactIndex is where a contact's profile sits in GSI2, the account's contact index: every
// contact that has a profile, which is how a rebuild of the reports finds them all.
func contactIndex(account, email string) (pk, sk string) {
	h := fnv.New32a()
	h.Write([]byte(email))
	return ContactIndexPK(account, int(h.Sum32()%ContactIndexShards)), email
}

// ContactIndexPK is shard n of the account's contact index (GSI2).
func ContactIndexPK(account string, n int) string { return fmt.Sprintf("A#%s#CI#%02d", account, n) }

// ContactEmail recovers the email from a contact partition key ("" when pk is not one of the
// account's contacts).
func ContactEmail(account, pk string) string {
	e, _ := contactEmail(account, pk)
	return e
}
func subSK(subKey string) string    { return prefSub + subKey }
func cartSK(cartKey string) string  { return prefCart + cartKey }
func factSK(factID string) string   { return prefFact + factID }
func outboxSK(factID string) string { return prefOutbox + factID }

// orderGSI1 finds an order by its key wherever its contact is.
func orderGSI1(account, orderKey string) string { return "O#" + account + "#" + orderKey }

// subGSI1 finds a subscription by its key wherever its contact is.
func subGSI1(account, subKey string) string { return "S#" + account + "#" + subKey }

// monthGSI2 partitions an account's orders by the month they were paid (or created), for
// reports and `orders list --since`.
func monthGSI2(account string, t time.Time) string {
	return "A#" + account + "#M#" + t.UTC().Format("2006-01")
}

func orderGSI2SK(t time.Time, orderKey string) string {
	return t.UTC().Format(sortableTime) + "#" + orderKey
}

// OrderPosition is where the month index files an order ("" when it has no time): what
// OrdersBetween reports as an order's position.
func OrderPosition(o domain.Order) string {
	at := o.PaidAt
	if at.IsZero() {
		at = o.CreatedAt
	}
	if at.IsZero() {
		return ""
	}
	return orderGSI2SK(at, o.Key)
}

// customerPK maps a source customer profile to the email it last had, which is how an email
// change on the same profile is recognised.
func customerPK(account, source, customerID string) string {
	return "A#" + account + "#C#" + source + "#" + customerID
}

// itemPK is an account's catalogue per source.
func itemPK(account, source string) string { return "A#" + account + "#I#" + source }

// affiliatePK is an account's affiliate program members per source.
func affiliatePK(account, source string) string { return "A#" + account + "#AF#" + source }

// dedupePK marks one source event (by content) as ingested.
func dedupePK(account, hash string) string { return "D#" + account + "#" + hash }

// quarantinePK holds an account's kept-raw events; GSI1 lists them across accounts.
func quarantinePK(account string) string { return "A#" + account + "#Q" }

const quarantineGSI1 = "QUARANTINE"

// FactDonePK marks a fact as delivered to one destination (forwarder idempotency).
func FactDonePK(account, dest, factID string) string {
	return "A#" + account + "#F#" + dest + "#" + factID
}

func deliverySK(at time.Time, dest, factID string, attempt int) string {
	return fmt.Sprintf("%s%s#%s#%s#%03d", prefDeliv, at.UTC().Format(sortableTime), dest, factID, attempt)
}

// failedSK is the forwarder's copy of a fact one destination has not taken yet.
func failedSK(dest, factID string) string { return prefFailed + dest + "#" + factID }

// deliveryGSI1 lists an account's deliveries (all, or the failed ones) newest first.
func deliveryGSI1(account string, failed bool) string {
	if failed {
		return "DLF#" + account
	}
	return "DL#" + account
}

// sortableTime is a fixed-width UTC timestamp: unlike RFC 3339 with trimmed fractions, its
// strings sort in time order, which sort keys rely on.
const sortableTime = "2006-01-02T15:04:05.000000000Z"

// MentionGSI1 indexes an item outside a contact's partition that names email (a browser
// identified as the contact, a page-view log entry), so that an erasure finds every one. Such
// items set GSI1PK to it and GSI1SK to anything that tells them apart (their own key).
func MentionGSI1(account, email string) string { return "N#" + account + "#" + email }
