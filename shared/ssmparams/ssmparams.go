// Package ssmparams reads the deployment's secrets (the UltraCart client secret, the console
// session key) from AWS Systems Manager Parameter Store at a function's start. Kept out of the
// Lambda environment, a secret is not shown to everyone who may read the function's
// configuration, and rotating it needs no redeploy, only new instances.
//
// Only the functions that need a secret link this package (connect and poll), so the others'
// bootstraps stay small.
package ssmparams

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/cartrelay/cartrelay/shared/wiring"
)

// Store reads parameters with one SSM client.
type Store struct {
	c      *ssm.Client
	region string
}

// New returns a Store over cfg.
func New(cfg aws.Config) *Store {
	return &Store{c: ssm.NewFromConfig(cfg), region: cfg.Region}
}

// Get returns the decrypted value of the parameter name (a SecureString or a String).
func (s *Store) Get(ctx context.Context, name string) (string, error) {
	out, err := s.c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	var nf *types.ParameterNotFound
	var api smithy.APIError
	switch {
	case errors.As(err, &nf):
		return "", fmt.Errorf("SSM parameter %s does not exist in %s; create it with "+
			"`aws ssm put-parameter --type SecureString --name %s --value ...`, or clear the stack parameter that names it", name, s.region, name)
	case errors.As(err, &api) && (api.ErrorCode() == "AccessDeniedException" || api.ErrorCode() == "AccessDenied"):
		return "", fmt.Errorf("the function's role may not read SSM parameter %s (%s); the template grants ssm:GetParameter on the name the stack was given", name, api.ErrorMessage())
	case err != nil:
		return "", fmt.Errorf("read SSM parameter %s: %w", name, err)
	}
	if out.Parameter == nil || out.Parameter.Value == nil {
		return "", fmt.Errorf("SSM parameter %s has no value", name)
	}
	return *out.Parameter.Value, nil
}

// Open is New as the opener wiring.Options.Parameters takes.
func Open(cfg aws.Config) wiring.ParameterStore { return New(cfg) }
