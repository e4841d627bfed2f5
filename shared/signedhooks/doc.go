// Package signedhooks is the signed-webhooks destination: it sends each fact as JSON to the
// HTTPS endpoints a merchant lists (Zapier, Make, n8n, an internal service), signed as the
// Standard Webhooks specification says (webhook-id, webhook-timestamp, webhook-signature),
// with the specification's own library.
//
// Each endpoint has its own secret (whsec_ and base64, as the specification writes them) and,
// during a rotation, its previous one: the signature header then carries a signature by each,
// so a receiver verifying with either secret accepts the request. An endpoint may take only
// some fact kinds. The webhook-id is the fact id, so a receiver that remembers ids takes a
// redelivered fact once; the forwarder also marks each endpoint done, so a retry after one
// endpoint failed does not send again to those that took the fact.
//
// Everything else (retries, the delivery log, parking, replay, per-contact order) is the
// forwarder's, as for every destination. docs/webhooks.md is the merchant's guide, and
// examples/webhook-payload.schema.json the payload's schema.
package signedhooks
