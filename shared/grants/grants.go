// Package grants says what each deployed function may do with the stack's key and table: which
// secrets it may decrypt and encrypt, and which table partitions it may write. template.yaml
// gives each function exactly these permissions (deploy/template_test.go holds the two
// together), and a function's process keeps to them too (Store, Wrapper), so a handler that
// reaches beyond its function's grant fails in tests, with a message naming what is missing,
// rather than first in AWS with an AccessDenied.
//
// The table is one partition space, so writes are limited by partition key pattern (IAM's
// dynamodb:LeadingKeys with StringLike): "A#*#*" is every account's data (contacts, orders,
// facts, deliveries, timers, rate windows), while "A#<id>" alone, which the pattern does not
// match, holds the account's settings, its source connections and their poll cursors. Reads
// cannot be limited that way (every function reads its accounts' settings); what a read of a
// sealed secret gives is useless without the matching kms:Decrypt.
package grants

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Grant is one function's permissions.
type Grant struct {
	// Secrets names the secrets the function may decrypt and encrypt (secrets.Purpose.Secret).
	Secrets secrets.Grant
	// Writes lists the partition key patterns (IAM StringLike: * for any run of characters) of
	// the items the function may put, update or delete; nil means any partition.
	Writes []string
}

// The functions of the stack, as wiring.Lambda names them: the program's folder under
// functions/, and for the forwarder the destination it is deployed for.
const (
	Webhook  = "webhook"
	Ingest   = "ingest"
	Schedule = "schedule"
	Poll     = "poll"
	Connect  = "connect"
	// ForwardPrefix starts each registered destination's forward function: "forward-ontraport".
	ForwardPrefix = "forward-"
)

// Partition patterns.
const (
	// AccountData is every partition under an account: "A#<id>#...".
	AccountData = "A#*#*"
	// Dedupe is ingest's markers of events already ingested.
	Dedupe = "D#*"
	// Blobs are event bodies too large for a queue message.
	Blobs = "BLOB#*"
	// Timers is the timers' scan cursor.
	Timers = "T#*"
	// ReviewKeys are the accounts' review keys (shared/accountkeys).
	ReviewKeys = "K#*#review"
	// ErasureKeys are the accounts' erasure keys (shared/accountkeys).
	ErasureKeys = "K#*#erasure"
)

// Functions lists every function, in the order the template declares them: one forwarder per
// registered destination.
func Functions() []string {
	out := []string{Webhook, Ingest}
	for _, name := range destinations.Names() {
		out = append(out, ForwardPrefix+name)
	}
	return append(out, Schedule, Poll, Connect)
}

// forward is the grant of a destination's forward function, from its registration: it opens
// the secrets its deliveries need, and writes the accounts' data.
func forward(r deliver.Registration) Grant {
	return Grant{
		Secrets: secrets.Grant{Decrypt: append(names(r.Secrets...), r.Access.Decrypt...), Encrypt: r.Access.Encrypt},
		Writes:  append([]string{AccountData}, r.Access.Writes...),
	}
}

