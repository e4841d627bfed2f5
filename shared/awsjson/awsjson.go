// Package awsjson calls AWS services that speak the AWS JSON protocol (Systems Manager's
// Parameter Store, KMS, SQS, DynamoDB) with the SDK's credentials, SigV4 signer, HTTP transport
// and standard retryer, but without the service's SDK client. A service client of aws-sdk-go-v2
// brings its whole model with it (every operation's schema, built at start, which the linker
// cannot prune): the SSM client is 0.65 MB of each bootstrap that reads a parameter once at
// start.
package awsjson

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/cartrelay/cartrelay/shared/clock"
)

// maxBody bounds what is read of an answer unless the Service sets MaxAnswer: Parameter
// Store's largest value is 8 KB.
const maxBody = 1 << 20

// Service names an AWS JSON service.
type Service struct {
	// Name is the service's endpoint prefix and signing name ("ssm").
	Name string
	// Target is the prefix of its X-Amz-Target header ("AmazonSSM").
	Target string
	// Version is its JSON protocol version ("1.1").
	Version string
	// MaxAnswer bounds the bytes read of one answer; 0 means 1 MiB. A longer answer fails.
	MaxAnswer int64
	// SDKID is the service's id in the SDK ("SQS"), which names its own endpoint settings
	// (AWS_ENDPOINT_URL_SQS); Name when empty.
	SDKID string
}

// Client calls one service.
type Client struct {
	svc      Service
	region   string
	endpoint string
	creds    aws.CredentialsProvider
	http     aws.HTTPClient
	signer   *v4.Signer
	retryer  aws.Retryer
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error
}

// New returns a client of svc configured as the SDK's own client would be by cfg: its region,
// credentials, HTTP client and retryer, and its endpoint: one configured for the service alone
// (AWS_ENDPOINT_URL_SQS, read from cfg.ConfigSources), else BaseEndpoint (AWS_ENDPOINT_URL).
func New(cfg aws.Config, svc Service) *Client {
	c := &Client{svc: svc, region: cfg.Region, creds: cfg.Credentials, http: cfg.HTTPClient,
		signer: v4.NewSigner(), now: time.Now, sleep: clock.Sleep}
	if cfg.Retryer != nil {
		c.retryer = cfg.Retryer()
	} else {
		c.retryer = retry.NewStandard()
	}
	if c.http == nil {
		c.http = awshttp.NewBuildableClient()
	}
	if ep, ok := ownEndpoint(cfg, svc); ok {
		c.endpoint = strings.TrimRight(ep, "/")
	} else if cfg.BaseEndpoint != nil {
		c.endpoint = strings.TrimRight(*cfg.BaseEndpoint, "/")
	} else {
		c.endpoint = "https://" + svc.Name + "." + c.region + "." + dnsSuffix(c.region)
	}
	return c
}

// ownEndpoint is an endpoint configured for svc alone, in the environment or the shared config
// file's services section, found as the SDK's clients find it: AWS_ENDPOINT_URL in the
// environment outranks the shared config file's, and ignore_configured_endpoint_urls turns
// both off. A configuration built without the SDK's loader (inside Lambda) has none.
func ownEndpoint(cfg aws.Config, svc Service) (string, bool) {
	if len(cfg.ConfigSources) == 0 {
		return "", false
	}
	id := svc.SDKID
	if id == "" {
		id = svc.Name
	}
	_, global := os.LookupEnv("AWS_ENDPOINT_URL")
	_, own := os.LookupEnv("AWS_ENDPOINT_URL_" + strings.ToUpper(strings.ReplaceAll(id, " ", "_")))
	if global && !own {
		return "", false
	}
	ctx := context.Background()
	for _, src := range cfg.ConfigSources {
		if p, ok := src.(interface {
			GetIgnoreConfiguredEndpoints(context.Context) (bool, bool, error)
		}); ok {
			if ignore, found, err := p.GetIgnoreConfiguredEndpoints(ctx); err != nil || found {
				if ignore {
					return "", false
				}
				break
			}
		}
	}
	for _, src := range cfg.ConfigSources {
		if p, ok := src.(interface {
			GetServiceBaseEndpoint(context.Context, string) (string, bool, error)
		}); ok {
			if ep, found, err := p.GetServiceBaseEndpoint(ctx, id); err != nil || found {
				return ep, err == nil && ep != ""
			}
		}
	}
	return "", false
}

