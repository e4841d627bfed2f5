package ontraport

import (
	"context"
	"fmt"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// affiliateChanged merges an affiliate program member into ONTRAPORT: its id and whether it is
// approved go into their contact fields ("True"/"False", the words UltraCart's former
// integration sent), and the approved tag is added on approval and removed otherwise.
// ONTRAPORT's partner objects cannot be written through its API, so an automation on the tag or
// the field is how the merchant makes the contact a partner.
func (s *session) affiliateChanged(ctx context.Context, f domain.Fact) (result, error) {
	if !s.cfg.affiliates {
		return s.skip("affiliates are off (ontraport.disable_affiliates)")
	}
	a := f.AffiliateSignup
	if a == nil {
		return result{}, fmt.Errorf("%w: AffiliateChanged without its affiliate", ErrBadFact)
	}
	approved := a.Status == domain.AffiliateApproved
	fields := contactFields(person{Email: factEmail(f), FirstName: a.FirstName, LastName: a.LastName})
	keys, err := s.fieldKeys(ctx, s.cfg.fields.affiliateID, s.cfg.fields.affiliateApproved)
	if err != nil {
		return result{}, err
	}
	if k := keys[s.cfg.fields.affiliateID]; k != "" {
		fields[k] = a.AffiliateID
	}
	if k := keys[s.cfg.fields.affiliateApproved]; k != "" {
		fields[k] = map[bool]string{true: "True", false: "False"}[approved]
	}
	cr, err := s.upsertContact(ctx, fields)
	if err != nil {
		return result{}, err
	}
	done := map[string]any{"contact_id": cr.ID, "affiliate_id": a.AffiliateID, "approved": approved}
	if tag := s.cfg.tagAffiliateApproved; tag != "" {
		if approved {
			err = s.retag(ctx, cr.ID, tag)
		} else {
			err = s.c.tagContacts(ctx, []int64{cr.ID}, []string{tag}, true)
		}
		if err != nil {
			return result{}, err
		}
		done["tag"] = tag
	}
	return sent(done), nil
}
