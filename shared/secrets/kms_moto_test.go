package secrets

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/cartrelay/cartrelay/shared/awsjson"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

// TestKMSAgainstMoto runs the KMS wrapper against moto's KMS, a second, independent model of
// the service beside fakeKMS.
func TestKMSAgainstMoto(t *testing.T) {
	ctx := context.Background()
	endpoint := testenv.Moto(t)
	client := kms.New(kms.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
	})
	created, err := client.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("cartrelay secrets")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/cartrelay"), TargetKeyId: created.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	w, err := NewKMS(awsjson.New(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")}, KMSService), "alias/cartrelay")
	if err != nil {
		t.Fatal(err)
	}
	s := NewSealer(w, testClock(), WithCache(0, 0))

	sealed, err := s.Seal(ctx, []byte("it-key-0a1b"), aadAPIKey)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := parse(sealed)
	if p.keyID != aws.ToString(created.KeyMetadata.Arn) {
		t.Errorf("sealed value records key %q, want the key ARN %q", p.keyID, aws.ToString(created.KeyMetadata.Arn))
	}
	got, err := s.Open(ctx, sealed, aadAPIKey)
	if err != nil || string(got) != "it-key-0a1b" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := s.Open(ctx, sealed, Purpose{Account: "other", Secret: "ontraport.api_key"}); !errors.Is(err, ErrTampered) {
		t.Fatalf("Open with another encryption context: %v, want ErrTampered", err)
	}

	// A value of an earlier release (format v1, one purpose string as the context) still opens,
	// and KMS keeps the two contexts apart.
	old, err := s.seal(ctx, []byte("it-key-of-2025"), aadAPIKey, formatV1)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Open(ctx, old, aadAPIKey); err != nil || string(got) != "it-key-of-2025" {
		t.Fatalf("open a v1 value: %q, %v", got, err)
	}
	if _, err := s.Open(ctx, "v1"+sealed[2:], aadAPIKey); !errors.Is(err, ErrTampered) {
		t.Fatalf("a v2 data key opened under the v1 context: %v", err)
	}

	other, err := client.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	p.keyID = aws.ToString(other.KeyMetadata.Arn)
	// Real KMS answers IncorrectKeyException here (see fakeKMS); moto answers AccessDenied,
	// which stays a plain error because in AWS it means an IAM problem.
	if _, err = s.Open(ctx, p.format+"."+p.keyID+"."+b64(p.wrapped)+"."+b64(p.box), aadAPIKey); err == nil {
		t.Fatal("a value opened under a key id that did not seal it")
	}
	p.keyID = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
	if _, err = s.Open(ctx, p.format+"."+p.keyID+"."+b64(p.wrapped)+"."+b64(p.box), aadAPIKey); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open with a key that does not exist: %v, want ErrWrongKey", err)
	}
}
