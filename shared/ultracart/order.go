package ultracart

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// UltraCart order stages (Order.current_stage).
const (
	stageRejected    = "Rejected"
	stageShipping    = "Shipping Department"
	stageCompleted   = "Completed Order"
	stageQuoteReq    = "Quote Request"
	stageQuoteSent   = "Quote Sent"
	payProcessed     = "Processed"
	payRefunded      = "Refunded"
	payDeclined      = "Declined"
	payVoided        = "Voided"
	payCaptureFailed = "Capture Failed"
)

// orderEvent maps an order_* event.
func (n *normalizer) orderEvent(o *Order) (domain.Event, error) {
	ord, err := n.order(o, orderHints{})
	if err != nil {
		return domain.Event{}, err
	}
	e := n.event(domain.KindOrder, n.orderOccurredAt(o, ord))
	e.Order = ord
	return e, nil
}

// orderHints carry what an enclosing auto order knows about one of its orders.
type orderHints struct {
	rebill         bool
	subscriptionID string
	email          string // used when the order itself carries none
	items          []AutoOrderItem
}

// order maps an UltraCart Order.
//
// Status, from strongest to weakest: deleted (order_delete); rejected (Rejected stage,
// reject_dts or order_reject); pending for quotes (Quote Request, Quote Sent); shipped (paid and
// a tracking number, a shipping date, an item shipped date, or an order_ship* event); paid
// (payment_dts, payment status Processed or Refunded, or a Shipping Department / Completed
// Order stage whose payment did not fail); pending otherwise.
func (n *normalizer) order(o *Order, h orderHints) (*domain.Order, error) {
	id := text(o.OrderID)
	if id == "" {
		return nil, missing("order_id")
	}
	var (
		mail string
		err  error
	)
	switch {
	case o.Billing != nil && text(o.Billing.Email) != "":
		if mail, err = email("billing.email", o.Billing.Email); err != nil {
			return nil, err
		}
	case h.email != "":
		mail = h.email
	case o.Billing == nil:
		return nil, &fieldError{field: "billing.email",
			reason: "is missing (the order has no billing object: add billing to the webhook's expansion)"}
	default:
		return nil, missing("billing.email")
	}

	created, err := timeField("creation_dts", o.CreationDTS)
	if err != nil {
		return nil, err
	}
	refunded, err := timeField("refund_dts", o.RefundDTS)
	if err != nil {
		return nil, err
	}
	rejected, err := timeField("reject_dts", o.RejectDTS)
	if err != nil {
		return nil, err
	}
	var paid time.Time
	var pay Payment
	if o.Payment != nil {
		pay = *o.Payment
		if paid, err = timeField("payment.payment_dts", pay.PaymentDTS); err != nil {
			return nil, err
		}
	}

	var total *Currency
	if o.Summary != nil {
		total = o.Summary.Total
	}
	base, err := n.baseCurrency("currency_code", o.CurrencyCode, o.ExchangeRate, total)
	if err != nil {
		return nil, err
	}
	out := &domain.Order{
		Key:        domain.OrderKey(domain.UltraCart, id, ""),
		Source:     domain.UltraCart,
		OrderID:    id,
		Email:      mail,
		Stage:      text(o.CurrentStage),
		Test:       pay.TestOrder.True(),
		CreatedAt:  created,
		PaidAt:     paid,
		RefundedAt: refunded,
		Currency:   base,
	}
	if err := n.amounts(o, out); err != nil {
		return nil, err
	}
	if err := n.items(o, out); err != nil {
		return nil, err
	}

	// Coupons, in the order applied.
	for _, c := range o.Coupons {
		out.Coupons = append(out.Coupons, first(c.CouponCode, c.BaseCouponCode))
	}
	out.Coupons = dedupe(out.Coupons)

	shippedAt := n.tracking(o, out)
	n.shipmentTimes(o, out)

	if b := o.Billing; b != nil {
		out.Billing = address(b.FirstName, b.LastName, b.Company, b.Address1, b.Address2, b.City, b.StateRegion, b.PostalCode, b.CountryCode)
		out.Phone = n.phone(b.CountryCode, b.CellPhoneE164, b.CellPhone, b.DayPhoneE164, b.DayPhone, b.EveningPhoneE164, b.EveningPhone)
	}
	if s := o.Shipping; s != nil {
		out.ShipTo = address(s.FirstName, s.LastName, s.Company, s.Address1, s.Address2, s.City, s.StateRegion, s.PostalCode, s.CountryCode)
	}
	if m := o.Marketing; m != nil {
		out.EmailOptIn = m.MailingList.Ptr()
		out.SMSOptIn = m.CellPhoneOptIn.Ptr()
	}

	out.UTMs = utms(o.UTMs)
	attachIterable(out, o.Properties)

	if len(o.Affiliates) > 0 {
		a := o.Affiliates[0]
		if id, sub := strings.TrimSpace(string(a.AffiliateOID)), text(a.SubID); id != "" || sub != "" {
			out.Affiliate = &domain.Affiliate{ID: id, SubID: sub}
		}
	}

	if ao := o.AutoOrder; ao != nil {
		out.SubscriptionID = autoOrderID(ao.AutoOrderOID, ao.AutoOrderCode)
		if orig := text(ao.OriginalOrderID); orig != "" && orig != id {
			out.Rebill = true
		}
		linkSubscriptionItems(out, ao.Items)
	}
	if h.rebill {
		out.Rebill = true
	}
	if h.subscriptionID != "" {
		out.SubscriptionID = h.subscriptionID
		linkSubscriptionItems(out, h.items)
	}
	if c := o.CustomerProfile; c != nil {
		out.CustomerID = strings.TrimSpace(string(c.CustomerProfileOID))
	}

	// Status.
	stage := out.Stage
	status := strings.TrimSpace(string(pay.PaymentStatus))
	paymentFailed := status == payDeclined || status == payVoided || status == payCaptureFailed
	isPaid := !paid.IsZero() || status == payProcessed || status == payRefunded ||
		((stage == stageShipping || stage == stageCompleted) && !paymentFailed)
	shipped := !shippedAt.IsZero() || len(out.Tracking) > 0 || strings.HasPrefix(n.name, "order_ship")
	switch {
	case n.name == "order_delete":
		out.Status = domain.OrderDeleted
	case stage == stageRejected || !rejected.IsZero() || n.name == "order_reject":
		out.Status = domain.OrderRejected
	case stage == stageQuoteReq || stage == stageQuoteSent:
		out.Status = domain.OrderPending
	case isPaid && shipped:
		out.Status = domain.OrderShipped
	case isPaid:
		out.Status = domain.OrderPaid
	default:
		out.Status = domain.OrderPending
	}

	// The source's own last-change time.
	out.SourceUpdatedAt = latest(created, paid, refunded, rejected, shippedAt)
	for _, s := range o.CurrentStageHistories {
		out.SourceUpdatedAt = latest(out.SourceUpdatedAt, softTime(s.TransitionDTS))
	}

	// A declined payment. order_payment_failed is not dated, so the decline it announces is dated
	// by its receipt; a declined status seen any other way (a poll, an update) by the order's last
	// change, so that an old decline read again does not pass for news.
	switch {
	case n.name == "order_payment_failed":
		out.PaymentFailedAt = n.receivedAt
	case status == payDeclined || status == payCaptureFailed:
		out.PaymentFailedAt = firstNonZero(out.SourceUpdatedAt, n.receivedAt)
	}
	return out, nil
}

