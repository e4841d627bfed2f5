package ultracart

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// EventAffiliate is the name affiliates read from UltraCart's affiliate query (POST
// /affiliate/affiliates/query, ucpoll's affiliates stream) are ingested under. UltraCart has no
// affiliate webhook, so the name is cartrelay's own and is never registered with UltraCart.
const EventAffiliate = "affiliate_poll"

// affiliateRecord is the part of UltraCart's Affiliate model cartrelay reads.
type affiliateRecord struct {
	OID               json.Number `json:"affiliate_oid"`
	Email             string      `json:"email"`
	FirstName         string      `json:"first_name"`
	LastName          string      `json:"last_name"`
	Status            string      `json:"status"`
	TerminatedForSpam bool        `json:"terminated_for_spam"`
}

// affiliateStatuses maps UltraCart's affiliate status, which its API documents only as
// "Status", to where the person stands. The words are those of the affiliate admin (a signup
// is approved or rejected; until then it waits); a status outside them is refused by name, so
// that a value UltraCart uses and cartrelay does not know is kept in quarantine rather than
// guessed at.
var affiliateStatuses = map[string]domain.AffiliateStatus{
	"approved": domain.AffiliateApproved, "active": domain.AffiliateApproved,
	"pending": domain.AffiliatePending, "unapproved": domain.AffiliatePending, "new": domain.AffiliatePending,
	"rejected": domain.AffiliateRejected, "denied": domain.AffiliateRejected, "declined": domain.AffiliateRejected,
	"disabled": domain.AffiliateRejected, "inactive": domain.AffiliateRejected, "deleted": domain.AffiliateRejected,
	"terminated": domain.AffiliateRejected,
}

// NormalizeAffiliate maps one Affiliate record, as the affiliate query lists it, to an affiliate
// event reported at receivedAt (the record carries no time of its own). An affiliate
// terminated for spam is rejected whatever its status says. Errors are *EventError wrapping
// ErrInvalidEvent and name the field at fault.
func NormalizeAffiliate(payload []byte, receivedAt time.Time) ([]domain.Event, error) {
	bad := func(field, reason string) ([]domain.Event, error) {
		return nil, &EventError{Name: EventAffiliate, Field: field, Reason: reason, Kind: ErrInvalidEvent}
	}
	var r affiliateRecord
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return bad("", "is not an UltraCart Affiliate object: "+err.Error())
	}
	oid, err := strconv.ParseInt(r.OID.String(), 10, 64)
	if err != nil || oid <= 0 {
		return bad("affiliate_oid", "must be the affiliate's positive object id")
	}
	email, err := domain.NormalizeEmail(r.Email)
	if err != nil {
		return bad("email", "must be the affiliate's address, which names their contact: "+err.Error())
	}
	status, ok := affiliateStatuses[strings.ToLower(strings.TrimSpace(r.Status))]
	if r.TerminatedForSpam {
		status, ok = domain.AffiliateRejected, true
	}
	if !ok {
		return bad("status", strconv.Quote(clipReason(r.Status))+" is not an affiliate status cartrelay knows (approved, pending, rejected and their synonyms); "+
			"the record is kept here and can be replayed once cartrelay maps it")
	}
	at := receivedAt.UTC()
	a := &domain.AffiliateSignup{Source: domain.UltraCart, AffiliateID: strconv.FormatInt(oid, 10), Email: email, Status: status,
		FirstName: strings.TrimSpace(r.FirstName), LastName: strings.TrimSpace(r.LastName), At: at}
	return []domain.Event{{Source: domain.UltraCart, Name: EventAffiliate, Kind: domain.KindAffiliate, OccurredAt: at, AffiliateSignup: a}}, nil
}

// clipReason keeps a value quoted in a message short.
func clipReason(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
