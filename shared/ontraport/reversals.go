package ontraport

import (
	"context"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// orderChargedBack logs a change of an order's standing chargebacks as its own transaction of
// the pseudo-product "Chargeback": negative when a dispute is raised, positive when one is won or
// deleted, with external_order_id "<order key>:chargeback:<state>". ONTRAPORT has no chargeback
// status its API can set, and the order's own transaction must stay as logged so that a won
// dispute can be put back; the sum of an order's transactions is then what the merchant keeps.
// Chargebacks follow the refunds toggle: they are refunds the cardholder's bank made.
func (s *session) orderChargedBack(ctx context.Context, f domain.Fact) (result, error) {
	if !s.cfg.refunds {
		return s.skip("refunds, and with them chargebacks, are off (ontraport.disable_refunds)")
	}
	o, cb := f.Order, f.Chargeback
	if o == nil || cb == nil || o.Key == "" || cb.State == "" {
		return result{}, fmt.Errorf("%w: OrderChargedBack without its order or chargeback", ErrBadFact)
	}
	if cb.Delta.Minor == 0 {
		return s.skip("chargeback change of %s moves nothing", o.Key)
	}
	orig, res, err := s.loggedOrder(ctx, f, "chargeback")
	if err != nil || res != nil {
		return *res, err
	}
	return s.logTakeBack(ctx, f, orig, "chargeback", chargebackExternalID(o.Key, cb.State), skuChargeback, cb.Delta, cb.At)
}

// orderReversed takes back an order that stopped being a sale after it was logged (rejected,
// deleted or marked a test at the source). An order nothing was taken from yet is refunded in
// one step: PUT /transaction/refund with its transaction's id, never an empty selection. An
// order already partly refunded or charged back keeps those transactions, and what remains is
// logged as a negative transaction "<order key>:reversal" (refunding the original would count the
// earlier ones twice).
func (s *session) orderReversed(ctx context.Context, f domain.Fact) (result, error) {
	if !s.cfg.refunds {
		return s.skip("refunds, and with them reversals, are off (ontraport.disable_refunds)")
	}
	o, rv := f.Order, f.Reversal
	if o == nil || rv == nil || o.Key == "" {
		return result{}, fmt.Errorf("%w: OrderReversed without its order or reversal", ErrBadFact)
	}
	if rv.Net.Minor <= 0 {
		return s.skip("order %s was %s, but nothing of it remained to take back (refunded %s, charged back %s)",
			o.Key, rv.Why, rv.Refunded, rv.ChargedBack)
	}
	orig, res, err := s.loggedOrder(ctx, f, "reversal")
	if err != nil || res != nil {
		return *res, err
	}
	s.note("order %s was %s at the source", o.Key, rv.Why)
	if rv.Refunded.Minor == 0 && rv.ChargedBack.Minor == 0 {
		return s.fullRefund(ctx, o.Key, orig, rv.Net)
	}
	return s.logTakeBack(ctx, f, orig, "reversal", reversalExternalID(o.Key), skuReversal, rv.Net, rv.At)
}

// logTakeBack logs, once under external id ext, a transaction of one line of the pseudo-product
// sku that takes amount back from the order (a negative amount puts it back), against the
// order's contact (see ensureTransaction: a redelivery adopts what was logged).
func (s *session) logTakeBack(ctx context.Context, f domain.Fact, orig txDoc, kind, ext, sku string, amount domain.Money, at time.Time) (result, error) {
	cid := orig.ContactID
	if cid <= 0 {
		var err error
		if cid, err = s.contactID(ctx, factEmail(f)); err != nil {
			return result{}, err
		}
	}
	tx, adopted, err := s.ensureTransaction(ctx, ext, cid, nil, func() ([]line, time.Time, error) {
		return takeBack(sku, amount), firstTime(at, f.OccurredAt), nil
	})
	if err != nil {
		return result{}, err
	}
	logged, _ := amount.Neg()
	return sent(refundDone{Kind: kind, InvoiceID: tx.InvoiceID, TransactionID: tx.TransactionID,
		OrderInvoiceID: orig.InvoiceID, ExternalOrderID: ext, Amount: logged.Decimal(), Adopted: adopted}), nil
}

// shipmentTag marks a shipment or a delivery on the contact with the configured tag
// (ontraport.tags.shipped, ontraport.tags.delivered; none by default). ONTRAPORT has no shipment
// object its API can write, and an automation starts on a tag being added, so the tag is
// removed and added again: every shipment starts the automation, not only the contact's first.
func (s *session) shipmentTag(ctx context.Context, f domain.Fact, tag, setting string) (result, error) {
	if tag == "" {
		return s.skip("ONTRAPORT has no shipment object; set ontraport.tags.%s to tag the contact for %s facts", setting, f.Kind)
	}
	cid, err := s.contactID(ctx, factEmail(f))
	if err != nil {
		return result{}, err
	}
	if err := s.retag(ctx, cid, tag); err != nil {
		return result{}, err
	}
	return sent(map[string]any{"contact_id": cid, "tag": tag}), nil
}

// retag removes tag from the contact and adds it again: an ONTRAPORT automation starts when a
// tag is added, so it runs for each event, not only the contact's first.
func (s *session) retag(ctx context.Context, cid int64, tag string) error {
	if err := s.c.tagContacts(ctx, []int64{cid}, []string{tag}, true); err != nil {
		return err
	}
	return s.c.tagContacts(ctx, []int64{cid}, []string{tag}, false)
}
