package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/poll"
	"github.com/cartrelay/cartrelay/shared/source"
	"github.com/cartrelay/cartrelay/shared/thrivecart/tcpoll"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
)

func cmdBackfill(ctx context.Context, c *ctx2, args []string) error {
	format, args, err := c.format(args, "table")
	if err != nil {
		return err
	}
	status, args := flagBool(args, "--status")
	sinceArg, args, hasSince, err := flagValue(args, "--since")
	if err != nil {
		return err
	}
	pos, err := positional(args, 1, "ACCOUNT")
	if err != nil {
		return err
	}
	account := pos[0]
	if status {
		if hasSince {
			return usagef("--since starts a backfill; --status only shows where it is")
		}
		return printStatus(ctx, c, account, format)
	}
	var since time.Time
	if hasSince {
		if since, err = ParseSince(sinceArg); err != nil {
			return err
		}
		fmt.Fprintf(c.io.Err, "--since bounds the orders and refunds walked; auto orders, customers and items are read in full, since one unchanged for years is as current as one changed today\n")
	}
	acct, err := c.env.Accounts.Get(ctx, account)
	if err != nil {
		return err
	}
	hasThriveCart := acct.ThriveCart.APIKey.IsSet()
	// A stream that stops (a key without access to customers, say) does not keep the others
	// from catching up; its error is reported with the rest at the end.
	var errs []error
	for _, stream := range ucpoll.Streams() {
		err := c.backfillStream(ctx, account, stream, since)
		if err == nil {
			continue
		}
		if errors.Is(err, errNoConnection) && hasThriveCart {
			fmt.Fprintf(c.io.Err, "%v; backfilling ThriveCart only\n", err)
			break
		}
		if ctx.Err() != nil || errors.Is(err, errNoConnection) {
			return err
		}
		errs = append(errs, err)
	}
	if hasThriveCart {
		if err := c.backfillThriveCart(ctx, account); err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
		}
	}
	if err := printStatus(ctx, c, account, format); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// backfillThriveCart walks the account's ThriveCart transactions to the present, with a
// progress bar, or follows the process that holds the walk's lease.
func (c *ctx2) backfillThriveCart(ctx context.Context, account string) error {
	progress := c.progress(account+" thrivecart "+tcpoll.Stream, "transactions")
	defer fmt.Fprintln(c.io.Err)
	show := func(cur tcpoll.Cursor) { progress(cur.Done, cur.Estimated, cur.LastError) }
	look := func() {
		if cur, _, err := tcpoll.LoadCursor(ctx, c.env.Store, account); err == nil {
			show(cur)
		}
	}
	job := source.Job{Account: account, Stream: tcpoll.Stream}
	for {
		var res source.Result
		var err error
		watching(look, func() {
			res, err = c.env.App.RunPoll(ctx, string(domain.ThriveCart), job, c.io.Clock.Now().Add(5*time.Minute))
		})
		if err != nil {
			return err
		}
		showRun(progress, res)
		switch res.Outcome {
		case poll.CaughtUp:
			return nil
		case poll.Later:
			return fmt.Errorf("%s thrivecart: paused until %s to stay within ThriveCart's request limit (%s); it resumes on its own",
				account, res.NextRunAt.UTC().Format(time.RFC3339), res.LastError)
		case poll.Stopped:
			msg := tcpoll.StatusMessage(res.Status)
			if msg == "" {
				msg = res.LastError
			}
			return fmt.Errorf("%s thrivecart: stopped (%s): %s", account, res.Status, msg)
		case poll.Busy:
			cur, _, err := tcpoll.LoadCursor(ctx, c.env.Store, account)
			if err != nil {
				return err
			}
			show(cur)
			if done, err := followed(ctx, cur.CaughtUp); done || err != nil {
				return err
			}
		}
	}
}

// showRun moves a progress bar to where a poll run got.
func showRun(progress func(done, estimated int64, lastErr string), res source.Result) {
	progress(res.Done, res.Estimated, res.LastError)
}

// watching runs run and meanwhile calls look every quarter second, so that a progress bar
// moves, and shows an error, while a run is in flight.
func watching(look func(), run func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				look()
			}
		}
	})
	run()
	close(done)
	wg.Wait()
}

