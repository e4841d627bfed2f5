package ontraport

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
)

// refundDone is remembered with an OrderRefunded, an OrderChargedBack or an OrderReversed:
// whatever takes revenue back from a logged order.
type refundDone struct {
	// Kind is "full" (the order's transaction marked refunded), "partial" (a negative
	// transaction logged for a refund), "chargeback" (a transaction of a chargeback change
	// logged) or "reversal" (a negative transaction of what remained of a reversed order).
	Kind string `json:"kind"`
	// InvoiceID is the order's transaction (full), or the transaction logged (the others).
	InvoiceID       int64  `json:"invoice_id"`
	TransactionID   int64  `json:"transaction_id,omitempty"`
	OrderInvoiceID  int64  `json:"order_invoice_id,omitempty"`
	ExternalOrderID string `json:"external_order_id"`
	Amount          string `json:"amount"`
	Adopted         bool   `json:"adopted,omitempty"`
}

// orderRefunded sends a refund. A refund of the whole order at once marks the order's
// transaction refunded (transaction/refund with its id). Anything else, a partial refund or the
// rest of an order already partly refunded, is logged as a transaction of the negative amount
// with external_order_id "<order key>:refund:<cumulative>": transaction/refund takes no amount,
// and marking the order refunded after partial refunds were logged would count them twice.
func (s *session) orderRefunded(ctx context.Context, f domain.Fact) (result, error) {
	if !s.cfg.refunds {
		return s.skip("refunds are off (ontraport.disable_refunds)")
	}
	o, r := f.Order, f.Refund
	if o == nil || r == nil || o.Key == "" {
		return result{}, fmt.Errorf("%w: OrderRefunded without its order or refund", ErrBadFact)
	}
	if r.Delta.Minor <= 0 {
		return s.skip("refund of %s adds nothing", r.Delta)
	}
	orig, res, err := s.loggedOrder(ctx, f, "refund")
	if err != nil || res != nil {
		return *res, err
	}
	full := r.Full && r.Delta == r.Cumulative
	if full {
		return s.fullRefund(ctx, o.Key, orig, r.Delta)
	}
	return s.partialRefund(ctx, f, o.Key, orig, r)
}

// loggedOrder finds the transaction of the fact's order, for a change that takes back (or puts
// back) part of it; what names the change ("refund", "chargeback", "reversal") for the notes.
// When there is none, res says what to record instead (skipped, with why) or err parks the
// delivery until the purchase is logged; a dry run stands in a placeholder.
func (s *session) loggedOrder(ctx context.Context, f domain.Fact, what string) (txDoc, *result, error) {
	o := f.Order
	orig, found, err := s.orderTransaction(ctx, f.Account, o.Key)
	if err != nil {
		return txDoc{}, &result{}, err
	}
	if found {
		return orig, nil, nil
	}
	skip := func(format string, args ...any) (txDoc, *result, error) {
		r, err := s.skip(format, args...)
		return txDoc{}, &r, err
	}
	switch {
	case s.cfg.dry:
		s.c.placeholder++
		return txDoc{InvoiceID: placeholderBase + s.c.placeholder}, nil, nil
	case !s.cfg.orders:
		return skip("order %s is not in ONTRAPORT and purchases are off (ontraport.disable_orders); its %s is not sent either", o.Key, what)
	case s.historical(*o):
		return skip("order %s was placed before forward_since and never logged in ONTRAPORT; its %s is not sent either", o.Key, what)
	}
	return txDoc{}, &result{}, fmt.Errorf("%w %s (no transaction with external_order_id %q): deliver its OrderPlaced, then replay this %s",
		ErrNoTransaction, o.Key, o.Key, what)
}

// fullRefund refunds the order's transaction, unless ONTRAPORT shows it refunded already (a
// redelivery), so a refund is sent once.
func (s *session) fullRefund(ctx context.Context, key string, orig txDoc, amount domain.Money) (result, error) {
	done := refundDone{Kind: "full", InvoiceID: orig.InvoiceID, ExternalOrderID: key, Amount: amount.Decimal()}
	status, err := s.c.transactionStatus(ctx, orig.InvoiceID)
	if err != nil {
		return result{}, err
	}
	if status == statusRefunded {
		s.note("ONTRAPORT shows transaction %d refunded already; adopted", orig.InvoiceID)
		done.Adopted = true
		return sent(done), nil
	}
	if err := s.c.refund(ctx, []int64{orig.InvoiceID}); err != nil {
		return result{}, err
	}
	return sent(done), nil
}

func (s *session) partialRefund(ctx context.Context, f domain.Fact, key string, orig txDoc, r *domain.Refund) (result, error) {
	return s.logTakeBack(ctx, f, orig, "partial", refundExternalID(key, r.Cumulative), skuRefund, r.Delta, r.At)
}

// orderTransaction finds the transaction logged for the order: in the OrderPlaced fact-done
// marker (only a real delivery's, not a dry run's placeholders), in this destination's record,
// or in ONTRAPORT by external_order_id.
func (s *session) orderTransaction(ctx context.Context, account, key string) (txDoc, bool, error) {
	raw, err := s.hist.FactDone(ctx, account, Name, domain.OrderPlacedID(account, key))
	if err != nil {
		return txDoc{}, false, fmt.Errorf("read the OrderPlaced marker of %s: %w", key, err)
	}
	if raw != nil {
		var m struct {
			Status string    `json:"status"`
			Result orderDone `json:"result"`
		}
		if json.Unmarshal(raw, &m) == nil && m.Status == history.DeliverySent && m.Result.InvoiceID > 0 {
			return txDoc{ContactID: m.Result.ContactID, TransactionID: m.Result.TransactionID, InvoiceID: m.Result.InvoiceID}, true, nil
		}
	}
	if d, ok, err := s.cache.transaction(ctx, key); err != nil || ok {
		return d, ok, err
	}
	rows, err := s.c.findTransactions(ctx, key)
	if err != nil || len(rows) == 0 {
		return txDoc{}, false, err
	}
	best := rows[0]
	for _, r := range rows[1:] {
		if r.ID < best.ID {
			best = r
		}
	}
	d := txDoc{ContactID: int64(best.ContactID), InvoiceID: int64(best.ID)}
	s.rememberTransaction(ctx, key, d)
	return d, true, nil
}

// historical reports whether the order's purchase was never forwarded because it predates the
// account's cutover (and the account did not opt in to history).
func (s *session) historical(o domain.Order) bool {
	at := firstTime(o.PaidAt, o.CreatedAt)
	if s.acct.ForwardSince.IsZero() || historyMode(s.acct) == accounts.HistoryAll {
		return false
	}
	return at.IsZero() || at.Before(s.acct.ForwardSince)
}
