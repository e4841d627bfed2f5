package ledger

import (
	"fmt"
	"testing"

	"github.com/cartrelay/cartrelay/shared/domain"
)

func aff(status domain.AffiliateStatus, minute int) domain.AffiliateSignup {
	return domain.AffiliateSignup{Source: domain.ThriveCart, AffiliateID: "77", Email: "pat@example.com", Status: status, At: mins(minute)}
}

// TestAffiliateFacts: a signup is one fact, each approval change another, a repeat or a late
// older report none; the record converges whatever the order of the reports.
func TestAffiliateFacts(t *testing.T) {
	steps := []struct {
		in   domain.AffiliateSignup
		want string
	}{
		{aff(domain.AffiliatePending, 0), "→pending"},
		{aff(domain.AffiliatePending, 0), ""},
		{aff(domain.AffiliateApproved, 10), "pending→approved"},
		{aff(domain.AffiliatePending, 5), ""},
		{aff(domain.AffiliateRejected, 20), "approved→rejected"},
		{aff(domain.AffiliateApproved, 30), "rejected→approved"},
	}
	var stored *domain.AffiliateSignup
	ids := map[string]bool{}
	for i, s := range steps {
		merged := MergeAffiliate(stored, s.in)
		fs := AffiliateFacts(acct, stored, merged, Cutover{})
		got := ""
		for _, f := range fs {
			got += fmt.Sprintf("%s→%s", f.FromAffiliateStatus, f.AffiliateSignup.Status)
			if ids[f.ID] || f.Kind != domain.FactAffiliateChanged || f.Email != "pat@example.com" {
				t.Fatalf("step %d: fact %+v", i, f)
			}
			ids[f.ID] = true
		}
		if got != s.want {
			t.Fatalf("step %d: facts %q, want %q", i, got, s.want)
		}
		stored = &merged
	}
	// Any order of the reports ends in the latest one.
	var rev *domain.AffiliateSignup
	for i := len(steps) - 1; i >= 0; i-- {
		m := MergeAffiliate(rev, steps[i].in)
		rev = &m
	}
	if *rev != *stored || rev.Status != domain.AffiliateApproved {
		t.Errorf("reversed %+v, in order %+v", *rev, *stored)
	}
	noMail := aff(domain.AffiliateApproved, 0)
	noMail.Email = ""
	if fs := AffiliateFacts(acct, nil, noMail, Cutover{}); fs != nil {
		t.Errorf("an affiliate without an email has no contact to reach: %+v", fs)
	}
}
