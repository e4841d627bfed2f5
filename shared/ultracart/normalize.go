package ultracart

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// Options tune normalization per account.
type Options struct {
	// BaseCurrency is the merchant's UltraCart base currency (ISO 4217). Empty means inferred
	// per order (see the package doc).
	BaseCurrency string
	// Phone normalizes phone numbers to E.164 (shared/phone.E164); nil leaves phones out.
	Phone domain.PhoneFunc
}

type payloadKind int

const (
	kindOrder payloadKind = iota + 1
	kindAutoOrder
	kindCustomer
	kindItem
	kindCart
	kindChargeback
)

// interpreted maps the event names Normalize reads to their payload model.
var interpreted = map[string]payloadKind{
	"order_create":                kindOrder,
	"order_update":                kindOrder,
	"order_payment_process":       kindOrder,
	"order_stage_change":          kindOrder,
	"order_refund":                kindOrder,
	"order_reject":                kindOrder,
	"order_delete":                kindOrder,
	"order_payment_failed":        kindOrder,
	"order_ship":                  kindOrder,
	"order_ship_delivered":        kindOrder,
	"order_ship_expected":         kindOrder,
	"order_ship_out_for_delivery": kindOrder,

	"auto_order_create":      kindAutoOrder,
	"auto_order_rebill":      kindAutoOrder,
	"auto_order_decline":     kindAutoOrder,
	"auto_order_cancel":      kindAutoOrder,
	"auto_order_disable":     kindAutoOrder,
	"auto_order_update":      kindAutoOrder,
	"auto_order_preshipment": kindAutoOrder,

	"customer_create": kindCustomer,
	"customer_update": kindCustomer,
	"customer_delete": kindCustomer,

	"item_create": kindItem,
	"item_update": kindItem,
	"item_delete": kindItem,

	"checkout_cart_abandon":           kindCart,
	"checkout_cart_send_return_email": kindCart,

	"chargeback_create": kindChargeback,
	"chargeback_update": kindChargeback,
	"chargeback_delete": kindChargeback,
}

// Events lists the event names Normalize interprets, sorted.
func Events() []string {
	return slices.Sorted(maps.Keys(interpreted))
}

// otherEvents are UltraCart event names that exist but that cartrelay does not interpret.
var otherEvents = map[string]bool{
	"fulfillment_hold": true, "fulfillment_transmit": true,
	"order_abandon_recovery": true, "order_s3_invoice": true, "order_s3_packing_slip": true,
	"screen_recording": true,
	"user_create":      true, "user_delete": true, "user_login": true, "user_update": true,
	"workflow_task_create": true, "workflow_task_delete": true, "workflow_task_update": true,
}

// Interpreted reports whether Normalize maps events of this name.
func Interpreted(name string) bool { return interpreted[name] != 0 }

// knownEvent reports whether name is an UltraCart webhook event name at all.
func knownEvent(name string) bool { return interpreted[name] != 0 || otherEvents[name] }

// Normalize maps one event to domain events with the base currency inferred per order. See
// NormalizeWith.
func Normalize(ev RawEvent, receivedAt time.Time) ([]domain.Event, error) {
	return NormalizeWith(ev, receivedAt, Options{})
}

