package ultracart

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// chargebackEvent maps a chargeback_* event to an order event that carries the dispute as a
// chargeback line. The order version is complete when the payload embeds the order with its
// billing email (the webhook's expansion includes it) and otherwise partial: the order id and
// the dispute only, merged into the order cartrelay already holds.
//
// The dispute's identity is its chargeback_dispute_oid (else its case number). Its amount is in
// its own currency, or the base currency when it names none. UltraCart documents no list of
// statuses, so the status words are read loosely (chargebackStatus), and an unrecognised one
// keeps the dispute standing: the money is held back until a report says otherwise.
func (n *normalizer) chargebackEvent(c *ChargebackDispute) (domain.Event, error) {
	orderID := text(c.OrderID)
	if orderID == "" && c.Order != nil {
		orderID = text(c.Order.OrderID)
	}
	if orderID == "" {
		return domain.Event{}, missing("order_id")
	}
	id := strings.TrimSpace(string(c.ChargebackDisputeOID))
	if id == "" {
		id = text(c.CaseNumber)
	}
	if id == "" {
		return domain.Event{}, &fieldError{field: "chargeback_dispute_oid",
			reason: "is missing (and so is case_number): the dispute cannot be told from another one on the same order"}
	}
	at, err := timeField("chargeback_dts", c.ChargebackDTS)
	if err != nil {
		return domain.Event{}, err
	}

	var ord *domain.Order
	if o := c.Order; o != nil && o.Billing != nil && text(o.Billing.Email) != "" {
		embedded := *o
		embedded.OrderID = Text(orderID)
		if ord, err = n.order(&embedded, orderHints{}); err != nil {
			return domain.Event{}, prefixField(err, "order.")
		}
	} else {
		ord = &domain.Order{Key: domain.OrderKey(domain.UltraCart, orderID, ""), Source: domain.UltraCart,
			OrderID: orderID, Partial: true, Currency: n.opt.BaseCurrency}
	}

	cur, err := n.currencyField("currency", c.Currency)
	if err != nil {
		return domain.Event{}, err
	}
	if cur == "" {
		cur = ord.Currency
	}
	status := chargebackStatus(n.name, text(c.Status))
	var amount domain.Money
	switch {
	case cur == "" && (c.Amount != "" || status.Stands()):
		return domain.Event{}, &fieldError{field: "currency", reason: "is missing, and neither the account's " +
			"ultracart.base_currency nor an embedded order says which currency the amount is in: set ultracart.base_currency, " +
			"or add the order to the chargeback webhook's expansion, and replay the event"}
	case c.Amount == "" && status.Stands():
		return domain.Event{}, missing("amount")
	case c.Amount != "":
		if amount, err = plainMoney("amount", c.Amount, cur); err != nil {
			return domain.Event{}, err
		}
		if amount.Minor < 0 {
			return domain.Event{}, &fieldError{field: "amount", reason: fmt.Sprintf("is negative (%s)", amount)}
		}
	}

	line := domain.ChargebackLine{ID: id, Amount: amount, Status: status, SourceStatus: text(c.Status), At: at,
		Reason: text(c.ReasonCode)}
	occurred := at
	if !status.Stands() {
		// UltraCart does not date a decision or a deletion: it is known from now.
		line.ResolvedAt, occurred = n.receivedAt, n.receivedAt
	}
	ord.Chargebacks = []domain.ChargebackLine{line}
	e := n.event(domain.KindOrder, occurred)
	e.Order = ord
	return e, nil
}

// chargebackStatus reads UltraCart's free-text dispute status. chargeback_delete deletes the
// dispute whatever its status says. Otherwise a status with one of the words won, reversed,
// reversal, withdrawn, cancelled or canceled is won (the merchant keeps the money), one with lost
// or accepted is lost, and anything else (pending, open, in review, an empty or new word) is
// open: it stands until a report says otherwise.
func chargebackStatus(event, status string) domain.ChargebackStatus {
	if event == "chargeback_delete" {
		return domain.ChargebackDeleted
	}
	words := strings.FieldsFunc(strings.ToLower(status), func(r rune) bool { return !unicode.IsLetter(r) })
	for _, w := range words {
		switch w {
		case "won", "reversed", "reversal", "withdrawn", "cancelled", "canceled":
			return domain.ChargebackWon
		}
	}
	for _, w := range words {
		switch w {
		case "lost", "accepted":
			return domain.ChargebackLost
		}
	}
	return domain.ChargebackOpen
}
