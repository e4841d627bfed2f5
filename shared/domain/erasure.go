package domain

import (
	"strconv"
	"strings"
	"time"
)

// Erasure is a contact's request to be forgotten. Its personal data goes everywhere cartrelay
// keeps it; its orders and subscriptions stay, for revenue and reports, under a pseudonym: an
// address of the reserved .invalid domain (RFC 2606) that no person can have, made from a keyed
// hash of the contact's email so that erasing the same person again lands in the same place.
//
// FactContactErased carries it to each destination, which forgets the contact there.
const FactContactErased FactKind = "ContactErased"

// PseudonymDomain is the domain of every pseudonym. .invalid is reserved: it never resolves, so
// no real address (and no mail) can ever collide with one.
const PseudonymDomain = "erased.invalid"

const pseudonymPrefix = "erased-"

// Pseudonym is the address an erased contact's records live under, from the keyed hash of its
// email (hex, as shared/erasure computes it).
func Pseudonym(hexDigest string) string { return pseudonymPrefix + hexDigest + "@" + PseudonymDomain }

// IsPseudonym reports whether email is an erased contact's pseudonym rather than an address.
func IsPseudonym(email string) bool {
	return strings.HasPrefix(email, pseudonymPrefix) && strings.HasSuffix(email, "@"+PseudonymDomain)
}

// Erasure is the payload of ContactErased: what a destination needs to forget the contact. The
// fact's Email is the pseudonym, so everything recorded about the delivery (the delivery log, a
// parked failure) lives with the pseudonym and not with the address being forgotten.
type Erasure struct {
	Pseudonym string `json:"pseudonym"`
	// Emails are the addresses to forget at the destination: the contact's email and the ones it
	// had before, each once.
	Emails []string `json:"emails"`
	// DestinationIDs are the contact's ids at each destination ("ontraport": "42"), when known.
	DestinationIDs map[string]string `json:"destination_ids,omitempty"`
	At             time.Time         `json:"at"`
}

// ContactErasedID identifies the erasure of one address (token is a keyed hash of it, never the
// address itself) at one time: the same person can come back as a new contact and be erased
// again.
func ContactErasedID(account, token string, at time.Time) string {
	return factID(account, FactContactErased, keyPart(token), strconv.FormatInt(at.UnixNano(), 10))
}

// PseudonymizeOrder keeps what an order counts for (amounts, items, dates, statuses, campaign
// touches, the affiliate who earned it) and drops what says who bought it: the email becomes
// the pseudonym; names, addresses (but the country), phone, opt-ins, the source's customer
// profile id and the parcels' tracking numbers (which lead to an address) go; click ids keep
// their names without their values, and any of emails written in a campaign's term, content
// or id, or in a refund's or dispute's reason, becomes the pseudonym. Campaign sources, media
// and names are kept: they name the merchant's campaigns, and reports group by them. What a
// report reads of the order is unchanged, so totals add up to the cent before and after.
func PseudonymizeOrder(o Order, pseudonym string, emails ...string) Order {
	o.Email = pseudonym
	o.Billing, o.ShipTo = Address{CountryCode: o.Billing.CountryCode}, Address{CountryCode: o.ShipTo.CountryCode}
	o.Phone = ""
	o.EmailOptIn, o.SMSOptIn = nil, nil
	o.CustomerID = ""
	o.Tracking = nil
	scrub := func(s string) string { return ReplaceEmails(s, emails, pseudonym) }
	if len(o.UTMs) > 0 {
		us := make([]UTM, len(o.UTMs))
		for i, u := range o.UTMs {
			if len(u.ClickIDs) > 0 {
				// A click id names one visitor's click at an ad network; whether there was one
				// is what attribution reads.
				ids := make(map[string]string, len(u.ClickIDs))
				for k := range u.ClickIDs {
					ids[k] = "erased"
				}
				u.ClickIDs = ids
			}
			u.Term, u.Content, u.ID = scrub(u.Term), scrub(u.Content), scrub(u.ID)
			us[i] = u
		}
		o.UTMs = us
	}
	if len(o.Refunds) > 0 {
		o.Refunds = append([]RefundLine(nil), o.Refunds...)
		for i := range o.Refunds {
			o.Refunds[i].Reason = scrub(o.Refunds[i].Reason)
		}
	}
	if len(o.Chargebacks) > 0 {
		o.Chargebacks = append([]ChargebackLine(nil), o.Chargebacks...)
		for i := range o.Chargebacks {
			o.Chargebacks[i].Reason = scrub(o.Chargebacks[i].Reason)
		}
	}
	return o
}

// PseudonymizeSubscription keeps a subscription's products, amounts and status history and
// moves it to the pseudonym; any of emails written in its reasons becomes the pseudonym.
func PseudonymizeSubscription(s Subscription, pseudonym string, emails ...string) Subscription {
	s.Email = pseudonym
	s.Reason = ReplaceEmails(s.Reason, emails, pseudonym)
	if len(s.History) > 0 {
		s.History = append([]StatusChange(nil), s.History...)
		for i := range s.History {
			s.History[i].Reason = ReplaceEmails(s.History[i].Reason, emails, pseudonym)
		}
	}
	return s
}

// ReplaceEmails replaces every occurrence of each of emails (lower-cased, as NormalizeEmail
// makes them) in s, whatever the case of its ASCII letters, by with.
func ReplaceEmails(s string, emails []string, with string) string {
	for _, e := range emails {
		if e == "" || len(s) < len(e) {
			continue
		}
		lower := asciiLower(s)
		if !strings.Contains(lower, e) {
			continue
		}
		var b strings.Builder
		for {
			i := strings.Index(lower, e)
			if i < 0 {
				break
			}
			b.WriteString(s[:i])
			b.WriteString(with)
			s, lower = s[i+len(e):], lower[i+len(e):]
		}
		b.WriteString(s)
		s = b.String()
	}
	return s
}

// asciiLower folds ASCII letters only, so that byte offsets in the result are offsets in s.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}
