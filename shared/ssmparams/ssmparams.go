// Package ssmparams reads the deployment's secrets (the UltraCart client secret, the console
// session key) from AWS Systems Manager Parameter Store at a function's start. Kept out of the
// Lambda environment, a secret is not shown to everyone who may read the function's
// configuration, and rotating it needs no redeploy, only new instances.
//
// Only the functions that need a secret link this package (connect and poll), and it calls
// Parameter Store's one operation it needs through shared/awsjson rather than the SDK's SSM
// client, whose model would add 0.65 MB to their bootstraps.
package ssmparams

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cartrelay/cartrelay/shared/awsjson"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// ssm is Parameter Store's API (AWS JSON 1.1, target AmazonSSM).
var ssm = awsjson.Service{Name: "ssm", Target: "AmazonSSM", Version: "1.1"}

// Store reads parameters with one client.
type Store struct {
	c      *awsjson.Client
	region string
}

// New returns a Store over cfg.
func New(cfg aws.Config) *Store {
	return &Store{c: awsjson.New(cfg, ssm), region: cfg.Region}
}

// Get returns the decrypted value of the parameter name (a SecureString or a String).
func (s *Store) Get(ctx context.Context, name string) (string, error) {
	in := struct {
		Name           string
		WithDecryption bool
	}{name, true}
	var out struct {
		Parameter *struct{ Value *string }
	}
	err := s.c.Call(ctx, "GetParameter", in, &out)
	var api *awsjson.APIError
	switch {
	case errors.As(err, &api) && api.Code == "ParameterNotFound":
		return "", fmt.Errorf("SSM parameter %s does not exist in %s; create it with "+
			"`aws ssm put-parameter --type SecureString --name %s --value ...`, or clear the stack parameter that names it", name, s.region, name)
	case errors.As(err, &api) && (api.Code == "AccessDeniedException" || api.Code == "AccessDenied"):
		return "", fmt.Errorf("the function's role may not read SSM parameter %s (%s); the template grants ssm:GetParameter on the name the stack was given", name, api.Message)
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
