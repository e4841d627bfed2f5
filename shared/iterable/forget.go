package iterable

import (
	"context"
	"fmt"
	"strings"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/reviews"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/timers"
)

// ForgetLocal deletes what this destination keeps in the table about an erased contact (see
// shared/erasure): the browsers identified as it and their order claims, its page views waiting
// to be sent, the list memberships it remembers, the
// cart reminder and review requests waiting on timers (orderKeys are the contact's orders), and
// which products it was asked to review. It returns how many items it deleted.
func ForgetLocal(ctx context.Context, st store.Store, clk clock.Clock, account string, emails, orderKeys []string) (int, error) {
	n := 0
	count := func(ok bool, err error) error {
		if ok {
			n++
		}
		return err
	}
	tm := timers.New(st, clk, timers.Options{})
	repo := history.New(st)
	for _, e := range emails {
		// Browsers identified as the contact and their order claims.
		named, err := repo.Mentions(ctx, account, e)
		if err != nil {
			return n, err
		}
		for _, it := range named {
			for _, pk := range []string{visitorPK(account, ""), claimPK(account, ""), claimedPK(account, "")} {
				if strings.HasPrefix(it.PK, pk) {
					if err := count(store.DeleteIfExists(ctx, st, store.Key{PK: it.PK, SK: it.SK})); err != nil {
						return n, err
					}
					break
				}
			}
		}
		for _, pk := range []string{PageViewsPK(account, e), reviews.AskedPK(account, e)} {
			m, err := store.DeletePartition(ctx, st, pk)
			n += m
			if err != nil {
				return n, fmt.Errorf("forget %s's records at Iterable's side: %w", account, err)
			}
		}
		if err := count(store.DeleteIfExists(ctx, st, store.Key{PK: listsPK(account, e), SK: listsSK})); err != nil {
			return n, err
		}
		if err := count(tm.CancelExisting(ctx, account, TimerCart, e)); err != nil {
			return n, err
		}
	}
	for _, k := range orderKeys {
		if err := count(tm.CancelExisting(ctx, account, TimerReview, k)); err != nil {
			return n, err
		}
	}
	return n, nil
}
