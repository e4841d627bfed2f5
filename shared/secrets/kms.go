package secrets

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cartrelay/cartrelay/shared/awsjson"
)

// KMSService is AWS KMS's API (AWS JSON 1.1, target TrentService), which the wrapper calls
// through shared/awsjson rather than the SDK's KMS client, whose model would add its schemas
// to every bootstrap.
var KMSService = awsjson.Service{Name: "kms", Target: "TrentService", Version: "1.1"}

// KMSClient calls a KMS operation (an *awsjson.Client of KMSService), so tests can substitute
// it.
type KMSClient interface {
	Call(ctx context.Context, op string, in, out any) error
}

// KMS wraps data keys with an AWS KMS symmetric key. The data key itself is generated locally
// and sent to Encrypt: that is one call, like GenerateDataKey, and keeps one code path for both
// wrappers.
type KMS struct {
	client KMSClient
	keyID  string
}

// NewKMS wraps with keyID (a key id, key ARN, alias name or alias ARN). Sealed values record the
// key ARN KMS reports, which does not change when KMS rotates the key material.
func NewKMS(client KMSClient, keyID string) (*KMS, error) {
	if keyID == "" {
		return nil, errors.New("a KMS key id is required to seal secrets")
	}
	return &KMS{client: client, keyID: keyID}, nil
}

// Wrap encrypts dataKey with the KMS key under ec. KMS refuses to decrypt under another
// context, and CloudTrail records it, so the audit log says which secret of which account was
// sealed or opened.
func (k *KMS) Wrap(ctx context.Context, dataKey []byte, ec EncryptionContext) ([]byte, string, error) {
	in := struct {
		KeyId             string
		Plaintext         []byte
		EncryptionContext EncryptionContext `json:",omitempty"`
	}{k.keyID, dataKey, ec}
	var out struct {
		CiphertextBlob []byte
		KeyId          string
	}
	if err := k.client.Call(ctx, "Encrypt", in, &out); err != nil {
		return nil, "", fmt.Errorf("KMS Encrypt with key %s: %w", k.keyID, err)
	}
	if len(out.CiphertextBlob) == 0 {
		return nil, "", fmt.Errorf("KMS Encrypt with key %s returned no ciphertext", k.keyID)
	}
	id := out.KeyId
	if id == "" {
		id = k.keyID
	}
	return out.CiphertextBlob, id, nil
}

// Unwrap decrypts a data key with the KMS key named in the sealed value. Naming it makes KMS
// refuse a blob from any other key instead of silently using whichever key made it.
func (k *KMS) Unwrap(ctx context.Context, wrapped []byte, keyID string, ec EncryptionContext) ([]byte, error) {
	if strings.HasPrefix(keyID, localKeyPrefix) {
		return nil, &WrongKeyError{SealedWith: keyID, Have: k.keyID, Hint: "it was sealed by a local key file; KMS cannot open it"}
	}
	in := struct {
		CiphertextBlob    []byte
		KeyId             string
		EncryptionContext EncryptionContext `json:",omitempty"`
	}{wrapped, keyID, ec}
	var out struct{ Plaintext []byte }
	err := k.client.Call(ctx, "Decrypt", in, &out)
	if err == nil {
		return out.Plaintext, nil
	}
	var api *awsjson.APIError
	if errors.As(err, &api) {
		switch api.Code {
		case "InvalidCiphertextException":
			return nil, fmt.Errorf("%w (KMS: %s)", ErrTampered, api.Message)
		case "IncorrectKeyException":
			return nil, &WrongKeyError{SealedWith: keyID, Have: k.keyID, Hint: "KMS says the value was encrypted under another key; was the KMS key changed?"}
		case "NotFoundException":
			return nil, &WrongKeyError{SealedWith: keyID, Have: k.keyID, Hint: "KMS cannot find that key in this account and region; was it deleted, or the table copied from another deployment?"}
		}
	}
	return nil, fmt.Errorf("KMS Decrypt with key %s: %w", keyID, err)
}
