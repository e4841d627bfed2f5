package ledger

import (
	"reflect"
	"testing"

	"github.com/cartrelay/cartrelay/shared/domain"
)

func subAt(status domain.SubscriptionStatus, minute int) domain.Subscription {
	return domain.Subscription{Source: domain.ThriveCart, ID: "S1", Email: "ann@example.com",
		Status: status, StatusAt: mins(minute), Amount: usd(2900), Frequency: "month"}
}

func TestSubscriptionSequences(t *testing.T) {
	type step struct {
		in   domain.Subscription
		want []string
	}
	cases := []struct {
		name        string
		steps       []step
		wantStatus  domain.SubscriptionStatus
		wantHistory int
	}{
		{
			name: "in order",
			steps: []step{
				{subAt(domain.SubActive, 0), []string{"sub →active"}},
				{subAt(domain.SubPaused, 10), []string{"sub active→paused"}},
				{subAt(domain.SubActive, 20), []string{"sub paused→active"}},
				{subAt(domain.SubCancelled, 30), []string{"sub active→cancelled"}},
			},
			wantStatus: domain.SubCancelled, wantHistory: 4,
		},
		{
			name: "a late event lands in the history without moving the status",
			steps: []step{
				{subAt(domain.SubActive, 0), []string{"sub →active"}},
				{subAt(domain.SubCancelled, 30), []string{"sub active→cancelled"}},
				{subAt(domain.SubPaused, 10), nil},
			},
			wantStatus: domain.SubCancelled, wantHistory: 3,
		},
		{
			name: "duplicates change nothing",
			steps: []step{
				{subAt(domain.SubActive, 0), []string{"sub →active"}},
				{subAt(domain.SubActive, 0), nil},
				{subAt(domain.SubPaused, 5), []string{"sub active→paused"}},
				{subAt(domain.SubPaused, 5), nil},
			},
			wantStatus: domain.SubPaused, wantHistory: 2,
		},
		{
			name: "the same instant: the more final status wins whatever arrives last",
			steps: []step{
				{subAt(domain.SubCancelled, 7), []string{"sub →cancelled"}},
				{subAt(domain.SubActive, 7), nil},
			},
			wantStatus: domain.SubCancelled, wantHistory: 2,
		},
		{
			name: "returning to a status later is a change again",
			steps: []step{
				{subAt(domain.SubActive, 0), []string{"sub →active"}},
				{subAt(domain.SubPaymentFailed, 1), []string{"sub active→payment_failed"}},
				{subAt(domain.SubActive, 2), []string{"sub payment_failed→active"}},
				{subAt(domain.SubActive, 40), nil},
			},
			wantStatus: domain.SubActive, wantHistory: 4,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stored *domain.Subscription
			ids := map[string]bool{}
			for i, s := range c.steps {
				merged := MergeSubscription(stored, s.in)
				fs := SubscriptionFacts(acct, stored, merged, Cutover{})
				if got := describe(fs); !equalStrings(got, s.want) {
					t.Fatalf("step %d: facts %q, want %q", i, got, s.want)
				}
				for _, f := range fs {
					if ids[f.ID] {
						t.Fatalf("step %d: fact id %s again", i, f.ID)
					}
					ids[f.ID] = true
				}
				stored = &merged
			}
			if stored.Status != c.wantStatus || len(stored.History) != c.wantHistory {
				t.Errorf("final %s with %d history entries, want %s with %d", stored.Status, len(stored.History), c.wantStatus, c.wantHistory)
			}
		})
	}
}

func TestMergeSubscriptionConverges(t *testing.T) {
	a := subAt(domain.SubActive, 0)
	a.Products = []string{"OLD"}
	b := subAt(domain.SubPaused, 10)
	b.Products = []string{"NEW"}
	b.Reason = "customer asked"
	c := subAt(domain.SubActive, 10) // same instant as b, lower rank
	c.History = []domain.StatusChange{{Status: domain.SubPaused, At: mins(10), Event: "subscription_paused"}}
	vs := []domain.Subscription{a, b, c}
	var want domain.Subscription
	for i, perm := range [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}} {
		var s *domain.Subscription
		for _, k := range perm {
			m := MergeSubscription(s, vs[k])
			s = &m
		}
		if i == 0 {
			want = *s
			continue
		}
		if !reflect.DeepEqual(*s, want) {
			t.Fatalf("permutation %v:\n%+v\nwant\n%+v", perm, *s, want)
		}
	}
	if want.Status != domain.SubPaused || want.Reason != "customer asked" || want.Products[0] != "NEW" {
		t.Errorf("current %s (%q) products %v", want.Status, want.Reason, want.Products)
	}
	paused := want.History[len(want.History)-1]
	if paused.Event != "subscription_paused" || paused.Reason != "customer asked" {
		t.Errorf("reports of one change were not combined: %+v", paused)
	}
	if want.Key != "thrivecart:S1" {
		t.Errorf("key %q", want.Key)
	}
}

func TestSubscriptionFactContent(t *testing.T) {
	before := MergeSubscription(nil, subAt(domain.SubActive, 0))
	after := MergeSubscription(&before, subAt(domain.SubCancelled, 30))
	fs := SubscriptionFacts(acct, &before, after, Cutover{ForwardSince: mins(60)})
	if len(fs) != 1 {
		t.Fatalf("facts %q", describe(fs))
	}
	f := fs[0]
	if f.ID != "acct1:SubscriptionChanged:thrivecart:S1:cancelled:"+itoa(mins(30).Unix()) ||
		f.FromStatus != domain.SubActive || !f.OccurredAt.Equal(mins(30)) || !f.Historical ||
		f.Sub.Status != domain.SubCancelled || f.Email != "ann@example.com" {
		t.Errorf("fact %+v", f)
	}
}

