package ssmparams_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/cartrelay/cartrelay/shared/ssmparams"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

// TestGetAgainstMoto reads parameters from moto's Parameter Store the way a deployed function
// does at start.
func TestGetAgainstMoto(t *testing.T) {
	ctx := context.Background()
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(testenv.Moto(t)),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")}
	admin := ssm.NewFromConfig(cfg)
	for name, typ := range map[string]types.ParameterType{
		"/cartrelay/ultracart-client-secret": types.ParameterTypeSecureString,
		"/cartrelay/plain":                   types.ParameterTypeString,
	} {
		if _, err := admin.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Type: typ,
			Value: aws.String("value of " + name)}); err != nil {
			t.Fatal(err)
		}
	}
	s := ssmparams.New(cfg)
	for _, tc := range []struct {
		name, want, wantErr string
	}{
		{name: "/cartrelay/ultracart-client-secret", want: "value of /cartrelay/ultracart-client-secret"},
		{name: "/cartrelay/plain", want: "value of /cartrelay/plain"},
		{name: "/cartrelay/missing", wantErr: "SSM parameter /cartrelay/missing does not exist in us-east-1; create it with `aws ssm put-parameter --type SecureString --name /cartrelay/missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Get(ctx, tc.name)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %q, %v; want an error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
