package app_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/grants"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/iterable/iterablefake"
	"github.com/cartrelay/cartrelay/shared/ontraport"
	"github.com/cartrelay/cartrelay/shared/ontraport/ontraportfake"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/phone"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/reviews"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/thrivecart/thrivecartfake"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
	"github.com/cartrelay/cartrelay/shared/ultracartapi/ultracartfake"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// deployment is one table and set of queues opened once per function, each with that function's
// grant (shared/grants) as the stack deploys them, beside an operator's runtime with none.
type deployment struct {
	t    *testing.T
	dir  string
	clk  *clock.Fake
	cfg  app.Config
	op   *wiring.Env
	envs map[string]*wiring.Env
}

func newDeployment(t *testing.T, cfg app.Config, clk *clock.Fake) *deployment {
	d := &deployment{t: t, dir: t.TempDir(), clk: clk, cfg: cfg, envs: map[string]*wiring.Env{}}
	d.op = d.open("")
	return d
}

func (d *deployment) open(function string) *wiring.Env {
	d.t.Helper()
	env, err := operator.Embedded(context.Background(), d.dir, wiring.Options{Clock: d.clk, Config: d.cfg, Phone: phone.E164, Function: function})
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { env.Close() })
	return env
}

// fn is function's runtime.
func (d *deployment) fn(function string) *wiring.Env {
	if d.envs[function] == nil {
		d.envs[function] = d.open(function)
	}
	return d.envs[function]
}

// drain runs handler over queue name until it is empty and returns the failures it reported.
func (d *deployment) drain(env *wiring.Env, name string, handler func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)) int {
	d.t.Helper()
	ctx := context.Background()
	failures := 0
	for range 200 {
		rs, err := env.Queue.Receive(ctx, name, queue.ReceiveOptions{Max: 10})
		if err != nil {
			d.t.Fatal(err)
		}
		if len(rs) == 0 {
			return failures
		}
		resp, err := handler(ctx, toSQSEvent(name, rs))
		if err != nil {
			d.t.Fatal(err)
		}
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		failures += len(failed)
		for _, r := range rs {
			if !failed[r.MessageID] {
				if err := env.Queue.Delete(ctx, name, r.ReceiptHandle); err != nil {
					d.t.Fatal(err)
				}
			}
		}
		if len(failed) > 0 {
			return failures
		}
	}
	d.t.Fatalf("%s did not drain", name)
	return failures
}

// TestEachFunctionWorksWithinItsGrant runs a store's whole life through the functions, each
// limited to what its IAM policy in template.yaml allows (the template test holds the two
// together): connecting by OAuth and saving a key in the console (connect), webhooks and a page
// view (webhook), ingest, both forwarders, the schedule, UltraCart and ThriveCart polling with a
// token rotation (poll), and a review link (connect). Every step must work, and the narrowing
// must be real: the webhook function cannot open an API key, the connect function cannot open
// a store's tokens, and neither can overwrite an account's settings.
func TestEachFunctionWorksWithinItsGrant(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	uc := ultracartfake.New(ultracartfake.Options{ClientID: "cid", ClientSecret: "c-secret", MerchantID: "DEMO_Store", Clock: clk,
		Orders: 3, Start: clk.Now().Add(-72 * time.Hour), Spacing: time.Hour, TokenTTL: time.Hour})
	t.Cleanup(uc.Close)
	tc := thrivecartfake.New("Demo Store", "tc-api-key-1")
	t.Cleanup(tc.Close)
	op := ontraportfake.New(ontraportfake.Options{AppID: "2_1_Grants", APIKey: "op-grants-key-1", Clock: clk})
	t.Cleanup(op.Close)
	it, err := iterablefake.New(iterablefake.Options{APIKey: "it-grants-key-1", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(it.Close)
	d := newDeployment(t, app.Config{PublicBaseURL: hubURL, UltraCartClientID: "cid", UltraCartClientSecret: "c-secret",
		UltraCartBaseURL: uc.URL, ThriveCartBaseURL: tc.URL, ConsoleSessionKey: consoleKey}, clk)

	// connect: the store connects by OAuth (account, webhook credentials, tokens, webhook).
	connect := &consoleFixture{oauthFixture: &oauthFixture{t: t, env: d.fn(grants.Connect), clk: clk, fake: uc}, tc: tc}
	if resp := connect.finish(connect.start()); resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, "UltraCart connected") {
		t.Fatalf("connect: %d: %s", resp.StatusCode, resp.Body)
	}
	const id = "uc-demo-store"
	// The operator points the destinations at the fakes; the merchant saves the ThriveCart
	// words in the console, which the connect function seals.
	if _, err := d.op.Accounts.Put(ctx, id, fmt.Appendf(nil, `{"forward_since":"2000-01-01T00:00:00Z",
		"ontraport":{"enabled":true,"app_id":"2_1_Grants","api_key":"op-grants-key-1","base_url":%q},
		"allowed_domains":"shop.example.com",
		"iterable":{"enabled":true,"api_key":"it-grants-key-1","base_url":%q,"review_url_template":"https://shop.example.com/review?sku={sku}"}}`,
		op.URL, it.URL)); err != nil {
		t.Fatal(err)
	}
	cookie := connect.session(id)
	form := connect.settingsForm(cookie)
	form.Set("thrivecart.api_key", "tc-api-key-1")
	form.Set("thrivecart.secret", tcSecret)
	if resp := connect.do(http.MethodPost, "/console/settings", nil, form, []string{cookie}); resp.StatusCode != http.StatusOK {
		t.Fatalf("console settings: %d: %s", resp.StatusCode, resp.Body)
	}

	// webhook: UltraCart (Basic), ThriveCart (secret word), a page view.
	creds, err := d.op.Accounts.Get(ctx, id, accounts.UltraCartWebhookPassword)
	if err != nil {
		t.Fatal(err)
	}
	wh := d.fn(grants.Webhook)
	for _, req := range []events.APIGatewayV2HTTPRequest{
		httpReq("POST", "/webhooks/ultracart/"+id, "application/json", fixture(t, "ultracart", "order_create.json"),
			basic(creds.UltraCart.WebhookUsername, creds.UltraCart.WebhookPassword.Reveal())),
		httpReq("POST", "/webhooks/thrivecart/"+id, "application/json", fixture(t, "thrivecart", "order_success.json"), nil),
		httpReq("POST", "/track/"+id, "application/json", []byte(`{"visitor":"v-1234567890abcdef","url":"https://shop.example.com/p/1","title":"P1"}`), nil),
	} {
		resp, err := wh.App.Webhook(ctx, req)
		if err != nil || resp.StatusCode >= 300 {
			t.Fatalf("webhook %s: %v %d %s", req.RawPath, err, resp.StatusCode, resp.Body)
		}
	}

	// ingest, then both forwarders.
	in := d.fn(grants.Ingest)
	if n := d.drain(in, queue.Ingest, in.App.Ingest); n != 0 {
		t.Fatalf("ingest failed %d event(s)", n)
	}
	if q, err := history.New(d.op.Store).QuarantineList(ctx, id, 10); err != nil || len(q) != 0 {
		t.Fatalf("quarantined %+v (%v)", q, err)
	}
	for _, dest := range []string{ontraportName, iterableName} {
		env := d.fn("forward-" + dest)
		dst, err := env.Destination(dest)
		if err != nil {
			t.Fatal(err)
		}
		if n := d.drain(env, dest, env.App.Forward(dst)); n != 0 {
			t.Fatalf("%s: %d failed deliveries", dest, n)
		}
	}
	failed, err := history.New(d.op.Store).Deliveries(ctx, id, true, 50)
	if err != nil || len(failed) != 0 {
		t.Fatalf("failed deliveries %+v (%v)", failed, err)
	}
	if len(op.Transactions()) == 0 || len(it.Calls()) == 0 {
		t.Fatalf("nothing reached the destinations: %d ONTRAPORT transactions, %d Iterable calls", len(op.Transactions()), len(it.Calls()))
	}

	// schedule, then poll: the access token has expired, so the poller renews it and stores
	// the rotated pair; ThriveCart is walked with its API key.
	clk.Advance(2 * time.Hour)
	if err := d.fn(grants.Schedule).App.Schedule(ctx, events.EventBridgeEvent{Time: clk.Now()}); err != nil {
		t.Fatalf("schedule: %v", err)
	}
	poll := d.fn(grants.Poll)
	before := connect.connectionThrough(d.op, id)
	if _, err := poll.App.PollRun(ctx, ucpoll.Job{Account: id, Stream: ucpoll.Orders}, clk.Now().Add(5*time.Minute), time.Time{}); err != nil {
		t.Fatalf("UltraCart poll: %v", err)
	}
	if after := connect.connectionThrough(d.op, id); after.AccessToken == before.AccessToken || after.Status != "" {
		t.Fatalf("the token was not renewed (status %q)", after.Status)
	}
	if _, err := poll.App.ThriveCartPollRun(ctx, id, clk.Now().Add(5*time.Minute)); err != nil {
		t.Fatalf("ThriveCart poll: %v", err)
	}

	// connect: a review link of the account.
	key, err := d.op.Keys.Ensure(ctx, id, accountkeys.Review)
	if err != nil {
		t.Fatal(err)
	}
	token, err := reviews.Sign(reviews.SigningKey(key), reviews.Claims{Account: id, OrderID: "1", SKU: "SKU-1", Expires: clk.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if resp := connect.get("/review/"+url.PathEscape(token), nil, nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("review link: %d: %s", resp.StatusCode, resp.Body)
	}

	// The Iterable forwarder makes an account's review key when it signs the first link (and
	// no other key).
	fi := d.fn("forward-" + iterableName)
	if _, err := fi.Keys.Ensure(ctx, "uc-other-store", accountkeys.Review); err != nil {
		t.Errorf("the Iterable forwarder cannot make a review key: %v", err)
	}
	if _, err := fi.Keys.Ensure(ctx, "uc-other-store", accountkeys.Tracking); !errors.Is(err, grants.ErrNotGranted) {
		t.Errorf("the Iterable forwarder made a tracking key: %v", err)
	}

	// The narrowing is real.
	if _, err := wh.Accounts.Get(ctx, id, ontraport.APIKey); !errors.Is(err, grants.ErrNotGranted) {
		t.Errorf("the webhook function opened the ONTRAPORT key: %v", err)
	}
	if _, err := d.fn(grants.Connect).Connections.Get(ctx, id, connections.UltraCart); !errors.Is(err, grants.ErrNotGranted) {
		t.Errorf("the connect function opened the store's tokens: %v", err)
	}
	for _, fn := range []string{grants.Webhook, grants.Ingest, "forward-" + iterableName} {
		if _, err := d.fn(fn).Accounts.Put(ctx, id, []byte(`{"iterable":{"enabled":false}}`)); !errors.Is(err, grants.ErrNotGranted) {
			t.Errorf("the %s function changed the account's settings: %v", fn, err)
		}
	}
}

// connectionThrough reads account's UltraCart connection, tokens opened, through env.
func (f *consoleFixture) connectionThrough(env *wiring.Env, account string) connections.Connection {
	f.t.Helper()
	c, err := env.Connections.Get(context.Background(), account, connections.UltraCart)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// unwrapLog records the secret of every data key a process unwraps.
type unwrapLog struct {
	secrets.KeyWrapper
	mu   sync.Mutex
	seen []string
}

func (u *unwrapLog) Unwrap(ctx context.Context, wrapped []byte, keyID string, ec secrets.EncryptionContext) ([]byte, error) {
	u.mu.Lock()
	u.seen = append(u.seen, secrets.SecretOf(ec))
	u.mu.Unlock()
	return u.KeyWrapper.Unwrap(ctx, wrapped, keyID, ec)
}

func (u *unwrapLog) take() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := u.seen
	u.seen = nil
	return out
}

// TestRequestsOpenOnlyTheirOwnSecrets is the finding: every webhook, /track and review request
// decrypted all of an account's secrets, so the webhook function held API keys and tokens.
// Here each request, in a process that has opened nothing before (no cached data key), may
// open only the one secret it checks.
func TestRequestsOpenOnlyTheirOwnSecrets(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	h := newHarnessIn(t, dir)
	h.account("acme", `,"thrivecart":{"secret":"TESTSECRETWORD01","api_key":"tc-api-key-1"},
		"ontraport":{"enabled":true,"app_id":"2_1_x","api_key":"op-api-key-1"},
		"allowed_domains":"shop.example.com",
		"iterable":{"enabled":true,"api_key":"it-api-key-1","review_url_template":"https://shop.example.com/review?sku={sku}"}`)
	// A second process over the same table and master key, with every unwrap recorded.
	master, err := secrets.LoadOrCreateLocalKey(filepath.Join(dir, operator.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	rec := &unwrapLog{KeyWrapper: master}
	env, err := wiring.New(h.env.Store, h.env.Queue, secrets.NewSealer(rec, h.clk), wiring.Options{Clock: h.clk})
	if err != nil {
		t.Fatal(err)
	}
	linkKey, err := h.env.Keys.Ensure(ctx, "acme", accountkeys.Review)
	if err != nil {
		t.Fatal(err)
	}
	token, _ := reviews.Sign(reviews.SigningKey(linkKey), reviews.Claims{Account: "acme", OrderID: "1", SKU: "SKU-1", Expires: h.clk.Now().Add(time.Hour)})

	for _, tc := range []struct {
		name string
		do   func() (int, error)
		want []string
	}{
		{"UltraCart webhook", func() (int, error) {
			r, err := env.App.Webhook(ctx, httpReq("POST", "/webhooks/ultracart/acme", "application/json", fixture(t, "ultracart", "order_create.json"), basic(ucUser, ucPass)))
			return r.StatusCode, err
		}, []string{"ultracart.webhook_password"}},
		{"ThriveCart webhook", func() (int, error) {
			r, err := env.App.Webhook(ctx, httpReq("POST", "/webhooks/thrivecart/acme", "application/json", fixture(t, "thrivecart", "order_success.json"), nil))
			return r.StatusCode, err
		}, []string{"thrivecart.secret"}},
		{"page view", func() (int, error) {
			r, err := env.App.Webhook(ctx, httpReq("POST", "/track/acme", "application/json", []byte(`{"visitor":"v-1234567890abcdef","url":"https://shop.example.com/p/1"}`), nil))
			return r.StatusCode, err
		}, nil},
		{"review link", func() (int, error) {
			r, err := env.App.Connect(ctx, httpReq("GET", "/review/"+url.PathEscape(token), "", nil, nil))
			return r.StatusCode, err
		}, []string{"keys.review"}},
	} {
		status, err := tc.do()
		if err != nil || status >= 400 {
			t.Fatalf("%s: %d %v", tc.name, status, err)
		}
		if got := rec.take(); !slices.Equal(got, tc.want) {
			t.Errorf("%s opened %v, want %v", tc.name, got, tc.want)
		}
	}
}

// newHarnessIn is newHarness over the data directory dir, so that a second process can open it.
func newHarnessIn(t *testing.T, dir string) *harness {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC))
	env, err := operator.Embedded(context.Background(), dir, wiring.Options{Clock: clk, Phone: phone.E164})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	return &harness{t: t, env: env, clk: clk, sent: map[string][]domain.Fact{}}
}
