// Package wiring builds cartrelay's ports and handlers for one runtime: the embedded one
// (SQLite in a data directory, for `cartrelay serve` and the CLI) or AWS (DynamoDB, SQS and
// KMS, for the Lambda functions and `--backend aws`). It is the only place that knows which
// adapter goes with which runtime.
package wiring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/awsjson"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/grants"
	"github.com/cartrelay/cartrelay/shared/queue"
	queuesqs "github.com/cartrelay/cartrelay/shared/queue/sqs"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
	"github.com/cartrelay/cartrelay/shared/redact"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/sitehosts"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/store/dynamo"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
)

// Env is one runtime's set of ports and the handlers over them.
type Env struct {
	Store    store.Store
	Queue    queue.Queue
	Accounts *accounts.Repo
	// Connections hold the credentials of source APIs (for the pollers).
	Connections *connections.Repo
	// Keys are the keys cartrelay makes for each account (review links, tracking).
	Keys  *accountkeys.Repo
	App   *app.App
	Clock clock.Clock
	Log   *slog.Logger
	// Known is the secrets this runtime has in memory; what it prints goes through it.
	Known *redact.Set
	// Sweep deletes expired items where the backend does not (the embedded store); nil in AWS,
	// where DynamoDB's TTL does it.
	Sweep func(context.Context) (int, error)
	// TakeOver, on the embedded runtime, makes sure no other serve runs on the same data and
	// puts back on their queues the messages a serve that died had received, so that they do not
	// wait out their visibility timeouts. It returns how many there were, and what to call when
	// serve stops. nil in AWS, where Lambda's pollers are SQS's business.
	TakeOver func(context.Context) (released int, release func(), err error)
	// Closer releases the runtime's resources (the embedded database); nil when there are none.
	Closer func() error
	// Counts, on the embedded runtime, are the totals of what this process did to its database
	// (see shared/opcount): serve logs them when it stops. nil in AWS.
	Counts func() map[string]int64
}

// Close releases the runtime's resources.
func (e *Env) Close() error {
	if e.Closer == nil {
		return nil
	}
	return e.Closer()
}

// Options tune a runtime.
type Options struct {
	Clock  clock.Clock
	Log    *slog.Logger
	Config app.Config
	// Phone normalizes phones during ingest; only runtimes that ingest set it (app.Deps.Phone).
	Phone domain.PhoneFunc
	// Poll tunes the source pollers; zero values take the poller's defaults (UltraCart's
	// 1,000 requests an hour and 10,000 a day).
	Poll ucpoll.Options
	// Parameters opens the store of deployment secrets named by <NAME>_PARAMETER variables
	// (SSM Parameter Store); only functions that need a secret set it (see ResolveSecrets).
	Parameters func(aws.Config) ParameterStore
	// Jitter seeds the random part of retry delays (app.Deps.Jitter); tests set it to repeat
	// a run.
	Jitter *rand.Rand
	// Sleep replaces the schedule's real waits (app.Deps.Sleep); tests on a fake clock set it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Function is the deployed function this runtime serves (shared/grants): its store may
	// write only the partitions, and its sealer open and seal only the secrets, that the
	// function's IAM policy allows. Empty (serve, the CLI) limits nothing.
	Function string
}

// grant is the function's grant, if it has one.
func (o Options) grant() (grants.Grant, bool, error) {
	if o.Function == "" {
		return grants.Grant{}, false, nil
	}
	g, err := grants.For(o.Function)
	return g, err == nil, err
}

// NewSealer seals and opens with w, within the function's grant.
func NewSealer(w secrets.KeyWrapper, opt Options) (*secrets.Sealer, error) {
	opt.defaults()
	g, limited, err := opt.grant()
	if err != nil {
		return nil, err
	}
	if limited {
		w = grants.Wrapper(w, g)
	}
	return secrets.NewSealer(w, opt.Clock), nil
}

// ParameterStore reads one named secret of the deployment.
type ParameterStore interface {
	Get(ctx context.Context, name string) (string, error)
}

