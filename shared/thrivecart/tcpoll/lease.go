package tcpoll

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

// ErrBusy is returned when another process holds the account's lease.
var ErrBusy = errors.New("tcpoll: another poller holds the account's lease")

// ErrLeaseLost is returned when the lease expired or was taken while this process worked; it
// stops at once, because another poller may already be requesting.
var ErrLeaseLost = errors.New("tcpoll: the lease was lost")

// lease is an item with an expiry: whoever wrote its live version holds it.
type lease struct {
	st      store.Store
	clk     clock.Clock
	key     store.Key
	ttl     time.Duration
	owner   string
	version int64
}

func newLease(st store.Store, clk clock.Clock, account string, ttl time.Duration) *lease {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &lease{st: st, clk: clk, key: store.Key{PK: AccountPK(account), SK: LeaseSK}, ttl: ttl, owner: hex.EncodeToString(b[:])}
}

func (l *lease) item(version int64) store.Item {
	doc, _ := json.Marshal(struct {
		Owner string    `json:"owner"`
		Since time.Time `json:"since"`
	}{l.owner, l.clk.Now()})
	return store.Item{PK: l.key.PK, SK: l.key.SK, Version: version, Data: doc, ExpiresAt: l.clk.Now().Add(l.ttl)}
}

func (l *lease) acquire(ctx context.Context) error {
	_, err := l.st.Get(ctx, l.key.PK, l.key.SK)
	switch {
	case err == nil:
		return ErrBusy
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("read lease: %w", err)
	}
	// Each holder starts from a random version, so a late writer still holding an expired
	// lease's version never matches the next holder's.
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

func (l *lease) renewWrite() store.Write { return store.PutIfVersion(l.item(l.version+1), l.version) }

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

// release runs even when ctx has ended, so the next poller need not wait for the expiry.
func (l *lease) release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = l.st.Write(ctx, store.Write{Op: store.OpDelete, Key: l.key, Cond: store.VersionEquals, Expect: l.version})
}
