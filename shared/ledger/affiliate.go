package ledger

import (
	"cmp"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// affiliateRank breaks ties between statuses reported for the same instant: the more final
// one wins, so the result does not depend on which report arrived last.
func affiliateRank(s domain.AffiliateStatus) int {
	switch s {
	case domain.AffiliatePending:
		return 1
	case domain.AffiliateApproved:
		return 2
	case domain.AffiliateRejected:
		return 3
	}
	return 0
}

// MergeAffiliate folds a new report of an affiliate into the stored one (nil when new): the later
// report wins (ties by affiliateRank, then status name), and names or an email only one report
// has are kept, so every order of the reports ends in the same record.
func MergeAffiliate(stored *domain.AffiliateSignup, in domain.AffiliateSignup) domain.AffiliateSignup {
	in.At = in.At.UTC()
	if stored == nil {
		return in
	}
	a, b := *stored, in
	if cmp.Or(b.At.Compare(a.At), cmp.Compare(affiliateRank(b.Status), affiliateRank(a.Status)),
		cmp.Compare(b.Status, a.Status)) < 0 {
		a, b = b, a
	}
	// b is the later report.
	b.Email = cmp.Or(b.Email, a.Email)
	b.FirstName = cmp.Or(b.FirstName, a.FirstName)
	b.LastName = cmp.Or(b.LastName, a.LastName)
	return b
}

// AffiliateFacts returns AffiliateChanged for an affiliate seen for the first time (the signup)
// and for one whose status moved, with what destinations knew before.
func AffiliateFacts(account string, before *domain.AffiliateSignup, after domain.AffiliateSignup, cut Cutover) []domain.Fact {
	var from domain.AffiliateStatus
	if before != nil {
		from = before.Status
		if from == after.Status {
			return nil
		}
	}
	if after.Email == "" || after.AffiliateID == "" || after.Status == "" {
		return nil
	}
	at := after.At.UTC()
	snap := after
	return []domain.Fact{{
		ID:                  domain.AffiliateChangedID(account, after.Source, after.AffiliateID, after.Status, at),
		Account:             account,
		Kind:                domain.FactAffiliateChanged,
		Email:               after.Email,
		OccurredAt:          at,
		Historical:          cut.Historical(at),
		AffiliateSignup:     &snap,
		FromAffiliateStatus: from,
	}}
}
