// Package ontraport is cartrelay's ONTRAPORT destination: it turns facts into ONTRAPORT API
// calls (contacts merged by email, purchases logged as transactions, refunds, subscription
// status fields and tags, affiliate referrer fields, products) and records every exchange for the
// delivery log.
//
// Three rules shape it:
//   - A purchase must never be logged twice. ONTRAPORT has no idempotency key on commerce
//     writes, so before creating a transaction the destination looks the order up by
//     external_order_id and adopts what it finds; only then does it create one.
//   - A bulk selection that is empty means "every object" to ONTRAPORT. Refunds and tag changes
//     therefore go through a guard that refuses an empty or zero id list.
//   - The account's request budget (180 per rolling minute) is shared by every process, so
//     requests are admitted by a table-backed limiter, and ONTRAPORT's own rate headers pause it.
//
// docs/ontraport.md documents the representation choices for merchants.
package ontraport
