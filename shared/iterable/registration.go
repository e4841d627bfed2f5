package iterable

import (
	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// queueName is Iterable's queue, which its registration names: the schedule's timers and the
// page views put facts there themselves.
const queueName = Name

// Registration is Iterable's entry in the destination registry.
func Registration() deliver.Registration {
	section := Section()
	return deliver.Registration{
		Name:  Name,
		Label: "Iterable",
		Queue: queue.DestinationSpec(queueName),
		New: func(p deliver.Ports) (deliver.Destination, error) {
			d := Deps{Store: p.Store, Clock: p.Clock, Log: p.Log, PublicBaseURL: p.PublicBaseURL}
			if p.Keys != nil {
				d.Keys = p.Keys
			}
			return New(d)
		},
		Enabled: Enabled,
		History: func(a accounts.Account) accounts.HistoryMode {
			return deliver.HistoryOrDefault(a.HistoryAt(keyPath(keyHistory)))
		},
		KeySet: func(a accounts.Account) bool { return a.SecretAt(string(APIKey)).IsSet() },
		Check:  CheckSettings,
		// Iterable forgot the erased contact: nothing may bring it back.
		ForwardsErased: func(accounts.Account) bool { return false },
		Secrets:        []accounts.Field{APIKey},
		Settings:       &section,
		Form:           &deliver.Form{Verify: verifyKey, Choices: listChoices, Opens: []accounts.Field{APIKey}},
		// The account's review key signs review links, and the first link makes it.
		Access: deliver.Access{
			Decrypt: []string{accountkeys.Secret(accountkeys.Review)},
			Encrypt: []string{accountkeys.Secret(accountkeys.Review)},
			Writes:  []string{accountkeys.ItemKey("*", accountkeys.Review).PK},
		},
	}
}
