package deploy

// The stack of template.yaml deployed into local stand-ins of AWS: the table in DynamoDB Local,
// the queues, the key and the parameters in moto_server. Every function reaches them through an
// endpoint of its own (awsRouter) that sends DynamoDB's calls to DynamoDB Local and the rest to
// moto, and records what each function called, so that the calls can be held to the IAM
// policies the template gives it.

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	queuesqs "github.com/cartrelay/cartrelay/shared/queue/sqs"
	"github.com/cartrelay/cartrelay/shared/store/dynamo"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

// localAWS is DynamoDB Local and moto_server, with SDK configurations for each.
type localAWS struct {
	dynamoDB, moto  string // endpoints
	ddbCfg, motoCfg aws.Config
}

// startLocalAWS starts DynamoDB Local and moto_server side by side; each skips the test (fails
// it under CI=true) when it is missing.
func startLocalAWS(t *testing.T, region string) *localAWS {
	t.Helper()
	type motoStart struct {
		endpoint string
		stop     func()
		err      error
	}
	started := make(chan motoStart, 1)
	go func() {
		var m motoStart
		m.endpoint, m.stop, m.err = testenv.StartMoto()
		started <- m
	}()
	ddb := testenv.DynamoDBLocal(t)
	m := <-started
	if m.err != nil {
		testenv.MotoUnavailable(t, m.err)
	}
	t.Cleanup(m.stop)
	cfg := func(endpoint string) aws.Config {
		return aws.Config{Region: region, BaseEndpoint: aws.String(endpoint),
			Credentials: credentials.NewStaticCredentialsProvider(fakeAccessKey, fakeSecretKey, fakeSessionToken)}
	}
	return &localAWS{dynamoDB: ddb, moto: m.endpoint, ddbCfg: cfg(ddb), motoCfg: cfg(m.endpoint)}
}

// deployed is the template's stack with its resources created locally.
type deployed struct {
	*stack
	aws *localAWS
	// queueURLs and queueARNs are by logical id.
	queueURLs, queueARNs map[string]string
	sqs                  *awssqs.Client
}

// deploy creates the stack's table, queues, key and parameter values. secrets are the values
// of the SSM parameters that params name.
func deploy(ctx context.Context, t *testing.T, tpl *template, local *localAWS, params, secrets map[string]string) *deployed {
	t.Helper()
	s := fakeStack()
	s.params = params
	s.refs, s.atts = map[string]string{}, map[string]string{}
	tpl.checkParams(t, params)

	table := tpl.refValue("Table", s)
	if err := dynamo.CreateTable(ctx, dynamo.NewClient(local.ddbCfg), table); err != nil {
		t.Fatal(err)
	}
	s.refs["Table"] = table
	s.atts["Table.Arn"] = "arn:aws:dynamodb:" + s.region + ":" + s.account + ":table/" + table

	// The queues get their template names and attributes; Ensure holds them to destinations.Queues,
	// which TestQueuesMatchTopology holds to the template.
	client := awssqs.NewFromConfig(local.motoCfg)
	urls, err := queuesqs.Ensure(ctx, queuesqs.NewClient(local.motoCfg), destinations.Queues(), s.name+"-")
	if err != nil {
		t.Fatal(err)
	}
	d := &deployed{stack: s, aws: local, queueURLs: map[string]string{}, queueARNs: map[string]string{}, sqs: client}
	for _, id := range tpl.ofType("AWS::SQS::Queue") {
		name := tpl.queueName(id, s)
		for _, u := range urls {
			if strings.HasSuffix(u, "/"+name) {
				d.queueURLs[id] = u
			}
		}
		if d.queueURLs[id] == "" {
			t.Fatalf("queue %s (%s) of the template was not created", id, name)
		}
		out, err := client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(d.queueURLs[id]),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			t.Fatal(err)
		}
		s.refs[id] = d.queueURLs[id]
		d.queueARNs[id] = out.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
		s.atts[id+".Arn"] = d.queueARNs[id]
	}

	key, err := kms.NewFromConfig(local.motoCfg).CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("cartrelay secrets")})
	if err != nil {
		t.Fatal(err)
	}
	s.atts["SecretsKey.Arn"] = aws.ToString(key.KeyMetadata.Arn)
	s.refs["SecretsKey"] = aws.ToString(key.KeyMetadata.KeyId)

	for name, value := range secrets {
		if _, err := ssm.NewFromConfig(local.motoCfg).PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name),
			Value: aws.String(value), Type: ssmtypes.ParameterTypeSecureString}); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// checkParams fails the test when a parameter value breaks the template's own constraints,
// which CloudFormation would refuse.
func (tpl *template) checkParams(t *testing.T, params map[string]string) {
	t.Helper()
	for name, v := range params {
		p := get(tpl.root, "Parameters", name)
		if p == nil {
			t.Fatalf("the template has no parameter %s", name)
		}
		if pat := scalar(get(p, "AllowedPattern")); pat != "" && !regexp.MustCompile(pat).MatchString(v) {
			t.Fatalf("parameter %s=%q does not match the template's AllowedPattern %s", name, v, pat)
		}
		if allowed := strs(get(p, "AllowedValues")); len(allowed) > 0 && !slices.Contains(allowed, v) {
			t.Fatalf("parameter %s=%q is not one of the template's AllowedValues %v", name, v, allowed)
		}
	}
}

// awsCall is one AWS API call a function made.
type awsCall struct {
	function string
	service  string // the signing name: dynamodb, sqs, kms, ssm
	target   string // X-Amz-Target, e.g. DynamoDB_20120810.GetItem
	body     []byte
}

// awsRouter is one function's AWS endpoint.
type awsRouter struct {
	function string
	local    *localAWS
	mu       sync.Mutex
	calls    []awsCall
	srv      *httptest.Server
}

var scopeRE = regexp.MustCompile(`Credential=[^/]+/[0-9]{8}/[^/]+/([^/]+)/aws4_request`)

func newAWSRouter(t *testing.T, function string, local *localAWS) *awsRouter {
	r := &awsRouter{function: function, local: local}
	ddb, _ := url.Parse(local.dynamoDB)
	moto, _ := url.Parse(local.moto)
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		target := moto
		if m := scopeRE.FindStringSubmatch(pr.In.Header.Get("Authorization")); m != nil && m[1] == "dynamodb" {
			target = ddb
		}
		pr.SetURL(target)
		pr.Out.Host = target.Host
	}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		service := ""
		if m := scopeRE.FindStringSubmatch(req.Header.Get("Authorization")); m != nil {
			service = m[1]
		}
		r.mu.Lock()
		r.calls = append(r.calls, awsCall{function: function, service: service, target: req.Header.Get("X-Amz-Target"), body: body})
		r.mu.Unlock()
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *awsRouter) URL() string { return r.srv.URL }

// taken returns the calls recorded so far.
func (r *awsRouter) taken() []awsCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// queueDepth is how many messages a queue holds, visible or in flight.
func (d *deployed) queueDepth(ctx context.Context, t *testing.T, queueID string) int {
	t.Helper()
	out, err := d.sqs.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(d.queueURLs[queueID]),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
		sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible} {
		var v int
		if err := json.Unmarshal([]byte(out.Attributes[string(k)]), &v); err != nil {
			t.Fatalf("%s of %s: %v", k, queueID, err)
		}
		n += v
	}
	return n
}
