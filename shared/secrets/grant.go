package secrets

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Grant names the secrets one deployed function may open (decrypt) and seal (encrypt). In AWS
// the function's IAM policy allows kms:Decrypt and kms:Encrypt only under these encryption
// contexts; Restrict makes a process keep to the same limits, so a handler that reaches for a
// secret its function is not given fails in tests, not first in AWS.
type Grant struct {
	Decrypt []string
	Encrypt []string
}

// ErrNotGranted matches *NotGrantedError.
var ErrNotGranted = errors.New("this function is not given that secret")

// NotGrantedError is a secret the process may not open or seal.
type NotGrantedError struct {
	Op      string // "decrypt" or "encrypt"
	Secret  string
	Granted []string
}

func (e *NotGrantedError) Error() string {
	given := "none"
	if len(e.Granted) > 0 {
		given = strings.Join(e.Granted, ", ")
	}
	return fmt.Sprintf("this function may not %s %s (it may %s: %s); each function is given only the secrets its handlers need, in its IAM policy",
		e.Op, e.Secret, e.Op, given)
}

// Is makes errors.Is(err, ErrNotGranted) true.
func (e *NotGrantedError) Is(target error) bool { return target == ErrNotGranted }

// Restrict limits w to g.
func Restrict(w KeyWrapper, g Grant) KeyWrapper { return restricted{w: w, g: g} }

type restricted struct {
	w KeyWrapper
	g Grant
}

func (r restricted) Wrap(ctx context.Context, dataKey []byte, ec EncryptionContext) ([]byte, string, error) {
	if s := SecretOf(ec); !slices.Contains(r.g.Encrypt, s) {
		return nil, "", &NotGrantedError{Op: "encrypt", Secret: s, Granted: r.g.Encrypt}
	}
	return r.w.Wrap(ctx, dataKey, ec)
}

func (r restricted) Unwrap(ctx context.Context, wrapped []byte, keyID string, ec EncryptionContext) ([]byte, error) {
	if s := SecretOf(ec); !slices.Contains(r.g.Decrypt, s) {
		return nil, &NotGrantedError{Op: "decrypt", Secret: s, Granted: r.g.Decrypt}
	}
	return r.w.Unwrap(ctx, wrapped, keyID, ec)
}
