// Package accounts holds a merchant account's settings: which carts may post to it, which
// destinations it forwards to, with which credentials, and from when.
//
// An account is one table item (pk "A#<id>", sk "ACCOUNT", listed through GSI1 "ACCOUNTS").
// Its document is the nested JSON of the account file, with every secret sealed by
// shared/secrets for the account and the secret's dotted key, so a sealed value cannot be moved
// to another account or key. Operators change it with RFC 7386 merge patches (`cartrelay
// accounts put`).
//
// Reading an account opens only the secrets the reader names (Repo.Get): the webhook opens the
// webhook password or the ThriveCart word, a forwarder its destination's API key, and so on.
// In AWS each function's IAM policy allows kms:Decrypt for those secrets only (shared/grants),
// so a function never holds in plaintext a credential its work does not use.
//
// The keys of the account file are declared once: accounts' own in fieldTable, each
// destination's in the Section its package declares (Repo.WithSections). The JSON Schema in
// examples/account.schema.json describes the same keys, and tests keep them in step.
package accounts

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
	// The zone database is compiled in, so a zone name means the same thing in a Lambda (whose
	// image has no /usr/share/zoneinfo) as on a laptop.
	_ "time/tzdata"
)

// DefaultTimezone is the zone of an account that names none.
const DefaultTimezone = "UTC"

// CheckTimezone accepts an IANA zone name ("America/New_York", "UTC"). "Local" is refused: it
// would mean whatever zone the machine running cartrelay happens to be in.
func CheckTimezone(name string) error {
	if name == "" || name == "Local" {
		return fmt.Errorf("%q is not an IANA time zone name; use one such as \"America/New_York\" or \"Europe/Berlin\"", name)
	}
	if _, err := time.LoadLocation(name); err != nil {
		return fmt.Errorf("%q is not a known IANA time zone; use one such as \"America/New_York\" or \"Europe/Berlin\"", name)
	}
	return nil
}

// Location is the account's time zone. An unknown stored name (which Put refuses) falls back
// to UTC rather than failing reports.
func (a Account) Location() *time.Location {
	if loc, err := time.LoadLocation(a.Timezone); err == nil && a.Timezone != "" {
		return loc
	}
	return time.UTC
}

// HistoryMode says what a destination receives for source events older than forward_since.
type HistoryMode string

// History modes. The default, HistoryProfiles, keeps contacts current without firing
// purchase, cart, shipment or review campaigns for years-old orders during a backfill.
const (
	HistoryNone     HistoryMode = "none"
	HistoryProfiles HistoryMode = "profiles"
	HistoryAll      HistoryMode = "all"
)

// Valid reports whether m is one of the known modes.
func (m HistoryMode) Valid() bool {
	return m == HistoryNone || m == HistoryProfiles || m == HistoryAll
}

// Account is one merchant account with its secrets in plaintext. Secrets are sealed only in
// the table; in memory they are Secret values, which refuse to be printed or logged.
type Account struct {
	ID string
	// ForwardSince is the history cutover; it defaults to the moment the account was created.
	ForwardSince time.Time
	// Timezone is the IANA zone reports bucket days, weeks and months in (DefaultTimezone).
	Timezone string
	// AllowedDomains lists the merchant's own web hosts, as written in the account file
	// ("shop.example.com, example.com"; "*" for any). Page views are accepted only from pages
	// on them and review links redirect only to them; shared/sitehosts reads it.
	AllowedDomains string
	UltraCart      UltraCartSettings
	ThriveCart     ThriveCartSettings
	// Settings holds the values of the sections other packages declare (Section): each
	// destination's settings, by dotted key ("webhooks.enabled", "webhooks.endpoints.crm.url"):
	// strings, bools, HistoryModes and Secrets. Read them with Text, Flag, HistoryAt and
	// SecretAt.
	Settings  map[string]any
	CreatedAt time.Time
	UpdatedAt time.Time
	// Version is the stored item's version, bumped by every Put.
	Version int64
}

// UltraCartSettings authenticate UltraCart's webhook (HTTP Basic).
type UltraCartSettings struct {
	WebhookUsername string
	WebhookPassword Secret
	// BaseCurrency is the merchant's UltraCart base currency (ISO 4217). UltraCart's order
	// payloads give amounts in it without naming it; empty means "infer from the order".
	BaseCurrency string
	// EraseOnCustomerDelete makes UltraCart's customer_delete event erase the contact
	// (shared/erasure); off, a deleted customer profile leaves the contact as it is.
	EraseOnCustomerDelete bool
}

