// Package lease is a mutual-exclusion lease kept in the table, for work that must not run twice
// at once across processes and Lambdas (a poller walking a source API that refuses concurrent
// requests, say). The lease is one item with an expiry; whoever wrote its live version holds
// it, and every renewal is a write conditional on that version, so a holder that lost the
// lease (it expired, and another took it) finds out at its next write instead of carrying on.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/store"
)

// ErrBusy is returned when another process holds the lease.
var ErrBusy = errors.New("another process holds the lease")

// ErrLost is returned when the lease expired or was taken while this process worked; the
// holder must stop at once, because another may already have started.
var ErrLost = errors.New("the lease was lost")

// Lease is one process's hold, or attempt to hold, on the item at a key.
type Lease struct {
	st    store.Store
	clk   clock.Clock
	key   store.Key
	ttl   time.Duration
	owner string
	// work names what the holder does (a stream), for whoever finds the lease taken.
	work    string
	version int64
}

type doc struct {
	Owner string    `json:"owner"`
	Work  string    `json:"work,omitempty"`
	Since time.Time `json:"since"`
}

// New returns an unheld lease on key that lasts ttl after each write.
func New(st store.Store, clk clock.Clock, key store.Key, ttl time.Duration, work string) *Lease {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Lease{st: st, clk: clk, key: key, ttl: ttl, owner: hex.EncodeToString(b[:]), work: work}
}

func (l *Lease) item(version int64) store.Item {
	d, _ := json.Marshal(doc{Owner: l.owner, Work: l.work, Since: l.clk.Now()})
	return store.Item{PK: l.key.PK, SK: l.key.SK, Version: version, Data: d, ExpiresAt: l.clk.Now().Add(l.ttl)}
}

// Acquire takes the lease if no live lease exists; ErrBusy (wrapped with who holds it) if one
// does.
func (l *Lease) Acquire(ctx context.Context) error {
	cur, err := l.st.Get(ctx, l.key.PK, l.key.SK)
	switch {
	case err == nil:
		var d doc
		_ = json.Unmarshal(cur.Data, &d)
		return fmt.Errorf("%w (%s, until %s)", ErrBusy, d.Work, cur.ExpiresAt.Format(time.RFC3339))
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("read lease: %w", err)
	}
	// An expired lease counts as absent for NotExists. Each holder starts from a random
	// version, so a late writer still holding an expired lease's version never matches the
	// new holder's.
	var b [8]byte
	_, _ = rand.Read(b[:])
	v := int64(binary.BigEndian.Uint64(b[:])>>2) + 1
	if err := l.st.Write(ctx, store.PutItem(l.item(v), store.NotExists)); err != nil {
		if errors.Is(err, store.ErrConditionFailed) {
			return ErrBusy
		}
		return fmt.Errorf("take lease: %w", err)
	}
	l.version = v
	return nil
}

// RenewWrite extends the lease as part of a transaction; call Renewed once it committed. A
// transaction that fails on it means the lease is lost.
func (l *Lease) RenewWrite() store.Write {
	return store.PutIfVersion(l.item(l.version+1), l.version)
}

// Renewed records that a transaction with RenewWrite committed.
func (l *Lease) Renewed() { l.version++ }

// Renew extends the lease; ErrLost if it is no longer ours.
func (l *Lease) Renew(ctx context.Context) error {
	if err := l.st.Write(ctx, l.RenewWrite()); err != nil {
		if errors.Is(err, store.ErrConditionFailed) {
			return ErrLost
		}
		return fmt.Errorf("renew lease: %w", err)
	}
	l.Renewed()
	return nil
}

// Release gives the lease up if it is still ours. It runs even when ctx has ended, so the
// next holder need not wait for the expiry.
func (l *Lease) Release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = l.st.Write(ctx, store.Write{Op: store.OpDelete, Key: l.key, Cond: store.VersionEquals, Expect: l.version})
}

// Commit writes w together with a renewal of the lease in one transaction, so a holder that
// lost the lease can never make the write. It returns ErrLost when the lease failed, and w's
// own failure (store.ErrConditionFailed for its condition) otherwise.
func (l *Lease) Commit(ctx context.Context, w store.Write) error {
	if err := l.st.Transact(ctx, []store.Write{w, l.RenewWrite()}); err != nil {
		var te *store.TransactionError
		if errors.As(err, &te) {
			for _, f := range te.Failed {
				if f.Index == 1 {
					return ErrLost
				}
			}
		}
		return err
	}
	l.Renewed()
	return nil
}

// Sleep waits d with sleep in steps of a third of the lease's lifetime, renewing the lease
// after each, so a long wait (for a rate budget, say) never lets it lapse.
func (l *Lease) Sleep(ctx context.Context, d time.Duration, sleep func(context.Context, time.Duration) error) error {
	step := l.ttl / 3
	for d > 0 {
		s := min(d, step)
		if err := sleep(ctx, s); err != nil {
			return err
		}
		if err := l.Renew(ctx); err != nil {
			return err
		}
		d -= s
	}
	return nil
}

// Held reports whether a live lease exists at key: whoever holds it carries on by itself, so
// a scheduler need not start the work again.
func Held(ctx context.Context, st store.Store, key store.Key) (bool, error) {
	_, err := st.Get(ctx, key.PK, key.SK)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("read lease %s/%s: %w", key.PK, key.SK, err)
}
