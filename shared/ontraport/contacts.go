package ontraport

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/ledger"
)

// contactDone is remembered with contact and subscription facts.
type contactDone struct {
	ContactID  int64  `json:"contact_id"`
	Created    bool   `json:"created,omitempty"`
	Status     string `json:"status,omitempty"`
	Tag        string `json:"tag,omitempty"`
	RemovedTag string `json:"removed_tag,omitempty"`
	// Leading is the status word written for all of the contact's subscriptions, when it is not
	// the changed subscription's own.
	Leading string `json:"leading,omitempty"`
}

// contactChanged merges the profile: names, phone, address, opt-ins, and the lifetime value,
// purchase count and last purchase fields (recomputed by ingest, so always current).
func (s *session) contactChanged(ctx context.Context, f domain.Fact) (result, error) {
	if !s.cfg.contacts {
		return s.skip("contact updates are off (ontraport.disable_contacts)")
	}
	if f.Contact == nil {
		return result{}, fmt.Errorf("%w: ContactChanged without a contact", ErrBadFact)
	}
	// The field keys and the contact's id, read together.
	email := f.Email
	if email == "" {
		email = contactPerson(*f.Contact).Email
	}
	s.cache.prefetch(ctx, metaPK(s.acct.ID), contactPK(s.acct.ID, strings.ToLower(email)))
	fields, err := s.profileFields(ctx, *f.Contact, f.Email)
	if err != nil {
		return result{}, err
	}
	cr, err := s.upsertContact(ctx, fields)
	if err != nil {
		return result{}, err
	}
	return sent(contactDone{ContactID: cr.ID, Created: cr.Created}), nil
}

// profileFields are the contact fields of a profile, with the configured aggregate fields.
func (s *session) profileFields(ctx context.Context, c domain.Contact, email string) (map[string]any, error) {
	p := contactPerson(c)
	if email != "" {
		p.Email = email
	}
	fields := contactFields(p)
	n := s.cfg.fields
	keys, err := s.fieldKeys(ctx, n.ltv, n.purchaseCount, n.lastPurchase)
	if err != nil {
		return nil, err
	}
	if k := keys[n.ltv]; k != "" {
		fields[k] = json.Number(c.LTV.Decimal())
	}
	if k := keys[n.purchaseCount]; k != "" {
		fields[k] = c.PurchaseCount
	}
	if k := keys[n.lastPurchase]; k != "" && !c.LastPurchaseAt.IsZero() {
		// ONTRAPORT date fields hold Unix seconds.
		fields[k] = c.LastPurchaseAt.Unix()
	}
	return fields, nil
}

// emailChanged moves the ONTRAPORT contact of the old email to the new one, keeping its
// history there; with no contact for the old email, the new one is merged as usual.
func (s *session) emailChanged(ctx context.Context, f domain.Fact) (result, error) {
	if !s.cfg.contacts {
		return s.skip("contact updates are off (ontraport.disable_contacts)")
	}
	if f.OldEmail == "" || f.Email == "" {
		return result{}, fmt.Errorf("%w: EmailChanged without both emails", ErrBadFact)
	}
	var c domain.Contact
	if f.Contact != nil {
		c = *f.Contact
	}
	fields, err := s.profileFields(ctx, c, f.Email)
	if err != nil {
		return result{}, err
	}
	id, err := s.cache.contact(ctx, f.OldEmail)
	if err != nil {
		return result{}, err
	}
	if id == 0 {
		if id, _, err = s.c.contactIDByEmail(ctx, f.OldEmail); err != nil {
			return result{}, err
		}
	}
	if id == 0 {
		cr, err := s.upsertContact(ctx, fields)
		if err != nil {
			return result{}, err
		}
		return sent(contactDone{ContactID: cr.ID, Created: cr.Created}), nil
	}
	if err := s.c.updateContact(ctx, id, fields); err != nil {
		return result{}, err
	}
	if err := s.cache.putContact(ctx, f.Email, id); err != nil {
		s.log.Warn("could not remember the ONTRAPORT contact id", slog.Any("error", err))
	}
	return sent(contactDone{ContactID: id}), nil
}

