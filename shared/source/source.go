// Package source is what cartrelay knows of one source of orders (UltraCart, ThriveCart), in one
// place: how its webhook proves it knows the account's credential and splits a delivery into
// single events, how a stored raw event becomes domain events, and, when the source offers them,
// its poller and connect flow. Each source package offers its Registration; package sources
// lists them, and the handlers pick one by name (docs/architecture.md, Adding a source).
package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Registration is one source.
type Registration struct {
	// Name is the source's name in webhook URLs, stored events and poll jobs ("ultracart").
	Name domain.Source
	// Label is how pages and messages name it ("UltraCart").
	Label   string
	Webhook Webhook
	// Normalize turns one stored raw event into domain events. An event it does not interpret
	// is an error wrapping domain.ErrUnknownEvent (kept raw as unknown); any other error keeps
	// the event raw as invalid, with the error as its reason.
	Normalize func(ev Raw, acct accounts.Account, phone domain.PhoneFunc) ([]domain.Event, error)
	// Events names every raw event kind Normalize interprets; the contract suite asks for a
	// sample of each.
	Events []string
	// Poller walks the source's API, when it has one cartrelay polls (nil otherwise).
	Poller *Poller
	// Connect is how a merchant connects a store beyond the account file's settings: a
	// sign-in from the browser, a check of credentials before they are saved (connect.go).
	Connect Connect
}

// Poller describes a source's poller on the poll engine (shared/poll).
type Poller struct {
	// Connection is the connections provider whose accounts are polled; empty polls every
	// account (the poller itself notes one without credentials).
	Connection string
	// Streams are the poll jobs of one account, one per stream, each with its own cursor.
	Streams []string
	// Due reports whether account's stream should be walked at now (its cursor is due, nothing
	// stopped it and nobody holds its lease).
	Due func(ctx context.Context, st store.Store, account, stream string, now time.Time) (bool, error)
	// Run walks job until deadline and says where it got. An account without the source's
	// connection is an error wrapping connections.ErrNotFound; a run that lost its lease to
	// another holder is one wrapping poll.ErrLeaseLost.
	Run func(ctx context.Context, ports Ports, job Job, deadline time.Time) (Result, error)
}

// Raw is one stored source event, as normalization reads it.
type Raw struct {
	Name    string
	Payload json.RawMessage
	// Index is the event's place in its delivery.
	Index      int
	ReceivedAt time.Time
}

// Event is one single event split from a delivery.
type Event struct {
	Name    string
	Payload json.RawMessage
	Index   int
	// Problem is why the event cannot be used; it is kept raw with this reason (Payload is
	// then valid JSON, the event's bytes as a string when they were not).
	Problem string
}

// ID identifies an event by what it says, not by when or how it arrived: the same event
// delivered twice, or by webhook and by poller, has one ID, which is what makes a redelivery
// idempotent. Payloads are compared in compact JSON when they are JSON.
func ID(account string, src domain.Source, name string, payload []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", account, src, name)
	var compact bytes.Buffer
	if json.Compact(&compact, payload) == nil {
		h.Write(compact.Bytes())
	} else {
		h.Write(payload)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// RawJSON is b as a JSON string: how an event whose bytes are not JSON is kept.
func RawJSON(b []byte) json.RawMessage {
	s, _ := json.Marshal(string(b))
	return s
}

// SecretEqual reports, in constant time, whether got is want; it is false when want is empty
// (nothing configured). Digests are compared rather than the strings because
// ConstantTimeCompare returns at once on a length mismatch and would leak the stored secret's
// length.
func SecretEqual(got, want string) bool {
	return secretEqual(got, want)&configured(want) == 1
}

// SecretsEqual reports, in constant time over all pairs, whether every got equals its want
// and every want is set: one comparison however many parts are wrong.
func SecretsEqual(pairs ...[2]string) bool {
	ok := 1
	for _, p := range pairs {
		ok &= secretEqual(p[0], p[1]) & configured(p[1])
	}
	return ok == 1 && len(pairs) > 0
}

func secretEqual(a, b string) int {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:])
}

func configured(s string) int {
	if s != "" {
		return 1
	}
	return 0
}
