// Package wiring builds cartrelay's ports and handlers for one runtime: the embedded one
// (SQLite in a data directory, for `cartrelay serve` and the CLI) or AWS (DynamoDB, SQS and
// KMS, for the Lambda functions and `--backend aws`). It is the only place that knows which
// adapter goes with which runtime.
package wiring

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/deliver"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/ontraport"
	"github.com/cartrelay/cartrelay/shared/queue"
	queueembedded "github.com/cartrelay/cartrelay/shared/queue/embedded"
	queuesqs "github.com/cartrelay/cartrelay/shared/queue/sqs"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/store/dynamo"
	storeembedded "github.com/cartrelay/cartrelay/shared/store/embedded"
)

// Env is one runtime's set of ports and the handlers over them.
type Env struct {
	Store    store.Store
	Queue    queue.Queue
	Accounts *accounts.Repo
	App      *app.App
	Clock    clock.Clock
	Log      *slog.Logger
	// Sweep deletes expired items where the backend does not (the embedded store); nil in AWS,
	// where DynamoDB's TTL does it.
	Sweep func(context.Context) (int, error)
	close func() error
}

// Close releases the runtime's resources.
func (e *Env) Close() error {
	if e.close == nil {
		return nil
	}
	return e.close()
}

// Options tune a runtime.
type Options struct {
	Clock  clock.Clock
	Log    *slog.Logger
	Config app.Config
}

func (o *Options) defaults() {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// KeyFileName is the local master key inside a data directory. Losing it makes the stored
// secrets unreadable; they must then be put again.
const KeyFileName = "master.key"

// Embedded opens (creating if needed) the local runtime in dataDir: one SQLite file for the
// table and the queues, and a master key file for secrets.
func Embedded(ctx context.Context, dataDir string, opt Options) (*Env, error) {
	opt.defaults()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create the data directory %s: %w", dataDir, err)
	}
	db, err := sqlitedb.InDir(ctx, dataDir)
	if err != nil {
		return nil, err
	}
	st, err := storeembedded.New(ctx, db, opt.Clock)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open the embedded table in %s: %w", dataDir, err)
	}
	q, err := queueembedded.New(ctx, db, opt.Clock)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open the embedded queues in %s: %w", dataDir, err)
	}
	key, err := secrets.LoadOrCreateLocalKey(filepath.Join(dataDir, KeyFileName))
	if err != nil {
		db.Close()
		return nil, err
	}
	env, err := assemble(st, q, secrets.NewSealer(key, opt.Clock), opt)
	if err != nil {
		db.Close()
		return nil, err
	}
	env.Sweep = st.Sweep
	env.close = func() error { return closeDB(db) }
	return env, nil
}

func closeDB(db *sql.DB) error { return db.Close() }

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
	urls, err := queuesqs.URLsFromEnv(getenv)
	if err != nil {
		missing = append(missing, err.Error())
	}
	c.QueueURLs = urls
	if len(missing) > 0 {
		return c, fmt.Errorf("missing configuration: %s", strings.Join(missing, "; "))
	}
	return c, nil
}

// AWS builds the runtime over DynamoDB, SQS and KMS. Endpoints follow the SDK's standard
// settings (AWS_REGION, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB, ...), so the same code can
// run against local stand-ins. Nothing is called over the network here.
func AWS(ctx context.Context, c AWSConfig, opt Options) (*Env, error) {
	opt.defaults()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return AWSWith(cfg, c, opt)
}

// AWSWith is AWS with an explicit SDK configuration.
func AWSWith(cfg aws.Config, c AWSConfig, opt Options) (*Env, error) {
	opt.defaults()
	st := dynamo.New(dynamodb.NewFromConfig(cfg), c.Table, opt.Clock)
	q := queuesqs.New(awssqs.NewFromConfig(cfg), c.QueueURLs)
	wrapper, err := secrets.NewKMS(kms.NewFromConfig(cfg), c.KMSKeyID)
	if err != nil {
		return nil, err
	}
	return assemble(st, q, secrets.NewSealer(wrapper, opt.Clock), opt)
}

func assemble(st store.Store, q queue.Queue, sealer *secrets.Sealer, opt Options) (*Env, error) {
	repo := accounts.NewRepo(st, sealer, opt.Clock).WithCheck(CheckAccount)
	a, err := app.New(app.Deps{Store: st, Queue: q, Accounts: repo, Clock: opt.Clock, Log: opt.Log, Config: opt.Config})
	if err != nil {
		return nil, err
	}
	return &Env{Store: st, Queue: q, Accounts: repo, App: a, Clock: opt.Clock, Log: opt.Log}, nil
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
func Lambda(ctx context.Context, function string) (*Env, error) {
	log := JSONLogger(os.Stderr, os.Getenv("LOG_LEVEL")).With(slog.String("function", function))
	c, err := AWSConfigFromEnv(os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (the template sets these; was the function deployed without them?)", function, err)
	}
	cfgApp := app.Config{PublicBaseURL: os.Getenv("PUBLIC_BASE_URL")}
	return AWS(ctx, c, Options{Log: log, Config: cfgApp})
}

// Fatal logs err as JSON and exits non-zero: the one way an entry point fails at init.
func Fatal(function string, err error) {
	JSONLogger(os.Stderr, "").Error("init failed", slog.String("function", function), slog.Any("error", err))
	os.Exit(1)
}

// ErrUnknownDestination is returned for a DESTINATION that is not a destination queue.
var ErrUnknownDestination = errors.New("unknown destination")

// Destination builds the forwarder's destination by name, over this runtime's ports.
func (e *Env) Destination(name string) (deliver.Destination, error) {
	switch name {
	case queue.Ontraport:
		return ontraport.New(ontraport.Options{Store: e.Store, Clock: e.Clock, Log: e.Log}), nil
	case queue.Iterable:
		// Review links point at the connect function; PUBLIC_BASE_URL is the stack's public URL.
		d, err := iterable.New(iterable.Deps{Store: e.Store, Clock: e.Clock, Log: e.Log, PublicBaseURL: os.Getenv("PUBLIC_BASE_URL")})
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	return nil, fmt.Errorf("%w %q: set DESTINATION to ontraport or iterable", ErrUnknownDestination, name)
}

// CheckAccount rejects settings no delivery could use: each destination checks its own, and the
// source settings are checked here.
func CheckAccount(a accounts.Account) error {
	var errs []error
	if c := a.UltraCart.BaseCurrency; c != "" && !domain.ValidCurrency(c) {
		errs = append(errs, fmt.Errorf("ultracart.base_currency must be an ISO 4217 code such as \"USD\", got %q", c))
	}
	if err := ontraport.CheckSettings(a); err != nil {
		errs = append(errs, err)
	}
	if err := iterable.CheckSettings(a); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
