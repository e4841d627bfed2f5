package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/erasure"
)

// cmdContactsErase erases a contact at its request. Without --yes it only prints what would be
// erased: the erasure cannot be undone.
func cmdContactsErase(ctx context.Context, c *ctx2, args []string) error {
	yes, args := flagBool(args, "--yes")
	pos, err := positional(args, 2, "ACCOUNT EMAIL")
	if err != nil {
		return err
	}
	email, err := domain.NormalizeEmail(pos[1])
	if err != nil {
		return usagef("%v", err)
	}
	acct, err := c.env.Accounts.Get(ctx, pos[0])
	if err != nil {
		return err
	}
	eraser := c.env.App.Eraser()
	if !yes {
		plan, err := eraser.Plan(ctx, acct, email)
		if err != nil {
			return eraseError(err)
		}
		if err := writeJSON(c.io.Out, plan); err != nil {
			return err
		}
		return usagef("nothing erased yet: erasing cannot be undone; check what is listed above and run again with --yes")
	}
	by := "cli"
	if u := c.io.Getenv("USER"); u != "" {
		by += ":" + u
	}
	res, err := eraser.Erase(ctx, acct, email, by)
	if err != nil {
		return eraseError(err)
	}
	if !res.Done {
		fmt.Fprintf(c.io.Err, "erasure under way as %s: the schedule finishes it once every destination has answered (at least %s after it began)\n",
			res.Pseudonym, erasure.SettleAfter)
	}
	return writeJSON(c.io.Out, res)
}

func eraseError(err error) error {
	if errors.Is(err, erasure.ErrPseudonym) {
		return usagef("%v", err)
	}
	return err
}
