package ultracart

import (
	"fmt"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// autoOrderEvents maps an auto_order_* event to a subscription event, plus, for
// auto_order_rebill, an order event for the rebill order when the payload carries it.
//
// Status:
//   - auto_order_cancel: cancelled; merged when UltraCart says another auto order replaced it
//     (merged_into_auto_order_oid, status "merged", cancel_upgrade, or a cancel_reason that
//     mentions an upgrade); downgraded when the customer bought a downgrade item
//     (cancel_downgrade, or a cancel_reason that mentions a downgrade).
//   - auto_order_disable: disabled.
//   - auto_order_decline: payment_failed, unless the payload already shows the auto order
//     cancelled, disabled or merged (the decline that ended it).
//   - auto_order_create, _rebill, _update, _preshipment: what the payload says: merged,
//     downgraded, cancelled (status canceled, or completed: every scheduled rebill ran), disabled (status
//     disabled, or not enabled), paused (every item paused), else active.
//
// StatusAt is canceled_dts, disabled_dts or merged_dts (else canceled_dts) for those statuses; the rebill order's
// payment (or creation) for auto_order_rebill; the original order's for auto_order_create;
// otherwise the receipt time.
func (n *normalizer) autoOrderEvents(a *AutoOrder) ([]domain.Event, error) {
	id := autoOrderID(a.AutoOrderOID, a.AutoOrderCode)
	if id == "" {
		return nil, missing("auto_order_code")
	}
	mail, err := autoOrderEmail(a)
	if err != nil {
		return nil, err
	}
	canceled, err := timeField("canceled_dts", a.CanceledDTS)
	if err != nil {
		return nil, err
	}
	disabled, err := timeField("disabled_dts", a.DisabledDTS)
	if err != nil {
		return nil, err
	}
	merged, err := timeField("merged_dts", a.MergedDTS)
	if err != nil {
		return nil, err
	}
	next, err := timeField("next_attempt", a.NextAttempt)
	if err != nil {
		return nil, err
	}

	status, reason := subscriptionStatus(n.name, a)
	sub := &domain.Subscription{
		Key:             domain.SubscriptionKey(domain.UltraCart, id),
		Source:          domain.UltraCart,
		ID:              id,
		Email:           mail,
		OriginalOrderID: text(a.OriginalOrderID),
		Status:          status,
		NextAttempt:     next,
		Reason:          reason,
	}
	if sub.OriginalOrderID == "" && a.OriginalOrder != nil {
		sub.OriginalOrderID = text(a.OriginalOrder.OrderID)
	}
	var products []string
	for _, it := range a.Items {
		products = append(products, text(it.OriginalItemID))
		if sub.Frequency == "" {
			sub.Frequency = text(it.Frequency)
		}
	}
	sub.Products = dedupe(products)

	// The rebill order, for auto_order_rebill: the newest of rebill_orders.
	var rebill *domain.Order
	if n.name == "auto_order_rebill" {
		if ro := newestOrder(a.RebillOrders); ro != nil {
			h := orderHints{rebill: true, subscriptionID: id, email: mail, items: a.Items}
			if rebill, err = n.order(ro, h); err != nil {
				return nil, prefixField(err, fmt.Sprintf("rebill_orders[%d].", indexOf(a.RebillOrders, ro)))
			}
		}
	}

	// Amount: what the newest rebill charged, else the original order's total.
	switch {
	case rebill != nil && !rebill.Partial:
		sub.Amount = rebill.Total
	case len(a.RebillOrders) > 0 && newestOrder(a.RebillOrders).Summary != nil:
		ro := newestOrder(a.RebillOrders)
		path := fmt.Sprintf("rebill_orders[%d].", indexOf(a.RebillOrders, ro))
		cur, err := n.baseCurrency(path+"currency_code", ro.CurrencyCode, ro.ExchangeRate, ro.Summary.Total)
		if err != nil {
			return nil, err
		}
		if sub.Amount, err = money(path+"summary.total", ro.Summary.Total, cur); err != nil {
			return nil, err
		}
	case a.OriginalOrder != nil && a.OriginalOrder.Summary != nil:
		oo := a.OriginalOrder
		cur, err := n.baseCurrency("original_order.currency_code", oo.CurrencyCode, oo.ExchangeRate, oo.Summary.Total)
		if err != nil {
			return nil, err
		}
		if sub.Amount, err = money("original_order.summary.total", oo.Summary.Total, cur); err != nil {
			return nil, err
		}
	default:
		cur, _ := n.baseCurrency("", "", "", nil) // nothing to read: cannot fail
		sub.Amount = domain.Money{Currency: cur}
	}

	// When the status took effect.
	var at time.Time
	switch status {
	case domain.SubCancelled:
		at = canceled
	case domain.SubDisabled:
		at = disabled
	case domain.SubMerged, domain.SubDowngraded:
		at = firstNonZero(merged, canceled)
	case domain.SubActive, domain.SubPaused:
		switch {
		case n.name == "auto_order_rebill" && rebill != nil:
			at = firstNonZero(rebill.PaidAt, rebill.CreatedAt)
		case n.name == "auto_order_create" && a.OriginalOrder != nil:
			at = firstNonZero(softTime(paymentDTS(a.OriginalOrder)), softTime(a.OriginalOrder.CreationDTS))
		}
	}
	if at.IsZero() {
		at = n.receivedAt
	}
	sub.StatusAt = at
	sub.History = []domain.StatusChange{{Status: status, At: at, Reason: reason, Event: n.name}}

	e := n.event(domain.KindSubscription, at)
	e.Sub = sub
	out := []domain.Event{e}
	if rebill != nil {
		oe := n.event(domain.KindOrder, firstNonZero(rebill.PaidAt, rebill.CreatedAt, rebill.SourceUpdatedAt))
		oe.Order = rebill
		out = append(out, oe)
	}
	return out, nil
}

func subscriptionStatus(name string, a *AutoOrder) (domain.SubscriptionStatus, string) {
	st := strings.ToLower(text(a.Status))
	cancelReason := text(a.CancelReason)
	failure := text(a.FailureReason)
	// replaced is merged or downgraded when another auto order took this one's place: merged
	// into it, or cancelled for an upgrade (merged) or a downgrade item (downgraded).
	var replaced domain.SubscriptionStatus
	replacedReason := ""
	switch {
	case strings.TrimSpace(string(a.MergedIntoAutoOrderOID)) != "":
		replaced, replacedReason = domain.SubMerged, "merged into auto order "+strings.TrimSpace(string(a.MergedIntoAutoOrderOID))
	case st == "merged":
		replaced, replacedReason = domain.SubMerged, "merged into another auto order"
	case a.CancelUpgrade.True():
		replaced, replacedReason = domain.SubMerged, "replaced by an upgrade"
	case a.CancelDowngrade.True():
		replaced, replacedReason = domain.SubDowngraded, "replaced by a downgrade"
	case strings.Contains(strings.ToLower(cancelReason), "downgrade"):
		replaced = domain.SubDowngraded
	case strings.Contains(strings.ToLower(cancelReason), "upgrade"):
		replaced = domain.SubMerged
	}
	if replaced != "" && cancelReason != "" {
		replacedReason = cancelReason
	}
	stopped := func() (domain.SubscriptionStatus, string, bool) {
		switch {
		case replaced != "":
			return replaced, replacedReason, true
		case st == "canceled" || st == "cancelled":
			return domain.SubCancelled, cancelReason, true
		case st == "disabled":
			return domain.SubDisabled, first(Text(failure), Text(cancelReason)), true
		}
		return "", "", false
	}
	switch name {
	case "auto_order_cancel":
		if replaced != "" {
			return replaced, replacedReason
		}
		return domain.SubCancelled, cancelReason
	case "auto_order_disable":
		return domain.SubDisabled, first(Text(failure), Text(cancelReason))
	case "auto_order_decline":
		if s, r, ok := stopped(); ok {
			return s, r
		}
		return domain.SubPaymentFailed, failure
	}
	if s, r, ok := stopped(); ok {
		return s, r
	}
	switch {
	case a.Completed.True():
		return domain.SubCancelled, "completed: every scheduled rebill ran"
	case a.Enabled.False():
		return domain.SubDisabled, first(Text(failure), Text(cancelReason))
	case allPaused(a.Items):
		return domain.SubPaused, ""
	}
	return domain.SubActive, ""
}

func allPaused(items []AutoOrderItem) bool {
	if len(items) == 0 {
		return false
	}
	for _, it := range items {
		if !it.Paused.True() {
			return false
		}
	}
	return true
}

// autoOrderEmail finds the customer's email: the original order's billing email, else the
// newest rebill order's.
func autoOrderEmail(a *AutoOrder) (string, error) {
	if o := a.OriginalOrder; o != nil && o.Billing != nil && text(o.Billing.Email) != "" {
		return email("original_order.billing.email", o.Billing.Email)
	}
	for i := len(a.RebillOrders) - 1; i >= 0; i-- {
		if b := a.RebillOrders[i].Billing; b != nil && text(b.Email) != "" {
			return email(fmt.Sprintf("rebill_orders[%d].billing.email", i), b.Email)
		}
	}
	return "", &fieldError{field: "original_order.billing.email",
		reason: "is missing (an auto order names its customer only through its orders: add original_order.billing to the webhook's expansion)"}
}

func paymentDTS(o *Order) Text {
	if o.Payment == nil {
		return ""
	}
	return o.Payment.PaymentDTS
}

// newestOrder is the rebill order created last (the last one listed when times tie or are
// missing).
func newestOrder(orders []Order) *Order {
	var best *Order
	var bestAt time.Time
	for i := range orders {
		t := softTime(orders[i].CreationDTS)
		if best == nil || !t.Before(bestAt) {
			best, bestAt = &orders[i], t
		}
	}
	return best
}

func indexOf(orders []Order, o *Order) int {
	for i := range orders {
		if &orders[i] == o {
			return i
		}
	}
	return -1
}

// prefixField puts a path prefix on a field error.
func prefixField(err error, prefix string) error {
	if fe, ok := err.(*fieldError); ok {
		return &fieldError{field: prefix + fe.field, reason: fe.reason, err: fe.err}
	}
	return err
}
