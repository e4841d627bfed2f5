package ledger

import (
	"bytes"
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// subRank breaks ties between statuses reported for the same instant (a renewal and a
// cancellation stamped in the same second, say): the more final status wins, so that the
// current status does not depend on which event arrived last. Unknown statuses rank lowest and
// tie on their name.
func subRank(s domain.SubscriptionStatus) int {
	switch s {
	case domain.SubActive:
		return 1
	case domain.SubPaused:
		return 2
	case domain.SubPaymentFailed:
		return 3
	case domain.SubCancelled:
		return 4
	case domain.SubMerged:
		return 5
	case domain.SubDowngraded:
		return 6
	case domain.SubDisabled:
		return 7
	}
	return 0
}

// IsActive reports whether a subscription in status s still counts as active: active, paused
// (ThriveCart's paused subscription is not over, and merchants count it) and payment_failed (the
// source is still retrying the charge). cancelled, merged and downgraded (replaced by an upgrade
// or a downgrade, which is a subscription of its own) and disabled are over.
func IsActive(s domain.SubscriptionStatus) bool {
	return s == domain.SubActive || s == domain.SubPaused || s == domain.SubPaymentFailed
}

// HasActiveSubscription reports whether any of the contact's subscriptions is active (IsActive).
// A cancellation applies only to its own subscription: one cancelled subscription beside an
// active one leaves the contact active.
func HasActiveSubscription(c domain.Contact) bool {
	for _, s := range c.Subscriptions {
		if IsActive(s) {
			return true
		}
	}
	return false
}

// liveRank orders statuses by how alive a subscription in them is, for a contact's one-status
// summary (LeadingStatus): active first, then the ones the source may still bring back, then the
// ones that are over. Unknown statuses rank lowest.
func liveRank(s domain.SubscriptionStatus) int {
	switch s {
	case domain.SubActive:
		return 7
	case domain.SubPaymentFailed:
		return 6
	case domain.SubPaused:
		return 5
	case domain.SubCancelled:
		return 4
	case domain.SubDowngraded:
		return 3
	case domain.SubMerged:
		return 2
	case domain.SubDisabled:
		return 1
	}
	return 0
}

// LeadingStatus is the one status that stands for a contact with several subscriptions: the
// most alive of them (active, payment_failed, paused, cancelled, downgraded, merged, disabled, in
// that order), so one cancelled subscription beside an active one never reads as cancelled. ok is
// false when the contact has none. Ties between unknown statuses go to the smaller name, so the
// answer never depends on map order.
func LeadingStatus(subs map[string]domain.SubscriptionStatus) (domain.SubscriptionStatus, bool) {
	var best domain.SubscriptionStatus
	found := false
	for _, s := range subs {
		if s == "" {
			continue
		}
		if !found || liveRank(s) > liveRank(best) || (liveRank(s) == liveRank(best) && s < best) {
			best, found = s, true
		}
	}
	return best, found
}

// cmpChange orders history entries: by time, then rank, then name. The current status is the
// greatest entry.
func cmpChange(a, b domain.StatusChange) int {
	return cmp.Or(a.At.Compare(b.At), cmp.Compare(subRank(a.Status), subRank(b.Status)),
		strings.Compare(string(a.Status), string(b.Status)))
}

// MergeSubscription folds a new version of a subscription into the stored one (nil when new).
// Like MergeOrder it is a join, so every permutation and duplication of the events converges:
//
//   - History: the union of both histories and of each version's own (Status, StatusAt, Reason),
//     one entry per (status, instant), sorted by time. Entries reported twice keep the greater
//     reason and event name, so even those converge.
//   - Status, StatusAt, Reason: those of the latest entry (ties by subRank). An event that
//     arrives late lands in the history without moving the current status.
//   - Everything else is taken whole from the version whose latest entry is latest, ties broken
//     by the contents' canonical encoding.
//
// Mappers should set StatusAt to when the status began (UltraCart's canceled_dts, ThriveCart's
// event time), so the history reads as what happened.
func MergeSubscription(stored *domain.Subscription, in domain.Subscription) domain.Subscription {
	b := normalizeSub(in)
	if stored == nil {
		return b
	}
	a := normalizeSub(*stored)
	out := a
	if cmpSubContents(b, a) > 0 {
		out = b
	}
	out.History = unionHistory(a.History, b.History)
	setCurrent(&out)
	return out
}

// normalizeSub fills the key, adds the version's own status to its history and derives the
// current status from the history.
func normalizeSub(s domain.Subscription) domain.Subscription {
	if s.Key == "" {
		s.Key = domain.SubscriptionKey(s.Source, s.ID)
	}
	hist := s.History
	if s.Status != "" {
		own := domain.StatusChange{Status: s.Status, At: s.StatusAt, Reason: s.Reason}
		hist = append(hist[:len(hist):len(hist)], own) // never write into the caller's array
	}
	s.History = normalizeHistory(hist)
	setCurrent(&s)
	return s
}

func setCurrent(s *domain.Subscription) {
	if len(s.History) == 0 {
		s.Status, s.StatusAt, s.Reason = "", time.Time{}, ""
		return
	}
	cur := s.History[len(s.History)-1]
	s.Status, s.StatusAt, s.Reason = cur.Status, cur.At, cur.Reason
}

// normalizeHistory sorts entries, puts times in UTC and combines entries for the same
// (status, instant). A history already in that form is returned as is.
func normalizeHistory(h []domain.StatusChange) []domain.StatusChange {
	ok := true
	for i, c := range h {
		if c.At.Location() != time.UTC || (i > 0 && cmpChange(h[i-1], c) >= 0) {
			ok = false
			break
		}
	}
	if ok {
		if len(h) == 0 {
			return nil
		}
		return h
	}
	out := make([]domain.StatusChange, len(h))
	for i, c := range h {
		c.At = c.At.UTC()
		out[i] = c
	}
	slices.SortFunc(out, cmpChange)
	w := 0
	for i := range out {
		if w > 0 && cmpChange(out[w-1], out[i]) == 0 {
			out[w-1] = combineChange(out[w-1], out[i])
			continue
		}
		out[w] = out[i]
		w++
	}
	return out[:w]
}

// combineChange joins two reports of the same (status, instant).
func combineChange(a, b domain.StatusChange) domain.StatusChange {
	a.Reason = max(a.Reason, b.Reason)
	a.Event = max(a.Event, b.Event)
	return a
}

// unionHistory merges two normalized histories; when one holds the other it is returned as is.
func unionHistory(a, b []domain.StatusChange) []domain.StatusChange {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := make([]domain.StatusChange, 0, len(a)+len(b))
	i, j := 0, 0
	sameAsA := true
	for i < len(a) || j < len(b) {
		var c int
		switch {
		case j == len(b):
			c = -1
		case i == len(a):
			c = 1
		default:
			c = cmpChange(a[i], b[j])
		}
		switch {
		case c < 0:
			out = append(out, a[i])
			i++
		case c > 0:
			out = append(out, b[j])
			j++
			sameAsA = false
		default:
			m := combineChange(a[i], b[j])
			sameAsA = sameAsA && m == a[i]
			out = append(out, m)
			i++
			j++
		}
	}
	if sameAsA {
		return a
	}
	return out
}

// cmpSubContents orders versions for the choice of descriptive fields: the version that knows
// the later status time first, then the canonical encoding of those fields.
func cmpSubContents(a, b domain.Subscription) int {
	if c := a.StatusAt.Compare(b.StatusAt); c != 0 {
		return c
	}
	var ea, eb enc
	ea.subContents(a)
	eb.subContents(b)
	return bytes.Compare(ea.b, eb.b)
}

// subContents encodes every field MergeSubscription takes whole from one version: all but the
// history and the current status derived from it.
func (e *enc) subContents(s domain.Subscription) {
	e.str(s.Key)
	e.str(string(s.Source))
	e.str(s.ID)
	e.str(s.Email)
	e.str(s.OriginalOrderID)
	e.strs(s.Products)
	e.money(s.Amount)
	e.str(s.Frequency)
	e.time(s.NextAttempt)
}

// SubscriptionFacts returns SubscriptionChanged when the current status moved (or the
// subscription is new), with FromStatus the status destinations knew before ("" when new). It
// occurs at the new status's time; the id holds the subscription, the status and that time, so a
// subscription that returns to a status later produces a new fact.
//
// It also returns RebillScheduled when an active subscription's next charge (NextAttempt) is not
// the one destinations knew: the one before if the subscription was active then, none
// otherwise. It occurs when the version that scheduled it reported its status (StatusAt).
func SubscriptionFacts(account string, before *domain.Subscription, after domain.Subscription, cut Cutover) []domain.Fact {
	var from domain.SubscriptionStatus
	var knownNext time.Time
	if before != nil {
		from = before.Status
		if before.Status == domain.SubActive {
			knownNext = before.NextAttempt.UTC()
		}
	}
	var out []domain.Fact
	snap := after
	at := after.StatusAt.UTC()
	if after.Status != "" && after.Status != from {
		out = append(out, domain.Fact{
			ID:         domain.SubscriptionChangedID(account, after.Key, after.Status, at),
			Account:    account,
			Kind:       domain.FactSubscriptionChanged,
			Email:      after.Email,
			OccurredAt: at,
			Historical: cut.Historical(at),
			Sub:        &snap,
			FromStatus: from,
		})
	}
	if next := after.NextAttempt.UTC(); after.Status == domain.SubActive && !next.IsZero() && !next.Equal(knownNext) {
		out = append(out, domain.Fact{
			ID:               domain.RebillScheduledID(account, after.Key, knownNext, next),
			Account:          account,
			Kind:             domain.FactRebillScheduled,
			Email:            after.Email,
			OccurredAt:       at,
			Historical:       cut.Historical(at),
			Sub:              &snap,
			PreviousRebillAt: knownNext,
		})
	}
	return out
}
