package app

import (
	"context"
	"errors"
	"log/slog"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/store"
)

// maxMoveSteps bounds one call's work on one email move (45 records a step); a history longer
// than that is finished by the schedule's next runs.
const maxMoveSteps = 200

// maxMoveConflicts is how many lost races in a row one call accepts before it leaves the move to
// the next schedule run: each means another process is writing the same contact.
const maxMoveConflicts = 3

// continueMove moves the records of the email change away from `from` in steps until none is
// left. Unsent facts it carries are sent from the new contact (under its email) once moved. A
// crash at any point leaves the job where its last step put it, and the next call goes on.
func (a *App) continueMove(ctx context.Context, acct accounts.Account, from string) error {
	repo := history.New(a.d.Store)
	log := a.d.Log.With(slog.String("account", acct.ID), slog.String("from", from))
	conflicts, moved := 0, 0
	for range maxMoveSteps {
		res, err := repo.MoveStep(ctx, acct.ID, from, history.MoveBatch)
		switch {
		case errors.Is(err, history.ErrMoveGone):
			return nil
		case errors.Is(err, store.ErrConditionFailed):
			if conflicts++; conflicts >= maxMoveConflicts {
				return err
			}
			continue
		case err != nil:
			return err
		}
		conflicts = 0
		moved += res.Moved
		if res.Outbox > 0 {
			st, err := repo.LoadContact(ctx, acct.ID, res.To)
			if err != nil {
				return err
			}
			if err := a.flush(ctx, acct, st.Email, st.Outbox); err != nil {
				return err
			}
		}
		if res.Done {
			log.Info("email change: history moved", slog.String("to", res.To), slog.Int("records", moved))
			return nil
		}
	}
	log.Info("email change: history still moving; the schedule continues", slog.Int("records", moved))
	return nil
}

// continueMoves carries on every email move not finished yet (after a crash, or a history longer
// than one call moves).
func (a *App) continueMoves(ctx context.Context) error {
	moves, err := history.New(a.d.Store).PendingMoves(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range moves {
		acct, err := a.d.Accounts.Get(ctx, m.Account)
		if errors.Is(err, accounts.ErrNotFound) {
			continue
		}
		if err == nil {
			err = a.continueMove(ctx, acct, m.From)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
