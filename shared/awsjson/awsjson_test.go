package awsjson

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"
)

var testService = Service{Name: "ssm", Target: "AmazonSSM", Version: "1.1"}

// answer is one canned answer of the test server.
type answer struct {
	status int
	header map[string]string
	body   string
}

// serve answers the requests in turn with answers, recording each request.
func serve(t *testing.T, answers ...answer) (*Client, *[]*http.Request, *[]time.Duration) {
	t.Helper()
	var reqs []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		reqs = append(reqs, r)
		a := answers[min(len(reqs), len(answers))-1]
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	c := New(aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "token")}, testService)
	var slept []time.Duration
	c.sleep = func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		return nil
	}
	return c, &reqs, &slept
}

// TestCallSignsAndDecodes: the request is a signed AWS JSON call of the operation, and the
// answer is decoded.
func TestCallSignsAndDecodes(t *testing.T) {
	c, reqs, _ := serve(t, answer{status: 200, body: `{"Parameter":{"Value":"s3cret"}}`})
	var out struct{ Parameter struct{ Value string } }
	if err := c.Call(context.Background(), "GetParameter", map[string]any{"Name": "/x", "WithDecryption": true}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Parameter.Value != "s3cret" {
		t.Fatalf("decoded %+v", out)
	}
	r := (*reqs)[0]
	body, _ := io.ReadAll(r.Body)
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil || in["Name"] != "/x" || in["WithDecryption"] != true {
		t.Errorf("request body %s", body)
	}
	for k, want := range map[string]string{
		"X-Amz-Target":         "AmazonSSM.GetParameter",
		"Content-Type":         "application/x-amz-json-1.1",
		"X-Amz-Security-Token": "token",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") ||
		!strings.Contains(auth, "/eu-west-1/ssm/aws4_request") || !strings.Contains(auth, "x-amz-target") {
		t.Errorf("Authorization %q is not a SigV4 signature for ssm in eu-west-1 covering the target", auth)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		t.Errorf("%s %s", r.Method, r.URL.Path)
	}
}

// TestCallErrors: error answers become APIErrors with the code as the SDK reads it; what the
// SDK's retryer retries is retried with its delays, the rest is not.
func TestCallErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answers  []answer
		code     string
		message  string
		requests int
	}{
		{name: "namespaced type in the body", answers: []answer{{status: 400, body: `{"__type":"com.amazonaws.ssm#ParameterNotFound","message":"gone"}`}},
			code: "ParameterNotFound", message: "gone", requests: 1},
		{name: "type in the header wins, URI suffix dropped", answers: []answer{{status: 400,
			header: map[string]string{"X-Amzn-ErrorType": "AccessDeniedException:http://internal.amazon.com/"}, body: `{"__type":"Other","Message":"no"}`}},
			code: "AccessDeniedException", message: "no", requests: 1},
		{name: "throttling is retried up to the retryer's attempts", answers: []answer{{status: 400, body: `{"__type":"ThrottlingException"}`}},
			code: "ThrottlingException", requests: 3},
		{name: "a 5xx is retried, then succeeds", answers: []answer{{status: 503, body: `not json`}, {status: 200, body: `{}`}},
			requests: 2},
		{name: "a body that is not JSON", answers: []answer{{status: 403, body: `<html>`}}, code: "Forbidden", requests: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, reqs, slept := serve(t, tc.answers...)
			var out struct{}
			err := c.Call(context.Background(), "GetParameter", struct{}{}, &out)
			if len(*reqs) != tc.requests {
				t.Errorf("%d requests, want %d", len(*reqs), tc.requests)
			}
			if len(*slept) != tc.requests-1 {
				t.Errorf("slept %d times between %d requests", len(*slept), tc.requests)
			}
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var api smithy.APIError
			if !errors.As(err, &api) || api.ErrorCode() != tc.code || api.ErrorMessage() != tc.message {
				t.Fatalf("error %v, want code %q message %q", err, tc.code, tc.message)
			}
		})
	}
}

// TestEndpoint: without a base endpoint, the service's regional endpoint in the region's
// partition.
func TestEndpoint(t *testing.T) {
	for region, want := range map[string]string{
		"us-east-1":      "https://ssm.us-east-1.amazonaws.com",
		"cn-north-1":     "https://ssm.cn-north-1.amazonaws.com.cn",
		"us-gov-west-1":  "https://ssm.us-gov-west-1.amazonaws.com",
		"us-iso-east-1":  "https://ssm.us-iso-east-1.c2s.ic.gov",
		"us-isob-east-1": "https://ssm.us-isob-east-1.sc2s.sgov.gov",
	} {
		if got := New(aws.Config{Region: region}, testService).endpoint; got != want {
			t.Errorf("%s: %s, want %s", region, got, want)
		}
	}
}

