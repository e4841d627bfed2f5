package thrivecart

import (
	"errors"
	"fmt"
	"html"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// EventTransaction is the event name a polled GET /transactions record travels under.
const EventTransaction = "transaction"

// Transaction types of a polled record (transaction_type).
const (
	TransactionCharge = "charge"
	TransactionRebill = "rebill"
	TransactionRefund = "refund"
	TransactionCancel = "cancel"
)

// NormalizeTransaction maps one record of ThriveCart's GET /transactions, as the API sent it,
// to domain events. The poller delivers these next to the webhooks, so each mapping produces
// the identities the webhook mapping produces for the same payment and never a version that
// could count a sale or a refund a second time or replace what a webhook said:
//
//   - charge: one line of an order (a base product, bump or upsell). A record holds one line
//     but not the order's total or its other lines, so it is a Partial order keyed like
//     order.success (order id, plus a rebill invoice id when it has one). The ledger records
//     it and counts no sale for it: the sale is counted once, from order.success, whichever
//     arrives first. A sale whose webhook never arrives therefore stays recorded but uncounted:
//     counting it from its lines would count a wrong total, and count it again when the
//     webhook came.
//   - rebill: a rebill is one invoice with one line, so the record is the whole payment: a
//     complete rebill order keyed by its suffixed invoice id, the key order.subscription_payment
//     uses. Whichever comes first counts the rebill; the other changes nothing counted. Its
//     SourceUpdatedAt is left zero so any webhook version of the invoice, which knows the tax,
//     the subscription and the address, wins the descriptive fields. A rebill record without a
//     rebill invoice suffix is mapped like a charge.
//   - refund: a Partial order with Refunded set to this refund's amount and no refund line.
//     The webhook's refund lines are keyed by details the record lacks, so a line from the
//     record could not be recognised as the same refund and would be added to it. Refunded
//     alone merges as a maximum: the poll can raise the refunded amount to what one refund
//     returned but never add the same refund twice. With several refunds of one invoice whose
//     webhooks were all missed, the stored amount is the largest of them (an undercount, never
//     an overcount) until the webhooks arrive.
//   - cancel: the subscription cancelled, when the record names the subscription
//     (subscription_id). ThriveCart documents no such field; without it the record yields no
//     event, because a subscription keyed by anything else would be a second, made-up
//     subscription beside the real one.
//
// Errors are *EventError like Normalize's: ErrUnknownEvent for a transaction type not
// interpreted, ErrInvalidEvent for a record that cannot be mapped.
func NormalizeTransaction(payload []byte, receivedAt time.Time, opt Options) ([]domain.Event, error) {
	f, err := decodeJSON(payload)
	if err != nil {
		return nil, &EventError{Event: EventTransaction, Kind: ErrInvalidEvent, Reason: err.Error(), Err: err}
	}
	n := &normalizer{d: Delivery{Event: EventTransaction, Fields: f}, f: f, receivedAt: receivedAt.UTC(), opt: opt}
	var out []domain.Event
	switch typ := strings.ToLower(f.Get("transaction_type")); typ {
	case TransactionCharge:
		out, err = n.txCharge()
	case TransactionRebill:
		out, err = n.txRebill()
	case TransactionRefund:
		out, err = n.txRefund()
	case TransactionCancel:
		out, err = n.txCancel()
	default:
		return nil, &EventError{Event: EventTransaction, Field: "transaction_type",
			Reason: fmt.Sprintf("%q is not a transaction type cartrelay interprets", typ), Kind: ErrUnknownEvent}
	}
	if err != nil {
		e := &EventError{Event: EventTransaction, Kind: ErrInvalidEvent, Reason: err.Error(), Err: err}
		var fe *fieldError
		if errors.As(err, &fe) {
			e.Field, e.Reason, e.Err = fe.field, fe.reason, fe.err
		}
		return nil, e
	}
	return out, nil
}

// TransactionTime is when a polled record happened: its unix timestamp, else its date and
// time (UTC); zero when it has neither. The poller orders records by it.
func TransactionTime(f Fields) time.Time {
	if t, ok := parseTime(f.Get("timestamp")); ok {
		return t
	}
	if d := f.Get("date"); d != "" {
		if t, ok := parseTime(strings.TrimSpace(d + " " + f.Get("time"))); ok {
			return t
		}
		if t, ok := parseTime(d); ok {
			return t
		}
	}
	return time.Time{}
}

// txBase reads what every order-shaped record needs.
type txBase struct {
	id, inv, key, email, cur, sku string
	amount                        int64
	at                            time.Time
}

func (n *normalizer) txBase() (txBase, error) {
	var b txBase
	var err error
	if b.id, err = n.orderID(); err != nil {
		return b, err
	}
	if b.email, err = n.email(); err != nil {
		return b, err
	}
	if b.cur, err = n.currency(true); err != nil {
		return b, err
	}
	amount, ok, err := cents(n.f, "amount")
	if err != nil {
		return b, err
	}
	if !ok {
		return b, missing("amount")
	}
	b.amount = amount
	b.inv = n.f.Get("invoice_id")
	b.key = domain.OrderKey(domain.ThriveCart, b.id, keyInvoice(b.inv))
	b.sku = itemKey(firstNonEmpty(n.f.Get("item_type"), "product"), n.f.Get("item_id"))
	b.at = TransactionTime(n.f)
	return b, nil
}

// txOrder is the order a record describes, with every amount zero in its currency.
func (n *normalizer) txOrder(b txBase) *domain.Order {
	z := domain.Money{Currency: b.cur}
	o := &domain.Order{
		Key: b.key, Source: domain.ThriveCart, OrderID: b.id, InvoiceID: b.inv, Email: b.email,
		Status: domain.OrderPaid, Currency: b.cur, Subtotal: z, Discount: z, Shipping: z, Handling: z,
		Tax: z, Total: z, Refunded: z, CustomerTotal: z, Rebill: keyInvoice(b.inv) != "",
		Billing: n.address(),
	}
	return o
}

func (n *normalizer) txLine(b txBase, amount int64) []domain.LineItem {
	if b.sku == "" {
		return nil
	}
	m := domain.MoneyFromMinor(amount, b.cur)
	z := domain.Money{Currency: b.cur}
	return []domain.LineItem{{SKU: b.sku, Name: html.UnescapeString(n.firstOf(p("item_name"), p("name"))), Quantity: 1,
		UnitPrice: m, Discount: z, Total: m, Refunded: z, Kind: firstNonEmpty(n.f.Get("item_type"), "product")}}
}

func (n *normalizer) txCharge() ([]domain.Event, error) {
	b, err := n.txBase()
	if err != nil {
		return nil, err
	}
	o := n.txOrder(b)
	o.Partial = true
	o.CreatedAt, o.PaidAt = b.at, b.at
	o.Items = n.txLine(b, b.amount)
	e := n.event(domain.KindOrder, b.at)
	e.Order = o
	return []domain.Event{e}, nil
}

func (n *normalizer) txRebill() ([]domain.Event, error) {
	b, err := n.txBase()
	if err != nil {
		return nil, err
	}
	if keyInvoice(b.inv) == "" {
		return n.txCharge()
	}
	o := n.txOrder(b)
	total := domain.MoneyFromMinor(b.amount, b.cur)
	o.CreatedAt, o.PaidAt = b.at, b.at
	o.Subtotal, o.Total, o.CustomerTotal = total, total, total
	o.Items = n.txLine(b, b.amount)
	e := n.event(domain.KindOrder, b.at)
	e.Order = o
	return []domain.Event{e}, nil
}

func (n *normalizer) txRefund() ([]domain.Event, error) {
	b, err := n.txBase()
	if err != nil {
		return nil, err
	}
	// Whether ThriveCart signs refund amounts is not documented; a refund returns money either way.
	if b.amount < 0 {
		b.amount = -b.amount
	}
	o := n.txOrder(b)
	o.Partial = true
	o.Refunded = domain.MoneyFromMinor(b.amount, b.cur)
	o.RefundedAt = b.at
	e := n.event(domain.KindOrder, b.at)
	e.Order = o
	return []domain.Event{e}, nil
}

func (n *normalizer) txCancel() ([]domain.Event, error) {
	id := n.f.Get("subscription_id")
	if id == "" {
		return nil, nil
	}
	mail, err := n.email()
	if err != nil {
		return nil, err
	}
	cur, err := n.currency(false)
	if err != nil {
		return nil, err
	}
	at := firstTime(TransactionTime(n.f), n.receivedAt)
	s := &domain.Subscription{
		Key: domain.SubscriptionKey(domain.ThriveCart, id), Source: domain.ThriveCart, ID: id, Email: mail,
		OriginalOrderID: n.f.Get("order_id"), Status: domain.SubCancelled, StatusAt: at, Amount: domain.Money{Currency: cur},
	}
	if sku := itemKey(firstNonEmpty(n.f.Get("item_type"), "product"), n.f.Get("item_id")); sku != "" {
		s.Products = []string{sku}
	}
	s.History = []domain.StatusChange{{Status: domain.SubCancelled, At: at, Event: EventTransaction}}
	e := n.event(domain.KindSubscription, at)
	e.Sub = s
	return []domain.Event{e}, nil
}