// NormalizeWith maps one event to domain events. Most events give one; auto_order_rebill gives
// the subscription event and, when the payload carries its rebill orders, the newest rebill
// order as an order event too. receivedAt is when cartrelay received the delivery; it stands
// in for the event time when the payload has none.
//
// Errors are *EventError: errors.Is(err, ErrUnknownEvent) for a name not interpreted (keep the
// event raw), errors.Is(err, ErrInvalidEvent) otherwise (quarantine it with the message).
func NormalizeWith(ev RawEvent, receivedAt time.Time, opt Options) ([]domain.Event, error) {
	receivedAt = receivedAt.UTC()
	if ev.Err != nil {
		return nil, &EventError{Index: ev.Index, Name: ev.Name, Reason: ev.Err.Error(), Kind: ErrInvalidEvent, Err: ev.Err}
	}
	kind := interpreted[ev.Name]
	if kind == 0 {
		reason := "is not an UltraCart event name"
		if otherEvents[ev.Name] {
			reason = "is an UltraCart event cartrelay does not interpret"
		}
		return nil, &EventError{Index: ev.Index, Name: ev.Name, Reason: reason, Kind: ErrUnknownEvent}
	}
	if opt.BaseCurrency != "" {
		c, err := domain.ParseCurrency(opt.BaseCurrency)
		if err != nil {
			return nil, &EventError{Index: ev.Index, Name: ev.Name, Kind: ErrInvalidEvent, Err: err,
				Reason: fmt.Sprintf("cannot be read: the account's ultracart.base_currency %q is not an ISO 4217 currency code; correct it with `cartrelay accounts put` and replay the event", opt.BaseCurrency)}
		}
		opt.BaseCurrency = c
	}
	n := normalizer{name: ev.Name, receivedAt: receivedAt, opt: opt}
	var (
		out []domain.Event
		err error
	)
	switch kind {
	case kindOrder:
		var o Order
		if err = decodePayload(ev.Payload, &o); err == nil {
			var e domain.Event
			e, err = n.orderEvent(&o)
			out = []domain.Event{e}
		}
	case kindAutoOrder:
		var a AutoOrder
		if err = decodePayload(ev.Payload, &a); err == nil {
			out, err = n.autoOrderEvents(&a)
		}
	case kindCustomer:
		var c Customer
		if err = decodePayload(ev.Payload, &c); err == nil {
			var e domain.Event
			e, err = n.customerEvent(&c)
			out = []domain.Event{e}
		}
	case kindItem:
		var it Item
		if err = decodePayload(ev.Payload, &it); err == nil {
			var e domain.Event
			e, err = n.itemEvent(&it)
			out = []domain.Event{e}
		}
	case kindCart:
		var c Cart
		if err = decodePayload(ev.Payload, &c); err == nil {
			var e domain.Event
			e, err = n.cartEvent(&c)
			out = []domain.Event{e}
		}
	case kindChargeback:
		var c ChargebackDispute
		if err = decodePayload(ev.Payload, &c); err == nil {
			var e domain.Event
			e, err = n.chargebackEvent(&c)
			out = []domain.Event{e}
		}
	}
	if err != nil {
		return nil, eventError(ev, err)
	}
	return out, nil
}

type normalizer struct {
	name       string
	receivedAt time.Time
	opt        Options
}

func (n *normalizer) event(kind domain.EventKind, at time.Time) domain.Event {
	if at.IsZero() {
		at = n.receivedAt
	}
	return domain.Event{Source: domain.UltraCart, Name: n.name, Kind: kind, OccurredAt: at}
}

func eventError(ev RawEvent, err error) error {
	e := &EventError{Index: ev.Index, Name: ev.Name, Kind: ErrInvalidEvent, Err: err}
	var fe *fieldError
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &fe):
		e.Field, e.Reason, e.Err = fe.field, fe.reason, fe.err
	case errors.As(err, &te):
		e.Field = te.Field
		if e.Field == "" {
			e.Field = "payload"
		}
		e.Reason = fmt.Sprintf("is a JSON %s, expected %s", te.Value, describeType(te.Type.String()))
	case errors.As(err, &se):
		e.Reason = fmt.Sprintf("payload is not valid JSON at byte %d: %v", se.Offset, se)
	default:
		e.Reason = err.Error()
	}
	return e
}

func describeType(t string) string {
	switch {
	case strings.HasSuffix(t, "Decimal"):
		return "a number"
	case strings.HasSuffix(t, "ID"):
		return "an id (number or string)"
	case t == "bool":
		return "a boolean"
	case t == "string" || strings.HasSuffix(t, "Text"):
		return "a string"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	}
	return "an object"
}

