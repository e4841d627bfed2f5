package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
)

// cmdTrackingSecret prints the account's tracking secret, making it on first use. It is the
// one secret cartrelay shows: the merchant's server needs it to sign identity tokens for the
// page-view snippet. It is printed to the unscrubbed output, since scrubbing it would defeat
// the command; everywhere else (logs, the table, other commands) it stays scrubbed.
func cmdTrackingSecret(ctx context.Context, c *ctx2, args []string) error {
	rotate, args := flagBool(args, "--rotate")
	pos, err := positional(args, 1, "ACCOUNT")
	if err != nil {
		return err
	}
	get := c.env.Keys.Ensure
	if rotate {
		get = c.env.Keys.Rotate
	}
	k, err := get(ctx, pos[0], accountkeys.Tracking)
	if err != nil {
		return err
	}
	out := c.shown
	if out == nil {
		out = c.io.Out
	}
	if err := writeJSON(out, map[string]any{"account": pos[0], "tracking_secret": k.Value, "created_at": k.CreatedAt.Format(time.RFC3339)}); err != nil {
		return err
	}
	fmt.Fprintln(c.io.Err, "Give this secret to the store's developer, as a server-side secret only: it signs identity tokens (docs/iterable.md, \"Identity tokens\"). Anyone who has it can tie page views to any address.")
	return nil
}
