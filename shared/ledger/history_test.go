package ledger

import (
	"errors"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

func TestCutover(t *testing.T) {
	cut := Cutover{ForwardSince: mins(10)}
	cases := []struct {
		cut  Cutover
		at   time.Time
		want bool
	}{
		{cut, mins(9), true},
		{cut, mins(10), false}, // forward_since itself is forward
		{cut, mins(11), false},
		{cut, time.Time{}, true}, // an undated fact cannot prove it is new
		{Cutover{}, mins(-1000), false},
		{Cutover{}, time.Time{}, false},
	}
	for _, c := range cases {
		if got := c.cut.Historical(c.at); got != c.want {
			t.Errorf("forward_since %v, at %v: %v", c.cut.ForwardSince, c.at, got)
		}
	}
}

func TestRoute(t *testing.T) {
	kinds := []domain.FactKind{domain.FactOrderPlaced, domain.FactOrderRefunded, domain.FactOrderShipped,
		domain.FactSubscriptionChanged, domain.FactContactChanged, domain.FactEmailChanged,
		domain.FactCartAbandoned, domain.FactItemChanged}
	profile := map[domain.FactKind]bool{domain.FactContactChanged: true, domain.FactEmailChanged: true, domain.FactItemChanged: true}
	for _, k := range kinds {
		for _, mode := range []HistoryMode{HistoryNone, HistoryProfiles, HistoryAll, "", "everything"} {
			if !Route(domain.Fact{Kind: k}, mode) {
				t.Errorf("%s, %q: a current fact must always route", k, mode)
			}
			got := Route(domain.Fact{Kind: k, Historical: true}, mode)
			var want bool
			switch mode {
			case HistoryNone:
				want = false
			case HistoryAll:
				want = true
			default: // profiles, and the default for empty or unknown modes
				want = profile[k]
			}
			if got != want {
				t.Errorf("historical %s in mode %q: route %v, want %v", k, mode, got, want)
			}
		}
	}
}

// TestBackfillFiresNoCampaign: under the default mode, a backfill of an old order, its refund,
// shipment and cart produces nothing that could start a campaign, only the profile refresh.
func TestBackfillFiresNoCampaign(t *testing.T) {
	cut := Cutover{ForwardSince: mins(60 * 24 * 365)}
	o := kitchenSink(t)
	o.Status = domain.OrderShipped
	o.Refunded, o.RefundedAt = usd(100), o.PaidAt.Add(time.Hour)
	stored := MergeOrder(nil, o)
	facts := OrderFacts(acct, nil, stored, cut)
	before := domain.Contact{Account: acct, Email: o.Email}
	after := Aggregate(before, []domain.Order{stored}, nil)
	facts = append(facts, ContactFacts(acct, before, after, o.SourceUpdatedAt, cut)...)
	facts = append(facts, CartFacts(acct, domain.Cart{Source: domain.UltraCart, CartID: "c", Email: o.Email, At: mins(5)}, cut)...)
	var routed []domain.FactKind
	for _, f := range facts {
		if Route(f, HistoryMode("")) {
			routed = append(routed, f.Kind)
		}
	}
	if len(facts) != 5 || len(routed) != 1 || routed[0] != domain.FactContactChanged {
		t.Errorf("facts %q, routed %v", describe(facts), routed)
	}
}

func TestParseHistoryMode(t *testing.T) {
	for in, want := range map[string]HistoryMode{"": HistoryProfiles, "none": HistoryNone, "profiles": HistoryProfiles, "all": HistoryAll} {
		if got, err := ParseHistoryMode(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	if _, err := ParseHistoryMode("All"); !errors.Is(err, ErrHistoryMode) {
		t.Errorf("err = %v", err)
	}
}