// amounts fills the summary amounts. Without a summary (not expanded) the order is Partial.
func (n *normalizer) amounts(o *Order, out *domain.Order) error {
	base := out.Currency
	zero := domain.Money{Currency: base}
	out.Subtotal, out.Discount, out.Shipping, out.Handling, out.Tax, out.Total, out.Refunded =
		zero, zero, zero, zero, zero, zero, zero
	out.CustomerTotal = zero
	s := o.Summary
	if s == nil {
		out.Partial = true
		return nil
	}
	fields := []struct {
		name string
		c    *Currency
		dst  *domain.Money
	}{
		{"summary.subtotal", s.Subtotal, &out.Subtotal},
		{"summary.subtotal_discount", s.SubtotalDiscount, &out.Discount},
		{"summary.shipping_handling_total", s.ShippingHandlingTotal, &out.Shipping},
		{"summary.tax", s.Tax, &out.Tax},
		{"summary.total", s.Total, &out.Total},
		{"summary.total_refunded", s.TotalRefunded, &out.Refunded},
	}
	for _, f := range fields {
		m, err := money(f.name, f.c, base)
		if err != nil {
			return err
		}
		*f.dst = m
	}
	out.CustomerTotal = out.Total
	if t := s.Total; t != nil && t.Localized != "" {
		code := strings.ToUpper(first(o.CurrencyCode, t.CurrencyCode))
		if code == "" {
			code = base
		}
		m, err := domain.ParseMoneyRound(string(t.Localized), code)
		if err != nil {
			return invalid("summary.total.localized", err)
		}
		out.CustomerTotal = m
	}
	return nil
}