// TestCallRaw: the request body goes as given, the answer comes back as it came, and an error
// answer keeps its body for the fields a service adds to its errors.
func TestCallRaw(t *testing.T) {
	c, reqs, _ := serve(t, answer{status: 200, body: `{"Item":{"pk":{"S":"a"}}}`},
		answer{status: 400, body: `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"cancelled","CancellationReasons":[{"Code":"None"}]}`})
	got, err := c.CallRaw(context.Background(), "GetItem", []byte(`{"TableName":"t"}`))
	if err != nil || string(got) != `{"Item":{"pk":{"S":"a"}}}` {
		t.Fatalf("answer %s, %v", got, err)
	}
	if body, _ := io.ReadAll((*reqs)[0].Body); string(body) != `{"TableName":"t"}` {
		t.Errorf("request body %s", body)
	}
	_, err = c.CallRaw(context.Background(), "TransactWriteItems", []byte(`{}`))
	var api *APIError
	if !errors.As(err, &api) || api.Code != "TransactionCanceledException" || api.Message != "cancelled" ||
		!strings.Contains(string(api.Body), `"CancellationReasons":[{"Code":"None"}]`) {
		t.Fatalf("error %#v", err)
	}
}

// TestAnswerSize: an answer longer than the service's MaxAnswer (1 MiB by default) fails
// rather than being decoded cut short, and an empty answer is an answer without output.
func TestAnswerSize(t *testing.T) {
	for _, tc := range []struct {
		name    string
		max     int64
		body    string
		wantErr bool
	}{
		{name: "empty body", body: ``},
		{name: "at the limit", max: 16, body: `{"A":"0123456"}` + " "},
		{name: "over the limit", max: 16, body: `{"A":"01234567"}` + " ", wantErr: true},
		{name: "over the default limit", body: `{"A":"` + strings.Repeat("x", 1<<20) + `"}`, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, _ := serve(t, answer{status: 200, body: tc.body})
			c.svc.MaxAnswer = tc.max
			var out struct{ A string }
			err := c.Call(context.Background(), "GetParameter", struct{}{}, &out)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "answer is over") {
					t.Fatalf("error %v, want one saying the answer is too long", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestConfiguredEndpoint: endpoints configured for one service (AWS_ENDPOINT_URL_SSM, or the
// shared config file's services section) apply as they do to the SDK's own clients, read
// through the SDK's configuration loader.
func TestConfiguredEndpoint(t *testing.T) {
	dir := t.TempDir()
	shared := filepath.Join(dir, "config")
	if err := os.WriteFile(shared, []byte("[profile local]\nservices = stand-ins\n\n[services stand-ins]\nssm =\n  endpoint_url = http://shared-ssm:1/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"none", nil, "https://ssm.eu-west-1.amazonaws.com"},
		{"the service's own variable", map[string]string{"AWS_ENDPOINT_URL_SSM": "http://ssm:1/"}, "http://ssm:1"},
		{"another service's variable", map[string]string{"AWS_ENDPOINT_URL_KMS": "http://kms:1"}, "https://ssm.eu-west-1.amazonaws.com"},
		{"the global variable", map[string]string{"AWS_ENDPOINT_URL": "http://all:1"}, "http://all:1"},
		{"the service's own over the global", map[string]string{"AWS_ENDPOINT_URL": "http://all:1", "AWS_ENDPOINT_URL_SSM": "http://ssm:1"}, "http://ssm:1"},
		{"the shared config's services section", map[string]string{"AWS_PROFILE": "local"}, "http://shared-ssm:1"},
		{"the global variable over the shared config", map[string]string{"AWS_PROFILE": "local", "AWS_ENDPOINT_URL": "http://all:1"}, "http://all:1"},
		{"configured endpoints ignored", map[string]string{"AWS_ENDPOINT_URL_SSM": "http://ssm:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, "https://ssm.eu-west-1.amazonaws.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_KMS", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			t.Setenv("AWS_CONFIG_FILE", shared)
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
			t.Setenv("AWS_REGION", "eu-west-1")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := config.LoadDefaultConfig(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := New(cfg, testService).endpoint; got != tc.want {
				t.Errorf("endpoint %s, want %s", got, tc.want)
			}
		})
	}
}
