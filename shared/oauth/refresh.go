package oauth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/lease"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

// RefreshFunc trades c's refresh token for a new token pair at the provider.
type RefreshFunc func(ctx context.Context, c connections.Connection) (ultracartapi.Token, error)

// UltraCartRefresh is the RefreshFunc for UltraCart with the application's credentials; a
// connection's own BaseURL (a sandbox or a fake) takes precedence over o.BaseURL.
func UltraCartRefresh(o ultracartapi.OAuth) RefreshFunc {
	return func(ctx context.Context, c connections.Connection) (ultracartapi.Token, error) {
		if c.BaseURL != "" {
			o.BaseURL = c.BaseURL
		}
		return o.Refresh(ctx, c.RefreshToken)
	}
}

// ErrNoRefreshToken: the access token is expiring and there is nothing to renew it with; the
// merchant must connect again.
var ErrNoRefreshToken = errors.New("oauth: the access token is expiring and the connection has no refresh token")

// ErrBusy: another process held the refresh for longer than this caller would wait.
var ErrBusy = errors.New("oauth: another process is still refreshing the token")

// Rotator hands out a connection whose access token is good for at least Skew, refreshing it
// first when needed. Refresh tokens rotate (a used one stops working), so two processes must
// not both refresh: the first takes a short lease item, refreshes, and stores the new pair
// with the connection's version-guarded Put; the others wait and re-read the winner's tokens.
type Rotator struct {
	Connections *connections.Repo
	Store       store.Store
	Clock       clock.Clock
	Refresh     RefreshFunc
	// Skew is how long before expiry a token is renewed (5 minutes when zero), so a token is
	// not handed out just before it dies mid-run.
	Skew time.Duration
	// Wait is the pause between re-reads while another process refreshes (250 ms when zero).
	Wait time.Duration
	// Attempts bounds the re-reads (40 when zero: ten seconds at the default Wait).
	Attempts int
	// Sleep replaces real waits in tests; nil sleeps on the machine clock.
	Sleep func(ctx context.Context, d time.Duration) error
}

// leaseTTL outlives one token request (the OAuth client times out after 30 s), so a lease is
// only ever taken over from a process that died.
const leaseTTL = time.Minute

// Token returns account's connection to provider with a usable access token.
func (r *Rotator) Token(ctx context.Context, account, provider string) (connections.Connection, error) {
	return r.get(ctx, account, provider, r.expiring)
}

// Renew returns account's connection with an access token other than rejected, the one the
// provider just answered 401 to: it refreshes unless another process already did. This is the
// one refresh a 401 gets; if the provider refuses the new token too, the connection is broken.
func (r *Rotator) Renew(ctx context.Context, account, provider, rejected string) (connections.Connection, error) {
	return r.get(ctx, account, provider, func(c connections.Connection) bool {
		return c.AccessToken == rejected || r.expiring(c)
	})
}

// get returns the connection once stale reports false for it, refreshing it under the lease
// while it reports true.
func (r *Rotator) get(ctx context.Context, account, provider string, stale func(connections.Connection) bool) (connections.Connection, error) {
	attempts := r.Attempts
	if attempts <= 0 {
		attempts = 40
	}
	for range attempts {
		c, err := r.Connections.Get(ctx, account, provider)
		if err != nil {
			return c, err
		}
		if !stale(c) {
			return c, nil
		}
		if c.RefreshToken == "" {
			return c, fmt.Errorf("%s/%s: %w", account, provider, ErrNoRefreshToken)
		}
		l := lease.New(r.Store, r.clock(), leaseKey(account, provider), leaseTTL, "token refresh")
		if err := l.Acquire(ctx); errors.Is(err, lease.ErrBusy) {
			if err := r.sleep(ctx); err != nil {
				return c, err
			}
			continue
		} else if err != nil {
			return c, fmt.Errorf("take the token refresh lease of %s/%s: %w", account, provider, err)
		}
		// Best effort: an unreleased lease only delays the next refresh until it expires.
		defer l.Release(ctx)
		// The lease holder before this one may have rotated between the read above and the
		// lease; its token counts.
		if c, err = r.Connections.Get(ctx, account, provider); err != nil || !stale(c) {
			return c, err
		}
		return r.rotate(ctx, c)
	}
	return connections.Connection{}, fmt.Errorf("%s/%s: %w", account, provider, ErrBusy)
}

func (r *Rotator) expiring(c connections.Connection) bool {
	if c.Kind != connections.KindOAuth || c.ExpiresAt.IsZero() {
		return false
	}
	skew := r.Skew
	if skew <= 0 {
		skew = 5 * time.Minute
	}
	return !r.now().Add(skew).Before(c.ExpiresAt)
}

// rotate refreshes c and stores the new pair. If the provider refuses the refresh token or the
// Put loses, someone rotated meanwhile without the lease (one whose lease expired); their
// stored token is used when it is fresh.
func (r *Rotator) rotate(ctx context.Context, c connections.Connection) (connections.Connection, error) {
	tok, err := r.Refresh(ctx, c)
	if err != nil {
		if other, ok := r.rotatedMeanwhile(ctx, c); ok {
			return other, nil
		}
		return c, fmt.Errorf("refresh %s/%s: %w", c.Account, c.Provider, err)
	}
	c.AccessToken = tok.AccessToken
	if tok.RefreshToken != "" {
		c.RefreshToken = tok.RefreshToken
	}
	c.ExpiresAt = time.Time{}
	if tok.ExpiresIn > 0 {
		c.ExpiresAt = r.now().Add(tok.ExpiresIn)
	}
	stored, err := r.Connections.Put(ctx, c)
	if errors.Is(err, connections.ErrConflict) {
		if other, ok := r.rotatedMeanwhile(ctx, c); ok {
			return other, nil
		}
	}
	if err != nil {
		return c, fmt.Errorf("store refreshed tokens of %s/%s: %w", c.Account, c.Provider, err)
	}
	return stored, nil
}

func (r *Rotator) rotatedMeanwhile(ctx context.Context, c connections.Connection) (connections.Connection, bool) {
	other, err := r.Connections.Get(ctx, c.Account, c.Provider)
	if err != nil || other.Version() == c.Version() || r.expiring(other) {
		return connections.Connection{}, false
	}
	return other, true
}

func leaseKey(account, provider string) store.Key {
	return store.Key{PK: "LEASE#oauth-refresh#" + provider + "#" + account, SK: "-"}
}

func (r *Rotator) clock() clock.Clock {
	if r.Clock == nil {
		return clock.System{}
	}
	return r.Clock
}

func (r *Rotator) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
}

func (r *Rotator) sleep(ctx context.Context) error {
	d := r.Wait
	if d <= 0 {
		d = 250 * time.Millisecond
	}
	if r.Sleep != nil {
		return r.Sleep(ctx, d)
	}
	return clock.Sleep(ctx, d)
}
