package ontraport

import (
	"context"
	"fmt"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// paymentPaid is the payment status field's value once a payment went through.
const paymentPaid = "paid"

// paymentFailed reports a declined one-off payment, which UltraCart's former integration never
// passed on: the contact is merged with the payment status field set to the declined word (the
// payment_failed status word, "card declined" unless changed, so one word means a decline
// everywhere), and the declined tag is removed and added again so that an automation on it runs
// for every decline.
func (s *session) paymentFailed(ctx context.Context, f domain.Fact) (result, error) {
	if !s.cfg.orders {
		return s.skip("purchases are off (ontraport.disable_orders)")
	}
	o := f.Order
	if o == nil {
		return result{}, fmt.Errorf("%w: OrderPaymentFailed without an order", ErrBadFact)
	}
	p := orderPerson(*o)
	p.Email = factEmail(f)
	fields := contactFields(p)
	word := s.cfg.statusWord(domain.SubPaymentFailed)
	if err := s.paymentStatus(ctx, fields, word); err != nil {
		return result{}, err
	}
	cr, err := s.upsertContact(ctx, fields)
	if err != nil {
		return result{}, err
	}
	done := map[string]any{"contact_id": cr.ID, "status": word}
	if tag := s.cfg.tagPaymentDeclined; tag != "" {
		if err := s.retag(ctx, cr.ID, tag); err != nil {
			return result{}, err
		}
		done["tag"] = tag
	}
	return sent(done), nil
}

// paymentStatus puts word into the payment status field of a contact merge, when the field is
// configured and exists.
func (s *session) paymentStatus(ctx context.Context, fields map[string]any, word string) error {
	name := s.cfg.fields.paymentStatus
	keys, err := s.fieldKeys(ctx, name)
	if err != nil {
		return err
	}
	if k := keys[name]; k != "" {
		fields[k] = word
	}
	return nil
}