// items maps the order's lines.
func (n *normalizer) items(o *Order, out *domain.Order) error {
	base := out.Currency
	if len(o.Items) > 0 {
		out.Items = make([]domain.LineItem, 0, len(o.Items))
	}
	for i := range o.Items {
		li, err := item(&o.Items[i], base)
		if err != nil {
			// The field's path is made only for the error: an order has many items.
			var fe *fieldError
			if errors.As(err, &fe) {
				fe.field = fmt.Sprintf("items[%d]", i) + fe.field
			}
			return err
		}
		out.Items = append(out.Items, li)
	}
	return nil
}

// item reads one line of an order; the fields its errors name start with "." (see items).
func item(it *OrderItem, base string) (domain.LineItem, error) {
	sku := text(it.MerchantItemID)
	if sku == "" {
		return domain.LineItem{}, missing(".merchant_item_id")
	}
	qty, err := wholeNumber(".quantity", it.Quantity)
	if err != nil {
		return domain.LineItem{}, err
	}
	qtyRefunded, err := wholeNumber(".quantity_refunded", it.QuantityRefunded)
	if err != nil {
		return domain.LineItem{}, err
	}
	li := domain.LineItem{SKU: sku, Name: text(it.Description), Quantity: qty, QtyRefunded: qtyRefunded,
		ImageURL: first(it.DefaultImageURL, it.ImageURL), URL: text(it.ViewURL)}
	if li.UnitPrice, err = money(".cost", it.Cost, base); err != nil {
		return li, err
	}
	if li.Discount, err = money(".discount", it.Discount, base); err != nil {
		return li, err
	}
	if li.Refunded, err = money(".total_refunded", it.TotalRefunded, base); err != nil {
		return li, err
	}
	if it.TotalCostWithDiscount != nil && it.TotalCostWithDiscount.Value != "" {
		if li.Total, err = money(".total_cost_with_discount", it.TotalCostWithDiscount, base); err != nil {
			return li, err
		}
	} else if li.Total, err = lineTotal(li); err != nil {
		return li, &fieldError{reason: "total cannot be computed: " + err.Error(), err: err}
	}
	switch {
	case it.KitComponent.True():
		li.Kind = "kit_component"
	case it.Kit.True():
		li.Kind = "kit"
	case it.Upsell.True():
		li.Kind = "upsell"
	}
	return li, nil
}

// lineTotal is quantity × unit price − discount.
func lineTotal(li domain.LineItem) (domain.Money, error) {
	gross, err := li.UnitPrice.Mul(li.Quantity)
	if err != nil {
		return domain.Money{}, err
	}
	return gross.Sub(li.Discount)
}

// tracking fills the tracking numbers and returns when the order (first) shipped, if known.
func (n *normalizer) tracking(o *Order, out *domain.Order) time.Time {
	var shipped time.Time // the latest of the dates below
	ship := func(t time.Time) {
		if t.After(shipped) {
			shipped = t
		}
	}
	for i := range o.Items {
		ship(softTime(o.Items[i].ShippedDTS))
	}
	s := o.Shipping
	if s == nil {
		return shipped
	}
	ship(softTime(s.ShippingDate))
	seen := map[string]bool{}
	for _, d := range s.TrackingNumberDetails {
		num := text(d.TrackingNumber)
		if num == "" || seen[num] {
			continue
		}
		seen[num] = true
		out.Tracking = append(out.Tracking, domain.Tracking{Number: num,
			Carrier: first(d.ShippingMethod, s.ShippingMethod), URL: text(d.TrackingURL)})
		ship(softTime(d.ShippedDate))
		ship(softTime(d.ActualDeliveryDate))
	}
	for _, t := range s.TrackingNumbers {
		num := text(t)
		if num == "" || seen[num] {
			continue
		}
		seen[num] = true
		out.Tracking = append(out.Tracking, domain.Tracking{Number: num, Carrier: text(s.ShippingMethod)})
	}
	return shipped
}

