// Package connections stores the credentials cartrelay holds for a merchant's source accounts
// (an UltraCart OAuth token pair or simple key), one record per account and provider. Every
// credential is sealed with the secrets.Sealer before it reaches the table, bound to its
// account, provider and field, so a sealed token copied elsewhere does not open.
package connections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Providers.
const UltraCart = "ultracart"

// Kinds of credential.
const (
	KindOAuth     = "oauth"
	KindSimpleKey = "simple_key"
)

// Connection is one account's link to one provider, with its credentials in plain text (in
// memory only).
type Connection struct {
	Account  string
	Provider string
	Kind     string
	// BaseURL overrides the provider's API host (a sandbox, or a fake in tests).
	BaseURL      string
	AccessToken  string
	RefreshToken string
	// ExpiresAt is when AccessToken expires; zero when unknown or not applicable.
	ExpiresAt time.Time
	SimpleKey string

	ConnectedAt time.Time
	UpdatedAt   time.Time

	// Status is empty while the connection works, or StatusBroken / StatusDisabled once the
	// provider refused it; Problem says why, in words for the merchant, since ProblemAt.
	Status    string
	Problem   string
	ProblemAt time.Time

	version int64
	// sealed holds, for a connection read with Peek, the stored credentials by field name, so
	// that Put keeps them without ever opening them.
	sealed map[string]string
}

// HasCredentials reports whether a token or key is stored or set, opened or not.
func (c Connection) HasCredentials() bool {
	return c.AccessToken != "" || c.RefreshToken != "" || c.SimpleKey != "" || len(c.sealed) > 0
}

// ClearCredentials forgets every credential, stored ones included: Put then stores only what
// the caller sets afterwards (a new token pair replacing a simple key, or the reverse).
func (c *Connection) ClearCredentials() {
	c.AccessToken, c.RefreshToken, c.SimpleKey, c.ExpiresAt = "", "", "", time.Time{}
	c.sealed = nil
}

// Statuses of a connection that stopped working; only connecting again clears them.
const (
	// StatusBroken: the provider refuses the credentials (a refused refresh token, or a 401
	// that a renewed token did not cure).
	StatusBroken = "broken"
	// StatusDisabled: UltraCart disabled the application for the store (HTTP 410).
	StatusDisabled = "disabled"
)

// Version is the stored version this connection was read at (0 if never stored).
func (c Connection) Version() int64 { return c.version }

// ErrNotFound is returned when an account has no connection to the provider.
var ErrNotFound = errors.New("connections: no such connection")

// ErrConflict is returned when the record changed since it was read.
var ErrConflict = errors.New("connections: the connection changed meanwhile")

// Ref names a connection without opening its credentials.
type Ref struct {
	Account  string
	Provider string
}

// Repo reads and writes connection records.
type Repo struct {
	st     store.Store
	sealer *secrets.Sealer
	clk    clock.Clock
}

// NewRepo returns a repository over st that seals with sealer.
func NewRepo(st store.Store, sealer *secrets.Sealer, clk clock.Clock) *Repo {
	if clk == nil {
		clk = clock.System{}
	}
	return &Repo{st: st, sealer: sealer, clk: clk}
}

type doc struct {
	Provider     string    `json:"provider"`
	Kind         string    `json:"kind"`
	BaseURL      string    `json:"base_url,omitempty"`
	AccessToken  string    `json:"access_token,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
	SimpleKey    string    `json:"simple_key,omitempty"`
	ConnectedAt  time.Time `json:"connected_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	Status       string    `json:"status,omitempty"`
	Problem      string    `json:"problem,omitempty"`
	ProblemAt    time.Time `json:"problem_at,omitzero"`
}

func pk(account string) string   { return "A#" + account }
func sk(provider string) string  { return "CONN#" + provider }
func byProvider(p string) string { return "CONN#" + p }