// progress starts a progress bar on stderr and returns the function that moves it: done of an
// estimated total, which a walk revises as it learns more (unknown while 0), and the walk's
// last error, shown on the bar until a page succeeds again.
func (c *ctx2) progress(desc, unit string) func(done, estimated int64, lastError string) {
	bar := progressbar.NewOptions64(-1, progressbar.OptionSetWriter(c.io.Err),
		progressbar.OptionSetDescription(desc), progressbar.OptionShowCount(),
		progressbar.OptionSetItsString(unit), progressbar.OptionShowIts(), progressbar.OptionThrottle(200*time.Millisecond))
	shown := ""
	return func(done, estimated int64, lastError string) {
		if estimated > 0 && bar.GetMax64() != max(estimated, done) {
			bar.ChangeMax64(max(estimated, done))
		}
		if lastError != shown {
			shown = lastError
			d := desc
			if lastError != "" {
				d += " — retrying after: " + oneLine(lastError)
			}
			bar.Describe(d)
		}
		_ = bar.Set64(done)
	}
}

// followed is one step of following a walk another process runs: done once it caught up,
// otherwise it waits a second before the next look.
func followed(ctx context.Context, caughtUp bool) (done bool, err error) {
	if caughtUp {
		return true, nil
	}
	return false, clock.Sleep(ctx, time.Second)
}

// errNoConnection marks a backfill of an account that has no UltraCart connection.
var errNoConnection = errors.New("no UltraCart connection")

// progressUnit names what a stream's progress bar counts.
func progressUnit(stream string) string {
	switch stream {
	case ucpoll.Orders, ucpoll.Refunds:
		return "orders"
	case ucpoll.AutoOrders:
		return "auto orders"
	}
	return stream
}

// backfillStream walks one stream to the present in this process, with a progress bar. When
// another process (serve, or the poll function) holds the stream's lease, it follows that one's
// progress instead. A since earlier than where the stream's walk began moves the walk back to it.
func (c *ctx2) backfillStream(ctx context.Context, account, stream string, since time.Time) error {
	if !since.IsZero() {
		if _, err := c.env.Connections.Peek(ctx, account, connections.UltraCart); err == nil {
			before, _, _ := ucpoll.LoadCursor(ctx, c.env.Store, account, stream)
			moved, err := ucpoll.Rewind(ctx, c.env.Store, account, stream, since)
			if err != nil {
				return err
			}
			if moved {
				fmt.Fprintf(c.io.Err, "%s %s: the walk began at %s; it starts again from %s (what was read already is recognised, not counted twice)\n",
					account, stream, day(before.Began), day(since))
			}
		}
	}
	progress := c.progress(account+" "+stream, progressUnit(stream))
	defer fmt.Fprintln(c.io.Err)
	show := func(cur ucpoll.Cursor) { progress(cur.Done, cur.Estimated, cur.LastError) }
	look := func() {
		if cur, _, err := ucpoll.LoadCursor(ctx, c.env.Store, account, stream); err == nil {
			show(cur)
		}
	}
	job := source.Job{Account: account, Stream: stream, Since: since}
	for {
		// Each run is bounded like a poll function's, so the cursor is saved and progress shows.
		var res source.Result
		var err error
		watching(look, func() {
			res, err = c.env.App.RunPoll(ctx, string(domain.UltraCart), job, c.io.Clock.Now().Add(5*time.Minute))
		})
		if errors.Is(err, connections.ErrNotFound) {
			return fmt.Errorf("account %s has %w; add one with 'cartrelay connections put %s ultracart --simple-key KEY'", account, errNoConnection, account)
		}
		if err != nil {
			return err
		}
		switch res.Outcome {
		case poll.Continue:
			showRun(progress, res)
		case poll.CaughtUp:
			showRun(progress, res)
			return nil
		case poll.Later:
			showRun(progress, res)
			return fmt.Errorf("%s %s: paused until %s to stay within UltraCart's request limits (%s); it resumes on its own, or run backfill again then",
				account, stream, res.NextRunAt.UTC().Format(time.RFC3339), res.LastError)
		case poll.Stopped:
			if res.Status == ucpoll.StatusUnauthorized && stream != ucpoll.Orders {
				return fmt.Errorf("%s %s: stopped (%s): %s; a key that reads orders may still lack read access to %s",
					account, stream, res.Status, res.LastError, progressUnit(stream))
			}
			return fmt.Errorf("%s %s: stopped (%s): %s", account, stream, res.Status, res.LastError)
		case poll.Busy:
			cur, _, err := ucpoll.LoadCursor(ctx, c.env.Store, account, stream)
			if err != nil {
				return err
			}
			show(cur)
			if done, err := followed(ctx, cur.CaughtUp); done || err != nil {
				return err
			}
		}
	}
}

