package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// LocalKey is a master key kept in a file, for `cartrelay serve` and tests. Losing the file
// loses every secret sealed with it, and anyone who can read it can open them: it is created
// readable by its owner only, and a file others can read is refused.
type LocalKey struct {
	id   string
	aead cipher.AEAD
}

// localKeyPrefix starts every local key id, so a sealed value says which kind of key it needs.
const localKeyPrefix = "local-"

// LoadOrCreateLocalKey reads the master key at path, or creates it (mode 0600, in a 0700
// directory) with a new random key when the file does not exist. The file holds the 32-byte
// key in base64 on one line, so it can be backed up as text.
func LoadOrCreateLocalKey(path string) (*LocalKey, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		raw, err = createKeyFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("local master key %s: %w", path, err)
	}
	if err := checkPrivate(path); err != nil {
		return nil, fmt.Errorf("local master key %s: %w", path, err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) != dataKeySize {
		return nil, fmt.Errorf("local master key %s: expected %d bytes of base64 on one line; the file is damaged or is not a cartrelay key", path, dataKeySize)
	}
	return NewLocalKey(key)
}

// NewLocalKey uses key (32 bytes) as the master key.
func NewLocalKey(key []byte) (*LocalKey, error) {
	if len(key) != dataKeySize {
		return nil, fmt.Errorf("a local master key has %d bytes, got %d", dataKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	// The id is a fingerprint of the key, so a sealed value can tell "another key" apart from
	// "altered" without revealing anything about the key.
	sum := sha256.Sum256(append([]byte("cartrelay local master key id\x00"), key...))
	return &LocalKey{id: localKeyPrefix + hex.EncodeToString(sum[:6]), aead: aead}, nil
}

// ID names the key as sealed values record it.
func (k *LocalKey) ID() string { return k.id }

// Wrap encrypts dataKey with the master key, bound to ec.
func (k *LocalKey) Wrap(_ context.Context, dataKey []byte, ec EncryptionContext) ([]byte, string, error) {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(dataKey)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, "", fmt.Errorf("generate nonce: %w", err)
	}
	return k.aead.Seal(nonce, nonce, dataKey, wrapAAD(ec)), k.id, nil
}

// Unwrap decrypts a data key wrapped by Wrap.
func (k *LocalKey) Unwrap(_ context.Context, wrapped []byte, keyID string, ec EncryptionContext) ([]byte, error) {
	if keyID != k.id {
		hint := "was the local key file replaced?"
		if !strings.HasPrefix(keyID, localKeyPrefix) {
			hint = "it was sealed in AWS with KMS; a local key cannot open it"
		}
		return nil, &WrongKeyError{SealedWith: keyID, Have: k.id, Hint: hint}
	}
	ns := k.aead.NonceSize()
	if len(wrapped) < ns+k.aead.Overhead() {
		return nil, ErrTampered
	}
	key, err := k.aead.Open(nil, wrapped[:ns], wrapped[ns:], wrapAAD(ec))
	if err != nil {
		return nil, ErrTampered
	}
	return key, nil
}

// wrapAAD binds a wrapped data key to its context. A context of format v1 (one purpose string)
// is bound exactly as that release bound it, so its values still open.
func wrapAAD(ec EncryptionContext) []byte {
	if legacy, ok := ec[LegacyContextKey]; ok && len(ec) == 1 {
		return []byte("cartrelay data key\x00" + legacy)
	}
	keys := make([]string, 0, len(ec))
	for k := range ec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b := []byte("cartrelay data key v2")
	for _, k := range keys {
		b = append(b, 0)
		b = append(b, k...)
		b = append(b, 0)
		b = append(b, ec[k]...)
	}
	return b
}

// createKeyFile writes a new key next to path and links it into place, so two processes
// starting at once (serve and the CLI) agree on one key and neither reads a half-written file.
func createKeyFile(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create directory: %w", err)
	}
	key := make([]byte, dataKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	content := []byte(base64.StdEncoding.EncodeToString(key) + "\n")

	tmp, err := os.CreateTemp(dir, ".cartrelay-key-*")
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return nil, fmt.Errorf("restrict permissions: %w", err)
	}
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	// Link fails if path exists, unlike Rename, so the first process to get here wins.
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return os.ReadFile(path)
		}
		return writeExclusive(path, content)
	}
	return content, nil
}

// writeExclusive is the fallback for filesystems without hard links. It still never replaces
// an existing key; only the window in which another process could read a partial file remains.
func writeExclusive(path string, content []byte) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		return nil, fmt.Errorf("write: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("write: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	return content, nil
}

// checkPrivate refuses a key file that group or others can read or write, the way ssh refuses
// a private key. Windows has no such mode bits.
func checkPrivate(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("the file is accessible to other users (mode %04o); run: chmod 600 %s", perm, path)
	}
	return nil
}
