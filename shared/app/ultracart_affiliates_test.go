package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/ultracart"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
)

// TestUltraCartAffiliateSignups: UltraCart sends no affiliate webhook, so its affiliate list is
// polled; a signup, its approval an hour later and a rejection become the same AffiliateChanged
// facts as ThriveCart's affiliate events, on the affiliate's own contact, once each, and a
// status cartrelay does not know is quarantined with the value named.
func TestUltraCartAffiliateSignups(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.account("acme", "")
	fake := ultracartfake.New(ultracartfake.Options{SimpleKey: "uc-key", Clock: h.clk})
	t.Cleanup(fake.Close)
	pending := fake.AddAffiliate("Pending")
	approved := fake.AddAffiliate("Approved")
	onHold := fake.AddAffiliate("On hold")
	if _, err := h.env.Connections.Put(ctx, connections.Connection{Account: "acme", Provider: connections.UltraCart,
		Kind: connections.KindSimpleKey, SimpleKey: "uc-key", BaseURL: fake.URL}); err != nil {
		t.Fatal(err)
	}
	h.pollAll()
	facts := func() map[string][]domain.Fact {
		out := map[string][]domain.Fact{}
		for _, f := range h.facts(ontraportQueue, domain.FactAffiliateChanged) {
			out[f.Email] = append(out[f.Email], f)
		}
		return out
	}
	got := facts()
	if len(got) != 2 || len(got[ultracartfake.AffiliateEmail(pending)]) != 1 || len(got[ultracartfake.AffiliateEmail(approved)]) != 1 {
		t.Fatalf("facts after the first poll: %+v", got)
	}
	a := got[ultracartfake.AffiliateEmail(approved)][0]
	if s := a.AffiliateSignup; s == nil || s.Source != domain.UltraCart || s.AffiliateID != "300001" || s.Status != domain.AffiliateApproved ||
		a.FromAffiliateStatus != "" {
		t.Fatalf("the approved signup: %+v %+v", a, a.AffiliateSignup)
	}
	q := h.quarantined("acme")
	if len(q) != 1 || q[0].Event != ultracart.EventAffiliate || !strings.Contains(q[0].Reason, `"On hold"`) {
		t.Fatalf("quarantine: %+v", q)
	}

	// An hour later: the pending one is approved, the approved one rejected, the odd one
	// unchanged; the poll reads the whole list again.
	fake.SetAffiliate(pending, map[string]any{"status": "Approved"})
	fake.SetAffiliate(approved, map[string]any{"status": "Rejected"})
	h.clk.Advance(time.Hour)
	h.pollAll()
	got = facts()
	p, r := got[ultracartfake.AffiliateEmail(pending)], got[ultracartfake.AffiliateEmail(approved)]
	if len(p) != 2 || p[1].AffiliateSignup.Status != domain.AffiliateApproved || p[1].FromAffiliateStatus != domain.AffiliatePending ||
		len(r) != 2 || r[1].AffiliateSignup.Status != domain.AffiliateRejected || r[1].FromAffiliateStatus != domain.AffiliateApproved {
		t.Fatalf("facts after the second poll: %+v", got)
	}
	// Read again with nothing changed: no new fact.
	h.clk.Advance(time.Hour)
	h.pollAll()
	if again := facts(); len(again[ultracartfake.AffiliateEmail(pending)]) != 2 || len(again[ultracartfake.AffiliateEmail(approved)]) != 2 {
		t.Fatalf("an unchanged list made facts: %+v", again)
	}

	// The odd one stays as it is for two more hours: every walk reads it again, and it is
	// still the one kept event, not one more per hour.
	for range 2 {
		h.clk.Advance(time.Hour)
		h.pollAll()
	}
	q = h.quarantined("acme")
	if len(q) != 1 || !strings.Contains(q[0].Reason, `"On hold"`) {
		t.Fatalf("quarantine after five walks of an unchanged record: %d kept, %+v", len(q), q)
	}
	// Replayed while cartrelay still does not know the status, it is held again, in its place.
	if err := h.env.App.ReplayQuarantined(ctx, q[0]); err != nil {
		t.Fatal(err)
	}
	h.drainIngest()
	if again := h.quarantined("acme"); len(again) != 1 || again[0].ID != q[0].ID || !again[0].ReplayedAt.IsZero() {
		t.Fatalf("quarantine after a replay that failed again: %+v", again)
	}

	// The merchant approves the odd one: a new record, so a new event, and its fact arrives.
	fake.SetAffiliate(onHold, map[string]any{"status": "Approved"})
	h.clk.Advance(time.Hour)
	h.pollAll()
	o := facts()[ultracartfake.AffiliateEmail(onHold)]
	if len(o) != 1 || o[0].AffiliateSignup.Status != domain.AffiliateApproved || o[0].FromAffiliateStatus != "" {
		t.Fatalf("facts after the odd one was approved: %+v", o)
	}
	if again := h.quarantined("acme"); len(again) != 1 || again[0].ID != q[0].ID {
		t.Fatalf("quarantine after the odd one was approved: %+v", again)
	}
}
