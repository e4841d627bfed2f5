package deliver

import (
	"context"
	"log/slog"
	"net/http"

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
	// Settings is its section of the account file (accounts.Section): its keys, their kinds,
	// defaults and secrets, and how the console's settings form shows them.
	Settings *accounts.Section
	// Form is what the console's settings form asks of it beyond its section's keys; nil:
	// nothing.
	Form *Form
	// Access is what its forward function needs beyond its secrets and the account data.
	Access Access
}

// Form is what the console's settings form asks of a destination, calling its vendor.
type Form struct {
	// Verify asks the vendor about the credentials a settings post gives, or pairs anew with a
	// stored one (a new app id, another data center), before anything is saved. It answers one
	// sentence per problem, each saying what to do; any problem saves nothing of the post. nil:
	// nothing to ask.
	Verify func(ctx context.Context, in FormInput) []string
	// Choices are the values the section's keys of accounts.FormPick are ticked among
	// (Iterable's lists), read with the stored credentials. nil: those keys are text boxes.
	Choices func(ctx context.Context, in FormInput) Choices
	// Opens are the stored secrets Verify and Choices may open (FormInput.Open): the connect
	// function's grant (shared/grants) allows decrypting them, and Open refuses any other.
	Opens []accounts.Field
}

// FormInput is what a destination's Form is asked with.
type FormInput struct {
	// HTTP reaches the vendor.
	HTTP *http.Client
	// Before is the account as stored, its secrets sealed. After is the account as the post
	// would save it (accounts.Repo.Preview): a secret the post gives is opened, one it keeps
	// stays sealed, one it removes is unset. Choices get the stored account in both.
	Before, After accounts.Account
	// Open opens one of the account's stored secrets, one of Form.Opens.
	Open func(ctx context.Context, f accounts.Field) (accounts.Secret, error)
	// Log notes what could not be asked (the vendor unreachable), with the account; never nil.
	Log *slog.Logger
}

// Choices are the values a merchant ticks for a key of accounts.FormPick.
type Choices struct {
	Options []Choice
	// Why says why there is nothing to tick (no key, a refused key, the vendor unreachable);
	// the keys are then text boxes, and Why is shown beside them.
	Why string
	// None is shown when the vendor has no values yet.
	None string
	// Stale is how a stored value the vendor no longer offers is shown, still ticked, so that
	// saving the page does not drop it unseen.
	Stale func(value string) Choice
}

// Choice is one value to tick: Value is what the account file stores, Name and Note what the
// merchant sees.
type Choice struct {
	Value, Name, Note string
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

// KeyToCheck is the key of secret f that a settings post asks the vendor about: the one the
// post gives or, when repaired (the post pairs the stored key with a new app id or another data
// center), the stored one. "" with no error: nothing to ask. An error means the stored key
// could not be opened.
func (in FormInput) KeyToCheck(ctx context.Context, f accounts.Field, repaired bool) (string, error) {
	secret := in.After.SecretAt(string(f))
	switch {
	case secret.IsSet() && secret.Opened():
		return secret.Reveal(), nil
	case secret.IsSet() && repaired:
		stored, err := in.Open(ctx, f)
		if err != nil {
			return "", err
		}
		return stored.Reveal(), nil
	}
	return "", nil
}

// Unreachable notes that vendor could not be asked about a key and says so to the merchant: a
// vendor that cannot be reached is not a wrong key, and the post saves nothing all the same.
func (in FormInput) Unreachable(vendor string, err error) string {
	if in.Log != nil {
		in.Log.Info("console: key not checked", slog.String("vendor", vendor), slog.Any("error", err))
	}
	return vendor + " could not be reached to check the API key, so nothing was saved; try again shortly."
}