// secretSettings are the settings that are secrets: deployed, each comes from the parameter
// that <NAME>_PARAMETER names; locally, from <NAME> itself.
func secretSettings(c *app.Config) []struct {
	env string
	dst *string
} {
	return []struct {
		env string
		dst *string
	}{
		{"ULTRACART_CLIENT_SECRET", &c.UltraCartClientSecret},
		{"CONSOLE_SESSION_KEY", &c.ConsoleSessionKey},
	}
}

// SecretEnv names the settings that are secrets; the template passes each to a deployed
// function as <NAME>_PARAMETER, never as a value.
func SecretEnv() []string {
	var names []string
	for _, s := range secretSettings(&app.Config{}) {
		names = append(names, s.env)
	}
	return names
}

// ResolveSecrets fills the secret settings of c: a value set directly in the environment wins;
// otherwise one whose <NAME>_PARAMETER names a parameter is read from ps. A parameter that
// cannot be read fails, so a misconfigured deployment says so at start rather than showing
// merchants a half-working sign-in.
func ResolveSecrets(ctx context.Context, getenv func(string) string, ps func() ParameterStore, c *app.Config) error {
	var store ParameterStore
	for _, s := range secretSettings(c) {
		if *s.dst = getenv(s.env); *s.dst != "" {
			continue
		}
		name := getenv(s.env + "_PARAMETER")
		if name == "" {
			continue
		}
		if ps == nil {
			return fmt.Errorf("%s_PARAMETER is set, but this function does not read parameters; set %s directly", s.env, s.env)
		}
		if store == nil {
			store = ps()
		}
		v, err := store.Get(ctx, name)
		if err != nil {
			return fmt.Errorf("%s: %w", s.env, err)
		}
		*s.dst = v
	}
	return nil
}

// WithDefaults fills in the system clock and a discarding logger where none is set.
func (o Options) WithDefaults() Options {
	o.defaults()
	return o
}