// shipmentTimes fills when the order first shipped, went out for delivery and was delivered.
// Dates in the payload come first: the earliest shipping or shipped date, the earliest actual
// delivery date. UltraCart does not date the out-for-delivery and delivered notifications
// themselves, so for those two events (and only them: a polled or updated order must not report
// an old delivery as news) the receipt time stands in when the payload has no date.
func (n *normalizer) shipmentTimes(o *Order, out *domain.Order) {
	var shipped, delivered time.Time
	for i := range o.Items {
		shipped = earliestOf(shipped, softTime(o.Items[i].ShippedDTS))
	}
	if s := o.Shipping; s != nil {
		shipped = earliestOf(shipped, softTime(s.ShippingDate))
		for _, d := range s.TrackingNumberDetails {
			shipped = earliestOf(shipped, softTime(d.ShippedDate))
			delivered = earliestOf(delivered, softTime(d.ActualDeliveryDate))
		}
	}
	out.ShippedAt = shipped
	out.DeliveredAt = delivered
	switch n.name {
	case "order_ship_delivered":
		if out.DeliveredAt.IsZero() {
			out.DeliveredAt = n.receivedAt
		}
	case "order_ship_out_for_delivery":
		out.OutForDeliveryAt = n.receivedAt
	}
}

func earliestOf(ts ...time.Time) time.Time {
	var e time.Time
	for _, t := range ts {
		if !t.IsZero() && (e.IsZero() || t.Before(e)) {
			e = t
		}
	}
	return e
}

// attachIterable puts Iterable campaign and template ids found in the order's properties on
// the last touch (the click that led to the order), or on a touch of their own when there is
// none. Ids already on the touch win.
func attachIterable(out *domain.Order, props []Property) {
	campaign := propertyValue(props, "iterablecampaignid")
	template := propertyValue(props, "iterabletemplateid")
	if campaign == "" && template == "" {
		return
	}
	if len(out.UTMs) == 0 {
		out.UTMs = []domain.UTM{{IterableCampaignID: campaign, IterableTemplateID: template}}
		return
	}
	last := &out.UTMs[len(out.UTMs)-1]
	if last.IterableCampaignID == "" {
		last.IterableCampaignID = campaign
	}
	if last.IterableTemplateID == "" {
		last.IterableTemplateID = template
	}
}

// linkSubscriptionItems marks the lines that the auto order rebills. With no auto order items
// known, every line of a rebill order belongs to the subscription.
func linkSubscriptionItems(out *domain.Order, items []AutoOrderItem) {
	if out.SubscriptionID == "" {
		return
	}
	skus := map[string]bool{}
	for _, it := range items {
		skus[text(it.OriginalItemID)] = true
		skus[text(it.NextItemID)] = true
	}
	for i := range out.Items {
		li := &out.Items[i]
		if li.SubscriptionID != "" {
			continue
		}
		if skus[li.SKU] || (len(items) == 0 && out.Rebill) {
			li.SubscriptionID = out.SubscriptionID
		}
	}
}

// autoOrderID is the subscription id: the auto order code (what UltraCart shows merchants),
// or its oid when the code is absent.
func autoOrderID(oid ID, code Text) string {
	if c := text(code); c != "" {
		return c
	}
	return strings.TrimSpace(string(oid))
}

// orderOccurredAt is the time of what the event reports: the creation for order_create, the
// payment for order_payment_process, the refund, the rejection, the latest stage transition,
// the shipment, the delivery or the trip out for delivery; otherwise (and for order_update,
// order_payment_failed and order_ship_expected, which the payload does not date) the order's last
// change, so that a reflow
// of old orders reads as old; else the receipt time.
func (n *normalizer) orderOccurredAt(o *Order, ord *domain.Order) time.Time {
	var t time.Time
	switch n.name {
	case "order_create":
		t = ord.CreatedAt
	case "order_payment_process":
		t = ord.PaidAt
	case "order_refund":
		t = ord.RefundedAt
	case "order_reject":
		t = softTime(o.RejectDTS)
	case "order_stage_change":
		for _, s := range o.CurrentStageHistories {
			t = latest(t, softTime(s.TransitionDTS))
		}
	case "order_ship":
		if o.Shipping != nil {
			t = softTime(o.Shipping.ShippingDate)
			for _, d := range o.Shipping.TrackingNumberDetails {
				t = latest(t, softTime(d.ShippedDate))
			}
		}
	case "order_ship_delivered":
		t = ord.DeliveredAt
		if o.Shipping != nil {
			for _, d := range o.Shipping.TrackingNumberDetails {
				t = latest(t, softTime(d.ActualDeliveryDate))
			}
		}
	case "order_ship_out_for_delivery":
		t = ord.OutForDeliveryAt
	case "order_delete":
		// Nothing in the payload dates a deletion.
		return n.receivedAt
	}
	return firstNonZero(t, ord.SourceUpdatedAt, n.receivedAt)
}