// Secret is the name a credential is sealed under ("connection.ultracart.refresh_token"), as
// the KMS encryption context and the functions' IAM policies name it.
func Secret(provider, field string) string { return "connection." + provider + "." + field }

// The credential fields of a connection.
const (
	FieldAccessToken  = "access_token"
	FieldRefreshToken = "refresh_token"
	FieldSimpleKey    = "simple_key"
)

// Fields lists the credential fields, in the order they are stored.
func Fields() []string { return []string{FieldAccessToken, FieldRefreshToken, FieldSimpleKey} }

func purpose(account, provider, field string) secrets.Purpose {
	return secrets.Purpose{Account: account, Secret: Secret(provider, field)}
}

// Put stores c, sealing the credentials it holds in plaintext; a credential of a connection
// read with Peek that the caller did not set is kept as stored. A new connection must not exist
// yet; an existing one must still be at the version it was read at.
func (r *Repo) Put(ctx context.Context, c Connection) (Connection, error) {
	if c.Account == "" || c.Provider == "" {
		return c, errors.New("connections: account and provider are required")
	}
	now := r.clk.Now()
	if c.ConnectedAt.IsZero() {
		c.ConnectedAt = now
	}
	c.UpdatedAt = now
	d := doc{Provider: c.Provider, Kind: c.Kind, BaseURL: c.BaseURL, ExpiresAt: c.ExpiresAt, ConnectedAt: c.ConnectedAt, UpdatedAt: now,
		Status: c.Status, Problem: c.Problem, ProblemAt: c.ProblemAt}
	for _, f := range []struct {
		name  string
		plain string
		out   *string
	}{
		{FieldAccessToken, c.AccessToken, &d.AccessToken},
		{FieldRefreshToken, c.RefreshToken, &d.RefreshToken},
		{FieldSimpleKey, c.SimpleKey, &d.SimpleKey},
	} {
		if f.plain == "" {
			*f.out = c.sealed[f.name]
			continue
		}
		s, err := r.sealer.Seal(ctx, []byte(f.plain), purpose(c.Account, c.Provider, f.name))
		if err != nil {
			return c, fmt.Errorf("seal %s of %s/%s: %w", f.name, c.Account, c.Provider, err)
		}
		*f.out = s
	}
	data, err := json.Marshal(d)
	if err != nil {
		return c, err
	}
	it := store.Item{PK: pk(c.Account), SK: sk(c.Provider), GSI1PK: byProvider(c.Provider), GSI1SK: c.Account,
		Version: c.version + 1, Data: data}
	w := store.PutIfVersion(it, c.version)
	if c.version == 0 {
		w = store.PutItem(it, store.NotExists)
	}
	if err := r.st.Write(ctx, w); err != nil {
		if errors.Is(err, store.ErrConditionFailed) {
			return c, fmt.Errorf("%w: %s/%s", ErrConflict, c.Account, c.Provider)
		}
		return c, fmt.Errorf("store connection %s/%s: %w", c.Account, c.Provider, err)
	}
	c.version++
	return c, nil
}

// Get reads a connection and opens its credentials.
func (r *Repo) Get(ctx context.Context, account, provider string) (Connection, error) {
	return r.read(ctx, account, provider, true)
}

// Peek reads a connection without opening its credentials: its status, kind and times, for
// pages and commands that show them and for updates that leave the credentials alone. A
// process that only peeks needs no permission to decrypt tokens.
func (r *Repo) Peek(ctx context.Context, account, provider string) (Connection, error) {
	return r.read(ctx, account, provider, false)
}

