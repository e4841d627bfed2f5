// Package secrets encrypts the merchant's secrets (API keys, webhook passwords, OAuth tokens)
// before they reach the table, with envelope encryption: every value gets its own random
// AES-256-GCM data key, and only that data key is encrypted ("wrapped") by a master key that
// never leaves its home. In AWS the master key is a KMS key; locally it is a key file.
//
// A sealed value is one ASCII string, so it fits in any JSON document:
//
//	v2.<key id>.<wrapped data key, base64url>.<nonce and ciphertext, base64url>
//
// Every value is sealed for a Purpose: the account it belongs to and which of its secrets it is.
// The same purpose is required to open it, so a sealed value copied to another account or
// another field does not open. In AWS the purpose is the KMS encryption context of the data key
// ({"cartrelay:account": "acme", "cartrelay:secret": "ontraport.api_key"}), so CloudTrail shows
// which secret of which account was opened, and each function's IAM policy allows kms:Decrypt
// only for the secrets it needs.
//
// Values sealed by earlier releases (format v1) carry the purpose as one string under
// "cartrelay:purpose" ("account:acme:ontraport.api_key"). They still open; `cartrelay accounts
// reseal` seals them again in the current format.
package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/redact"
)

// Purpose is what a value is sealed for: the account it belongs to and the name of the secret
// ("ontraport.api_key", "connection.ultracart.refresh_token").
type Purpose struct {
	Account string
	Secret  string
}

// String names the purpose for people, and is how format v1 recorded it.
func (p Purpose) String() string { return "account:" + p.Account + ":" + p.Secret }

// The KMS encryption context keys. A value in the current format is wrapped under
// {ContextAccount: account, ContextSecret: secret}; one of format v1 under {LegacyContextKey:
// "account:<account>:<secret>"}. IAM policies condition kms:Decrypt on them
// (kms:EncryptionContext:cartrelay:secret).
const (
	ContextAccount   = "cartrelay:account"
	ContextSecret    = "cartrelay:secret"
	LegacyContextKey = "cartrelay:purpose"
)

// EncryptionContext is the context a data key is wrapped under. Wrappers must bind the wrapped
// key to it, so a data key lifted from one sealed value cannot open another.
type EncryptionContext map[string]string

// contextFor is p's encryption context in the given format.
func contextFor(p Purpose, format string) EncryptionContext {
	if format == formatV1 {
		return EncryptionContext{LegacyContextKey: p.String()}
	}
	return EncryptionContext{ContextAccount: p.Account, ContextSecret: p.Secret}
}

// SecretOf is the name of the secret an encryption context is for, in either format.
func SecretOf(ec EncryptionContext) string {
	if s, ok := ec[ContextSecret]; ok {
		return s
	}
	// "account:<id>:<secret>"; an account id never holds a colon.
	rest, _ := strings.CutPrefix(ec[LegacyContextKey], "account:")
	_, secret, _ := strings.Cut(rest, ":")
	return secret
}

// KeyWrapper protects data keys with a master key.
type KeyWrapper interface {
	// Wrap encrypts dataKey under ec and names the master key that did it.
	Wrap(ctx context.Context, dataKey []byte, ec EncryptionContext) (wrapped []byte, keyID string, err error)
	// Unwrap reverses Wrap. It returns an error matching ErrWrongKey when keyID names a master
	// key this wrapper does not hold, and ErrTampered when the wrapped key does not decrypt
	// under ec. Other errors (network, throttling, permissions) may be temporary.
	Unwrap(ctx context.Context, wrapped []byte, keyID string, ec EncryptionContext) ([]byte, error)
}

// The errors Open reports, matched with errors.Is. ErrTampered and ErrWrongKey are permanent:
// retrying cannot help, and the secret has to be set again.
var (
	ErrTampered  = errors.New("the sealed value was altered, or it belongs to another account or field")
	ErrWrongKey  = errors.New("the data key was sealed with another master key")
	ErrMalformed = errors.New("not a sealed value")
)

// WrongKeyError says which master key sealed a value that this process cannot open.
type WrongKeyError struct {
	// SealedWith is the key id recorded in the sealed value.
	SealedWith string
	// Have is the key this process holds, when known.
	Have string
	// Hint suggests the usual cause.
	Hint string
}

