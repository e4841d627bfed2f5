package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cartrelay/cartrelay/shared/reports"
)

// keepReports is the schedule's share of the reports: it applies the rollup adds a change left
// pending, turns a changed time zone setting into a build of the account's rollups, and runs the
// builds that are due. A build that fails MaxAutoAttempts times waits for
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
	b := s.Building
	if b == nil || b.Locked(now) || b.Attempts >= reports.MaxAutoAttempts {
		return nil
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
