package ontraport

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// contactDone is remembered with contact and subscription facts.
type contactDone struct {
	ContactID  int64  `json:"contact_id"`
	Created    bool   `json:"created,omitempty"`
	Status     string `json:"status,omitempty"`
	Tag        string `json:"tag,omitempty"`
	RemovedTag string `json:"removed_tag,omitempty"`
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

// subscriptionChanged writes the status word to the subscription status field and applies the
// status's tag. The previous status's tag is removed unless another subscription of the contact
// still has that status, so the tags say which statuses the contact's subscriptions are in.
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
	word := s.cfg.statusWord(sub.Status)
	fields := map[string]any{"email": email}
	name := s.cfg.fields.subscriptionStatus
	keys, err := s.fieldKeys(ctx, name)
	if err != nil {
		return result{}, err
	}
	if k := keys[name]; k != "" {
		fields[k] = word
	}
	cr, err := s.upsertContact(ctx, fields)
	if err != nil {
		return result{}, err
	}
	done := contactDone{ContactID: cr.ID, Created: cr.Created, Status: word, Tag: s.cfg.subscriptionTag(word)}
	if done.Tag != "" {
		if err := s.c.tagContacts(ctx, []int64{cr.ID}, []string{done.Tag}, false); err != nil {
			return result{}, err
		}
	}
	if f.FromStatus != "" && f.FromStatus != sub.Status {
		old := s.cfg.subscriptionTag(s.cfg.statusWord(f.FromStatus))
		if old != "" && old != done.Tag && !s.otherSubscriptionIn(ctx, email, sub.Key, f.FromStatus) {
			if err := s.c.tagContacts(ctx, []int64{cr.ID}, []string{old}, true); err != nil {
				return result{}, err
			}
			done.RemovedTag = old
		}
	}
	return sent(done), nil
}

// otherSubscriptionIn reports whether another subscription of the contact is in a status with
// the same word. When the history cannot be read, the tag is kept: a stale tag is the smaller
// harm than removing one an automation relies on.
func (s *session) otherSubscriptionIn(ctx context.Context, email, key string, st domain.SubscriptionStatus) bool {
	state, err := s.hist.LoadContact(ctx, s.acct.ID, email)
	if err != nil {
		s.log.Warn("could not read the contact's subscriptions; the previous status tag is kept", slog.Any("error", err))
		return true
	}
	want := s.cfg.statusWord(st)
	for k, other := range state.Subs {
		if k != key && s.cfg.statusWord(other.Status) == want {
			return true
		}
	}
	return false
}
