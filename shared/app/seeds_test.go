package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
)

// TestDeclinedPaymentReachesBothDestinations: UltraCart's order_payment_failed on an order that
// was never paid is one OrderPaymentFailed for each destination, however often it arrives, and
// the same order paid later is placed as usual.
func TestDeclinedPaymentReachesBothDestinations(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	declined := fixture(t, "ultracart", "order_payment_failed.json")
	h.postUC("acme", declined)
	h.postUC("acme", declined)
	h.drainIngest()
	for _, dest := range []string{ontraportQueue, iterableQueue} {
		if got := h.kinds(dest); strings.Join(got, ",") != string(domain.FactOrderPaymentFailed) {
			t.Fatalf("%s facts after a declined payment posted twice: %v", dest, got)
		}
	}
	paid := strings.NewReplacer("order_payment_failed", "order_payment_process", `"Declined"`, `"Processed"`).Replace(string(declined))
	paid = strings.Replace(paid, `"payment_status": "Processed"`, `"payment_status": "Processed", "payment_dts": "2024-05-02T15:00:00-04:00"`, 1)
	h.postUC("acme", []byte(paid))
	h.drainIngest()
	for _, dest := range []string{ontraportQueue, iterableQueue} {
		if got := h.kinds(dest); strings.Join(got, ",") != "OrderPaymentFailed,OrderPlaced" {
			t.Fatalf("%s facts after the order was paid: %v", dest, got)
		}
	}
}

// TestShipToReachesTheProfile: an UltraCart order's ship-to address lands on the contact and on
// the facts both destinations receive.
func TestShipToReachesTheProfile(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	raw := string(fixture(t, "ultracart", "order_create.json"))
	i := strings.Index(raw, `"shipping": {`)
	if i < 0 || !strings.Contains(raw[i:], `"city": "New York"`) {
		t.Fatal("the fixture's shipping address moved; update this test")
	}
	body := raw[:i] + strings.Replace(raw[i:], `"city": "New York"`, `"city": "Albany"`, 1)
	h.postUC("acme", []byte(body))
	h.drainIngest()
	v := h.contact("acme", marcus)
	if v.Profile.ShipTo.City != "Albany" || v.Profile.Address.City != "New York" {
		t.Fatalf("ship-to %+v, billing %+v", v.Profile.ShipTo, v.Profile.Address)
	}
	cc := h.facts(iterableQueue, domain.FactContactChanged)
	if len(cc) == 0 || cc[len(cc)-1].Contact.ShipTo.City != "Albany" {
		t.Fatalf("profile facts %+v", cc)
	}
}

// TestRenewalReminders: an UltraCart auto order's next_attempt reaches Iterable as a
// renewalScheduled fact each time it moves (once, however often the event arrives) and as the
// contact's next rebill; ONTRAPORT is handed the fact too and has nothing to do with it.
func TestRenewalReminders(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	created := fixture(t, "ultracart", "auto_order_create.json")
	h.postUC("acme", created)
	h.postUC("acme", created)
	h.drainIngest()
	may1 := time.Date(2024, 5, 1, 13, 0, 0, 0, time.UTC)
	rs := h.facts(iterableQueue, domain.FactRebillScheduled)
	if len(rs) != 1 || !rs[0].Sub.NextAttempt.Equal(may1) || !rs[0].PreviousRebillAt.IsZero() {
		t.Fatalf("after auto_order_create (twice): %+v", rs)
	}
	email := rs[0].Email
	if v := h.contact("acme", email); !v.Profile.NextRebillAt.Equal(may1) {
		t.Fatalf("contact's next rebill %v, want %v", v.Profile.NextRebillAt, may1)
	}
	h.postUC("acme", fixture(t, "ultracart", "auto_order_rebill.json"))
	h.drainIngest()
	jul1 := time.Date(2024, 7, 1, 13, 0, 0, 0, time.UTC)
	rs = h.facts(iterableQueue, domain.FactRebillScheduled)
	if len(rs) != 2 || !rs[1].Sub.NextAttempt.Equal(jul1) || !rs[1].PreviousRebillAt.Equal(may1) {
		t.Fatalf("after auto_order_rebill: %+v", rs)
	}
	if v := h.contact("acme", email); !v.Profile.NextRebillAt.Equal(jul1) {
		t.Fatalf("contact's next rebill %v after the rebill, want %v", v.Profile.NextRebillAt, jul1)
	}
	cc := h.facts(iterableQueue, domain.FactContactChanged)
	if len(cc) == 0 || !cc[len(cc)-1].Contact.NextRebillAt.Equal(jul1) {
		t.Fatal("the profile update after the rebill does not carry the new next rebill")
	}
	if got := h.facts(ontraportQueue, domain.FactRebillScheduled); len(got) != 2 {
		t.Fatalf("ONTRAPORT queue got %d RebillScheduled facts, want 2", len(got))
	}
}

// TestAffiliateApproval: ThriveCart's affiliate_approved and affiliate_rejected reach ONTRAPORT
// as AffiliateChanged facts of the affiliate's own contact, once however often they arrive.
func TestAffiliateApproval(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	h.postTC("acme", "affiliate_approved.json")
	h.postTC("acme", "affiliate_approved.json")
	h.drainIngest()
	fs := h.facts(ontraportQueue, domain.FactAffiliateChanged)
	if len(fs) != 1 || fs[0].Email != "pat.kim@example.com" || fs[0].AffiliateSignup.Status != domain.AffiliateApproved ||
		fs[0].AffiliateSignup.AffiliateID != "4411" {
		t.Fatalf("after affiliate_approved twice: %+v", fs)
	}
	h.postTC("acme", "affiliate_rejected.json")
	h.drainIngest()
	fs = h.facts(ontraportQueue, domain.FactAffiliateChanged)
	if len(fs) != 2 || fs[1].AffiliateSignup.Status != domain.AffiliateRejected || fs[1].FromAffiliateStatus != domain.AffiliateApproved {
		t.Fatalf("after affiliate_rejected: %+v", fs)
	}
	if q := h.quarantined("acme"); len(q) != 0 {
		t.Fatalf("quarantined: %+v", q)
	}
}

// TestAffiliateRecordHoldsNoAddress: what is kept of an affiliate is its id and status, so an
// erasure of the contact leaves nothing personal behind in it.
func TestAffiliateRecordHoldsNoAddress(t *testing.T) {
	h := newHarness(t)
	h.account("acme", "")
	h.postTC("acme", "affiliate_approved.json")
	h.drainIngest()
	a, err := history.New(h.env.Store).Affiliate(context.Background(), "acme", domain.ThriveCart, "4411")
	if err != nil || a == nil {
		t.Fatalf("affiliate record %+v, %v", a, err)
	}
	if a.Email != "" || a.FirstName != "" || a.LastName != "" || a.Status != domain.AffiliateApproved {
		t.Fatalf("kept %+v; want the status without an address or a name", a)
	}
}
