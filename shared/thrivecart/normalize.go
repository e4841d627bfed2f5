package thrivecart

import (
	"errors"
	"fmt"
	"html"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// Event names Normalize interprets.
const (
	EventOrderSuccess          = "order.success"
	EventOrderRefund           = "order.refund"
	EventSubscriptionPayment   = "order.subscription_payment"
	EventSubscriptionCancelled = "order.subscription_cancelled"
	EventSubscriptionPaused    = "order.subscription_paused"
	EventSubscriptionResumed   = "order.subscription_resumed"
	EventRebillFailed          = "order.rebill_failed"
	EventCartAbandoned         = "cart.abandoned"
	// Affiliate approval, from ThriveCart's Event Subscription API (its account webhooks send
	// only commission events).
	EventAffiliateApproved = "affiliate_approved"
	EventAffiliateRejected = "affiliate_rejected"
)

// otherEvents are ThriveCart webhook events that exist but are not interpreted.
var otherEvents = map[string]bool{
	"affiliate.commission_earned": true, "affiliate.commission_payout": true, "affiliate.commission_refund": true,
}

// Events lists the webhook event names Normalize interprets.
func Events() []string {
	return []string{EventOrderSuccess, EventOrderRefund, EventSubscriptionPayment, EventSubscriptionCancelled,
		EventSubscriptionPaused, EventSubscriptionResumed, EventRebillFailed, EventCartAbandoned,
		EventAffiliateApproved, EventAffiliateRejected}
}

// Interpreted reports whether Normalize maps events of this name.
func Interpreted(name string) bool {
	return slices.Contains(Events(), name)
}

// Normalize maps a delivery to domain events: order.success gives the order and one
// subscription event per subscription it starts; order.subscription_payment gives the
// subscription event and the rebill order; order.refund gives a Partial order carrying the
// refund line; the other subscription events give one subscription event; cart.abandoned
// gives a cart. receivedAt stands in for the event time when the body has none.
//
// Errors are *EventError: errors.Is(err, ErrUnknownEvent) for an event not interpreted,
// errors.Is(err, ErrInvalidEvent) for one that cannot be mapped.
func Normalize(d Delivery, receivedAt time.Time) ([]domain.Event, error) {
	return NormalizeWith(d, receivedAt, Options{})
}

// Options tune normalization.
type Options struct {
	// Phone normalizes phone numbers to E.164 (shared/phone.E164); nil leaves phones out.
	Phone domain.PhoneFunc
}

// NormalizeWith is Normalize with options.
func NormalizeWith(d Delivery, receivedAt time.Time, opt Options) ([]domain.Event, error) {
	n := &normalizer{d: d, f: d.Fields, receivedAt: receivedAt.UTC(), opt: opt}
	if n.f == nil {
		n.f = Fields{}
	}
	var (
		out []domain.Event
		err error
	)
	switch d.Event {
	case EventOrderSuccess:
		out, err = n.orderSuccess()
	case EventSubscriptionPayment:
		out, err = n.subscriptionPayment()
	case EventOrderRefund:
		out, err = n.refund()
	case EventSubscriptionCancelled:
		out, err = n.subscriptionStatus(domain.SubCancelled)
	case EventSubscriptionPaused:
		out, err = n.subscriptionStatus(domain.SubPaused)
	case EventSubscriptionResumed:
		out, err = n.subscriptionStatus(domain.SubActive)
	case EventRebillFailed:
		out, err = n.subscriptionStatus(domain.SubPaymentFailed)
	case EventCartAbandoned:
		out, err = n.cartAbandoned()
	case EventAffiliateApproved:
		out, err = n.affiliateStatus(domain.AffiliateApproved)
	case EventAffiliateRejected:
		out, err = n.affiliateStatus(domain.AffiliateRejected)
	default:
		reason := "is not a ThriveCart webhook event cartrelay knows"
		if otherEvents[d.Event] {
			reason = "is a ThriveCart event cartrelay does not interpret"
		}
		return nil, &EventError{Event: d.Event, Reason: reason, Kind: ErrUnknownEvent}
	}
	if err != nil {
		e := &EventError{Event: d.Event, Kind: ErrInvalidEvent, Reason: err.Error(), Err: err}
		var fe *fieldError
		if errors.As(err, &fe) {
			e.Field, e.Reason, e.Err = fe.field, fe.reason, fe.err
		}
		return nil, e
	}
	return out, nil
}

type normalizer struct {
	d          Delivery
	f          Fields
	receivedAt time.Time
	opt        Options
}

func (n *normalizer) event(kind domain.EventKind, at time.Time) domain.Event {
	if at.IsZero() {
		at = n.receivedAt
	}
	return domain.Event{Source: domain.ThriveCart, Name: n.d.Event, Kind: kind, OccurredAt: at}
}

// ---- field helpers

// name renders a path in ThriveCart's bracket form: customer[address][city].
func name(path ...string) string {
	if len(path) == 0 {
		return ""
	}
	return path[0] + "[" + strings.Join(path[1:], "][") + "]"
}

func fieldName(path []string) string {
	if len(path) == 1 {
		return path[0]
	}
	return name(path...)
}

// firstOf returns the first non-empty value among paths.
func (n *normalizer) firstOf(paths ...[]string) string {
	for _, p := range paths {
		if v := n.f.Get(p...); v != "" {
			return v
		}
	}
	return ""
}

func p(path ...string) []string { return path }

// cents reads an integer cents field; ok is false when it is absent.
func cents(f Fields, path ...string) (int64, bool, error) {
	s := f.Get(path...)
	if s == "" {
		return 0, false, nil
	}
	v, err := parseCents(s)
	if err != nil {
		return 0, false, &fieldError{field: fieldName(path), reason: err.Error(), err: domain.ErrInvalidMoney}
	}
	return v, true, nil
}

func parseCents(s string) (int64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if strings.Trim(frac, "0") != "" {
		return 0, fmt.Errorf("%q is not a whole number of cents", s)
	}
	if frac != "" && strings.Trim(frac, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a number of cents", s)
	}
	v, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 0, fmt.Errorf("%q is too large", s)
		}
		return 0, fmt.Errorf("%q is not a number of cents", s)
	}
	return v, nil
}

