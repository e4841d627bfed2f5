// Package accountkeys holds the random keys cartrelay generates for an account and uses on its
// own behalf: the review-link key that signs the links in review requests, and the tracking
// secret with which the merchant's server signs the identity tokens the page-view snippet
// sends. Nobody chooses them; cartrelay makes each one the first time it is needed, from
// crypto/rand, and keeps it sealed (shared/secrets) like the account's other secrets.
//
// Each key is its own table item, pk "K#<acct>#<name>", sk "-", so that a process that needs
// one key decrypts that key alone, and may be allowed to write that key's partition alone
// (shared/grants): the Iterable forwarder makes review keys without being able to touch the
// account's settings, which live in "A#<acct>". Creation is a conditional put: two processes
// creating the same key at once end up with the same one.
package accountkeys

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Name is which key of an account.
type Name string

// The keys.
const (
	// Review signs review links (shared/reviews). It never leaves cartrelay.
	Review Name = "review"
	// Tracking is the account's tracking secret: the merchant's server signs identity tokens
	// for the page-view snippet with it (shared/visitortoken), so an operator shows it to them.
	Tracking Name = "tracking"
	// Erasure keys the hash that makes an erased contact's pseudonym (shared/erasure). It never
	// leaves cartrelay: without it, nobody holding the table can test an address against the
	// pseudonyms.
	Erasure Name = "erasure"
)

// ErrNotFound: the key was never made for this account.
var ErrNotFound = errors.New("no such key for this account yet")

// keyBytes is the entropy of a key: 256 bits.
const keyBytes = 32

// Key is one account key.
type Key struct {
	// Value is the key as text (64 hex digits), which is also what HMACs are keyed with, so a
	// merchant's code can use it exactly as shown.
	Value     string
	CreatedAt time.Time
}

// Reader reads account keys (Repo does; None has none).
type Reader interface {
	Get(ctx context.Context, account string, name Name) (Key, error)
}

// None is a Reader of a runtime that keeps no keys: every key is missing, so nothing signed
// with one verifies.
type None struct{}

// Get implements Reader.
func (None) Get(_ context.Context, account string, name Name) (Key, error) {
	return Key{}, fmt.Errorf("%s key of account %s: %w", name, account, ErrNotFound)
}

// Repo reads and makes account keys.
type Repo struct {
	st     store.Store
	sealer *secrets.Sealer
	clk    clock.Clock
}

// New returns a Repo over st that seals keys with sealer.
func New(st store.Store, sealer *secrets.Sealer, clk clock.Clock) *Repo {
	if clk == nil {
		clk = clock.System{}
	}
	return &Repo{st: st, sealer: sealer, clk: clk}
}

// ItemKey is where account's key name is stored.
func ItemKey(account string, name Name) store.Key {
	return store.Key{PK: "K#" + account + "#" + string(name), SK: "-"}
}

// Secret is the name a key is sealed under ("keys.review"), as the KMS encryption context and
// the functions' IAM policies name it.
func Secret(name Name) string { return "keys." + string(name) }

// purpose ties a sealed key to its account and name, as the account's other secrets are tied.
func purpose(account string, name Name) secrets.Purpose {
	return secrets.Purpose{Account: account, Secret: Secret(name)}
}

type doc struct {
	Sealed    string    `json:"sealed"`
	CreatedAt time.Time `json:"created_at"`
}

// Get returns the account's key, or an error matching ErrNotFound.
func (r *Repo) Get(ctx context.Context, account string, name Name) (Key, error) {
	it, err := r.st.Get(ctx, ItemKey(account, name).PK, ItemKey(account, name).SK)
	if errors.Is(err, store.ErrNotFound) {
		return Key{}, fmt.Errorf("%s key of account %s: %w", name, account, ErrNotFound)
	}
	if err != nil {
		return Key{}, fmt.Errorf("read the %s key of account %s: %w", name, account, err)
	}
	var d doc
	if err := json.Unmarshal(it.Data, &d); err != nil {
		return Key{}, fmt.Errorf("the %s key of account %s is unreadable: %w", name, account, err)
	}
	plain, err := r.sealer.Open(ctx, d.Sealed, purpose(account, name))
	if err != nil {
		return Key{}, fmt.Errorf("open the %s key of account %s: %w", name, account, err)
	}
	return Key{Value: string(plain), CreatedAt: d.CreatedAt}, nil
}

// Ensure returns the account's key, making it first if there is none. When two processes
// make it at once, both return the one that was stored.
func (r *Repo) Ensure(ctx context.Context, account string, name Name) (Key, error) {
	k, err := r.Get(ctx, account, name)
	if !errors.Is(err, ErrNotFound) {
		return k, err
	}
	k, err = r.put(ctx, account, name, store.NotExists)
	if errors.Is(err, store.ErrConditionFailed) {
		return r.Get(ctx, account, name)
	}
	return k, err
}

// Rotate replaces the account's key with a new one. Whatever the old key signed stops
// verifying.
func (r *Repo) Rotate(ctx context.Context, account string, name Name) (Key, error) {
	return r.put(ctx, account, name, store.Always)
}

func (r *Repo) put(ctx context.Context, account string, name Name, cond store.Cond) (Key, error) {
	raw := make([]byte, keyBytes)
	if _, err := rand.Read(raw); err != nil {
		return Key{}, fmt.Errorf("generate the %s key of account %s: %w", name, account, err)
	}
	k := Key{Value: hex.EncodeToString(raw), CreatedAt: r.clk.Now().UTC()}
	sealed, err := r.sealer.Seal(ctx, []byte(k.Value), purpose(account, name))
	if err != nil {
		return Key{}, fmt.Errorf("seal the %s key of account %s: %w", name, account, err)
	}
	data, err := json.Marshal(doc{Sealed: sealed, CreatedAt: k.CreatedAt})
	if err != nil {
		return Key{}, err
	}
	key := ItemKey(account, name)
	if err := r.st.Write(ctx, store.PutItem(store.Item{PK: key.PK, SK: key.SK, Data: data}, cond)); err != nil {
		return Key{}, fmt.Errorf("store the %s key of account %s: %w", name, account, err)
	}
	return k, nil
}
