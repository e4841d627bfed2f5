package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/connections"
	"github.com/cartrelay/cartrelay/shared/console"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/localrun"
	"github.com/cartrelay/cartrelay/shared/opcount"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

func cmdServe(ctx context.Context, c *ctx2, args []string) error {
	addr, args, _, err := flagValue(args, "--addr")
	if err != nil {
		return err
	}
	profile, args, _, err := flagValue(args, "--cpuprofile")
	if err != nil {
		return err
	}
	noThrottle, args := flagBool(args, "--no-throttle")
	if _, err := positional(args, 0, "no arguments"); err != nil {
		return err
	}
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	signals := c.io.Signals
	if signals == nil {
		signals = func(ctx context.Context) (context.Context, context.CancelFunc) {
			return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		}
	}
	ctx, stop := signals(ctx)
	defer stop()
	if profile != "" {
		done, err := startCPUProfile(profile)
		if err != nil {
			return err
		}
		defer done()
	}
	if c.env.TakeOver != nil {
		released, unlock, err := c.env.TakeOver(ctx)
		if err != nil {
			return err
		}
		defer unlock()
		if released > 0 {
			c.env.Log.Info("queued again the messages an earlier serve had received and not finished (it stopped without draining)",
				"messages", released)
		}
	}
	forget := func() {}
	defer func() { forget() }()
	cfg, err := wiring.ServeConfig(c.env, wiring.ServeOptions{Addr: addr, NoThrottle: noThrottle, Ready: func(a string) {
		if c.globals.Backend == "embedded" {
			// So that the CLI in another terminal finds this data directory.
			var err error
			if forget, err = noteRunning(c.io.Getenv, a, c.globals.Data, c.io.Clock.Now()); err != nil {
				c.env.Log.Warn("other cartrelay commands will not find this serve's data directory by themselves; give them --data", "error", err)
			}
		}
		c.env.Log.Info("cartrelay is serving", "addr", a, "data", c.globals.Data,
			"health", "http://"+a+"/healthz",
			"ultracart_webhook", "http://"+a+"/webhooks/ultracart/ACCOUNT",
			"thrivecart_webhook", "http://"+a+"/webhooks/thrivecart/ACCOUNT")
		if c.io.Ready != nil {
			c.io.Ready(a)
		}
	}})
	if err != nil {
		return err
	}
	err = localrun.Run(ctx, cfg)
	if c.env.Counts != nil {
		// What this serve did to its database, for comparing runs (cartrelay-load reads it).
		c.env.Log.Info(opcount.LogMessage, "counts", c.env.Counts())
	}
	c.env.Log.Info("cartrelay stopped", "clean", err == nil)
	return err
}

