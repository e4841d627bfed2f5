package signedhooks

import (
	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// Registration is the signed-webhooks entry in the destination registry.
func Registration() deliver.Registration {
	section := Section()
	return deliver.Registration{
		Name:  Name,
		Label: "Signed webhooks",
		Queue: queue.DestinationSpec(Name),
		New: func(p deliver.Ports) (deliver.Destination, error) {
			return New(Options{Clock: p.Clock, Log: p.Log}), nil
		},
		Enabled: func(a accounts.Account) bool { return a.Flag(path(keyEnabled)) },
		History: func(a accounts.Account) accounts.HistoryMode {
			return deliver.HistoryOrDefault(a.HistoryAt(path(keyHistory)))
		},
		KeySet: func(a accounts.Account) bool {
			s, _ := ParseSettings(a)
			for _, e := range s.Endpoints {
				if !e.Dry() {
					return true
				}
			}
			return false
		},
		Check: CheckSettings,
		// Receivers were sent ContactErased and asked to forget the contact: nothing about
		// its pseudonym follows.
		ForwardsErased: func(accounts.Account) bool { return false },
		Secrets:        Secrets(),
		Settings:       &section,
	}
}
