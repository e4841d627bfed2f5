// Package app holds cartrelay's six handlers (webhook, ingest, forward, schedule, poll,
// connect) as plain functions over ports. The Lambda entry points in functions/ and the local
// runtime (`cartrelay serve`) call the very same functions, and tests call them in process with
// real event JSON.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/erasure"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/outbound"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/redact"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/rollup"
	"github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

// DefaultMaxBodyBytes caps a webhook body. Lambda refuses a synchronous event over 6 MB, and
// API Gateway base64-encodes a binary body (4/3 larger) inside that event, so a cap of 4 MiB is
// what the handler can still see and answer with a clear 413. When cartrelay registers its
// UltraCart webhook it sets maximum_size below this, so UltraCart's deliveries are never refused.
const DefaultMaxBodyBytes = 4 << 20

// Config holds the settings that are not per account.
type Config struct {
	// MaxBodyBytes caps a webhook body (413 above it).
	MaxBodyBytes int64
	// PublicBaseURL is where the HTTP API is reachable, for links in pages and messages, the
	// OAuth redirect URI and the webhook URL registered with UltraCart.
	PublicBaseURL string

	// UltraCartClientID and UltraCartClientSecret are the Developer Application merchants
	// connect their stores to; the OAuth connect flow is offered only when the id and
	// PublicBaseURL are set.
	UltraCartClientID     string
	UltraCartClientSecret string
	// UltraCartBaseURL overrides UltraCart's host (a sandbox, or a fake in tests).
	UltraCartBaseURL string
	// UltraCartClientAuth is how the secret reaches the token endpoint: basic (the default) or
	// post. UltraCart does not document which it expects.
	UltraCartClientAuth ultracartapi.ClientAuth

	// ConsoleSessionKey signs the merchant console's session cookies (CONSOLE_SESSION_KEY, at
	// least 32 bytes); shorter or empty keeps the console off, with a page saying so.
	ConsoleSessionKey string
	// ThriveCartBaseURL overrides ThriveCart's host for the console's API key check
	// (THRIVECART_BASE_URL; a fake in tests).
	ThriveCartBaseURL string

	// ConnectRequiresInvite makes /connect bind a new store only with an operator's invite
	// (CONNECT_REQUIRES_INVITE; on by default in AWS, off for serve). Bound stores reconnect
	// without one.
	ConnectRequiresInvite bool
	// StartPerClientPerMinute and StartTotalPerMinute throttle the starts of UltraCart flows
	// (connect and console sign-in); zero takes the defaults of access.go.
	StartPerClientPerMinute int
	StartTotalPerMinute     int
}

// Deps are the ports every handler runs over.
type Deps struct {
	Store    store.Store
	Queue    queue.Queue
	Accounts *accounts.Repo
	// Keys are the keys cartrelay makes for each account (review links, tracking); nil
	// means none, so no review link or identity token verifies.
	Keys   accountkeys.Reader
	Clock  clock.Clock
	Log    *slog.Logger
	Config Config
	// Phone normalizes phone numbers during ingest (shared/phone.CachedE164). It is injected so that
	// only the processes that ingest link the phone metadata; nil leaves phones out.
	Phone domain.PhoneFunc
	// Polling lets the schedule and poll handlers walk source APIs; nil leaves poll jobs
	// unprocessed (acknowledged and logged).
	Polling *Polling
	// Jitter draws the random part of retry delays; nil uses the shared source. Tests seed it to
	// repeat a run.
	Jitter *rand.Rand
	// Known is the secrets this process holds (shared/redact); pages that show an error a
	// vendor returned scrub it first. The store and the log are scrubbed by the runtime. Nil
	// scrubs nothing.
	Known *redact.Set
	// Sleep replaces the schedule's real waits (a report rebuild waiting for ingests in flight);
	// nil sleeps. Tests on a fake clock pass one that advances it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// App is the set of handlers over one set of ports.
type App struct {
	d       Deps
	tracker *iterable.Tracker
	// eraser erases contacts (shared/erasure); it starts erasures only where the process has
	// account keys to make pseudonyms with.
	eraser *erasure.Eraser
	// jitter is d.Jitter, which is not safe for concurrent use on its own.
	jitterMu sync.Mutex
	jitter   *rand.Rand
	// ports are what source poll runs reach (nil when the runtime does not poll).
	ports *source.Ports
	// zones keeps the reports' calendars, which ingest needs for every event.
	zones rollup.Zones
}

// New checks deps and returns the handlers.
func New(d Deps) (*App, error) {
	var missing []string
	if d.Store == nil {
		missing = append(missing, "store")
	}
	if d.Queue == nil {
		missing = append(missing, "queue")
	}
	if d.Accounts == nil {
		missing = append(missing, "accounts")
	}

	if len(missing) > 0 {
		return nil, fmt.Errorf("app: missing dependencies: %v", missing)
	}
	// Tokens, the client secret and API keys are sent to these hosts: refuse plain http at
	// start rather than on the first request.
	for _, u := range []struct{ name, value string }{
		{"ULTRACART_BASE_URL", d.Config.UltraCartBaseURL},
		{"THRIVECART_BASE_URL", d.Config.ThriveCartBaseURL},
	} {
		if u.value == "" {
			continue
		}
		if err := outbound.CheckBaseURL(u.value); err != nil {
			return nil, fmt.Errorf("%s %w", u.name, err)
		}
	}
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Keys == nil {
		d.Keys = accountkeys.None{}
	}
	if d.Config.MaxBodyBytes <= 0 {
		d.Config.MaxBodyBytes = DefaultMaxBodyBytes
	}
	a := &App{d: d, jitter: d.Jitter}
	tracker, err := iterable.NewTracker(iterable.TrackerDeps{Store: d.Store, Queue: d.Queue, Accounts: d.Accounts, Keys: d.Keys, Clock: d.Clock, Log: d.Log,
		Keep: func(ctx context.Context, acct accounts.Account, v iterable.KeptView) error {
			return reports.RecordPageView(ctx, d.Store, acct, reports.PageView(v), d.Clock.Now())
		},
		Cart: a.storefrontCart})
	if err != nil {
		return nil, err
	}
	ed := erasure.Deps{Store: d.Store, Queue: d.Queue, Clock: d.Clock, Log: d.Log, Quarantine: quarantineMessages{st: d.Store}}
	if k, ok := d.Keys.(erasure.Keys); ok {
		ed.Keys = k
	}
	eraser, err := erasure.New(ed)
	if err != nil {
		return nil, err
	}
	a.tracker, a.eraser = tracker, eraser
	a.ports = a.pollPorts()
	return a, nil
}

// Eraser is what erases contacts (`cartrelay contacts erase`, the console).
func (a *App) Eraser() *erasure.Eraser { return a.eraser }