// allHistory is the since of a stream that reads every record whatever its date.
const allHistory = "all history"

// streamStatus is one stream in `backfill --status`: its stored cursor, with where the walk
// began and how long its windows are in words.
type streamStatus struct {
	ucpoll.Cursor
	// Since is the date the walk of orders or refunds began at (backfill --since), or
	// allHistory.
	Since string `json:"since"`
	// ChangedSince is where the next walk of a "_since" stream resumes (the cursor's since).
	ChangedSince time.Time `json:"changed_since,omitzero"`
	// Window is the next window's length, as "24h0m0s".
	Window string `json:"window,omitempty"`
}

// thriveCartStatus is the ThriveCart walk in `backfill --status`.
type thriveCartStatus struct {
	tcpoll.Cursor
	Since string `json:"since"`
}

// statusRow is what the table shows of either.
type statusRow struct {
	source, stream, since, status, lastError string
	done, estimated                          int64
	caughtUp                                 bool
	next                                     time.Time
}

// printStatus prints every stream's progress: UltraCart's, then ThriveCart's once its walk
// has run (every account gets one; without a key it only says so).
func printStatus(ctx context.Context, c *ctx2, account, format string) error {
	if _, err := c.env.Connections.Get(ctx, account, connections.UltraCart); errors.Is(err, connections.ErrNotFound) {
		fmt.Fprintf(c.io.Err, "account %s has no UltraCart connection, so its UltraCart streams are not polled; add one with "+
			"'cartrelay connections put %s ultracart --simple-key KEY', or connect the store in the console\n", account, account)
	}
	var out []any
	var rows []statusRow
	for _, stream := range ucpoll.Streams() {
		cur, _, err := ucpoll.LoadCursor(ctx, c.env.Store, account, stream)
		if err != nil {
			return err
		}
		s := streamStatus{Cursor: cur, Since: allHistory, ChangedSince: cur.Since}
		if stream == ucpoll.Orders || stream == ucpoll.Refunds {
			s.Since = ""
			if !cur.Began.IsZero() {
				s.Since = cur.Began.UTC().Format(time.RFC3339)
			}
		}
		if cur.Window > 0 {
			s.Window = cur.Window.String()
		}
		out = append(out, s)
		rows = append(rows, statusRow{source: cur.Source, stream: stream, since: s.Since, status: cur.Status, lastError: cur.LastError,
			done: cur.Done, estimated: cur.Estimated, caughtUp: cur.CaughtUp, next: cur.NextRunAt})
	}
	cur, found, err := tcpoll.LoadCursor(ctx, c.env.Store, account)
	if err != nil {
		return err
	}
	if found {
		out = append(out, thriveCartStatus{Cursor: cur, Since: allHistory})
		rows = append(rows, statusRow{source: cur.Source, stream: cur.Stream, since: allHistory, status: cur.Status, lastError: cur.LastError,
			done: cur.Done, estimated: cur.Estimated, caughtUp: cur.CaughtUp, next: cur.NextRunAt})
	}
	if format == "json" {
		return writeJSON(c.io.Out, out)
	}
	l := newLister(c, format, "no streams",
		column[statusRow]{"SOURCE", func(r statusRow) string { return r.source }},
		column[statusRow]{"STREAM", func(r statusRow) string { return r.stream }},
		column[statusRow]{"SINCE", func(r statusRow) string { return r.since }},
		column[statusRow]{"DONE", func(r statusRow) string { return strconv.FormatInt(r.done, 10) }},
		column[statusRow]{"ESTIMATED", func(r statusRow) string { return strconv.FormatInt(r.estimated, 10) }},
		column[statusRow]{"CAUGHT UP", func(r statusRow) string { return yes(r.caughtUp) }},
		column[statusRow]{"NEXT RUN", func(r statusRow) string { return when(r.next) }},
		column[statusRow]{"PROBLEM", func(r statusRow) string { return strings.TrimSpace(r.status + " " + r.lastError) }},
	)
	for _, r := range rows {
		if err := l.add(r); err != nil {
			return err
		}
	}
	return l.done()
}