// ThriveCartSettings authenticate ThriveCart's webhook and API.
type ThriveCartSettings struct {
	// Secret is ThriveCart's "secret word", sent with every webhook.
	Secret Secret
	APIKey Secret
}

// Secret is a credential. Read from the table it is either opened (decrypted, because the
// reader named it in Repo.Get) or only known to be set; a process holds in plaintext only the
// secrets it asked for. Every way of printing a Secret (fmt verbs, slog, JSON, text
// marshalling) yields "[secret]"; use Reveal where the value is really needed.
type Secret struct {
	plain string
	// sealed: stored, but not opened by the read this came from. what names it for the panic
	// of a Reveal that forgot to ask for it.
	sealed bool
	what   string
}

// NewSecret is a secret known in plaintext (a value being set, or a test's).
func NewSecret(plain string) Secret { return Secret{plain: plain} }

// sealedSecret is a stored secret that was not opened.
func sealedSecret(what string) Secret { return Secret{sealed: true, what: what} }

const redacted = "[secret]"

// Reveal returns the plaintext. A secret that is stored but was not opened panics: the caller
// forgot to name it in Repo.Get, and must not go on as if no secret were set.
func (s Secret) Reveal() string {
	if s.sealed {
		panic("accounts: " + s.what + " was read without being opened; name it in Repo.Get")
	}
	return s.plain
}

// IsSet reports whether a value is configured, opened or not.
func (s Secret) IsSet() bool { return s.plain != "" || s.sealed }

// Opened reports whether Reveal may be called: the value is known in plaintext, or not set.
func (s Secret) Opened() bool { return !s.sealed }

// String hides the value.
func (s Secret) String() string { return redacted }

// Format hides the value from every fmt verb, including %x and %q.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' || (verb == 'v' && f.Flag('#')) {
		_, _ = f.Write([]byte(strconv.Quote(redacted)))
		return
	}
	_, _ = f.Write([]byte(redacted))
}

// LogValue hides the value from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON hides the value from encoding/json.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(redacted)), nil }

// MarshalText hides the value from text encoders.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Errors callers branch on.
var (
	// ErrNotFound: no account has this id (an invalid id matches it too, since no account can
	// have one).
	ErrNotFound = errors.New("no such account")
	// ErrInvalidID matches *IDError.
	ErrInvalidID = errors.New("invalid account id")
	// ErrInvalid matches *InvalidError: the account file was rejected and nothing was written.
	ErrInvalid = errors.New("invalid account settings")
	// ErrConflict: other writers kept changing the account while Put retried.
	ErrConflict = errors.New("the account kept changing while it was being updated")
)

// IDError explains why an account id is not acceptable.
type IDError struct {
	ID string
}

func (e *IDError) Error() string {
	return fmt.Sprintf("account id %q is invalid: use 2 to 63 lower-case letters, digits and dashes, starting and ending with a letter or digit (for example \"acme-store\")", e.ID)
}

// Is makes errors.Is(err, ErrInvalidID) true.
func (e *IDError) Is(target error) bool { return target == ErrInvalidID }

// ValidateID checks an account id. Ids appear in URL paths and table keys, so they are kept to
// the characters of a DNS label.
func ValidateID(id string) error {
	if len(id) < 2 || len(id) > 63 || id[0] == '-' || id[len(id)-1] == '-' {
		return &IDError{ID: id}
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return &IDError{ID: id}
		}
	}
	return nil
}

// Problem is one thing wrong with an account file.
type Problem struct {
	// Path is the dotted key ("ultracart.base_currency"), empty for the file as a whole.
	Path string
	// Message is a complete sentence that starts with the path.
	Message string
}

// InvalidError lists everything wrong with an account file, so one run shows every mistake.
type InvalidError struct {
	ID       string
	Problems []Problem
}

func (e *InvalidError) Error() string {
	msg := "account " + e.ID + ": "
	for i, p := range e.Problems {
		if i > 0 {
			msg += "; "
		}
		msg += p.Message
	}
	return msg
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }
