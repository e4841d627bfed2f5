package deploy

// The deployed functions, end to end: every bootstrap is built with its Makefile target for
// this machine, run under AWS's Lambda Runtime Interface Emulator with the environment
// template.yaml gives it, against the stack's table in DynamoDB Local and its queues, key and
// parameters in moto_server, and invoked as API Gateway, the SQS event source mappings and the
// EventBridge schedule would. The destinations and UltraCart are the fakes of shared/, behind
// TLS as the real ones are.

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/iterable/iterablefake"
	"github.com/cartrelay/cartrelay/shared/localrun"
	"github.com/cartrelay/cartrelay/shared/onetime"
	"github.com/cartrelay/cartrelay/shared/ontraport/ontraportfake"
	"github.com/cartrelay/cartrelay/shared/testenv"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// Credentials of the fakes.
const (
	ucClientID     = "cartrelay-e2e"
	ucClientSecret = "uc-client-secret-e2e"
	opAppID        = "2_98765_e2e"
	opAPIKey       = "op-api-key-e2e"
	itAPIKey       = "0123456789abcdef0123456789abcdef"
)

// liveStack is the deployed stack with every function running under the emulator.
type liveStack struct {
	tpl     *template
	stack   *deployed
	api     string // the HTTP API's base URL
	fns     map[string]*testenv.Lambda
	routers map[string]*awsRouter
	// operator is what `cartrelay --backend aws` would build against the stack.
	operator *wiring.Env
	// certFile holds the certificate of the fakes' TLS fronts.
	certFile string
	certs    *x509.CertPool
}

func TestRuntimeEndToEnd(t *testing.T) {
	ctx := t.Context()
	tpl := loadTemplate(t)
	root := testenv.RepoRoot(t)
	rie := testenv.RIE(t)
	canBuildForHost(t)

	// The builds run while the backends start; both take seconds.
	ids := tpl.functions()
	built := make(chan struct{})
	go func() {
		hostBuilds.prebuild(root, ids)
		close(built)
	}()

	uc := ultracartfake.New(ultracartfake.Options{Orders: 3, Start: time.Now().Add(-3 * time.Hour), Spacing: 10 * time.Minute,
		ClientID: ucClientID, ClientSecret: ucClientSecret, MerchantID: "DEMO"})
	t.Cleanup(uc.Close)
	op := ontraportfake.New(ontraportfake.Options{AppID: opAppID, APIKey: opAPIKey})
	t.Cleanup(op.Close)
	it, err := iterablefake.New(iterablefake.Options{APIKey: itAPIKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(it.Close)

	rt := &liveStack{tpl: tpl, fns: map[string]*testenv.Lambda{}, routers: map[string]*awsRouter{}}
	ucURL, opURL, itURL := rt.tlsFront(t, uc.URL), rt.tlsFront(t, op.URL), rt.tlsFront(t, it.URL)

	local := startLocalAWS(t, fakeStack().region)
	const secretParam, sessionParam = "/cartrelay/ultracart-client-secret", "/cartrelay/console-session-key"
	rt.stack = deploy(ctx, t, tpl, local,
		map[string]string{"UltraCartClientId": ucClientID, "UltraCartClientSecretParameter": secretParam,
			"ConsoleSessionKeyParameter": sessionParam, "UltraCartBaseUrl": ucURL},
		map[string]string{secretParam: ucClientSecret, sessionParam: strings.Repeat("e2e-session-key-", 3)})
	rt.startAPI(t)

	<-built
	for _, id := range ids {
		rt.start(t, rie, id)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, id := range ids {
				t.Logf("output of %s under the emulator:\n%s", id, rt.fns[id].Output())
			}
		}
	})
	rt.operator = rt.operatorEnv(t, local)

	// 1. The merchant connects the store through the connect function, in a browser's steps:
	// UltraCart gets a webhook whose credentials only cartrelay knows.
	account := rt.connectUltraCart(ctx, t, uc)
	hooks := uc.Webhooks()
	if len(hooks) != 1 {
		t.Fatalf("UltraCart has %d webhooks after connecting, want 1: %+v", len(hooks), hooks)
	}

	// The operator points the account at the destinations (cartrelay accounts put).
	if _, err := rt.operator.Accounts.Put(ctx, account, fmt.Appendf(nil, `{
		"forward_since": "2020-01-01T00:00:00Z",
		"ontraport": {"enabled": true, "app_id": %q, "api_key": %q, "base_url": %q},
		"iterable": {"enabled": true, "api_key": %q, "base_url": %q}}`, opAppID, opAPIKey, opURL+"/1", itAPIKey, itURL)); err != nil {
		t.Fatal(err)
	}

	// 2. UltraCart delivers two orders of two buyers to the webhook URL it was given.
	delivery, err := os.ReadFile(filepath.Join("testdata", "ultracart_delivery.json"))
	if err != nil {
		t.Fatal(err)
	}
	status, body := rt.postWebhook(ctx, t, hooks[0], delivery)
	if status != http.StatusOK {
		t.Fatalf("webhook answered %d %s, want 200", status, body)
	}
	if got := rt.stack.queueDepth(ctx, t, "IngestQueue"); got != 2 {
		t.Fatalf("the ingest queue holds %d messages after the 200, want the delivery's 2 events", got)
	}

	// 3. Ingest consumes the batch; both orders are stored and their facts queued per destination.
	ingest := rt.stack.sqsEventSource(t, tpl, "IngestFunction", rt.fns["IngestFunction"])
	if b := ingest.drain(ctx, t); len(b.deleted) != 2 {
		t.Fatalf("ingest handled %d messages, want 2", len(b.deleted))
	}
	store := history.New(rt.operator.Store)
	for _, id := range []string{"DEMO-0002001", "DEMO-0002002"} {
		if email, err := store.FindOrder(ctx, account, domain.OrderKey(domain.UltraCart, id, "")); err != nil || email == "" {
			t.Errorf("order %s is not stored after ingest: %q, %v", id, email, err)
		}
	}

	// 4. ONTRAPORT gets both orders.
	ontraport := rt.stack.sqsEventSource(t, tpl, "ForwardOntraportFunction", rt.fns["ForwardOntraportFunction"])
	ontraport.drain(ctx, t)
	for _, id := range []string{"DEMO-0002001", "DEMO-0002002"} {
		if txs := op.TransactionsFor(domain.OrderKey(domain.UltraCart, id, "")); len(txs) != 1 {
			t.Errorf("ONTRAPORT has %d transactions for order %s, want 1", len(txs), id)
		}
	}
	if got := rt.stack.queueDepth(ctx, t, "OntraportQueue"); got != 0 {
		t.Errorf("the ONTRAPORT queue still holds %d messages", got)
	}

	// 5. Iterable fails once: exactly the failed messages stay queued, the others are deleted;
	// the retry delivers them.
	it.Inject(iterablefake.Fault{Path: "/api/commerce/trackPurchase", Status: http.StatusServiceUnavailable})
	iterable := rt.stack.sqsEventSource(t, tpl, "ForwardIterableFunction", rt.fns["ForwardIterableFunction"])
	first := iterable.poll(ctx, t, time.Second)
	if len(first.failed) == 0 || len(first.deleted) == 0 {
		t.Fatalf("Iterable batch of %d: %d failed, %d deleted; want a partial failure", len(first.received), len(first.failed), len(first.deleted))
	}
	if got := rt.stack.queueDepth(ctx, t, "IterableQueue"); got != len(first.failed) {
		t.Fatalf("the Iterable queue holds %d messages after a batch of %d that failed %d, want exactly the failed ones",
			got, len(first.received), len(first.failed))
	}
	// The failed messages come back when the retry delay the function set runs out, and they
	// alone: what the batch deleted never comes back.
	var retried batchOutcome
	deadline := time.Now().Add(30 * time.Second)
	for len(retried.received) < len(first.failed) {
		if time.Now().After(deadline) {
			t.Fatalf("after the partial failure the Iterable queue gave back only %v of %v within 30 s", retried.received, first.failed)
		}
		b := iterable.poll(ctx, t, time.Second)
		for _, id := range b.received {
			if !slices.Contains(first.failed, id) {
				t.Fatalf("the Iterable queue gave back %s, which the partially failed batch had deleted", id)
			}
		}
		if len(b.failed) > 0 {
			t.Fatalf("Iterable retry failed %v", b.failed)
		}
		retried.received = append(retried.received, b.received...)
	}
	if got := rt.stack.queueDepth(ctx, t, "IterableQueue"); got != 0 {
		t.Errorf("the Iterable queue holds %d messages after the retry, want 0", got)
	}
	purchases := map[string]int{}
	for _, p := range it.Purchases() {
		purchases[p.Email] += 1 + p.Updates
	}
	if purchases["marcus.reyes@example.com"] != 1 || purchases["ana.lima@example.com"] != 1 {
		t.Errorf("Iterable purchases by buyer: %v, want one each", purchases)
	}

	// 6. The schedule queues the new connection's backfill; the poll function walks UltraCart's
	// orders into the ingest queue, and ingest stores them.
	if _, err := rt.fns["ScheduleFunction"].Invoke(ctx, scheduledEvent(rt.stack.stack, "cartrelay-tick", time.Now())); err != nil {
		t.Fatal(err)
	}
	jobs := rt.stack.queueDepth(ctx, t, "PollQueue")
	if jobs == 0 {
		t.Fatal("the schedule queued no poll job for the new connection")
	}
	poll := rt.stack.sqsEventSource(t, tpl, "PollFunction", rt.fns["PollFunction"])
	for range jobs {
		if b := poll.poll(ctx, t, time.Second); len(b.failed) > 0 {
			t.Fatalf("poll job %s failed", b.bodies[b.failed[0]])
		}
	}
	polled := ingest.drain(ctx, t)
	if len(polled.deleted) < 3 {
		t.Errorf("the backfill brought %d events to ingest, want at least UltraCart's 3 orders", len(polled.deleted))
	}
	for i := range 3 {
		id := ultracartfake.OrderID(i)
		if email, err := store.FindOrder(ctx, account, domain.OrderKey(domain.UltraCart, id, "")); err != nil || email == "" {
			t.Errorf("polled order %s is not stored: %q, %v", id, email, err)
		}
	}

	// 7. A fact Iterable refuses for good (a 400) is parked rather than retried, and the
	// forwarder's log line for it is one the template's metric filter counts, so the alarm on
	// parked deliveries goes off in AWS.
	it.Inject(iterablefake.Fault{Status: http.StatusBadRequest})
	iterable.drain(ctx, t)
	failed, err := store.Deliveries(ctx, account, true, 50)
	if err != nil {
		t.Fatal(err)
	}
	var parked []string
	for _, d := range failed {
		if d.Status == history.DeliveryParked {
			parked = append(parked, d.Dest+" "+d.FactID)
		}
	}
	if len(parked) != 1 || !strings.HasPrefix(parked[0], "iterable ") {
		t.Fatalf("parked deliveries after Iterable refused one request: %v, want one for iterable", parked)
	}
	if n := rt.metricFilterMatches(t, "ForwardIterableFunction"); n != 1 {
		t.Errorf("the template's metric filters on ForwardIterableFunction's log group match %d of its log lines, want 1 (the parked delivery)", n)
	}

	// 8. The merchant signs in to the console (its session key comes from SSM) and sees the
	// account's webhook URL.
	b := rt.browser(t)
	status, page := open(ctx, t, b, rt.api+"/console/login")
	if status != http.StatusOK || !strings.Contains(page, rt.api+"/webhooks/ultracart/"+account) {
		t.Errorf("the console after signing in answered %d without the account's webhook URL:\n%s", status, page)
	}

	// 9. A function whose secret is missing from Parameter Store fails to start, and the
	// invocation's error says which parameter and how to create it.
	broken := *rt.stack.stack
	broken.params = maps.Clone(broken.params)
	broken.params["ConsoleSessionKeyParameter"] = "/cartrelay/no-such-parameter"
	fn := testenv.StartLambda(t, rie, "ConnectFunction with a missing parameter", buildForHost(t, root, "ConnectFunction"),
		lambdaEnv(tpl, "ConnectFunction", &broken, "AWS_ENDPOINT_URL="+newAWSRouter(t, "broken", local).URL()))
	_, err = fn.Invoke(ctx, []byte(`{"version":"2.0","rawPath":"/connect","requestContext":{"http":{"method":"GET","path":"/connect"}}}`))
	var initErr *testenv.FunctionError
	if !errors.As(err, &initErr) || initErr.Type != "Runtime.InitError" ||
		!strings.Contains(initErr.Message, "/cartrelay/no-such-parameter") || !strings.Contains(initErr.Message, "put-parameter") {
		t.Errorf("a start without its SSM parameter gave %v; want a Runtime.InitError naming the parameter and how to create it\n%s", err, fn.Output())
	}

	rt.checkPermissions(t)
	rt.checkLogs(t)
}

// open loads u in browser b, following redirects, and returns the final status and page.
func open(ctx context.Context, t *testing.T, b *http.Client, u string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := b.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode, string(body)
}

// tlsFront serves target over HTTPS with httptest's certificate, which the functions trust
// through SSL_CERT_FILE, and returns its URL.
func (rt *liveStack) tlsFront(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = ""
	srv := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(u))
	t.Cleanup(srv.Close)
	if rt.certFile == "" {
		rt.certFile = filepath.Join(t.TempDir(), "fakes.pem")
		cert := srv.Certificate()
		if err := os.WriteFile(rt.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		rt.certs = x509.NewCertPool()
		rt.certs.AddCert(cert)
	}
	return srv.URL
}

// startAPI plays the HTTP API with the template's routes.
func (rt *liveStack) startAPI(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	routes := localRoutes(t, rt.tpl.apiRoutes(), func(id string) *testenv.Lambda { return rt.fns[id] })
	go func() {
		done <- localrun.Run(ctx, localrun.Config{Addr: "127.0.0.1:0", Routes: routes, Ready: func(addr string) { ready <- addr }})
	}()
	select {
	case addr := <-ready:
		rt.api = "http://" + addr
	case err := <-done:
		t.Fatalf("the local HTTP API did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-done
	})
	rt.stack.atts["HttpApi.ApiEndpoint"] = rt.api
}

// start runs function id under the emulator with the template's environment, its AWS calls
// going through a router of its own.
func (rt *liveStack) start(t *testing.T, rie, id string) {
	t.Helper()
	bin := buildForHost(t, testenv.RepoRoot(t), id)
	router := newAWSRouter(t, id, rt.stack.aws)
	env := lambdaEnv(rt.tpl, id, rt.stack.stack,
		"AWS_ENDPOINT_URL="+router.URL(),
		"AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(rt.tpl.timeout(t, id)),
		"SSL_CERT_FILE="+rt.certFile)
	rt.routers[id] = router
	rt.fns[id] = testenv.StartLambda(t, rie, id, bin, env)
}

// operatorEnv is the runtime `cartrelay --backend aws` builds from the stack's outputs.
func (rt *liveStack) operatorEnv(t *testing.T, local *localAWS) *wiring.Env {
	t.Helper()
	router := newAWSRouter(t, "operator", local)
	cfg := local.motoCfg.Copy()
	cfg.BaseEndpoint = &router.srv.URL
	urls := map[string]string{}
	for id, u := range rt.stack.queueURLs {
		urls[queueLogicalName(rt.tpl, id, rt.stack.stack)] = u
	}
	env, err := wiring.AWS(cfg, wiring.AWSConfig{Table: rt.stack.refs["Table"], QueueURLs: urls, KMSKeyID: rt.stack.atts["SecretsKey.Arn"]}, wiring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// queueLogicalName is the name the code uses for a queue of the template (ingest, ontraport-dlq).
func queueLogicalName(tpl *template, id string, s *stack) string {
	name := strings.TrimPrefix(tpl.queueName(id, s), s.name+"-")
	return strings.TrimSuffix(name, ".fifo")
}

// browser is an HTTP client with cookies that trusts the fakes' certificate.
func (rt *liveStack) browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig.RootCAs = rt.certs
	return &http.Client{Jar: jar, Transport: tr, Timeout: time.Minute}
}

// connectUltraCart goes through the OAuth connect flow as a merchant's browser would, with the
// invite a deployed stack asks of a new store by default, and returns the account it created.
func (rt *liveStack) connectUltraCart(ctx context.Context, t *testing.T, uc *ultracartfake.Server) string {
	t.Helper()
	b := rt.browser(t)
	if status, body := open(ctx, t, b, rt.api+"/connect"); status != http.StatusForbidden || !strings.Contains(body, "Invitation needed") {
		t.Fatalf("/connect without an invite answered %d:\n%s", status, body)
	}
	// The operator's invite (cartrelay --backend aws invites create).
	invite, _, err := onetime.New(rt.operator.Store, nil).Issue(ctx, onetime.Invite, "", app.InviteTTL)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := open(ctx, t, b, rt.api+"/connect?invite="+invite); status != http.StatusOK || !strings.Contains(body, "Connect UltraCart") {
		t.Fatalf("/connect with an invite answered %d:\n%s", status, body)
	}
	// The start page redirects to UltraCart, which approves and sends the browser back.
	status, body := open(ctx, t, b, rt.api+"/oauth/ultracart/start?invite="+invite)
	if status != http.StatusOK || !strings.Contains(body, "UltraCart connected") {
		t.Fatalf("the connect flow ended with %d:\n%s", status, body)
	}
	ids, err := rt.operator.Accounts.IDs(ctx)
	if err != nil || len(ids) != 1 {
		t.Fatalf("accounts after connecting: %v, %v; want one", ids, err)
	}
	return ids[0]
}

// postWebhook sends a delivery as UltraCart sends it to a registered webhook.
func (rt *liveStack) postWebhook(ctx context.Context, t *testing.T, hook ultracartapi.Webhook, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.WebhookURL, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	if hook.AuthenticationType != "basic" {
		t.Fatalf("the registered webhook authenticates with %q, want basic", hook.AuthenticationType)
	}
	req.SetBasicAuth(hook.BasicUsername, hook.BasicPassword)
	resp, err := rt.browser(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// checkPermissions holds every AWS call each function made to the IAM policies the template
// gives it.
func (rt *liveStack) checkPermissions(t *testing.T) {
	t.Helper()
	for _, id := range rt.tpl.functions() {
		calls := rt.routers[id].taken()
		ops := map[string]int{}
		for _, c := range calls {
			ops[c.target]++
		}
		t.Logf("%s made %d AWS calls: %v", id, len(calls), ops)
		for _, c := range calls {
			if err := rt.allowed(t, id, c); err != nil {
				t.Errorf("%s: %v", id, err)
			}
		}
	}
}

// checkLogs fails on any error a function logged, and logs how long each function's longest
// invocation took, as the emulator reported it.
func (rt *liveStack) checkLogs(t *testing.T) {
	t.Helper()
	for _, id := range rt.tpl.functions() {
		var maxMS float64
		invocations := 0
		for line := range strings.Lines(rt.fns[id].Output()) {
			var entry struct {
				Level string `json:"level"`
				Msg   string `json:"msg"`
			}
			if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &entry) == nil && entry.Level == "ERROR" {
				t.Errorf("%s logged an error: %s", id, strings.TrimSpace(line))
			}
			if rest, ok := strings.CutPrefix(line, "REPORT RequestId: "); ok {
				invocations++
				for field := range strings.SplitSeq(rest, "\t") {
					name, value, _ := strings.Cut(field, ": ")
					ms, _ := strconv.ParseFloat(strings.TrimSuffix(value, " ms"), 64)
					if name == "Duration" {
						maxMS = max(maxMS, ms)
					}
				}
			}
		}
		t.Logf("%s: %d invocations, the longest %.0f ms", id, invocations, maxMS)
	}
}

// filterRE is the one form of CloudWatch Logs JSON filter pattern the test can read.
var filterRE = regexp.MustCompile(`^\{ *\$\.([A-Za-z0-9_]+) *= *"([^"*]*)" *\}$`)

// metricFilterMatches counts the lines of function id's log that a metric filter of the
// template on the function's log group matches, as CloudWatch Logs would.
func (rt *liveStack) metricFilterMatches(t *testing.T, id string) int {
	t.Helper()
	group := ref(get(rt.tpl.resources[id], "Properties", "LoggingConfig", "LogGroup"))
	if group == "" {
		t.Fatalf("%s has no LoggingConfig.LogGroup in the template", id)
	}
	n := 0
	for _, mf := range rt.tpl.ofType("AWS::Logs::MetricFilter") {
		p := get(rt.tpl.resources[mf], "Properties")
		if ref(get(p, "LogGroupName")) != group {
			continue
		}
		pattern := scalar(get(p, "FilterPattern"))
		m := filterRE.FindStringSubmatch(pattern)
		if m == nil {
			t.Fatalf("metric filter %s: the test reads patterns of the form { $.field = \"value\" } only, not %s", mf, pattern)
		}
		for line := range strings.Lines(rt.fns[id].Output()) {
			var entry map[string]any
			if json.Unmarshal([]byte(line), &entry) == nil && entry[m[1]] == m[2] {
				n++
			}
		}
	}
	return n
}