// money reads a cents field as Money; absent is zero.
func (n *normalizer) money(cur string, path ...string) (domain.Money, error) {
	v, _, err := cents(n.f, path...)
	if err != nil {
		return domain.Money{}, err
	}
	return domain.MoneyFromMinor(v, cur), nil
}

// currency is the delivery's currency, upper-case.
func (n *normalizer) currency(required bool) (string, error) {
	c := strings.ToUpper(n.firstOf(p("currency"), p("order", "currency"), p("subscription", "currency"), p("refund", "currency")))
	switch {
	case c == "" && required:
		return "", missing("currency")
	case c != "" && !domain.KnownCurrency(c):
		return "", &fieldError{field: "currency", err: domain.ErrUnknownCurrency,
			reason: fmt.Sprintf("is %q, which is not an ISO 4217 currency code, so the amounts cannot be counted", c)}
	}
	return c, nil
}

func (n *normalizer) email() (string, error) {
	field := "customer[email]"
	v := n.f.Get("customer", "email")
	if v == "" {
		if v = n.f.Get("customer_email"); v != "" {
			field = "customer_email"
		} else if v = n.f.Get("email"); v != "" {
			field = "email"
		}
	}
	if v == "" {
		return "", missing("customer[email]")
	}
	e, err := domain.NormalizeEmail(v)
	if err != nil {
		return "", &fieldError{field: field, reason: "is invalid: " + err.Error(), err: err}
	}
	return e, nil
}

func (n *normalizer) test() bool {
	return n.d.Mode == "test" || n.f.Get("mode") == "test" || n.f.Get("mode_int") == "1"
}