func (o *Options) defaults() {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// AWSConfig names the resources of a deployed stack.
type AWSConfig struct {
	Table     string
	QueueURLs map[string]string
	KMSKeyID  string
}

// AWSConfigFromEnv reads the resource names the template gives every function.
func AWSConfigFromEnv(getenv func(string) string) (AWSConfig, error) {
	c := AWSConfig{Table: getenv("TABLE_NAME"), KMSKeyID: getenv("KMS_KEY_ID")}
	var missing []string
	if c.Table == "" {
		missing = append(missing, "TABLE_NAME")
	}
	if c.KMSKeyID == "" {
		missing = append(missing, "KMS_KEY_ID")
	}
	urls, err := queuesqs.URLsFromEnv(destinations.Queues(), getenv)
	if err != nil {
		missing = append(missing, err.Error())
	}
	c.QueueURLs = urls
	if len(missing) > 0 {
		return c, fmt.Errorf("missing configuration: %s", strings.Join(missing, "; "))
	}
	return c, nil
}

// AWS builds the runtime over DynamoDB, SQS and KMS with the given SDK configuration. Nothing is
// called over the network here.
func AWS(cfg aws.Config, c AWSConfig, opt Options) (*Env, error) {
	opt.defaults()
	st := dynamo.New(dynamo.NewClient(cfg), c.Table, opt.Clock)
	q := queuesqs.New(queuesqs.NewClient(cfg), destinations.Queues(), c.QueueURLs)
	wrapper, err := secrets.NewKMS(awsjson.New(cfg, secrets.KMSService), c.KMSKeyID)
	if err != nil {
		return nil, err
	}
	sealer, err := NewSealer(wrapper, opt)
	if err != nil {
		return nil, err
	}
	return New(st, q, sealer, opt)
}

// New assembles a runtime over the given ports.
//
// Every secret the sealer opens or seals, and the deployment's own secrets, are scrubbed from
// what the runtime writes to the table and to its log (shared/redact), and the log shows
// customers' email addresses only as pseudonyms.
func New(st store.Store, q queue.Queue, sealer *secrets.Sealer, opt Options) (*Env, error) {
	opt.defaults()
	known := sealer.Known()
	known.Add(opt.Config.UltraCartClientSecret, opt.Config.ConsoleSessionKey)
	st = redact.Store(st, known)
	g, limited, err := opt.grant()
	if err != nil {
		return nil, err
	}
	if limited {
		st = grants.Store(st, opt.Function, g)
	}
	opt.Log = slog.New(known.Handler(opt.Log.Handler()))
	repo := accounts.NewRepo(st, sealer, opt.Clock).WithCheck(CheckAccount).WithSections(destinations.Sections()...)
	conns := connections.NewRepo(st, sealer, opt.Clock)
	keys := accountkeys.New(st, sealer, opt.Clock)
	polling := &app.Polling{Connections: conns, Options: opt.Poll}
	a, err := app.New(app.Deps{Store: st, Queue: q, Accounts: repo, Keys: keys, Clock: opt.Clock, Log: opt.Log, Config: opt.Config,
		Phone: opt.Phone, Polling: polling, Jitter: opt.Jitter, Known: known, Sleep: opt.Sleep})
	if err != nil {
		return nil, err
	}
	return &Env{Store: st, Queue: q, Accounts: repo, Connections: conns, Keys: keys, App: a, Clock: opt.Clock, Log: opt.Log, Known: known}, nil
}

// JSONLogger is the log format of every runtime: JSON lines, at the level LOG_LEVEL names
// (debug, info, warn, error; info when unset).
func JSONLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil || level == "" {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// Lambda builds the AWS runtime of one function from its environment. Errors are returned so
// main can log them once and exit; the Lambda service then reports the init failure.
func Lambda(ctx context.Context, function string, opt Options) (*Env, error) {
	log := JSONLogger(os.Stderr, os.Getenv("LOG_LEVEL")).With(slog.String("function", function))
	c, err := AWSConfigFromEnv(os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (the template sets these; was the function deployed without them?)", function, err)
	}
	opt.Log = log
	opt.Function = FunctionName(function, os.Getenv)
	opt.Config.PublicBaseURL = os.Getenv("PUBLIC_BASE_URL")
	opt.Config.UltraCartClientID = os.Getenv("ULTRACART_CLIENT_ID")
	opt.Config.UltraCartBaseURL = os.Getenv("ULTRACART_BASE_URL")
	opt.Config.ThriveCartBaseURL = os.Getenv("THRIVECART_BASE_URL")
	// Deployed, a new store needs an invite unless the stack says otherwise.
	if opt.Config.ConnectRequiresInvite, err = RequiresInvite(os.Getenv, true); err != nil {
		return nil, fmt.Errorf("%s: %w", function, err)
	}
	if opt.Poll, err = PollOptionsFromEnv(os.Getenv, opt.Poll); err != nil {
		return nil, fmt.Errorf("%s: %w", function, err)
	}
	cfg := LambdaAWSConfig(os.Getenv)
	var params func() ParameterStore
	if opt.Parameters != nil {
		params = func() ParameterStore { return opt.Parameters(cfg) }
	}
	// Deployed, the console's session key comes only from the stack: a key made up in one
	// Lambda instance would not verify in another. Short or missing, the console stays off.
	if err := ResolveSecrets(ctx, os.Getenv, params, &opt.Config); err != nil {
		return nil, fmt.Errorf("%s: %w", function, err)
	}
	return AWS(cfg, c, opt)
}

// RequiresInvite reads CONNECT_REQUIRES_INVITE ("true" or "false"); unset, it is def.
func RequiresInvite(getenv func(string) string, def bool) (bool, error) {
	switch v := strings.TrimSpace(getenv("CONNECT_REQUIRES_INVITE")); v {
	case "":
		return def, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	default:
		return def, fmt.Errorf("CONNECT_REQUIRES_INVITE is %q; set it to true (new stores connect only with an invite) or false", v)
	}
}

// FunctionName is the name a deployed function's grant has (shared/grants): its program under
// functions/, and for the forwarder, which is deployed once per destination, that destination.
func FunctionName(program string, getenv func(string) string) string {
	if program == "forward" {
		return program + "-" + getenv("DESTINATION")
	}
	return program
}

// LambdaAWSConfig is the SDK configuration inside Lambda, read from the variables the Lambda
// service sets: the region and the execution role's credentials. It is what the SDK's default
// chain resolves to there, without linking the chain's other providers (SSO, profiles, IMDS),
// which would add megabytes to every bootstrap. AWS_ENDPOINT_URL still redirects every client.
func LambdaAWSConfig(getenv func(string) string) aws.Config {
	cfg := aws.Config{
		Region: getenv("AWS_REGION"),
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
			getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"), getenv("AWS_SESSION_TOKEN"))),
	}
	if ep := getenv("AWS_ENDPOINT_URL"); ep != "" {
		cfg.BaseEndpoint = aws.String(ep)
	}
	return cfg
}

// Fatal logs err as JSON, reports it to the Lambda Runtime API when there is one (so the
// invocation that started the function fails with this message), and exits non-zero: the one
// way an entry point fails at init.
func Fatal(function string, err error) {
	log := JSONLogger(os.Stderr, "").With(slog.String("function", function))
	log.Error("init failed", slog.Any("error", err))
	if api := os.Getenv("AWS_LAMBDA_RUNTIME_API"); api != "" {
		if rerr := reportInitError(context.Background(), http.DefaultClient, api, err); rerr != nil {
			log.Warn("init error not reported", slog.Any("error", rerr))
		}
	}
	os.Exit(1)
}

// ErrUnknownDestination is returned for a DESTINATION that is not a registered destination.
var ErrUnknownDestination = destinations.ErrUnknown

// Destination builds the forwarder's destination by its registered name, over this runtime's
// ports.
func (e *Env) Destination(name string) (deliver.Destination, error) {
	r, err := destinations.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("%w: set DESTINATION to one of them", err)
	}
	// Review links point at the connect function; PUBLIC_BASE_URL is the stack's public URL.
	return r.New(deliver.Ports{Store: e.Store, Clock: e.Clock, Log: e.Log, Keys: e.Keys, PublicBaseURL: os.Getenv("PUBLIC_BASE_URL")})
}

// CheckAccount rejects settings no delivery could use: each destination checks its own, and the
// source settings are checked here.
func CheckAccount(a accounts.Account) error {
	var errs []error
	if c := a.UltraCart.BaseCurrency; c != "" && !domain.KnownCurrency(c) {
		errs = append(errs, fmt.Errorf("ultracart.base_currency is %q, which is not an ISO 4217 currency code: write the store's base currency in capitals, such as \"USD\", \"EUR\" or \"GBP\"", c))
	}
	if err := destinations.Check(a); err != nil {
		errs = append(errs, err)
	}
	if _, err := sitehosts.Parse(a.AllowedDomains); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// PollOptionsFromEnv reads the source rate limits both runtimes take from the environment:
// ULTRACART_RATE_PER_HOUR and ULTRACART_RATE_PER_DAY (defaults 1,000 and 10,000), so tests and
// staging can scale them down.
func PollOptionsFromEnv(getenv func(string) string, o ucpoll.Options) (ucpoll.Options, error) {
	for _, v := range []struct {
		name   string
		window time.Duration
		dst    *ratelimit.Limit
	}{
		{"ULTRACART_RATE_PER_HOUR", time.Hour, &o.Hour},
		{"ULTRACART_RATE_PER_DAY", 24 * time.Hour, &o.Day},
	} {
		raw := getenv(v.name)
		if raw == "" {
			continue
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			return o, fmt.Errorf("%s must be a whole number of requests, at least 1; got %q", v.name, raw)
		}
		*v.dst = ratelimit.Limit{Requests: n, Window: v.window}
	}
	switch scope := getenv("ULTRACART_RATE_SCOPE"); scope {
	case "":
	case ucpoll.ScopeAccount, ucpoll.ScopeApp:
		o.Scope = scope
	default:
		return o, fmt.Errorf("ULTRACART_RATE_SCOPE must be %q (each store's connection has its own request budget) or %q (every store of this deployment shares one); got %q",
			ucpoll.ScopeAccount, ucpoll.ScopeApp, scope)
	}
	return o, nil
}