// For returns function's grant.
func For(function string) (Grant, error) {
	ultracart := func(fields ...string) []string {
		var out []string
		for _, f := range fields {
			out = append(out, connections.Secret(connections.UltraCart, f))
		}
		return out
	}
	tokens := ultracart(connections.FieldAccessToken, connections.FieldRefreshToken)
	switch function {
	case Webhook:
		// Authenticates UltraCart (Basic) and ThriveCart (the secret word); /track checks a
		// shopper's identity token with the account's tracking key (which the operator makes).
		return Grant{
			Secrets: secrets.Grant{Decrypt: append(names(accounts.UltraCartWebhookPassword, accounts.ThriveCartSecretWord),
				accountkeys.Secret(accountkeys.Tracking))},
			Writes: []string{AccountData, Blobs},
		}, nil
	case Ingest:
		// UltraCart's customer_delete starts an erasure, whose pseudonym is keyed by the
		// account's erasure key; the first erasure makes it.
		erasure := accountkeys.Secret(accountkeys.Erasure)
		return Grant{
			Secrets: secrets.Grant{Decrypt: []string{erasure}, Encrypt: []string{erasure}},
			// An erasure deletes the parts of quarantined events that mention the contact.
			Writes: []string{AccountData, Dedupe, ErasureKeys, Blobs},
		}, nil
	case Schedule:
		// Carrying on an erasure deletes the parts of quarantined events that mention the
		// contact.
		return Grant{Writes: []string{AccountData, Timers, Blobs}}, nil
	case Poll:
		// Reads with the store's tokens or simple key and the ThriveCart API key; stores the
		// token pair UltraCart rotates. Writes cursors, leases and request budgets in every
		// partition those live in.
		return Grant{Secrets: secrets.Grant{
			Decrypt: append(ultracart(connections.FieldAccessToken, connections.FieldRefreshToken, connections.FieldSimpleKey), string(accounts.ThriveCartAPIKey)),
			Encrypt: tokens,
		}}, nil
	case Connect:
		// Registers the store's webhook with its password and checks review links with the
		// account's review key; seals what the merchant sets in the console and the tokens of
		// a new connection. The console's settings open the stored keys the destinations' forms
		// name (deliver.Form.Opens) only to check them again (a new app id or data center) and
		// to offer choices (Iterable's lists). It never opens a connection's tokens.
		return Grant{Secrets: secrets.Grant{
			Decrypt: append([]string{string(accounts.UltraCartWebhookPassword), accountkeys.Secret(accountkeys.Review)},
				formSecrets()...),
			Encrypt: append(append(names(accounts.SecretFields()...), sectionSecrets()...), tokens...),
		}}, nil
	}
	if dest, ok := strings.CutPrefix(function, ForwardPrefix); ok {
		if r, err := destinations.Lookup(dest); err == nil {
			return forward(r), nil
		}
	}
	return Grant{}, fmt.Errorf("grants: no function %q (the functions are %s)", function, strings.Join(Functions(), ", "))
}

// formSecrets are the stored secrets the console's settings form opens to ask the vendors
// about them (deliver.Form.Opens).
func formSecrets() []string {
	var out []string
	for _, r := range destinations.All() {
		if r.Form != nil {
			out = append(out, names(r.Form.Opens...)...)
		}
	}
	return out
}

// sectionSecrets are the secrets of the destinations' sections of the account file, which the
// console's settings form seals.
func sectionSecrets() []string {
	var out []string
	for _, s := range destinations.Sections() {
		out = append(out, names(s.Secrets()...)...)
	}
	return out
}

func names(fs ...accounts.Field) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = string(f)
	}
	return out
}

// Like reports whether s matches pattern as IAM's StringLike does: * matches any run of
// characters (none included), ? any one character, and everything else itself.
func Like(pattern, s string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if Like(pattern[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			pattern, s = pattern[1:], s[1:]
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
			pattern, s = pattern[1:], s[1:]
		}
	}
	return s == ""
}

// ErrNotGranted matches *WriteError (and, through shared/secrets, a refused secret).
var ErrNotGranted = secrets.ErrNotGranted

// WriteError is a write to a partition the function may not write.
type WriteError struct {
	Function  string
	Partition string
	Allowed   []string
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("the %s function may not write partition %s (it may write %s); each function is given only the partitions its handlers need, in its IAM policy",
		e.Function, e.Partition, strings.Join(e.Allowed, ", "))
}

// Is makes errors.Is(err, ErrNotGranted) true.
func (e *WriteError) Is(target error) bool { return target == ErrNotGranted }

// Store keeps writes through st to g's partitions, as DynamoDB would under the function's
// policy; reads pass.
func Store(st store.Store, function string, g Grant) store.Store {
	if g.Writes == nil {
		return st
	}
	return restricted{Store: st, function: function, writes: g.Writes}
}

type restricted struct {
	store.Store
	function string
	writes   []string
}

func (r restricted) allowed(w store.Write) error {
	pk := w.Target().PK
	if slices.ContainsFunc(r.writes, func(p string) bool { return Like(p, pk) }) {
		return nil
	}
	return &WriteError{Function: r.function, Partition: pk, Allowed: r.writes}
}

func (r restricted) Write(ctx context.Context, w store.Write) error {
	if err := r.allowed(w); err != nil {
		return err
	}
	return r.Store.Write(ctx, w)
}

func (r restricted) Transact(ctx context.Context, ws []store.Write) error {
	var errs []error
	for _, w := range ws {
		errs = append(errs, r.allowed(w))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return r.Store.Transact(ctx, ws)
}

// Wrapper keeps w to g's secrets, as KMS would under the function's policy.
func Wrapper(w secrets.KeyWrapper, g Grant) secrets.KeyWrapper { return secrets.Restrict(w, g.Secrets) }
