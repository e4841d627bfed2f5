package history

import (
	"encoding/json"

	"github.com/cartrelay/cartrelay/shared/store"
)

// A forwarder checks two items before it delivers a fact: the destination's record of it
// (FactDone) and its contact's erasure marker (Erasing). Their keys and readings are here, so
// that the checks of a batch's facts can be read together (store.GetMany).

// FactDoneKey is the key of a destination's record of a delivered fact (FactDone).
func FactDoneKey(account, dest, factID string) store.Key {
	return store.Key{PK: FactDonePK(account, dest, factID), SK: dash}
}

// ErasingKey is the key of the marker of a contact being erased (Erasing).
func ErasingKey(account, email string) store.Key {
	return store.Key{PK: ContactPK(account, email), SK: skErasing}
}

// ErasingPseudonym is the pseudonym an erasure marker names.
func ErasingPseudonym(it store.Item) string {
	var m struct{ Pseudonym string }
	_ = json.Unmarshal(it.Data, &m)
	if m.Pseudonym == "" {
		return "the pseudonym"
	}
	return m.Pseudonym
}