// startCPUProfile writes a Go CPU profile (go tool pprof FILE) until done is called.
func startCPUProfile(path string) (done func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func cmdAccountsPut(ctx context.Context, c *ctx2, args []string) error {
	file, args, found, err := flagValue(args, "--file")
	if err != nil {
		return err
	}
	if !found {
		return usagef("accounts put needs --file FILE.json (see examples/account.example.json)")
	}
	pos, err := positional(args, 1, "ACCOUNT")
	if err != nil {
		return err
	}
	var patch []byte
	if file == "-" {
		patch, err = io.ReadAll(os.Stdin)
	} else {
		patch, err = os.ReadFile(file)
	}
	if err != nil {
		return fmt.Errorf("read the account file: %w", err)
	}
	before, getErr := c.env.Accounts.Get(ctx, pos[0])
	a, err := c.env.Accounts.Put(ctx, pos[0], patch)
	if err != nil {
		return err
	}
	if getErr == nil && accounts.SecretsDiffer(before, a) {
		// New keys end the account's console sessions, as a key change in the console does.
		if err := console.EndSessions(ctx, c.env.Store, a.ID, c.io.Clock.Now()); err != nil {
			return fmt.Errorf("the account was saved, but its console sessions could not be ended (run 'cartrelay console signout %s'): %w", a.ID, err)
		}
	}
	out, err := shownAccount(ctx, c, a)
	if err != nil {
		return err
	}
	return writeJSON(c.io.Out, out)
}

func cmdAccountsGet(ctx context.Context, c *ctx2, args []string) error {
	pos, err := positional(args, 1, "ACCOUNT")
	if err != nil {
		return err
	}
	a, err := c.env.Accounts.Get(ctx, pos[0])
	if errors.Is(err, accounts.ErrNotFound) {
		return fmt.Errorf("no account %q; create it with 'cartrelay accounts put %s --file FILE.json'", pos[0], pos[0])
	}
	if err != nil {
		return err
	}
	out, err := shownAccount(ctx, c, a)
	if err != nil {
		return err
	}
	return writeJSON(c.io.Out, out)
}

// cmdAccountsReseal moves secrets sealed by an earlier release to the current format, whose
// encryption context lets each function's IAM policy name the secrets it may decrypt. Values
// are unchanged; it prints one line per account.
func cmdAccountsReseal(ctx context.Context, c *ctx2, args []string) error {
	ids := args
	if len(args) != 1 {
		if _, err := positional(args, 0, "[ACCOUNT]"); err != nil {
			return err
		}
		var err error
		if ids, err = c.env.Accounts.IDs(ctx); err != nil {
			return err
		}
	}
	for _, id := range ids {
		done, err := c.env.Accounts.Reseal(ctx, id)
		if err != nil {
			return err
		}
		conn, err := c.env.Connections.Reseal(ctx, id, connections.UltraCart)
		if err != nil && !errors.Is(err, connections.ErrNotFound) {
			return err
		}
		for _, f := range conn {
			done = append(done, connections.Secret(connections.UltraCart, f))
		}
		if done == nil {
			done = []string{}
		}
		if err := writeLine(c.io.Out, map[string]any{"account": id, "resealed": done}); err != nil {
			return err
		}
	}
	return nil
}

func cmdAccountsList(ctx context.Context, c *ctx2, args []string) error {
	format, args, err := c.format(args, "table")
	if err != nil {
		return err
	}
	if _, err := positional(args, 0, "no arguments"); err != nil {
		return err
	}
	list, err := c.env.Accounts.List(ctx)
	if err != nil {
		return err
	}
	cols := []column[accounts.Account]{
		{"ACCOUNT", func(a accounts.Account) string { return a.ID }},
		{"CREATED", func(a accounts.Account) string { return when(a.CreatedAt) }},
	}
	// One column per registered destination.
	for _, r := range destinations.All() {
		cols = append(cols, column[accounts.Account]{strings.ToUpper(r.Name), func(a accounts.Account) string { return destState(r.Enabled(a), r.KeySet(a)) }})
	}
	l := newLister(c, format, "no accounts in "+c.where()+"; create one with 'cartrelay accounts put ACCOUNT --file FILE.json', or run 'cartrelay demo'", cols...)
	l.asJSON = func(a accounts.Account) any { return accounts.Public(a) }
	for _, a := range list {
		if err := l.add(a); err != nil {
			return err
		}
	}
	return l.done()
}

// destState says in a table whether a destination gets facts, and for real.
func destState(enabled, keySet bool) string {
	switch {
	case !enabled:
		return "off"
	case !keySet:
		return "dry run"
	}
	return "on"
}

// shownAccount is a as accounts get prints it: its settings and the store bound to it.
func shownAccount(ctx context.Context, c *ctx2, a accounts.Account) (map[string]any, error) {
	out := accounts.Public(a)
	b, err := c.env.Accounts.Binding(ctx, a.ID)
	switch {
	case err == nil:
		b.ShowIn(out)
	case !errors.Is(err, accounts.ErrNotBound):
		return nil, err
	}
	return out, nil
}

func cmdContactsGet(ctx context.Context, c *ctx2, args []string) error {
	full, args := flagBool(args, "--full")
	format, args, err := c.format(args, "text")
	if err != nil {
		return err
	}
	if full {
		format = "json"
	}
	pos, err := positional(args, 2, "ACCOUNT EMAIL")
	if err != nil {
		return err
	}
	email, err := domain.NormalizeEmail(pos[1])
	if err != nil {
		return usagef("%v", err)
	}
	repo := history.New(c.env.Store)
	// An old email (before an email change) shows the contact it became.
	current, err := repo.ResolveEmail(ctx, pos[0], email)
	if err != nil {
		return err
	}
	v, err := repo.View(ctx, pos[0], current)
	if err != nil {
		return err
	}
	if v.Profile == nil && len(v.Orders) == 0 {
		return fmt.Errorf("no contact %s in account %s ('cartrelay orders list %s' shows the emails that have orders)", email, pos[0], pos[0])
	}
	if v.Profile != nil {
		// Facts and deliveries stay where they were logged; an email change moves the orders
		// and subscriptions, so the older log lines are read from the previous emails.
		for _, prev := range v.Profile.PreviousEmails {
			old, err := repo.View(ctx, pos[0], prev)
			if err != nil {
				return err
			}
			v.Facts = append(old.Facts, v.Facts...)
			v.Deliveries = append(old.Deliveries, v.Deliveries...)
		}
	}
	if current != email {
		fmt.Fprintf(c.io.Err, "%s changed its email to %s; showing %s\n", email, current, current)
	}
	if format == "text" {
		return writeContactShort(c.io.Out, pos[0], v, "cartrelay contacts get "+pos[0]+" "+current+" --full")
	}
	return writeJSON(c.io.Out, v)
}

// ParseSince reads --since as RFC 3339 or YYYY-MM-DD (midnight UTC).
func ParseSince(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, usagef("--since takes RFC 3339 (2026-01-31T00:00:00Z) or YYYY-MM-DD, got %q", s)
}

type orderLine struct {
	ID        string    `json:"id"`
	Key       string    `json:"key"`
	Source    string    `json:"source"`
	Email     string    `json:"email"`
	Status    string    `json:"status"`
	PaidAt    time.Time `json:"paid_at,omitzero"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	Total     string    `json:"total"`
	Refunded  string    `json:"refunded"`
	Currency  string    `json:"currency"`
	Test      bool      `json:"test"`
	Rebill    bool      `json:"rebill,omitempty"`
}

func cmdOrdersList(ctx context.Context, c *ctx2, args []string) error {
	format, args, err := c.format(args, "table")
	if err != nil {
		return err
	}
	sinceArg, args, found, err := flagValue(args, "--since")
	if err != nil {
		return err
	}
	pos, err := positional(args, 1, "ACCOUNT")
	if err != nil {
		return err
	}
	since := time.Date(1995, 1, 1, 0, 0, 0, 0, time.UTC)
	empty := "no orders in account " + pos[0]
	if found {
		if since, err = ParseSince(sinceArg); err != nil {
			return err
		}
		empty += " paid since " + when(since)
	}
	l := newLister(c, format, empty,
		column[orderLine]{"ORDER", func(o orderLine) string { return o.ID }},
		column[orderLine]{"SOURCE", func(o orderLine) string { return o.Source }},
		column[orderLine]{"EMAIL", func(o orderLine) string { return o.Email }},
		column[orderLine]{"STATUS", func(o orderLine) string { return o.Status }},
		column[orderLine]{"PAID", func(o orderLine) string { return when(o.PaidAt) }},
		column[orderLine]{"TOTAL", func(o orderLine) string { return o.Total + " " + o.Currency }},
		column[orderLine]{"REFUNDED", func(o orderLine) string { return o.Refunded }},
		column[orderLine]{"TEST", func(o orderLine) string { return yes(o.Test) }},
	)
	repo := history.New(c.env.Store)
	err = repo.OrdersSince(ctx, pos[0], since, c.io.Clock.Now().AddDate(0, 1, 0), func(raw json.RawMessage) error {
		var o domain.Order
		if err := json.Unmarshal(raw, &o); err != nil {
			return err
		}
		cur := o.Currency
		if cur == "" {
			cur = o.Total.Currency
		}
		return l.add(orderLine{ID: o.OrderID, Key: o.Key, Source: string(o.Source), Email: o.Email,
			Status: string(o.Status), PaidAt: o.PaidAt, CreatedAt: o.CreatedAt, Total: o.Total.Decimal(),
			Refunded: o.Refunded.Decimal(), Currency: cur, Test: o.Test, Rebill: o.Rebill})
	})
	if err != nil {
		return err
	}
	return l.done()
}

// yes shows a flag in a table: "yes" or blank.
func yes(b bool) string {
	if b {
		return "yes"
	}
	return ""
}

func limitFlag(args []string) (int, []string, error) {
	v, rest, found, err := flagValue(args, "--limit")
	if err != nil || !found {
		return 0, rest, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, nil, usagef("--limit takes a whole number, got %q", v)
	}
	return n, rest, nil
}

func cmdQuarantineList(ctx context.Context, c *ctx2, args []string) error {
	format, args, err := c.format(args, "table")
	if err != nil {
		return err
	}
	limit, args, err := limitFlag(args)
	if err != nil {
		return err
	}
	account := ""
	if len(args) == 1 {
		account = args[0]
	} else if _, err := positional(args, 0, "[ACCOUNT]"); err != nil {
		return err
	}
	list, err := history.New(c.env.Store).QuarantineList(ctx, account, limit)
	if err != nil {
		return err
	}
	empty := "no quarantined events in any account: every event was ingested"
	if account != "" {
		empty = "no quarantined events in account " + account + ": every event was ingested"
	}
	l := newLister(c, format, empty,
		column[history.Quarantined]{"ACCOUNT", func(q history.Quarantined) string { return q.Account }},
		column[history.Quarantined]{"ID", func(q history.Quarantined) string { return q.ID }},
		column[history.Quarantined]{"AT", func(q history.Quarantined) string { return when(q.At) }},
		column[history.Quarantined]{"EVENT", func(q history.Quarantined) string { return strings.TrimSpace(q.Source + " " + q.Event) }},
		column[history.Quarantined]{"REPLAYED", func(q history.Quarantined) string { return when(q.ReplayedAt) }},
		column[history.Quarantined]{"REASON", func(q history.Quarantined) string { return q.Reason }},
	)
	for _, q := range list {
		q.Message = "" // `quarantine show` prints it; a list stays readable
		if err := l.add(q); err != nil {
			return err
		}
	}
	return l.done()
}

func cmdQuarantineShow(ctx context.Context, c *ctx2, args []string) error {
	pos, err := positional(args, 2, "ACCOUNT ID")
	if err != nil {
		return err
	}
	q, err := history.New(c.env.Store).QuarantineGet(ctx, pos[0], pos[1])
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no quarantined event %s in account %s; 'cartrelay quarantine list %s' lists them", pos[1], pos[0], pos[0])
	}
	if err != nil {
		return err
	}
	out := struct {
		history.Quarantined
		Message any `json:"message"`
	}{Quarantined: q, Message: q.Message}
	// Show the event as the source sent it when the message can be read back.
	if se, err := app.DecodeSourceEvent(ctx, c.env.Store, q.Message); err == nil {
		out.Message = se
	}
	return writeJSON(c.io.Out, out)
}

func cmdQuarantineReplay(ctx context.Context, c *ctx2, args []string) error {
	all, args := flagBool(args, "--all")
	repo := history.New(c.env.Store)
	var list []history.Quarantined
	switch {
	case all && len(args) == 1:
		qs, err := repo.QuarantineList(ctx, args[0], 0)
		if err != nil {
			return err
		}
		for _, q := range qs {
			if q.ReplayedAt.IsZero() {
				list = append(list, q)
			}
		}
	case !all && len(args) == 2:
		q, err := repo.QuarantineGet(ctx, args[0], args[1])
		if err != nil {
			return err
		}
		list = append(list, q)
	default:
		return usagef("quarantine replay takes ACCOUNT ID, or ACCOUNT --all")
	}
	replayed := 0
	for _, q := range list {
		if err := c.env.App.ReplayQuarantined(ctx, q); err != nil {
			return fmt.Errorf("%w (replayed %d before it)", err, replayed)
		}
		replayed++
	}
	return writeJSON(c.io.Out, map[string]any{"replayed": replayed})
}

func cmdDeliveriesList(ctx context.Context, c *ctx2, args []string) error {
	format, args, err := c.format(args, "table")
	if err != nil {
		return err
	}
	failed, args := flagBool(args, "--failed")
	limit, args, err := limitFlag(args)
	if err != nil {
		return err
	}
	pos, err := positional(args, 1, "ACCOUNT")
	if err != nil {
		return err
	}
	list, err := history.New(c.env.Store).Deliveries(ctx, pos[0], failed, limit)
	if err != nil {
		return err
	}
	empty := "no deliveries in account " + pos[0] + " yet"
	if failed {
		empty = "no failed deliveries in account " + pos[0]
	}
	l := newLister(c, format, empty,
		column[history.Delivery]{"AT", func(d history.Delivery) string { return when(d.At) }},
		column[history.Delivery]{"DESTINATION", func(d history.Delivery) string { return d.Dest }},
		column[history.Delivery]{"FACT", func(d history.Delivery) string { return d.FactKind }},
		column[history.Delivery]{"EMAIL", func(d history.Delivery) string { return d.Email }},
		column[history.Delivery]{"STATUS", func(d history.Delivery) string { return d.Status }},
		column[history.Delivery]{"ATTEMPT", func(d history.Delivery) string { return strconv.Itoa(d.Attempt) }},
		column[history.Delivery]{"FACT ID", func(d history.Delivery) string { return d.FactID }},
		column[history.Delivery]{"ERROR", func(d history.Delivery) string { return d.Error }},
	)
	for _, d := range list {
		if err := l.add(d); err != nil {
			return err
		}
	}
	return l.done()
}

func cmdDeliveriesReplay(ctx context.Context, c *ctx2, args []string) error {
	_, args = flagBool(args, "--failed")
	id, args, _, err := flagValue(args, "--id")
	if err != nil {
		return err
	}
	pos, err := positional(args, 1, "ACCOUNT")
	if err != nil {
		return err
	}
	outcomes, err := c.env.App.ReplayDeliveries(ctx, pos[0], id)
	var partial *app.ReplayError
	if err != nil && !errors.As(err, &partial) {
		return err
	}
	// Every outcome is printed, the failed ones with their error, before the summary; a failure
	// makes the exit status 1.
	failed := 0
	for _, r := range outcomes {
		if r.Error != "" {
			failed++
		}
		if werr := writeLine(c.io.Out, r); werr != nil {
			return werr
		}
	}
	if werr := writeJSON(c.io.Out, map[string]any{"replayed": len(outcomes) - failed, "failed": failed}); werr != nil {
		return werr
	}
	return err
}

func cmdQueuesStats(ctx context.Context, c *ctx2, args []string) error {
	format, args, err := c.format(args, "table")
	if err != nil {
		return err
	}
	if _, err := positional(args, 0, "no arguments"); err != nil {
		return err
	}
	var out []queue.Stats
	for _, name := range destinations.Queues().Names() {
		s, err := c.env.Queue.Stats(ctx, name)
		if err != nil {
			return fmt.Errorf("stats of %s: %w", name, err)
		}
		s.Queue = name
		out = append(out, s)
	}
	if format == "json" {
		return writeJSON(c.io.Out, out)
	}
	l := newLister(c, format, "no queues",
		column[queue.Stats]{"QUEUE", func(s queue.Stats) string { return s.Queue }},
		column[queue.Stats]{"VISIBLE", func(s queue.Stats) string { return strconv.Itoa(s.Visible) }},
		column[queue.Stats]{"IN FLIGHT", func(s queue.Stats) string { return strconv.Itoa(s.InFlight) }},
		column[queue.Stats]{"DELAYED", func(s queue.Stats) string { return strconv.Itoa(s.Delayed) }},
	)
	for _, s := range out {
		if err := l.add(s); err != nil {
			return err
		}
	}
	return l.done()
}

func cmdQueuesReplay(ctx context.Context, c *ctx2, args []string) error {
	limit, args, err := limitFlag(args)
	if err != nil {
		return err
	}
	pos, err := positional(args, 1, "QUEUE")
	if err != nil {
		return err
	}
	dlq := pos[0]
	if !strings.HasSuffix(dlq, queue.DLQSuffix) {
		dlq += queue.DLQSuffix
	}
	moved, err := queue.Redrive(ctx, c.env.Queue, destinations.Queues(), dlq, limit)
	if err != nil {
		return err
	}
	src, _ := destinations.Queues().SourceOf(dlq)
	return writeJSON(c.io.Out, map[string]any{"from": dlq, "to": src, "moved": moved})
}
