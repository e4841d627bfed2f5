package ucpoll

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/lease"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

// ErrNoBudget is returned by Check when the shared request budget is spent for now.
var ErrNoBudget = errors.New("UltraCart's request budget is spent for now")

// Check asks UltraCart one cheap question with the engine's credentials: the order query a
// walk of orders starts with, for at most one order paid in the last hour. It counts against
// the request budget every process shares, and holds the connection's lease while it asks
// when no walk does (a walk holds it for minutes; UltraCart answers a request beside it with a
// 429, which Check then returns). A nil error means UltraCart accepted the credentials for
// reading orders; otherwise the client's error says why not (ultracartapi.ErrUnauthorized,
// ErrAppDisabled, *RateLimitedError, *TransportError, ...).
func (e *Engine) Check(ctx context.Context, account string) error {
	hourPK, dayPK, leasePK := e.opt.limits(account)
	l := lease.New(e.d.Store, e.d.Clock, store.Key{PK: leasePK, SK: LeaseSK}, e.opt.LeaseTTL, "credentials check")
	switch err := l.Acquire(ctx); {
	case err == nil:
		defer l.Release(ctx)
	case !errors.Is(err, lease.ErrBusy):
		return err
	}
	for _, b := range []struct {
		pk    string
		limit ratelimit.Limit
	}{{dayPK, e.opt.Day}, {hourPK, e.opt.Hour}} {
		bucket, err := ratelimit.NewShared(e.d.Store, e.d.Clock, b.pk, b.limit)
		if err != nil {
			return err
		}
		wait, err := bucket.Reserve(ctx)
		if err != nil {
			return err
		}
		if wait > 0 {
			return fmt.Errorf("%w: the next request is allowed at %s", ErrNoBudget, e.d.Clock.Now().Add(wait).UTC().Format(time.RFC3339))
		}
	}
	now := e.d.Clock.Now()
	_, err := e.d.Source.QueryOrders(ctx, ultracartapi.OrderFilter{PaymentDateBegin: now.Add(-time.Hour), PaymentDateEnd: now}, 1, 0)
	return err
}