// dnsSuffix is the domain of the region's AWS partition.
func dnsSuffix(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "amazonaws.com.cn"
	case strings.HasPrefix(region, "us-isob-"):
		return "sc2s.sgov.gov"
	case strings.HasPrefix(region, "us-isof-"):
		return "csp.hci.ic.gov"
	case strings.HasPrefix(region, "us-iso-"):
		return "c2s.ic.gov"
	case strings.HasPrefix(region, "eu-isoe-"):
		return "cloud.adc-e.uk"
	}
	return "amazonaws.com"
}

// APIError is an error answer of the service, or an answer that could not be read.
type APIError struct {
	Operation string
	Status    int
	RequestID string
	// Code is the service's error code without its namespace ("ParameterNotFound").
	Code    string
	Message string
	// Body is the error answer as it came, for services whose errors carry more than a code
	// and a message (DynamoDB's cancellation reasons).
	Body []byte
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: HTTP %d, request id %s: %s: %s", e.Operation, e.Status, e.RequestID, e.Code, e.Message)
}

// ErrorCode, ErrorMessage and ErrorFault make it a smithy.APIError, as the SDK's are.
func (e *APIError) ErrorCode() string    { return e.Code }
func (e *APIError) ErrorMessage() string { return e.Message }
func (e *APIError) ErrorFault() smithy.ErrorFault {
	if e.Status >= 500 {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

// HTTPStatusCode lets the SDK's retryer tell a 5xx from a 4xx.
func (e *APIError) HTTPStatusCode() int { return e.Status }

// Call runs the operation op with the request in, decoding the answer into out. Failures the
// SDK's retryer retries (throttling, 5xx, a broken connection) are retried as the SDK would.
func (c *Client) Call(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%s %s: encode the request: %w", c.svc.Target, op, err)
	}
	answer, err := c.CallRaw(ctx, op, body)
	if err != nil {
		return err
	}
	// An operation without output may answer with no body at all.
	if len(bytes.TrimSpace(answer)) == 0 {
		return nil
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not the JSON the service documents: %w", c.svc.Target, op, err)
	}
	return nil
}

// CallRaw is Call for a caller that encodes its request and decodes the answer itself: body is
// the request's JSON, and the answer is returned as it came.
func (c *Client) CallRaw(ctx context.Context, op string, body []byte) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		answer, err := c.call(ctx, op, body)
		if err == nil || attempt >= c.retryer.MaxAttempts() || !c.retryer.IsErrorRetryable(err) || ctx.Err() != nil {
			return answer, err
		}
		delay, derr := c.retryer.RetryDelay(attempt, err)
		if derr != nil {
			return nil, err
		}
		if serr := c.sleep(ctx, delay); serr != nil {
			return nil, err
		}
	}
}

func (c *Client) call(ctx context.Context, op string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", c.svc.Target, op, err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-"+c.svc.Version)
	req.Header.Set("X-Amz-Target", c.svc.Target+"."+op)
	creds, err := c.creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s %s: credentials: %w", c.svc.Target, op, err)
	}
	if err := c.signer.SignHTTP(ctx, creds, req, v4Hash(body), c.svc.Name, c.region, c.now()); err != nil {
		return nil, fmt.Errorf("%s %s: sign the request: %w", c.svc.Target, op, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// A network error: the retryer recognises it through the chain.
		return nil, fmt.Errorf("%s %s: %w", c.svc.Target, op, err)
	}
	defer resp.Body.Close()
	limit := c.svc.MaxAnswer
	if limit <= 0 {
		limit = maxBody
	}
	answer, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the answer: %w", c.svc.Target, op, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, c.apiError(op, resp, answer)
	}
	if int64(len(answer)) > limit {
		return nil, fmt.Errorf("%s %s: the answer is over %d bytes, more than this service's calls need", c.svc.Target, op, limit)
	}
	return answer, nil
}

// apiError reads an error answer as the SDK does: the code from X-Amzn-ErrorType, else from
// the body's __type (or code), without its namespace and URI suffix.
func (c *Client) apiError(op string, resp *http.Response, body []byte) error {
	var info struct {
		Type    string `json:"__type"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &info)
	code := resp.Header.Get("X-Amzn-ErrorType")
	for _, alt := range []string{info.Type, info.Code} {
		if code == "" {
			code = alt
		}
	}
	if _, after, ok := strings.Cut(code, "#"); ok {
		code = after
	}
	code, _, _ = strings.Cut(code, ":")
	if code == "" {
		code = http.StatusText(resp.StatusCode)
	}
	return &APIError{Operation: c.svc.Target + " " + op, Status: resp.StatusCode,
		RequestID: resp.Header.Get("X-Amzn-RequestId"), Code: code, Message: info.Message, Body: body}
}

// v4Hash is the payload hash SigV4 signs.
func v4Hash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}