// subscriptionChanged keeps the contact's subscription fields true for all of its
// subscriptions, not only the one that changed: the status field gets the word of the leading
// status (ledger.LeadingStatus: an active subscription beside a cancelled one reads active), and
// the subscriptions field lists each subscription with its own word. The subscriptions are read
// from the contact's history as it is now, with the fact's own subscription in it, so a fact
// delivered late still writes the current state. The tag of the new status is added; the
// previous status's tag is removed unless another subscription of the contact is still in a
// status with that word, so the tags say which statuses the contact's subscriptions are in.
func (s *session) subscriptionChanged(ctx context.Context, f domain.Fact) (result, error) {
	if !s.cfg.subscriptions {
		return s.skip("subscription updates are off (ontraport.disable_subscriptions)")
	}
	sub := f.Sub
	if sub == nil {
		return result{}, fmt.Errorf("%w: SubscriptionChanged without a subscription", ErrBadFact)
	}
	email := f.Email
	if email == "" {
		email = sub.Email
	}
	subs, err := s.contactSubscriptions(ctx, email, *sub)
	if err != nil {
		return result{}, err
	}
	word := s.cfg.statusWord(sub.Status)
	fields := map[string]any{"email": email}
	n := s.cfg.fields
	keys, err := s.fieldKeys(ctx, n.subscriptionStatus, n.subscriptions)
	if err != nil {
		return result{}, err
	}
	leading := sub.Status
	statuses := make(map[string]domain.SubscriptionStatus, len(subs))
	for k, x := range subs {
		statuses[k] = x.Status
	}
	if st, ok := ledger.LeadingStatus(statuses); ok {
		leading = st
	}
	if k := keys[n.subscriptionStatus]; k != "" {
		fields[k] = s.cfg.statusWord(leading)
	}
	if k := keys[n.subscriptions]; k != "" {
		fields[k] = s.subscriptionList(subs)
	}
	cr, err := s.upsertContact(ctx, fields)
	if err != nil {
		return result{}, err
	}
	done := contactDone{ContactID: cr.ID, Created: cr.Created, Status: word, Tag: s.cfg.subscriptionTag(word)}
	if leading != sub.Status {
		done.Leading = s.cfg.statusWord(leading)
	}
	if done.Tag != "" {
		if err := s.c.tagContacts(ctx, []int64{cr.ID}, []string{done.Tag}, false); err != nil {
			return result{}, err
		}
	}
	if f.FromStatus != "" && f.FromStatus != sub.Status {
		old := s.cfg.subscriptionTag(s.cfg.statusWord(f.FromStatus))
		if old != "" && old != done.Tag && !s.otherSubscriptionIn(subs, sub.Key, f.FromStatus) {
			if err := s.c.tagContacts(ctx, []int64{cr.ID}, []string{old}, true); err != nil {
				return result{}, err
			}
			done.RemovedTag = old
		}
	}
	return sent(done), nil
}

// contactSubscriptions are the contact's subscriptions as they stand now (history.Current), with
// sub in it if the history lacks it.
func (s *session) contactSubscriptions(ctx context.Context, email string, sub domain.Subscription) (map[string]domain.Subscription, error) {
	st, err := s.hist.Current(ctx, s.acct.ID, email)
	if err != nil {
		return nil, fmt.Errorf("read the contact's subscriptions: %w", err)
	}
	subs := st.Subs
	if subs == nil {
		subs = map[string]domain.Subscription{}
	}
	if _, ok := subs[sub.Key]; !ok {
		subs[sub.Key] = sub
	}
	return subs, nil
}

// subscriptionList is the subscriptions field: one line per subscription, "<id> [<products>]:
// <word>", sorted by subscription key.
func (s *session) subscriptionList(subs map[string]domain.Subscription) string {
	keys := make([]string, 0, len(subs))
	for k := range subs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		x := subs[k]
		id := x.ID
		if id == "" {
			id = k
		}
		if len(x.Products) > 0 {
			id += " [" + strings.Join(x.Products, ", ") + "]"
		}
		lines = append(lines, id+": "+s.cfg.statusWord(x.Status))
	}
	return strings.Join(lines, "\n")
}

// otherSubscriptionIn reports whether a subscription other than key is in a status with the same
// word as st.
func (s *session) otherSubscriptionIn(subs map[string]domain.Subscription, key string, st domain.SubscriptionStatus) bool {
	want := s.cfg.statusWord(st)
	for k, other := range subs {
		if k != key && s.cfg.statusWord(other.Status) == want {
			return true
		}
	}
	return false
}