// decodePayload reads an event's payload into *v, which must hold the zero value, with the
// semantics of encoding/json. The payload is read first by the models' own decoder
// (modelDecoder), which takes one pass, without reflection, and skips the members the models
// do not name. It reads only what it reads exactly as encoding/json does and gives up on
// anything else (a syntax error, a type mismatch, a duplicate name, an escaped or non-ASCII
// name); then the payload is read again by encoding/json, so every result and every error is
// encoding/json's own. FuzzDecodePayloadAsEncodingJSON checks that the first reading never
// differs.
//
// The first reading copies the payload into one string and gives every Text, Decimal and ID a
// slice of it, so the strings of the result share that one allocation: a result kept keeps the
// payload's text (a few KB) with it. Callers that keep a string for long (a cache) clone it.
func decodePayload[T any](p json.RawMessage, v *T) error {
	if len(p) == 0 {
		return errors.New("payload is empty")
	}
	if readFast(p, v) == nil {
		return nil
	}
	var zero T
	*v = zero
	return json.Unmarshal(p, v)
}

// readFast is decodePayload's first reading.
func readFast[T any](p []byte, v *T) error {
	m, ok := any(v).(model)
	if !ok {
		return errNotSimple
	}
	return readModel(string(p), m)
}

// text trims a Text.
func text(t Text) string { return strings.TrimSpace(string(t)) }

// first returns the first non-empty trimmed value.
func first(vs ...Text) string {
	for _, v := range vs {
		if s := text(v); s != "" {
			return s
		}
	}
	return ""
}

// email normalizes a required email field.
func email(field string, v Text) (string, error) {
	if text(v) == "" {
		return "", missing(field)
	}
	e, err := domain.NormalizeEmail(string(v))
	if err != nil {
		return "", invalid(field, err)
	}
	return e, nil
}

// phone picks the first number that normalizes, in the order given; with no phone function
// configured, phones are left out rather than forwarded unchecked.
func (n *normalizer) phone(country Text, candidates ...Text) string {
	if n.opt.Phone == nil {
		return ""
	}
	for _, c := range candidates {
		if text(c) == "" {
			continue
		}
		if p := n.opt.Phone(string(c), text(country)); p != "" {
			return p
		}
	}
	return ""
}

// money reads a base-currency amount; absent is zero.
func money(field string, c *Currency, currency string) (domain.Money, error) {
	if c == nil || c.Value == "" {
		return domain.Money{Currency: currency}, nil
	}
	m, err := domain.ParseMoney(string(c.Value), currency)
	if err != nil {
		return domain.Money{}, invalid(field+".value", err)
	}
	return m, nil
}

// plainMoney reads a bare number as an amount; absent is zero.
func plainMoney(field string, d Decimal, currency string) (domain.Money, error) {
	if d == "" {
		return domain.Money{Currency: currency}, nil
	}
	m, err := domain.ParseMoney(string(d), currency)
	if err != nil {
		return domain.Money{}, invalid(field, err)
	}
	return m, nil
}

// wholeNumber reads a quantity that must be a whole number ("2", "2.0"); absent is zero.
func wholeNumber(field string, d Decimal) (int64, error) {
	s := strings.TrimSpace(string(d))
	if s == "" {
		return 0, nil
	}
	m, err := domain.ParseMoney(s, "JPY") // JPY has no minor unit: exact whole numbers only
	if err != nil {
		var me *domain.MoneyError
		if errors.As(err, &me) && strings.Contains(me.Reason, "decimal places") {
			return 0, &fieldError{field: field, reason: fmt.Sprintf("%q is not a whole number", s)}
		}
		return 0, &fieldError{field: field, reason: fmt.Sprintf("%q is not a number", s)}
	}
	return m.Minor, nil
}

// isOne reports whether a decimal text is exactly 1.
func isOne(d Decimal) bool {
	s := strings.TrimSpace(string(d))
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	return s == "1"
}

