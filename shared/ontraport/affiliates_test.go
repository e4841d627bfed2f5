package ontraport

import (
	"time"

	"testing"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/domain"
)

func affiliateFact(status domain.AffiliateStatus, minute int) domain.Fact {
	at := t0.Add(time.Duration(minute) * time.Minute)
	a := domain.AffiliateSignup{Source: domain.ThriveCart, AffiliateID: "4411", Email: "pat@example.com", FirstName: "Pat",
		LastName: "Kim", Status: status, At: at}
	return domain.Fact{ID: domain.AffiliateChangedID(testAcct, a.Source, a.AffiliateID, status, at), Account: testAcct,
		Kind: domain.FactAffiliateChanged, Email: a.Email, OccurredAt: at, AffiliateSignup: &a}
}

// TestAffiliateSignupAndApproval: an approved affiliate's contact gets its AffiliateId, "Affiliate
// Approved" True and the approved tag; a rejection sets False and takes the tag off.
func TestAffiliateSignupAndApproval(t *testing.T) {
	e := newEnv(t)
	idKey, okKey := e.fake.AddField("AffiliateId"), e.fake.AddField("Affiliate Approved")
	e.mustDeliver(affiliateFact(domain.AffiliateApproved, 0))
	c, ok := e.fake.ContactByEmail("pat@example.com")
	if !ok || c.Fields[idKey] != "4411" || c.Fields[okKey] != "True" || !c.Tags["Affiliate approved"] || c.Fields["firstname"] != "Pat" {
		t.Fatalf("after approval: %+v", c)
	}
	e.mustDeliver(affiliateFact(domain.AffiliateRejected, 10))
	c, _ = e.fake.ContactByEmail("pat@example.com")
	if c.Fields[okKey] != "False" || c.Tags["Affiliate approved"] {
		t.Fatalf("after rejection: %+v", c)
	}
	if n := len(e.fake.Transactions()); n != 0 {
		t.Fatalf("an affiliate change logged %d transactions", n)
	}
}

// TestAffiliateSettings: the fields and the tag follow the settings ("-": none), and affiliates
// off turn the flow off.
func TestAffiliateSettings(t *testing.T) {
	e := newEnv(t, withAccount(func(a *accounts.Account) {
		set(a, "fields.affiliate_id", "Partner Id", "fields.affiliate_approved", "-", "tags.affiliate_approved", "-")
	}))
	key := e.fake.AddField("Partner Id")
	e.mustDeliver(affiliateFact(domain.AffiliateApproved, 0))
	c, _ := e.fake.ContactByEmail("pat@example.com")
	if c.Fields[key] != "4411" || len(c.Tags) != 0 || calls(e, "PUT", "/objects/tagByName") != 0 {
		t.Fatalf("fields %v tags %v", c.Fields, c.Tags)
	}
	off := newEnv(t, withAccount(func(a *accounts.Account) { set(a, "disable_affiliates", true) }))
	out := off.mustDeliver(affiliateFact(domain.AffiliateApproved, 0))
	if out.Status != "skipped" || len(off.fake.Calls()) != 0 {
		t.Fatalf("affiliates off: status %s, %d calls", out.Status, len(off.fake.Calls()))
	}
}
