package ontraport

import (
	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// Registration is ONTRAPORT's entry in the destination registry.
func Registration() deliver.Registration {
	section := Section()
	return deliver.Registration{
		Name:  Name,
		Label: "ONTRAPORT",
		Queue: queue.DestinationSpec(Name),
		New: func(p deliver.Ports) (deliver.Destination, error) {
			return New(Options{Store: p.Store, Clock: p.Clock, Log: p.Log}), nil
		},
		Enabled: Enabled,
		History: historyMode,
		KeySet:  func(a accounts.Account) bool { return a.SecretAt(string(APIKey)).IsSet() },
		Check:   CheckSettings,
		// An anonymized contact carries the pseudonym; a deleted one has nothing to take them.
		ForwardsErased: func(a accounts.Account) bool { return Erasure(a) != ErasureDelete },
		Secrets:        []accounts.Field{APIKey},
		Settings:       &section,
		Form:           &deliver.Form{Verify: verifyKey, Opens: []accounts.Field{APIKey}},
	}
}

func historyMode(a accounts.Account) accounts.HistoryMode {
	return deliver.HistoryOrDefault(a.HistoryAt(keyPath(keyHistory)))
}
