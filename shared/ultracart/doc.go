// Package ultracart reads UltraCart webhook deliveries and maps their events to the domain.
//
// It is pure: no I/O, no clock, no logging. A delivery is split by DecodeDelivery into one
// RawEvent per event (each kept byte for byte), and Normalize turns one RawEvent into domain
// events. Errors are typed so the webhook handler can answer 400 (*DecodeError) and ingest can
// count unknown events (ErrUnknownEvent) or quarantine unusable ones (ErrInvalidEvent, with
// *EventError's message as the reason).
//
// # Wire format
//
// UltraCart POSTs JSON. The top level is either a bare array of events or an object whose
// "events" member is that array; each event is a one-key object {event_name: resource}. With
// compress_events on, events are gzipped and then base64-encoded into a JSON string. Where
// that string goes is not documented, so every plausible place is accepted: the "events"
// value, each element of the events array, and the whole body (a JSON string, bare base64
// text, or raw gzip bytes). A decompressed string may hold an array of events or one event.
// All decompression in one delivery shares one budget (MaxDecompressed).
//
// # Assumptions
//
//   - Times. UltraCart writes ISO 8601 with an offset ("2021-05-18T14:03:01-04:00"). A time
//     without an offset is read as US Eastern wall time (UltraCart's own zone, the offset its
//     API uses), with US daylight-saving rules computed here rather than loaded from the
//     host's zone database; a wall time in the repeated autumn hour is read as daylight time.
//     Normalized times are UTC.
//   - Currency. Summary and item amounts ("value") are in the merchant's base currency, which
//     an order does not name. Options.BaseCurrency sets it; without it, an order whose
//     exchange rate is absent or 1 takes its own currency_code (the customer paid in the base
//     currency), and any other order is assumed to be in USD. "localized" amounts are in the
//     order's currency_code and become CustomerTotal (rounded half-even, since they are
//     conversions); base amounts are exact or the event is rejected. Every currency code the
//     payload or the account gives must be one ISO 4217 lists (domain.ParseCurrency); an event
//     naming another is refused with the field, since its amounts cannot be counted.
//   - Shipping. UltraCart reports shipping and handling as one amount
//     (summary.shipping_handling_total); it becomes Order.Shipping and Handling stays zero.
//     order_ship_out_for_delivery and order_ship_delivered carry no date of their own; the
//     receipt time stands in (for the delivery, only when no actual_delivery_date is given).
//   - Chargebacks. chargeback_* events carry a ChargebackDispute. It becomes a dispute line on a
//     version of its order: complete when the order is embedded with its billing email, partial
//     otherwise. Its status is free text that UltraCart does not enumerate; chargebackStatus
//     reads it, and anything it does not recognise keeps the dispute standing.
package ultracart
