package secrets

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// KMSClient is the part of *kms.Client the KMS wrapper uses, so tests can substitute it.
type KMSClient interface {
	Encrypt(ctx context.Context, in *kms.EncryptInput, optFns ...func(*kms.Options)) (*kms.EncryptOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
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
	out, err := k.client.Encrypt(ctx, &kms.EncryptInput{
		KeyId:             aws.String(k.keyID),
		Plaintext:         dataKey,
		EncryptionContext: ec,
	})
	if err != nil {
		return nil, "", fmt.Errorf("KMS Encrypt with key %s: %w", k.keyID, err)
	}
	if len(out.CiphertextBlob) == 0 {
		return nil, "", fmt.Errorf("KMS Encrypt with key %s returned no ciphertext", k.keyID)
	}
	id := aws.ToString(out.KeyId)
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
	out, err := k.client.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob:    wrapped,
		KeyId:             aws.String(keyID),
		EncryptionContext: ec,
	})
	if err == nil {
		return out.Plaintext, nil
	}
	var (
		invalid   *types.InvalidCiphertextException
		incorrect *types.IncorrectKeyException
		notFound  *types.NotFoundException
	)
	switch {
	case errors.As(err, &invalid):
		return nil, fmt.Errorf("%w (KMS: %s)", ErrTampered, invalid.ErrorMessage())
	case errors.As(err, &incorrect):
		return nil, &WrongKeyError{SealedWith: keyID, Have: k.keyID, Hint: "KMS says the value was encrypted under another key; was the KMS key changed?"}
	case errors.As(err, &notFound):
		return nil, &WrongKeyError{SealedWith: keyID, Have: k.keyID, Hint: "KMS cannot find that key in this account and region; was it deleted, or the table copied from another deployment?"}
	}
	return nil, fmt.Errorf("KMS Decrypt with key %s: %w", keyID, err)
}
