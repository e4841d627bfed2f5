package ontraport

import (
	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// Registration is ONTRAPORT's entry in the destination registry.
func Registration() deliver.Registration {
	return deliver.Registration{
		Name:  accounts.DestOntraport,
		Label: "ONTRAPORT",
		Queue: queue.DestinationSpec(accounts.DestOntraport),
		New: func(p deliver.Ports) (deliver.Destination, error) {
			return New(Options{Store: p.Store, Clock: p.Clock, Log: p.Log}), nil
		},
		Enabled: func(a accounts.Account) bool { return a.Ontraport.Enabled },
		History: historyMode,
		KeySet:  func(a accounts.Account) bool { return a.Ontraport.APIKey.IsSet() },
		Check:   CheckSettings,
		// An anonymized contact carries the pseudonym; a deleted one has nothing to take them.
		ForwardsErased: func(a accounts.Account) bool { return a.Ontraport.Erasure != ErasureDelete },
		Secrets:        []accounts.Field{accounts.OntraportAPIKey},
	}
}

func historyMode(a accounts.Account) accounts.HistoryMode {
	return deliver.HistoryOrDefault(a.Ontraport.History)
}
