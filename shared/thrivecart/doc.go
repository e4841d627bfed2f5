// Package thrivecart reads ThriveCart webhook deliveries and maps them to the domain.
//
// It is pure: no I/O, no clock, no logging. ScanSecret finds a body's secret word in one pass
// that keeps nothing, so a body is authenticated before it is decoded. Decode reads a body
// (form-encoded with PHP-style nested keys such as customer[email] or
// order[charges][0][amount], JSON, or multipart form data) into a Delivery, in time and memory
// linear in its size; CheckSecret compares its secret word in constant time; Normalize maps it
// to domain events. Errors are typed: *DecodeError for a body that is not a ThriveCart
// webhook (answer 400), and *EventError wrapping ErrUnknownEvent (keep raw, count) or
// ErrInvalidEvent (quarantine with the message).
//
// # Rules
//
//   - Money. ThriveCart sends integer cents ("1499" is 14.99); they become exact Money in the
//     upper-cased currency. A cents field with a non-zero fraction is an error.
//   - Test mode. mode "test" (or mode_int 1) marks orders Test.
//   - Order identity. A rebill shares its order's order_id, and its invoice id carries a
//     suffix ("000000004-2"). An order's key is domain.OrderKey(ThriveCart, order_id, inv)
//     where inv is the invoice id when it has a rebill suffix -N with N >= 2, and "" otherwise.
//     The same rule keys every event (order.success, order.subscription_payment, order.refund),
//     so a refund of a rebill finds that rebill and a refund of the original finds the
//     original. An order.subscription_payment without a suffixed invoice id is the first
//     payment, which order.success already recorded: it yields only the subscription event.
//   - Refunds. order.refund reports what that one refund returns (refund[amount]), not a
//     running total. The order event it yields is Partial and carries that refund as one
//     Order.Refunds line with Refunded equal to it; the cumulative refunded amount is the sum
//     over the union of lines by RefundLine.ID across events, which the ledger computes. A
//     line's ID is refund[refund_id] / refund[transaction_id] / refund[reference] when sent,
//     else a composite of the invoice, the refunded item, the amount and the refund time, so a
//     redelivery of the same webhook maps to the same line while a second refund does not
//     (two refunds of the same item and amount with no time in the payload would coincide).
//   - Subscriptions. A subscription is keyed by its id: subscription_id, else the
//     subscription_ids entry of the item, else subscription[id]. paused stays paused (the
//     ledger counts it as active), resumed is active, cancelled cancels that subscription only,
//     rebill_failed is payment_failed, subscription_payment is active plus a rebill order.
//     order.success starts one active subscription per subscription_ids entry.
//   - Times. Unix timestamps (date_unix, order_timestamp, ...) are preferred, then ISO 8601
//     fields, then "2006-01-02 15:04:05" strings, which ThriveCart writes in UTC.
//   - Product lines are named by ThriveCart's purchase-map key, "<item_type>-<id>" (product-12,
//     bump-3, upsell-7), the same key subscription_ids uses.
package thrivecart