// baseCurrency decides the currency of "value" amounts (see the package doc). A currency code
// the payload gives (the order's, or its total's) must be an ISO 4217 code, whether or not it
// decides the base currency: an order in a currency no one knows cannot be counted.
func (n *normalizer) baseCurrency(field string, orderCurrency Text, rate Decimal, total *Currency) (string, error) {
	code, err := n.currencyField(field, orderCurrency)
	if err != nil {
		return "", err
	}
	if total != nil {
		tc, err := n.currencyField(prefixPath(field, "summary.total.currency_code"), total.CurrencyCode)
		if err != nil {
			return "", err
		}
		if code == "" {
			code = tc
		}
	}
	if n.opt.BaseCurrency != "" {
		return n.opt.BaseCurrency, nil
	}
	if code != "" && (rate == "" || isOne(rate)) {
		return code, nil
	}
	return "USD", nil
}

// currencyField reads an optional currency code: "" when absent, an error naming the field when
// it is not an ISO 4217 code.
func (n *normalizer) currencyField(field string, v Text) (string, error) {
	if text(v) == "" {
		return "", nil
	}
	c, err := domain.ParseCurrency(text(v))
	if err != nil {
		return "", &fieldError{field: field, err: err,
			reason: fmt.Sprintf("is %q, which is not an ISO 4217 currency code, so the amounts cannot be counted", text(v))}
	}
	return c, nil
}

// prefixPath puts the object path of field (everything before its last dot) before name.
func prefixPath(field, name string) string {
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		return field[:i+1] + name
	}
	return name
}

func address(first, last, company, a1, a2, city, region, postal, country Text) domain.Address {
	return domain.Address{
		FirstName:   text(first),
		LastName:    text(last),
		Company:     text(company),
		Address1:    text(a1),
		Address2:    text(a2),
		City:        text(city),
		Region:      text(region),
		PostalCode:  text(postal),
		CountryCode: strings.ToUpper(text(country)),
	}
}

// utms maps UltraCart's clicks (most recent first) to the domain's click order (first touch
// first), dropping empty ones.
func utms(in []UTM) []domain.UTM {
	var out []domain.UTM
	for i := len(in) - 1; i >= 0; i-- {
		u := in[i]
		d := domain.UTM{
			Source:             text(u.UTMSource),
			Medium:             text(u.UTMMedium),
			Campaign:           text(u.UTMCampaign),
			Term:               text(u.UTMTerm),
			Content:            text(u.UTMContent),
			ID:                 text(u.UTMID),
			IterableCampaignID: first(u.IterableCampaignID, u.IterableCampaignID2),
			IterableTemplateID: first(u.IterableTemplateID, u.IterableTemplateID2),
			At:                 softTime(u.ClickDTS),
		}
		for _, c := range [...]struct {
			k string
			v Text
		}{
			{"fbclid", u.Fbclid}, {"gclid", u.Glcid}, {"gclid", u.Gclid}, {"gbraid", u.Gbraid},
			{"wbraid", u.Wbraid}, {"msclkid", u.Msclkid}, {"ttclid", u.Ttclid}, {"vmcid", u.Vmcid},
			{"facebook_ad_id", u.FacebookAd},
		} {
			if v := text(c.v); v != "" {
				if d.ClickIDs == nil {
					d.ClickIDs = map[string]string{}
				}
				if _, dup := d.ClickIDs[c.k]; !dup {
					d.ClickIDs[c.k] = v
				}
			}
		}
		if !d.Empty() {
			if out == nil {
				out = make([]domain.UTM, 0, i+1)
			}
			out = append(out, d)
		}
	}
	return out
}

// propertyValue finds a property by name, ignoring case and underscores.
func propertyValue(props []Property, names ...string) string {
	for _, p := range props {
		key := strings.ReplaceAll(strings.ToLower(text(p.Name)), "_", "")
		for _, n := range names {
			if key == n {
				if v := text(p.Value); v != "" {
					return v
				}
			}
		}
	}
	return ""
}

// dedupe keeps the first of each non-empty value, in order.
func dedupe(vs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range vs {
		if v == "" || seen[v] {
			continue
		}
		seen[v] = true
		out = append(out, v)
	}
	return out
}