// parseTime reads a unix timestamp, an ISO 8601 time, or "2006-01-02 15:04:05" (UTC).
func parseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if u, err := strconv.ParseInt(s, 10, 64); err == nil {
		if u <= 0 || u > 1<<35 {
			return time.Time{}, false
		}
		return time.Unix(u, 0).UTC(), true
	}
	for _, l := range []string{time.RFC3339, "2006-01-02T15:04:05Z0700", "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// timeOf returns the first readable time among paths (zero when none).
func (n *normalizer) timeOf(paths ...[]string) time.Time {
	for _, path := range paths {
		if t, ok := parseTime(n.f.Get(path...)); ok {
			return t
		}
	}
	return time.Time{}
}

// eventTime is when a subscription or refund event happened.
func (n *normalizer) eventTime() time.Time {
	return n.timeOf(p("date_unix"), p("timestamp"), p("date_iso8601"), p("date"),
		p("event_timestamp"), p("order_timestamp"))
}

// orderTime is when the order was placed.
func (n *normalizer) orderTime() time.Time {
	return n.timeOf(p("order", "date_unix"), p("order_timestamp"), p("order", "date_iso8601"),
		p("order", "date"), p("order_date"), p("date_unix"), p("date_iso8601"), p("date"))
}

// keyInvoice is the invoice id that goes into an order key: the invoice id of a rebill (a
// suffix -N with N >= 2, as in "000000004-2"), "" for an original order.
func keyInvoice(inv string) string {
	i := strings.LastIndexByte(inv, '-')
	if i <= 0 || i == len(inv)-1 {
		return ""
	}
	suffix := inv[i+1:]
	if suffix[0] == '0' {
		return ""
	}
	for _, c := range suffix {
		if c < '0' || c > '9' {
			return ""
		}
	}
	if suffix == "1" {
		return ""
	}
	return inv
}

func (n *normalizer) orderID() (string, error) {
	id := n.firstOf(p("order_id"), p("order", "id"))
	if id == "" {
		return "", missing("order_id")
	}
	return id, nil
}

// customer fills the contact fields of an order.
func (n *normalizer) customer(o *domain.Order) {
	o.Billing = n.address()
	o.Phone = n.phone(o.Billing.CountryCode)
	o.CustomerID = n.firstOf(p("customer_id"), p("customer", "id"))
	o.Affiliate = n.affiliate()
}

func (n *normalizer) address() domain.Address {
	a := func(keys ...string) string {
		for _, k := range keys {
			if v := n.f.Get("customer", "address", k); v != "" {
				return v
			}
		}
		return ""
	}
	first := n.firstOf(p("customer", "first_name"), p("customer", "firstname"))
	last := n.firstOf(p("customer", "last_name"), p("customer", "lastname"))
	if first == "" && last == "" {
		full := n.f.Get("customer", "name")
		first, last, _ = strings.Cut(full, " ")
		last = strings.TrimSpace(last)
	}
	return domain.Address{
		FirstName:   first,
		LastName:    last,
		Company:     n.firstOf(p("customer", "business_name"), p("customer", "company")),
		Address1:    a("line1", "line_1", "address1", "address_line_1", "street"),
		Address2:    a("line2", "line_2", "address2", "address_line_2"),
		City:        a("city"),
		Region:      a("state", "region", "province"),
		PostalCode:  a("zip", "postcode", "postal_code", "zipcode"),
		CountryCode: strings.ToUpper(a("country", "country_code")),
	}
}

func (n *normalizer) phone(country string) string {
	for _, path := range [][]string{p("customer", "phone"), p("customer", "contactno"), p("customer", "phone_number"),
		p("customer", "mobile"), p("customer_phone")} {
		if v := n.f.Get(path...); v != "" {
			if n.opt.Phone == nil {
				return ""
			}
			if e := n.opt.Phone(v, country); e != "" {
				return e
			}
		}
	}
	return ""
}

// affiliate reads the affiliate: an object with an id, or a bare id.
func (n *normalizer) affiliate() *domain.Affiliate {
	if m := n.f.Map("affiliate"); m != nil {
		id := firstNonEmpty(m.Get("id"), m.Get("affiliate_id"))
		if id == "" {
			return nil
		}
		return &domain.Affiliate{ID: id, SubID: firstNonEmpty(m.Get("sub_id"), m.Get("subid")),
			Name: m.Get("name"), Email: strings.ToLower(m.Get("email"))}
	}
	if id := firstNonEmpty(n.f.Get("affiliate"), n.f.Get("affiliate_id")); id != "" && id != "false" && id != "0" {
		return &domain.Affiliate{ID: id}
	}
	return nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// itemKey is ThriveCart's purchase-map key of an item: "<item_type>-<id>".
func itemKey(itemType, id string) string {
	if itemType == "" {
		itemType = "product"
	}
	if id == "" {
		return ""
	}
	return itemType + "-" + id
}

// ---- order.success

func (n *normalizer) orderSuccess() ([]domain.Event, error) {
	id, err := n.orderID()
	if err != nil {
		return nil, err
	}
	mail, err := n.email()
	if err != nil {
		return nil, err
	}
	cur, err := n.currency(true)
	if err != nil {
		return nil, err
	}
	inv := n.firstOf(p("invoice_id"), p("order", "invoice_id"))
	at := n.orderTime()
	o := &domain.Order{
		Key: domain.OrderKey(domain.ThriveCart, id, keyInvoice(inv)), Source: domain.ThriveCart,
		OrderID: id, InvoiceID: inv, Email: mail, Status: domain.OrderPaid, Test: n.test(),
		CreatedAt: at, PaidAt: at, Currency: cur, Rebill: keyInvoice(inv) != "",
		Handling: domain.Money{Currency: cur}, Shipping: domain.Money{Currency: cur},
		Refunded: domain.Money{Currency: cur}, SourceUpdatedAt: at,
	}
	n.customer(o)
	subs := n.subscriptionIDs()

	var subtotal, discount, tax int64
	for i, c := range n.f.List("order", "charges") {
		m, ok := c.(Fields)
		if !ok {
			return nil, &fieldError{field: name("order", "charges", strconv.Itoa(i)), reason: "is not an object"}
		}
		li, lineTax, err := chargeLine(m, cur, fmt.Sprintf("order[charges][%d]", i))
		if err != nil {
			return nil, err
		}
		li.SubscriptionID = subs[li.SKU]
		o.Items = append(o.Items, li)
		gross, _ := li.UnitPrice.Mul(li.Quantity)
		subtotal += gross.Minor
		discount += li.Discount.Minor
		tax += lineTax
	}
	o.Subtotal = domain.MoneyFromMinor(subtotal, cur)
	o.Discount = domain.MoneyFromMinor(discount, cur)
	if v, ok, err := cents(n.f, "order", "tax"); err != nil {
		return nil, err
	} else if ok {
		tax = v
	}
	o.Tax = domain.MoneyFromMinor(tax, cur)
	if v, ok, err := cents(n.f, "order", "shipping"); err != nil {
		return nil, err
	} else if ok {
		o.Shipping = domain.MoneyFromMinor(v, cur)
	}
	total, ok, err := cents(n.f, "order", "total_gross")
	if err != nil {
		return nil, err
	}
	if !ok {
		if total, ok, err = cents(n.f, "order", "total"); err != nil {
			return nil, err
		}
	}
	if !ok {
		return nil, missing("order[total]")
	}
	o.Total = domain.MoneyFromMinor(total, cur)
	o.CustomerTotal = o.Total
	if c := n.firstOf(p("coupon_code"), p("coupon"), p("order", "coupon_code"), p("order", "coupon")); c != "" {
		o.Coupons = []string{c}
	}
	base := itemKey("product", n.f.Get("base_product"))
	switch {
	case subs[base] != "":
		o.SubscriptionID = subs[base]
	case len(subs) == 1:
		for _, s := range subs {
			o.SubscriptionID = s
		}
	}

	out := []domain.Event{n.event(domain.KindOrder, at)}
	out[0].Order = o
	// One active subscription per subscription the order starts, with its future charge.
	for _, key := range sortedKeys(subs) {
		sub := &domain.Subscription{
			Key: domain.SubscriptionKey(domain.ThriveCart, subs[key]), Source: domain.ThriveCart, ID: subs[key],
			Email: mail, OriginalOrderID: id, Status: domain.SubActive, StatusAt: firstTime(at, n.receivedAt),
			Products: []string{key}, Amount: domain.Money{Currency: cur},
		}
		for i, c := range n.f.List("order", "future_charges") {
			m, ok := c.(Fields)
			if !ok || itemKey(m.Get("item_type"), m.Get("reference")) != key {
				continue
			}
			v, _, err := cents(m, "amount")
			if err != nil {
				return nil, prefix(err, fmt.Sprintf("order[future_charges][%d]", i))
			}
			sub.Amount = domain.MoneyFromMinor(v, cur)
			sub.Frequency = m.Get("frequency")
			if t, ok := parseTime(firstNonEmpty(m.Get("defer_date"), m.Get("due"))); ok {
				sub.NextAttempt = t
			}
			break
		}
		sub.History = []domain.StatusChange{{Status: sub.Status, At: sub.StatusAt, Event: n.d.Event}}
		e := n.event(domain.KindSubscription, sub.StatusAt)
		e.Sub = sub
		out = append(out, e)
	}
	return out, nil
}

// chargeLine maps one order[charges][n].
func chargeLine(m Fields, cur, field string) (domain.LineItem, int64, error) {
	typ := firstNonEmpty(m.Get("item_type"), "product")
	ref := m.Get("reference")
	li := domain.LineItem{SKU: itemKey(typ, ref), Name: html.UnescapeString(firstNonEmpty(m.Get("name"), m.Get("label"))), Kind: typ,
		Quantity: 1, Refunded: domain.Money{Currency: cur}}
	if li.SKU == "" {
		if id := m.Get("item_identifier"); id != "" {
			li.SKU = strings.Replace(id, "_", "-", 1)
		} else {
			return li, 0, missing(field + "[reference]")
		}
	}
	if q := m.Get("quantity"); q != "" {
		v, err := strconv.ParseInt(q, 10, 64)
		if err != nil || v <= 0 {
			return li, 0, &fieldError{field: field + "[quantity]", reason: fmt.Sprintf("%q is not a positive whole number", q)}
		}
		li.Quantity = v
	}
	amount, ok, err := cents(m, "amount")
	if err != nil {
		return li, 0, prefix(err, field)
	}
	if !ok {
		return li, 0, missing(field + "[amount]")
	}
	unit, ok, err := cents(m, "unit_price")
	if err != nil {
		return li, 0, prefix(err, field)
	}
	if !ok {
		unit = amount / li.Quantity
		if unit*li.Quantity != amount {
			return li, 0, &fieldError{field: field + "[amount]", reason: fmt.Sprintf("%d cents do not divide into %d equal units; unit_price is missing", amount, li.Quantity)}
		}
	}
	li.UnitPrice = domain.MoneyFromMinor(unit, cur)
	li.Total = domain.MoneyFromMinor(amount, cur)
	if d := unit*li.Quantity - amount; d > 0 {
		li.Discount = domain.MoneyFromMinor(d, cur)
	} else {
		li.Discount = domain.Money{Currency: cur}
	}
	tax, _, err := cents(m, "tax_paid")
	if err != nil {
		return li, 0, prefix(err, field)
	}
	return li, tax, nil
}

func prefix(err error, field string) error {
	var fe *fieldError
	if errors.As(err, &fe) {
		return &fieldError{field: field + "[" + strings.ReplaceAll(strings.TrimSuffix(fe.field, "]"), "[", "][") + "]", reason: fe.reason, err: fe.err}
	}
	return err
}

// subscriptionIDs maps purchase-map keys to subscription ids (subscription_ids[product-12]).
func (n *normalizer) subscriptionIDs() map[string]string {
	out := map[string]string{}
	for _, k := range n.f.Keys("subscription_ids") {
		if v := n.f.Get("subscription_ids", k); v != "" {
			out[k] = v
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func firstTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// ---- subscriptions

// subscriptionRef finds the subscription an event is about and the item it bills.
func (n *normalizer) subscriptionRef() (id, product string, err error) {
	typ := firstNonEmpty(n.f.Get("subscription", "type"), "product")
	itemID := n.f.Get("subscription", "id")
	productID := n.firstOf(p("subscription", "product_id"), p("base_product"))
	subs := n.subscriptionIDs()
	id = n.f.Get("subscription_id")
	if id == "" {
		id = subs[itemKey(typ, itemID)]
	}
	if id == "" && typ == "product" {
		id = subs[itemKey(typ, productID)]
	}
	if id == "" {
		id = itemID
	}
	if id == "" {
		return "", "", missing("subscription_id")
	}
	for k, v := range subs {
		if v == id {
			product = k
		}
	}
	if product == "" {
		if typ == "product" && productID != "" {
			product = itemKey(typ, productID)
		} else {
			product = itemKey(typ, itemID)
		}
	}
	return id, product, nil
}

func (n *normalizer) subscription(status domain.SubscriptionStatus, at time.Time) (*domain.Subscription, error) {
	id, product, err := n.subscriptionRef()
	if err != nil {
		return nil, err
	}
	mail, err := n.email()
	if err != nil {
		return nil, err
	}
	cur, err := n.currency(false)
	if err != nil {
		return nil, err
	}
	s := &domain.Subscription{
		Key: domain.SubscriptionKey(domain.ThriveCart, id), Source: domain.ThriveCart, ID: id, Email: mail,
		OriginalOrderID: n.firstOf(p("order_id"), p("order", "id")), Status: status, StatusAt: firstTime(at, n.receivedAt),
		Frequency: n.f.Get("subscription", "frequency"),
		Reason:    n.firstOf(p("subscription", "cancel_reason"), p("cancel_reason"), p("reason")),
		Amount:    domain.Money{Currency: cur},
	}
	if product != "" {
		s.Products = []string{product}
	}
	if n.f.Has("subscription", "amount") {
		if cur == "" {
			return nil, missing("currency")
		}
		if s.Amount, err = n.money(cur, "subscription", "amount"); err != nil {
			return nil, err
		}
	}
	if status == domain.SubActive || status == domain.SubPaymentFailed {
		s.NextAttempt = n.timeOf(p("subscription", "billing_period_end"), p("subscription", "billing_period_end_iso8601"),
			p("billing_period_end"), p("next_payment_date"))
	}
	s.History = []domain.StatusChange{{Status: status, At: s.StatusAt, Reason: s.Reason, Event: n.d.Event}}
	return s, nil
}

func (n *normalizer) subscriptionStatus(status domain.SubscriptionStatus) ([]domain.Event, error) {
	s, err := n.subscription(status, n.eventTime())
	if err != nil {
		return nil, err
	}
	e := n.event(domain.KindSubscription, s.StatusAt)
	e.Sub = s
	return []domain.Event{e}, nil
}

// subscriptionPayment maps a rebill: the subscription is active, and the payment is a rebill
// order keyed by its invoice id.
func (n *normalizer) subscriptionPayment() ([]domain.Event, error) {
	at := n.eventTime()
	s, err := n.subscription(domain.SubActive, at)
	if err != nil {
		return nil, err
	}
	e := n.event(domain.KindSubscription, s.StatusAt)
	e.Sub = s
	out := []domain.Event{e}

	id, err := n.orderID()
	if err != nil {
		return nil, err
	}
	var inv string
	for _, path := range [][]string{p("subscription", "invoice_id"), p("order", "invoice_id"), p("invoice_id")} {
		if v := n.f.Get(path...); keyInvoice(v) != "" {
			inv = v
			break
		}
	}
	if inv == "" {
		// The first payment of a subscription: order.success recorded that order.
		return out, nil
	}
	cur, err := n.currency(true)
	if err != nil {
		return nil, err
	}
	total, ok, err := cents(n.f, "subscription", "amount_gross")
	if err != nil {
		return nil, err
	}
	if !ok {
		if total, ok, err = cents(n.f, "subscription", "amount"); err != nil {
			return nil, err
		}
	}
	if !ok {
		return nil, missing("subscription[amount]")
	}
	net, ok, err := cents(n.f, "subscription", "amount")
	if err != nil {
		return nil, err
	}
	if !ok {
		net = total
	}
	tax, _, err := cents(n.f, "subscription", "tax_paid")
	if err != nil {
		return nil, err
	}
	z := domain.Money{Currency: cur}
	o := &domain.Order{
		Key: domain.OrderKey(domain.ThriveCart, id, inv), Source: domain.ThriveCart, OrderID: id, InvoiceID: inv,
		Email: s.Email, Status: domain.OrderPaid, Test: n.test(), CreatedAt: at, PaidAt: at, Currency: cur,
		Subtotal: domain.MoneyFromMinor(net, cur), Discount: z, Shipping: z, Handling: z,
		Tax: domain.MoneyFromMinor(tax, cur), Total: domain.MoneyFromMinor(total, cur), Refunded: z,
		CustomerTotal: domain.MoneyFromMinor(total, cur), SubscriptionID: s.ID, Rebill: true, SourceUpdatedAt: at,
	}
	n.customer(o)
	if len(s.Products) > 0 {
		o.Items = []domain.LineItem{{SKU: s.Products[0], Name: html.UnescapeString(n.f.Get("subscription", "name")),
			Quantity: 1, UnitPrice: o.Subtotal, Discount: z, Total: o.Subtotal, Refunded: z,
			Kind: firstNonEmpty(n.f.Get("subscription", "type"), "product"), SubscriptionID: s.ID}}
	}
	oe := n.event(domain.KindOrder, at)
	oe.Order = o
	return append(out, oe), nil
}

// ---- refunds

func (n *normalizer) refund() ([]domain.Event, error) {
	id, err := n.orderID()
	if err != nil {
		return nil, err
	}
	mail, err := n.email()
	if err != nil {
		return nil, err
	}
	cur, err := n.currency(true)
	if err != nil {
		return nil, err
	}
	amount, ok, err := cents(n.f, "refund", "amount")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, missing("refund[amount]")
	}
	inv := n.firstOf(p("refund", "invoice_id"), p("invoice_id"), p("order", "invoice_id"))
	key := keyInvoice(inv)
	at := n.timeOf(p("refund", "date_unix"), p("refund", "timestamp"), p("refund", "date_iso8601"), p("refund", "date"),
		p("date_unix"), p("timestamp"), p("date_iso8601"), p("date"))
	sku := ""
	if rid := n.f.Get("refund", "id"); rid != "" {
		sku = itemKey(firstNonEmpty(n.f.Get("refund", "type"), "product"), rid)
	}
	lineID := n.firstOf(p("refund", "refund_id"), p("refund", "transaction_id"), p("refund", "reference"))
	if lineID == "" {
		parts := []string{firstNonEmpty(inv, id), firstNonEmpty(sku, "order"), strconv.FormatInt(amount, 10)}
		if !at.IsZero() {
			parts = append(parts, strconv.FormatInt(at.Unix(), 10))
		}
		lineID = strings.Join(parts, "|")
	}
	refunded := domain.MoneyFromMinor(amount, cur)
	z := domain.Money{Currency: cur}
	o := &domain.Order{
		Key: domain.OrderKey(domain.ThriveCart, id, key), Source: domain.ThriveCart, OrderID: id, InvoiceID: inv,
		Email: mail, Status: domain.OrderPaid, Test: n.test(), RefundedAt: at, Currency: cur,
		Subtotal: z, Discount: z, Shipping: z, Handling: z, Tax: z, Total: z, CustomerTotal: z,
		Refunded: refunded, Rebill: key != "", Partial: true, SourceUpdatedAt: at,
		Refunds: []domain.RefundLine{{ID: lineID, Amount: refunded, At: at, SKU: sku,
			Reason: n.firstOf(p("refund", "reason"), p("reason"))}},
	}
	n.customer(o)
	if o.Rebill {
		o.SubscriptionID = n.f.Get("subscription_id")
	}
	e := n.event(domain.KindOrder, at)
	e.Order = o
	return []domain.Event{e}, nil
}

// ---- carts

// cartAbandoned maps cart.abandoned. The cart id is cart_id (or checkout_id) when sent, else
// the base product with the email, so one person's abandoned checkout of one product is one
// cart.
func (n *normalizer) cartAbandoned() ([]domain.Event, error) {
	mail, err := n.email()
	if err != nil {
		return nil, err
	}
	cur, err := n.currency(false)
	if err != nil {
		return nil, err
	}
	product := n.f.Get("base_product")
	id := n.firstOf(p("cart_id"), p("checkout_id"), p("abandoned_cart_id"))
	if id == "" {
		if product == "" {
			return nil, missing("base_product")
		}
		id = itemKey("product", product) + ":" + mail
	}
	at := firstTime(n.eventTime(), n.receivedAt)
	c := &domain.Cart{Source: domain.ThriveCart, CartID: id, Email: mail, At: at, Total: domain.Money{Currency: cur},
		ReturnURL: n.firstOf(p("checkout_url"), p("cart_url"), p("url"))}
	if v, ok, err := cents(n.f, "total"); err != nil {
		return nil, err
	} else if ok {
		if cur == "" {
			return nil, missing("currency")
		}
		c.Total = domain.MoneyFromMinor(v, cur)
	}
	if product != "" {
		c.Items = []domain.LineItem{{SKU: itemKey("product", product), Name: html.UnescapeString(n.f.Get("base_product_name")),
			Quantity: 1, UnitPrice: c.Total, Total: c.Total, Discount: domain.Money{Currency: cur},
			Refunded: domain.Money{Currency: cur}, Kind: "product"}}
	}
	c.Billing = n.address()
	c.Phone = n.phone(c.Billing.CountryCode)
	e := n.event(domain.KindCart, at)
	e.Cart = c
	return []domain.Event{e}, nil
}

// affiliateStatus maps affiliate_approved and affiliate_rejected. ThriveCart does not publish
// their fields, so the affiliate's id is read from affiliate[affiliate_id], affiliate[id] or
// affiliate_id, and its email from affiliate[email], else the event's customer or email field;
// an event without both is kept raw with the reason.
func (n *normalizer) affiliateStatus(status domain.AffiliateStatus) ([]domain.Event, error) {
	id := n.firstOf(p("affiliate", "affiliate_id"), p("affiliate", "id"), p("affiliate_id"))
	if id == "" {
		return nil, missing("affiliate[affiliate_id]")
	}
	var (
		mail string
		err  error
	)
	if v := n.f.Get("affiliate", "email"); v != "" {
		if mail, err = domain.NormalizeEmail(v); err != nil {
			return nil, &fieldError{field: "affiliate[email]", reason: "is invalid: " + err.Error(), err: err}
		}
	} else if mail, err = n.email(); err != nil {
		return nil, err
	}
	at := n.eventTime()
	a := &domain.AffiliateSignup{Source: domain.ThriveCart, AffiliateID: id, Email: mail, Status: status,
		FirstName: n.firstOf(p("affiliate", "first_name"), p("affiliate", "firstname")),
		LastName:  n.firstOf(p("affiliate", "last_name"), p("affiliate", "lastname")),
		At:        firstTime(at, n.receivedAt)}
	e := n.event(domain.KindAffiliate, a.At)
	e.AffiliateSignup = a
	return []domain.Event{e}, nil
}
