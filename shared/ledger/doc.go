// Package ledger is the pure heart of ingest: it merges a new version of an order or a
// subscription into the stored one, recomputes a contact from its records, and says which facts
// the change produces and where they may go.
//
// The merges are joins (commutative, associative, idempotent), so any permutation or
// duplication of a record's source events converges to the same stored record, and the facts
// follow from comparing the stored record before and after. A fact id is derived from what the
// fact states, never from arrival order, so a replay produces ids destinations have already
// seen.
//
// Nothing here reads a clock, performs I/O or logs: the caller passes times in and stores what
// comes back. Values returned may share slices and maps with the arguments; treat them as
// immutable.
package ledger
