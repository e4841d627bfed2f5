// Package secrets encrypts the merchant's secrets (API keys, webhook passwords, OAuth tokens)
// before they reach the table, with envelope encryption: every value gets its own random
// AES-256-GCM data key, and only that data key is encrypted ("wrapped") by a master key that
// never leaves its home. In AWS the master key is a KMS key; locally it is a key file.
//
// A sealed value is one ASCII string, so it fits in any JSON document:
//
//	v1.<key id>.<wrapped data key, base64url>.<nonce and ciphertext, base64url>
//
// Every value is sealed for an associated string (for example
// "account:acme:ontraport.api_key"). The same string is required to open it, so a sealed value
// copied to another account or another field does not open.
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

// KeyWrapper protects data keys with a master key.
//
// aad is the associated string the value is sealed for. Wrappers bind the wrapped key to it
// too (KMS records it as the encryption context, so CloudTrail shows which secret was
// decrypted), which means a data key lifted from one sealed value cannot open another.
type KeyWrapper interface {
	// Wrap encrypts dataKey and names the master key that did it.
	Wrap(ctx context.Context, dataKey []byte, aad string) (wrapped []byte, keyID string, err error)
	// Unwrap reverses Wrap. It returns an error matching ErrWrongKey when keyID names a master
	// key this wrapper does not hold, and ErrTampered when the wrapped key does not decrypt.
	// Other errors (network, throttling, permissions) may be temporary.
	Unwrap(ctx context.Context, wrapped []byte, keyID string, aad string) ([]byte, error)
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
// Sealer.Open sets it to the associated string, and repositories may replace it with
// something friendlier ("ontraport.api_key of account acme").
type OpenError struct {
	What string
	Err  error
}

func (e *OpenError) Error() string { return "cannot decrypt " + e.What + ": " + e.Err.Error() }

// Unwrap exposes the cause (ErrTampered, ErrWrongKey, ErrMalformed or the wrapper's error).
func (e *OpenError) Unwrap() error { return e.Err }

const (
	version     = "v1"
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

// Seal encrypts plaintext for aad under a fresh data key and a random nonce.
func (s *Sealer) Seal(ctx context.Context, plaintext []byte, aad string) (string, error) {
	dataKey := make([]byte, dataKeySize)
	if _, err := rand.Read(dataKey); err != nil {
		return "", fmt.Errorf("seal %s: generate data key: %w", aad, err)
	}
	wrapped, keyID, err := s.wrapper.Wrap(ctx, dataKey, aad)
	if err != nil {
		return "", fmt.Errorf("seal %s: wrap data key: %w", aad, err)
	}
	if err := checkKeyID(keyID); err != nil {
		return "", fmt.Errorf("seal %s: %w", aad, err)
	}
	aead, err := newGCM(dataKey)
	if err != nil {
		return "", fmt.Errorf("seal %s: %w", aad, err)
	}
	header := version + "." + keyID + "." + base64.RawURLEncoding.EncodeToString(wrapped)
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal %s: generate nonce: %w", aad, err)
	}
	box := aead.Seal(nonce, nonce, plaintext, contentAAD(header, aad))
	// The value is about to be stored and, usually, read back soon by the same process.
	s.remember(keyID, aad, wrapped, dataKey)
	s.known.Add(string(plaintext))
	return header + "." + base64.RawURLEncoding.EncodeToString(box), nil
}

// Open decrypts a value sealed for aad. Errors are *OpenError wrapping ErrMalformed,
// ErrTampered, ErrWrongKey or the wrapper's own (possibly temporary) error.
func (s *Sealer) Open(ctx context.Context, sealed string, aad string) ([]byte, error) {
	p, err := parse(sealed)
	if err != nil {
		return nil, &OpenError{What: aad, Err: err}
	}
	dataKey, ok := s.recall(p.keyID, aad, p.wrapped)
	if !ok {
		dataKey, err = s.wrapper.Unwrap(ctx, p.wrapped, p.keyID, aad)
		if err != nil {
			return nil, &OpenError{What: aad, Err: err}
		}
		if len(dataKey) != dataKeySize {
			return nil, &OpenError{What: aad, Err: fmt.Errorf("%w: unwrapped data key has %d bytes", ErrTampered, len(dataKey))}
		}
		s.remember(p.keyID, aad, p.wrapped, dataKey)
	}
	aead, err := newGCM(dataKey)
	if err != nil {
		return nil, &OpenError{What: aad, Err: err}
	}
	if len(p.box) < aead.NonceSize()+aead.Overhead() {
		return nil, &OpenError{What: aad, Err: ErrTampered}
	}
	nonce, ct := p.box[:aead.NonceSize()], p.box[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, ct, contentAAD(p.header, aad))
	if err != nil {
		return nil, &OpenError{What: aad, Err: ErrTampered}
	}
	s.known.Add(string(plain))
	return plain, nil
}

type parsed struct {
	header  string // "v1.<key id>.<wrapped>", bound into the content's associated data
	keyID   string
	wrapped []byte
	box     []byte
}

// parse splits a sealed value. The two base64url parts never contain a dot, so they are taken
// from the right and the key id may be anything printable.
func parse(s string) (parsed, error) {
	rest, ok := strings.CutPrefix(s, version+".")
	if !ok {
		if v, _, ok := strings.Cut(s, "."); ok && isVersion(v) {
			return parsed{}, fmt.Errorf("%w: format %s is newer than this program understands", ErrMalformed, v)
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
	return parsed{header: version + "." + rest, keyID: keyID, wrapped: wrapped, box: box}, nil
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
