package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cartrelay/cartrelay/shared/reports"
)

// keepReports is the schedule's share of the reports: it applies the rollup adds a change left
// pending, turns a changed time zone setting (or rollups written in an earlier layout) into a
// build of the account's rollups, runs the builds that are due, and deletes the items of
// generations that builds replaced. A build that fails MaxAutoAttempts times waits for
// `cartrelay reports rebuild` (its error shows in every report's meta).
func (a *App) keepReports(ctx context.Context) error {
	var errs []error
	if n, err := reports.DrainAllPending(ctx, a.d.Store); err != nil {
		errs = append(errs, fmt.Errorf("apply pending rollup adds: %w", err))
	} else if n > 0 {
		a.d.Log.Info("pending rollup adds applied", slog.Int("adds", n))
	}
	ids, err := a.d.Accounts.IDs(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, id := range ids {
		if err := a.keepAccountReports(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("account %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

func (a *App) keepAccountReports(ctx context.Context, id string) error {
	acct, err := a.d.Accounts.Get(ctx, id)
	if err != nil {
		return err
	}
	now := a.d.Clock.Now()
	s, err := reports.RequestBuild(ctx, a.d.Store, id, acct.Timezone, reports.ReasonTimezone, now)
	if err != nil {
		return err
	}
	// Rollups written by an earlier version in an earlier layout are rebuilt in this one.
	if s, err = reports.RequestBuild(ctx, a.d.Store, id, acct.Timezone, reports.ReasonLayout, now); err != nil {
		return err
	}
	b := s.Building
	if b == nil || b.Locked(now) || b.Attempts >= reports.MaxAutoAttempts {
		return a.clearRetired(ctx, id, s)
	}
	log := a.d.Log.With(slog.String("account", id), slog.String("timezone", b.Zone))
	log.Info("rebuilding the reports", slog.String("reason", b.Reason))
	builder := &reports.Builder{Store: a.d.Store, Clock: a.d.Clock, Sleep: a.d.Sleep}
	s, err = builder.Run(ctx, id)
	if errors.Is(err, reports.ErrBuildBusy) {
		return nil
	}
	if err != nil {
		return err
	}
	log.Info("reports rebuilt", slog.Int("generation", s.Active.N), slog.String("summary", s.LastBuild))
	return nil
}

// clearBudget is how long one schedule run spends deleting an account's replaced rollups; the
// next run carries on where it stopped.
const clearBudget = 20 * time.Second

// clearRetired deletes, for a while, the items of the generations a build replaced (see
// reports.ClearRetired).
func (a *App) clearRetired(ctx context.Context, id string, s reports.State) error {
	if len(s.Retired) == 0 || len(s.Span) == 0 {
		return nil
	}
	n, err := reports.ClearRetired(ctx, a.d.Store, id, a.d.Clock.Now, a.d.Clock.Now().Add(clearBudget), nil)
	if n > 0 {
		a.d.Log.Info("replaced report rollups deleted", slog.String("account", id), slog.Int("items", n))
	}
	if err != nil {
		return fmt.Errorf("delete replaced report rollups: %w", err)
	}
	return nil
}
