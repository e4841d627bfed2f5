package source

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/oauth"
	"github.com/cartrelay/cartrelay/shared/poll"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Ports are what a poll run reaches beyond its source's API. The runtime builds them once and
// hands the same ports to every source's run.
type Ports struct {
	Store store.Store
	Clock clock.Clock
	Log   *slog.Logger
	// Sleep replaces real waits (tests on a fake clock); nil sleeps.
	Sleep func(ctx context.Context, d time.Duration) error
	// Accounts opens an account's sealed credentials (an API key a source polls with).
	Accounts    Accounts
	Connections *connections.Repo
	// HTTP is the client for source APIs; nil uses the API client's default.
	HTTP *http.Client
	// APIBase is each source's API base URL by name; a missing one is the API's own.
	APIBase map[domain.Source]string
	// Refresh renews an OAuth connection's access token, by source name.
	Refresh map[domain.Source]oauth.RefreshFunc
	// ConnectAgain is what a merchant is told to do once a source refused its connection.
	ConnectAgain string
	// Tuning is each poller's options by source name (its poll package's Options); a missing
	// one takes the poller's defaults.
	Tuning map[domain.Source]any
	// Sink puts a page of polled records on the ingest queue as source events of one delivery,
	// the way a webhook delivery goes there.
	Sink func(ctx context.Context, account string, src domain.Source, event, delivery string, records []json.RawMessage) error
}

// Job is one poll job: one stream of one account.
type Job struct {
	Account, Stream string
	// Since, when set, is where a stream with no cursor yet starts (a backfill's start date).
	Since time.Time
}

// Result is where a poll run got, as the poll consumer and the backfill read it.
type Result struct {
	Outcome poll.Outcome
	// Done and Estimated are the stream's progress (Estimated is 0 when unknown).
	Done, Estimated int64
	// Status is why the stream stopped, LastError what went wrong last.
	Status, LastError string
	NextRunAt         time.Time
	// Detail is the poller's own result (ucpoll.Result, tcpoll.Result).
	Detail any
}
