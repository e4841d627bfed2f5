// Package operator builds the runtimes the operator CLI works on: the embedded one (SQLite in a
// data directory, for `cartrelay serve`) and a deployed stack (DynamoDB, SQS and KMS through the
// SDK's full configuration chain). It is kept apart from package wiring so that the Lambda
// bootstraps link neither SQLite nor the SDK's profile and SSO providers.
package operator

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/opcount"
	"github.com/cartrelay/cartrelay/shared/queue"
	queueembedded "github.com/cartrelay/cartrelay/shared/queue/embedded"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
	storeembedded "github.com/cartrelay/cartrelay/shared/store/embedded"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// consumed are the queues serve's pollers receive from: every queue of the layout, the
// registered destinations' included (their dead-letter queues are only read by commands, which
// delete what they receive at once).
func consumed(t queue.Topology) []string {
	names := make([]string, len(t))
	for i, s := range t {
		names[i] = s.Name
	}
	return names
}

// KeyFileName is the local master key inside a data directory. Losing it makes the stored
// secrets unreadable; they must then be put again.
const KeyFileName = "master.key"

// Embedded opens (creating if needed) the local runtime in dataDir: one SQLite file for the
// table and the queues, and a master key file for secrets.
func Embedded(ctx context.Context, dataDir string, opt wiring.Options) (*wiring.Env, error) {
	opt = opt.WithDefaults()
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
	topo := destinations.Queues()
	q, err := queueembedded.New(ctx, db, opt.Clock, topo)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open the embedded queues in %s: %w", dataDir, err)
	}
	key, err := secrets.LoadOrCreateLocalKey(filepath.Join(dataDir, KeyFileName))
	if err != nil {
		db.Close()
		return nil, err
	}
	sealer, err := wiring.NewSealer(key, opt)
	if err != nil {
		db.Close()
		return nil, err
	}
	env, err := wiring.New(st, q, sealer, opt)
	if err != nil {
		db.Close()
		return nil, err
	}
	counts := &opcount.Counts{}
	st.CountInto(counts)
	q.CountInto(counts)
	env.Counts = func() map[string]int64 {
		m := counts.Snapshot()
		if m == nil {
			m = map[string]int64{}
		}
		ws := db.WriteStats()
		m["db.writes"], m["db.commits"], m["db.wal_restarts"] = ws.Writes, ws.Commits, ws.WALRestarts
		return m
	}
	env.Sweep = st.Sweep
	env.TakeOver = func(ctx context.Context) (int, func(), error) {
		unlock, err := lockServe(dataDir)
		if err != nil || !canLock {
			return 0, unlock, err
		}
		n, err := q.ReleaseInFlight(ctx, consumed(topo))
		if err != nil {
			unlock()
			return 0, nil, err
		}
		return n, unlock, nil
	}
	env.Closer = db.Close
	return env, nil
}

// AWS builds the runtime of a deployed stack for the operator CLI, with the SDK's full
// configuration chain (profiles, SSO, ...). Endpoints follow the SDK's standard
// settings (AWS_REGION, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB, ...), so the same code can
// run against local stand-ins. Nothing is called over the network here.
func AWS(ctx context.Context, c wiring.AWSConfig, opt wiring.Options) (*wiring.Env, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return wiring.AWS(cfg, c, opt)
}
