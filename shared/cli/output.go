package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/connections"
)

// format reads --format: "json", or human ("table" for lists, "text" for single values). Left
// out, it is human on a terminal and JSON otherwise, so what a script reads stays JSON.
func (c *ctx2) format(args []string, human string) (string, []string, error) {
	f, args, found, err := flagValue(args, "--format")
	if err != nil {
		return "", nil, err
	}
	switch {
	case !found && c.io.Terminal:
		return human, args, nil
	case !found:
		return "json", args, nil
	case f == "json" || f == human:
		return f, args, nil
	}
	return "", nil, usagef("--format takes json or %s, got %q", human, f)
}

// column is one column of a table: its heading and how a row shows in it.
type column[T any] struct {
	head string
	cell func(T) string
}

// lister prints the rows of a list command: one JSON object per line, or a table. With no
// rows it says so where a person reads it (a table, or a terminal); piped JSON stays empty.
type lister[T any] struct {
	c     *ctx2
	table bool
	cols  []column[T]
	tw    *tabwriter.Writer
	n     int
	// empty is what an empty list says ("no orders in account acme").
	empty string
	// asJSON, when set, is what a row prints as in JSON (the row itself otherwise).
	asJSON func(T) any
}

func newLister[T any](c *ctx2, format, empty string, cols ...column[T]) *lister[T] {
	l := &lister[T]{c: c, table: format == "table", cols: cols, empty: empty}
	if l.table {
		l.tw = tabwriter.NewWriter(c.io.Out, 0, 0, 2, ' ', 0)
	}
	return l
}

func (l *lister[T]) add(v T) error {
	if !l.table {
		l.n++
		if l.asJSON != nil {
			return writeLine(l.c.io.Out, l.asJSON(v))
		}
		return writeLine(l.c.io.Out, v)
	}
	if l.n == 0 {
		heads := make([]string, len(l.cols))
		for i, col := range l.cols {
			heads[i] = col.head
		}
		fmt.Fprintln(l.tw, strings.Join(heads, "\t"))
	}
	l.n++
	cells := make([]string, len(l.cols))
	for i, col := range l.cols {
		cells[i] = oneLine(col.cell(v))
	}
	_, err := fmt.Fprintln(l.tw, strings.Join(cells, "\t"))
	return err
}

func (l *lister[T]) done() error {
	if l.n == 0 && (l.table || l.c.io.Terminal) {
		_, err := fmt.Fprintln(l.c.io.Out, l.empty)
		return err
	}
	if l.table {
		return l.tw.Flush()
	}
	return nil
}

// oneLine keeps a table cell on its row.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 80 {
		return string(r[:79]) + "…"
	}
	return s
}

// when shows a time in a table cell: RFC 3339 in UTC, or blank.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// AccountNotFoundError is a command naming an account the runtime does not have.
type AccountNotFoundError struct {
	Account string
	// Known are the accounts that exist.
	Known []string
	// Where names the runtime that was read (a data directory), so a user looking at the wrong
	// one sees it.
	Where string
}

func (e *AccountNotFoundError) Error() string {
	msg := fmt.Sprintf("no account %q in %s", e.Account, e.Where)
	if len(e.Known) == 0 {
		return msg + ", which has no accounts yet. Create one with 'cartrelay accounts put " + e.Account +
			" --file FILE.json', or run 'cartrelay demo' against a running serve"
	}
	var alike []string
	for _, k := range e.Known {
		if near(e.Account, k) {
			alike = append(alike, k)
		}
	}
	msg += "; the accounts are: " + strings.Join(e.Known, ", ")
	if len(alike) > 0 {
		msg += ". Did you mean " + strings.Join(alike, " or ") + "?"
	}
	return msg
}

// requireAccount fails with the accounts that exist when account is not one of them.
func (c *ctx2) requireAccount(ctx context.Context, account string) error {
	_, err := c.env.Accounts.Get(ctx, account)
	if !errors.Is(err, accounts.ErrNotFound) {
		return err
	}
	list, lerr := c.env.Accounts.List(ctx)
	if lerr != nil {
		return errors.Join(err, lerr)
	}
	e := &AccountNotFoundError{Account: account, Where: c.where()}
	for _, a := range list {
		e.Known = append(e.Known, a.ID)
	}
	slices.Sort(e.Known)
	return e
}

// learnSecrets opens account's secrets and connection credentials, only so that the output
// writer knows them (shared/redact). A secret that does not open is reported and skipped: the
// command still runs.
func (c *ctx2) learnSecrets(ctx context.Context, account string) {
	if _, err := c.env.Accounts.Get(ctx, account, c.env.Accounts.SecretNames()...); err != nil {
		fmt.Fprintf(c.io.Err, "note: the secrets of account %s could not be opened (%v), so records kept before secrets were scrubbed when written may still show them\n", account, err)
	}
	if _, err := c.env.Connections.Get(ctx, account, connections.UltraCart); err != nil && !errors.Is(err, connections.ErrNotFound) {
		fmt.Fprintf(c.io.Err, "note: the UltraCart credentials of account %s could not be opened (%v)\n", account, err)
	}
}

// where names the runtime the command reads.
func (c *ctx2) where() string {
	if c.globals.Backend == "aws" {
		return "the deployed stack (--backend aws)"
	}
	return "the data directory " + c.globals.Data
}
