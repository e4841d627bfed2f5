package deliver

import (
	"log/slog"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Registration is everything cartrelay knows of one destination, in one place: each destination
// package offers its own, and package destinations lists them (docs/architecture.md, Adding a
// destination). Routing, the forwarders, serve, the settings checks and the console all read
// it, so a destination is added by registering it once.
type Registration struct {
	// Name is the destination's queue, settings and delivery-log name ("ontraport").
	Name string
	// Label is how pages name it ("ONTRAPORT").
	Label string
	// Queue is its FIFO queue; template.yaml must declare the same (deploy's template test).
	Queue queue.Spec
	// New builds the destination over a runtime's ports.
	New func(p Ports) (Destination, error)
	// Enabled reports whether the account routes facts to it. An enabled destination without an
	// API key still receives them: its forwarder runs dry and records what it would send.
	Enabled func(a accounts.Account) bool
	// History is what a backfill of old events may send to it (accounts.HistoryMode; unset reads
	// as HistoryProfiles).
	History func(a accounts.Account) accounts.HistoryMode
	// KeySet reports whether the account gave it an API key (else it runs dry).
	KeySet func(a accounts.Account) bool
	// Check reports the account's settings no delivery could use, so `accounts put` refuses
	// them.
	Check func(a accounts.Account) error
}

// Ports are what a runtime gives every destination it builds.
type Ports struct {
	Store store.Store
	Clock clock.Clock
	Log   *slog.Logger
	// Keys are the account keys that sign links a destination sends (review links).
	Keys *accountkeys.Repo
	// PublicBaseURL is where the connect function is reached from outside.
	PublicBaseURL string
}

// HistoryOrDefault reads an unset history mode as HistoryProfiles, the default.
func HistoryOrDefault(m accounts.HistoryMode) accounts.HistoryMode {
	if m == "" {
		return accounts.HistoryProfiles
	}
	return m
}