func (r *Repo) read(ctx context.Context, account, provider string, open bool) (Connection, error) {
	it, err := r.st.Get(ctx, pk(account), sk(provider))
	if errors.Is(err, store.ErrNotFound) {
		return Connection{}, fmt.Errorf("%w: %s/%s", ErrNotFound, account, provider)
	}
	if err != nil {
		return Connection{}, fmt.Errorf("read connection %s/%s: %w", account, provider, err)
	}
	var d doc
	if err := json.Unmarshal(it.Data, &d); err != nil {
		return Connection{}, fmt.Errorf("connection %s/%s is not readable: %w", account, provider, err)
	}
	c := Connection{Account: account, Provider: provider, Kind: d.Kind, BaseURL: d.BaseURL, ExpiresAt: d.ExpiresAt,
		ConnectedAt: d.ConnectedAt, UpdatedAt: d.UpdatedAt, Status: d.Status, Problem: d.Problem, ProblemAt: d.ProblemAt,
		version: it.Version}
	for _, f := range []struct {
		name   string
		sealed string
		out    *string
	}{
		{FieldAccessToken, d.AccessToken, &c.AccessToken},
		{FieldRefreshToken, d.RefreshToken, &c.RefreshToken},
		{FieldSimpleKey, d.SimpleKey, &c.SimpleKey},
	} {
		if f.sealed == "" {
			continue
		}
		if !open {
			if c.sealed == nil {
				c.sealed = map[string]string{}
			}
			c.sealed[f.name] = f.sealed
			continue
		}
		plain, err := r.sealer.Open(ctx, f.sealed, purpose(account, provider, f.name))
		if err != nil {
			return Connection{}, fmt.Errorf("open %s of %s/%s: %w", f.name, account, provider, err)
		}
		*f.out = string(plain)
	}
	return c, nil
}

// MarkProblem records that account's connection to provider stopped working (status is
// StatusBroken or StatusDisabled) and why, keeping its credentials as stored (unopened); it
// re-reads and tries again when a token rotation stored the record meanwhile. The first
// ProblemAt of a run of the same status is kept, so the merchant sees since when.
func (r *Repo) MarkProblem(ctx context.Context, account, provider, status, problem string) error {
	var err error
	for range 5 {
		var c Connection
		if c, err = r.Peek(ctx, account, provider); err != nil {
			return err
		}
		if c.Status == status && c.Problem == problem {
			return nil
		}
		if c.Status != status || c.ProblemAt.IsZero() {
			c.ProblemAt = r.clk.Now()
		}
		c.Status, c.Problem = status, problem
		if _, err = r.Put(ctx, c); !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return err
}

// List names every account connected to provider, without opening any credential.
func (r *Repo) List(ctx context.Context, provider string) ([]Ref, error) {
	items, err := store.QueryAll(ctx, r.st, store.Query{Index: store.GSI1, PK: byProvider(provider)})
	if err != nil {
		return nil, fmt.Errorf("list %s connections: %w", provider, err)
	}
	out := make([]Ref, 0, len(items))
	for _, it := range items {
		out = append(out, Ref{Account: it.GSI1SK, Provider: provider})
	}
	return out, nil
}

// Delete removes a connection (disconnect).
func (r *Repo) Delete(ctx context.Context, account, provider string) error {
	if err := r.st.Write(ctx, store.DeleteKey(store.Key{PK: pk(account), SK: sk(provider)}, store.Always)); err != nil {
		return fmt.Errorf("delete connection %s/%s: %w", account, provider, err)
	}
	return nil
}

// Reseal seals again, in the current format, the credentials of account's connection to
// provider that an earlier release sealed (secrets.Current), and returns their field names.
func (r *Repo) Reseal(ctx context.Context, account, provider string) ([]string, error) {
	for range 5 {
		c, err := r.Peek(ctx, account, provider)
		if err != nil {
			return nil, err
		}
		var old []string
		for _, f := range Fields() {
			if s, ok := c.sealed[f]; ok && !secrets.Current(s) {
				old = append(old, f)
			}
		}
		if len(old) == 0 {
			return nil, nil
		}
		if c, err = r.Get(ctx, account, provider); err != nil {
			return nil, err
		}
		if _, err = r.Put(ctx, c); errors.Is(err, ErrConflict) {
			continue
		}
		return old, err
	}
	return nil, fmt.Errorf("%w: %s/%s", ErrConflict, account, provider)
}