func TestActiveSubscriptions(t *testing.T) {
	cases := []struct {
		subs map[string]domain.SubscriptionStatus
		want bool
	}{
		{nil, false},
		{map[string]domain.SubscriptionStatus{"a": domain.SubActive}, true},
		{map[string]domain.SubscriptionStatus{"a": domain.SubPaused}, true}, // ThriveCart paused counts
		{map[string]domain.SubscriptionStatus{"a": domain.SubPaymentFailed}, true},
		{map[string]domain.SubscriptionStatus{"a": domain.SubCancelled}, false},
		{map[string]domain.SubscriptionStatus{"a": domain.SubMerged, "b": domain.SubDisabled}, false},
		// One cancellation applies to its own subscription only.
		{map[string]domain.SubscriptionStatus{"a": domain.SubCancelled, "b": domain.SubActive}, true},
	}
	for _, c := range cases {
		if got := HasActiveSubscription(domain.Contact{Subscriptions: c.subs}); got != c.want {
			t.Errorf("%v: %v", c.subs, got)
		}
	}
}

// TestLeadingStatus: the status that stands for several subscriptions is the most alive one,
// whatever the map order, and one cancelled subscription never hides an active one.
func TestLeadingStatus(t *testing.T) {
	for _, tc := range []struct {
		subs map[string]domain.SubscriptionStatus
		want domain.SubscriptionStatus
		ok   bool
	}{
		{nil, "", false},
		{map[string]domain.SubscriptionStatus{"a": domain.SubCancelled, "b": domain.SubActive}, domain.SubActive, true},
		{map[string]domain.SubscriptionStatus{"a": domain.SubPaused, "b": domain.SubPaymentFailed}, domain.SubPaymentFailed, true},
		{map[string]domain.SubscriptionStatus{"a": domain.SubDisabled, "b": domain.SubDowngraded, "c": domain.SubMerged}, domain.SubDowngraded, true},
		{map[string]domain.SubscriptionStatus{"a": domain.SubCancelled, "b": domain.SubDowngraded}, domain.SubCancelled, true},
		{map[string]domain.SubscriptionStatus{"a": "zz", "b": "yy"}, "yy", true},
	} {
		for range 20 { // map order varies between iterations
			got, ok := LeadingStatus(tc.subs)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("LeadingStatus(%v) = %q, %v; want %q, %v", tc.subs, got, ok, tc.want, tc.ok)
			}
		}
	}
}

// subNext is a subscription version whose next charge is due at minute next (none when < 0).
func subNext(status domain.SubscriptionStatus, minute, next int) domain.Subscription {
	s := subAt(status, minute)
	if next >= 0 {
		s.NextAttempt = mins(next)
	}
	return s
}

// TestRebillScheduled: renewal reminders need to know when an active subscription's next charge
// moves; a repeat, a late older version or a subscription that is not active says nothing.
func TestRebillScheduled(t *testing.T) {
	type step struct {
		in   domain.Subscription
		want []string
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"started with a next charge, then each rebill moves it", []step{
			{subNext(domain.SubActive, 0, 1000), []string{"sub →active", "rebill -→m1000"}},
			{subNext(domain.SubActive, 1000, 2000), []string{"rebill m1000→m2000"}},
			{subNext(domain.SubActive, 1000, 2000), nil},
			{subNext(domain.SubActive, 2000, 3000), []string{"rebill m2000→m3000"}},
		}},
		{"a late older version moves nothing", []step{
			{subNext(domain.SubActive, 1000, 2000), []string{"sub →active", "rebill -→m2000"}},
			{subNext(domain.SubActive, 0, 1000), nil},
		}},
		{"no date scheduled, or not active: no reminder", []step{
			{subNext(domain.SubActive, 0, -1), []string{"sub →active"}},
			{subNext(domain.SubPaused, 10, 1000), []string{"sub active→paused"}},
			{subNext(domain.SubActive, 20, 1000), []string{"sub paused→active", "rebill -→m1000"}},
			{subNext(domain.SubCancelled, 30, -1), []string{"sub active→cancelled"}},
		}},
		{"a charge moved back to an earlier date is a move of its own", []step{
			{subNext(domain.SubActive, 0, 1000), []string{"sub →active", "rebill -→m1000"}},
			{subNext(domain.SubActive, 5, 1500), []string{"rebill m1000→m1500"}},
			{subNext(domain.SubActive, 6, 1000), []string{"rebill m1500→m1000"}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stored *domain.Subscription
			ids := map[string]bool{}
			for i, s := range c.steps {
				merged := MergeSubscription(stored, s.in)
				fs := SubscriptionFacts(acct, stored, merged, Cutover{})
				if got := describe(fs); !equalStrings(got, s.want) {
					t.Fatalf("step %d: facts %q, want %q", i, got, s.want)
				}
				for _, f := range fs {
					if ids[f.ID] {
						t.Fatalf("step %d: fact id %s again", i, f.ID)
					}
					ids[f.ID] = true
					if f.Kind == domain.FactRebillScheduled && (!f.OccurredAt.Equal(merged.StatusAt) || f.Email != "ann@example.com") {
						t.Errorf("step %d: fact %+v", i, f)
					}
				}
				stored = &merged
			}
		})
	}
}
