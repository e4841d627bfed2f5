package poller

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

// ErrBusy is returned when another process holds the connection's lease.
var ErrBusy = errors.New("poller: another poller holds the connection's lease")

// ErrLeaseLost is returned when the lease expired or was taken while this process worked; it
// stops at once, because another poller may already be requesting.
var ErrLeaseLost = errors.New("poller: the lease was lost")

// lease is a conditional item with an expiry: whoever wrote the live version holds it.
type lease struct {
	st      store.Store
	clk     clock.Clock
	key     store.Key
	ttl     time.Duration
	owner   string
	stream  string
	version int64
}

type leaseDoc struct {
	Owner  string    `json:"owner"`
	Stream string    `json:"stream"`
	Since  time.Time `json:"since"`
}

func randomVersion() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return int64(binary.BigEndian.Uint64(b[:])>>2) + 1
}

func newOwner() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (l *lease) item(version int64) store.Item {
	doc, _ := json.Marshal(leaseDoc{Owner: l.owner, Stream: l.stream, Since: l.clk.Now()})
	return store.Item{PK: l.key.PK, SK: l.key.SK, Version: version, Data: doc, ExpiresAt: l.clk.Now().Add(l.ttl)}
}

// acquire takes the lease if no live lease exists.
func (l *lease) acquire(ctx context.Context) error {
	cur, err := l.st.Get(ctx, l.key.PK, l.key.SK)
	switch {
	case err == nil:
		var d leaseDoc
		_ = json.Unmarshal(cur.Data, &d)
		return fmt.Errorf("%w (stream %s, until %s)", ErrBusy, d.Stream, cur.ExpiresAt.Format(time.RFC3339))
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("read lease: %w", err)
	}
	// An expired lease counts as absent for NotExists. Each holder starts from a random
	// version, so a late writer still holding an expired lease's version never matches the
	// new holder's.
	v := randomVersion()
	if err := l.st.Write(ctx, store.PutItem(l.item(v), store.NotExists)); err != nil {
		if errors.Is(err, store.ErrConditionFailed) {
			return ErrBusy
		}
		return fmt.Errorf("take lease: %w", err)
	}
	l.version = v
	return nil
}

// renewWrite extends the lease as part of a transaction (or alone).
func (l *lease) renewWrite() store.Write {
	return store.PutIfVersion(l.item(l.version+1), l.version)
}

// renew extends the lease; ErrLeaseLost if it is no longer ours.
func (l *lease) renew(ctx context.Context) error {
	if err := l.st.Write(ctx, l.renewWrite()); err != nil {
		if errors.Is(err, store.ErrConditionFailed) {
			return ErrLeaseLost
		}
		return fmt.Errorf("renew lease: %w", err)
	}
	l.version++
	return nil
}

// release gives the lease up if it is still ours. It runs even when ctx has ended, so the
// next poller need not wait for the expiry.
func (l *lease) release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = l.st.Write(ctx, store.Write{Op: store.OpDelete, Key: l.key, Cond: store.VersionEquals, Expect: l.version})
}