func (e *WrongKeyError) Error() string {
	msg := ErrWrongKey.Error()
	var detail []string
	if e.SealedWith != "" {
		d := "sealed with " + e.SealedWith
		if e.Have != "" {
			d += ", this process has " + e.Have
		}
		detail = append(detail, d)
	}
	if e.Hint != "" {
		detail = append(detail, e.Hint)
	}
	if len(detail) > 0 {
		msg += " (" + strings.Join(detail, "; ") + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrWrongKey) true.
func (e *WrongKeyError) Is(target error) bool { return target == ErrWrongKey }

// OpenError reports a value that could not be opened. What names the value for a person;
// Sealer.Open sets it to the purpose, and repositories may replace it with something friendlier
// ("ontraport.api_key of account acme").
type OpenError struct {
	What string
	Err  error
}

func (e *OpenError) Error() string { return "cannot decrypt " + e.What + ": " + e.Err.Error() }

// Unwrap exposes the cause (ErrTampered, ErrWrongKey, ErrMalformed or the wrapper's error).
func (e *OpenError) Unwrap() error { return e.Err }

// Formats of a sealed value. Seal writes formatV2; Open reads both.
const (
	formatV1 = "v1"
	formatV2 = "v2"
)

const (
	dataKeySize = 32

	// DefaultCacheTTL bounds how long an unwrapped data key stays in memory. It is long enough
	// that a burst of webhooks for one account costs one KMS call, and short enough that a
	// revoked KMS grant takes effect within minutes.
	DefaultCacheTTL = 5 * time.Minute
	// DefaultCacheSize bounds the cache; each entry is one secret of one account.
	DefaultCacheSize = 1024
)

// Sealer seals and opens secrets. It is safe for concurrent use.
type Sealer struct {
	wrapper KeyWrapper
	clk     clock.Clock
	ttl     time.Duration
	size    int

	mu    sync.Mutex
	cache map[[sha256.Size]byte]cached

	// known collects every plaintext sealed or opened, so that whatever this process records
	// or logs can be scrubbed of it (shared/redact).
	known *redact.Set
}

type cached struct {
	key      []byte
	expires  time.Time
	lastUsed time.Time
}

// Option adjusts a Sealer.
type Option func(*Sealer)

// WithCache sets how long unwrapped data keys are kept and how many. A ttl or size of zero
// turns the cache off, so every Open unwraps.
func WithCache(ttl time.Duration, size int) Option {
	return func(s *Sealer) { s.ttl, s.size = ttl, size }
}

// NewSealer returns a Sealer that wraps data keys with w. The clock drives cache expiry.
func NewSealer(w KeyWrapper, clk clock.Clock, opts ...Option) *Sealer {
	s := &Sealer{
		wrapper: w,
		clk:     clk,
		ttl:     DefaultCacheTTL,
		size:    DefaultCacheSize,
		cache:   make(map[[sha256.Size]byte]cached),
		known:   redact.NewSet(),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Known is every plaintext this Sealer has sealed or opened: what the process's records, logs
// and output must not show.
func (s *Sealer) Known() *redact.Set { return s.known }

// IsSealed reports whether s looks like a value produced by Seal. It does not open it.
func IsSealed(s string) bool {
	_, err := parse(s)
	return err == nil
}

// Seal encrypts plaintext for p under a fresh data key and a random nonce.
func (s *Sealer) Seal(ctx context.Context, plaintext []byte, p Purpose) (string, error) {
	return s.seal(ctx, plaintext, p, formatV2)
}

// seal writes a value in the given format; only tests write format v1, to check that values of
// earlier releases still open.
func (s *Sealer) seal(ctx context.Context, plaintext []byte, p Purpose, format string) (string, error) {
	dataKey := make([]byte, dataKeySize)
	if _, err := rand.Read(dataKey); err != nil {
		return "", fmt.Errorf("seal %s: generate data key: %w", p, err)
	}
	wrapped, keyID, err := s.wrapper.Wrap(ctx, dataKey, contextFor(p, format))
	if err != nil {
		return "", fmt.Errorf("seal %s: wrap data key: %w", p, err)
	}
	if err := checkKeyID(keyID); err != nil {
		return "", fmt.Errorf("seal %s: %w", p, err)
	}
	aead, err := newGCM(dataKey)
	if err != nil {
		return "", fmt.Errorf("seal %s: %w", p, err)
	}
	header := format + "." + keyID + "." + base64.RawURLEncoding.EncodeToString(wrapped)
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal %s: generate nonce: %w", p, err)
	}
	box := aead.Seal(nonce, nonce, plaintext, contentAAD(header, p.String()))
	// The value is about to be stored and, usually, read back soon by the same process.
	s.remember(keyID, p.String(), wrapped, dataKey)
	s.known.Add(string(plaintext))
	return header + "." + base64.RawURLEncoding.EncodeToString(box), nil
}

// Open decrypts a value sealed for p, in the current format or an earlier one. Errors are
// *OpenError wrapping ErrMalformed, ErrTampered, ErrWrongKey or the wrapper's own (possibly
// temporary, or ErrNotGranted) error.
func (s *Sealer) Open(ctx context.Context, sealed string, p Purpose) ([]byte, error) {
	what := p.String()
	v, err := parse(sealed)
	if err != nil {
		return nil, &OpenError{What: what, Err: err}
	}
	dataKey, ok := s.recall(v.keyID, what, v.wrapped)
	if !ok {
		dataKey, err = s.wrapper.Unwrap(ctx, v.wrapped, v.keyID, contextFor(p, v.format))
		if err != nil {
			return nil, &OpenError{What: what, Err: err}
		}
		if len(dataKey) != dataKeySize {
			return nil, &OpenError{What: what, Err: fmt.Errorf("%w: unwrapped data key has %d bytes", ErrTampered, len(dataKey))}
		}
		s.remember(v.keyID, what, v.wrapped, dataKey)
	}
	aead, err := newGCM(dataKey)
	if err != nil {
		return nil, &OpenError{What: what, Err: err}
	}
	if len(v.box) < aead.NonceSize()+aead.Overhead() {
		return nil, &OpenError{What: what, Err: ErrTampered}
	}
	nonce, ct := v.box[:aead.NonceSize()], v.box[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, ct, contentAAD(v.header, what))
	if err != nil {
		return nil, &OpenError{What: what, Err: ErrTampered}
	}
	s.known.Add(string(plain))
	return plain, nil
}

// Current reports whether sealed is in the format Seal writes now; a value of an earlier format
// opens all the same, but under the encryption context of its release (see the package comment).
func Current(sealed string) bool {
	v, err := parse(sealed)
	return err == nil && v.format == formatV2
}

type parsed struct {
	format  string // formatV1 or formatV2
	header  string // "v2.<key id>.<wrapped>", bound into the content's associated data
	keyID   string
	wrapped []byte
	box     []byte
}

// parse splits a sealed value. The two base64url parts never contain a dot, so they are taken
// from the right and the key id may be anything printable.
func parse(s string) (parsed, error) {
	format, rest, ok := strings.Cut(s, ".")
	if !ok || (format != formatV1 && format != formatV2) {
		if ok && isVersion(format) {
			return parsed{}, fmt.Errorf("%w: format %s is newer than this program understands", ErrMalformed, format)
		}
		return parsed{}, ErrMalformed
	}
	j := strings.LastIndexByte(rest, '.')
	if j < 0 {
		return parsed{}, ErrMalformed
	}
	boxPart := rest[j+1:]
	rest = rest[:j]
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return parsed{}, ErrMalformed
	}
	keyID, wrappedPart := rest[:i], rest[i+1:]
	if checkKeyID(keyID) != nil {
		return parsed{}, ErrMalformed
	}
	wrapped, err := base64.RawURLEncoding.DecodeString(wrappedPart)
	if err != nil || len(wrapped) == 0 {
		return parsed{}, ErrMalformed
	}
	box, err := base64.RawURLEncoding.DecodeString(boxPart)
	if err != nil {
		return parsed{}, ErrMalformed
	}
	return parsed{format: format, header: format + "." + rest, keyID: keyID, wrapped: wrapped, box: box}, nil
}

// isVersion matches "v2", "v10": a format from a later release.
func isVersion(s string) bool {
	if len(s) < 2 || len(s) > 4 || s[0] != 'v' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// checkKeyID keeps sealed values single-line printable ASCII.
func checkKeyID(id string) error {
	if id == "" {
		return errors.New("the key wrapper returned an empty key id")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("the key id %q has characters a sealed value cannot hold", id)
		}
	}
	return nil
}

// contentAAD binds the ciphertext to its header and to where it belongs.
func contentAAD(header, aad string) []byte {
	return []byte(header + "\x00" + aad)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	return cipher.NewGCM(block)
}

func cacheKey(keyID, aad string, wrapped []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(keyID))
	h.Write([]byte{0})
	h.Write([]byte(aad))
	h.Write([]byte{0})
	h.Write(wrapped)
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

func (s *Sealer) recall(keyID, aad string, wrapped []byte) ([]byte, bool) {
	if s.ttl <= 0 || s.size <= 0 {
		return nil, false
	}
	k := cacheKey(keyID, aad, wrapped)
	now := s.clk.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.cache[k]
	if !ok {
		return nil, false
	}
	if !now.Before(e.expires) {
		delete(s.cache, k)
		return nil, false
	}
	e.lastUsed = now
	s.cache[k] = e
	return e.key, true
}

func (s *Sealer) remember(keyID, aad string, wrapped, dataKey []byte) {
	if s.ttl <= 0 || s.size <= 0 {
		return
	}
	k := cacheKey(keyID, aad, wrapped)
	now := s.clk.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cache[k]; !ok && len(s.cache) >= s.size {
		s.evict(now)
	}
	// The entry expires ttl after it was unwrapped, however often it is used, so a revoked
	// master key stops working within ttl.
	s.cache[k] = cached{key: dataKey, expires: now.Add(s.ttl), lastUsed: now}
}

// evict makes room for one entry: expired entries go first, then the least recently used.
// It scans the map, which is cheap at the sizes a Sealer keeps and only happens when full.
func (s *Sealer) evict(now time.Time) {
	var oldest [sha256.Size]byte
	var oldestAt time.Time
	first := true
	for k, e := range s.cache {
		if !now.Before(e.expires) {
			delete(s.cache, k)
			continue
		}
		if first || e.lastUsed.Before(oldestAt) {
			oldest, oldestAt, first = k, e.lastUsed, false
		}
	}
	if len(s.cache) >= s.size && !first {
		delete(s.cache, oldest)
	}
}
