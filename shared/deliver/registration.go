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
	// ForwardsErased reports whether facts about an erased contact's pseudonym (a refund of an
	// order placed before the erasure) still go to the destination: only where the erased
	// contact lives on under its pseudonym (an anonymized ONTRAPORT contact).
	ForwardsErased func(a accounts.Account) bool
	// Secrets are the account's secrets its deliveries open (accounts.Repo.Get), and nothing
	// else; the forward function's grant allows decrypting exactly these and Access.Decrypt.
	Secrets []accounts.Field
	// Settings is its section of the account file, when it declares its settings there (the
	// generic machinery of accounts.Section) rather than in accounts' own fields.
	Settings *accounts.Section
	// Access is what its forward function needs beyond its secrets and the account data.
	Access Access
}

// Access is what a destination's forward function may do beyond reading the table, writing the
// accounts' data partitions and decrypting its Secrets (shared/grants builds the function's
// grant from it; template.yaml's IAM policy must say the same).
type Access struct {
	// Decrypt and Encrypt name further secrets by their encryption context name.
	Decrypt, Encrypt []string
	// Writes are further partition key patterns (IAM StringLike) it writes.
	Writes []string
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
