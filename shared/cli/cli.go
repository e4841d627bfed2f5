// Package cli is the cartrelay operator command line: the local runtime (`serve`) and the
// commands that read and repair what a runtime holds. Output is JSON with snake_case keys;
// errors say what was wrong and how to fix it, with a non-zero exit.
package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/phone"
	"github.com/cartrelay/cartrelay/shared/redact"
	"github.com/cartrelay/cartrelay/shared/ultracart/ucpoll"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// IO is where a command reads and writes, so tests run commands in process.
type IO struct {
	Out    io.Writer
	Err    io.Writer
	Getenv func(string) string
	Clock  clock.Clock
	// Signals, when set, replaces SIGINT/SIGTERM handling for `serve` (tests cancel it).
	Signals func(context.Context) (context.Context, context.CancelFunc)
	// Ready is called with the address `serve` listens on.
	Ready func(addr string)
	// Terminal says a person reads Out: empty lists say so, and `contacts get` is short.
	// Main sets it when Out is a terminal.
	Terminal bool
	// BuildInfo replaces runtime/debug.ReadBuildInfo for `version` (tests).
	BuildInfo func() (*debug.BuildInfo, bool)
}

// Globals are the options every command takes.
type Globals struct {
	Backend string // embedded | aws
	Data    string // data directory of the embedded backend
	// DataChosen is set when --data or $CARTRELAY_DATA named the directory; otherwise the CLI
	// follows a running serve's.
	DataChosen bool
}

// UsageError is a mistake in the command line; it exits with status 2.
type UsageError struct {
	Msg string
	// Suggestions are what the user probably meant ("did you mean").
	Suggestions []string
	// Help is the command whose help to point at ("cartrelay orders list"); "" for the list of
	// every command.
	Help string
}

func (e *UsageError) Error() string { return e.Msg }

// hint is what follows the message: the suggestions, or where to read the usage.
func (e *UsageError) hint() string {
	if len(e.Suggestions) > 0 {
		return "Did you mean " + strings.Join(e.Suggestions, " or ") + "?\n"
	}
	if e.Help == "" || e.Help == "cartrelay" {
		return "Run 'cartrelay help' for the commands.\n"
	}
	return "Run '" + e.Help + " --help' for its usage.\n"
}

func usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

type command struct {
	name    string
	args    string
	summary string
	run     func(ctx context.Context, c *ctx2, args []string) error
}

// ctx2 is what a command runs with: the parsed globals, the IO and an open runtime.
type ctx2 struct {
	io      IO
	globals Globals
	env     *wiring.Env
	// shown is the command's output before secrets are scrubbed from it, for the one command
	// whose purpose is to show one (accounts tracking-secret).
	shown io.Writer
}

func commands() []command {
	return []command{
		{"serve", "[--addr 127.0.0.1:8080] [--no-throttle] [--cpuprofile FILE]", "run every handler in one process on the embedded database (the local runtime); --no-throttle lifts the per-route request limits (for load tests), --cpuprofile writes a Go CPU profile until serve stops", cmdServe},
		{"accounts put", "ACCOUNT --file FILE.json", "create or update an account from a JSON file (absent keys keep their value, null clears)", cmdAccountsPut},
		{"accounts get", "ACCOUNT", "print an account's settings (secrets are never printed)", cmdAccountsGet},
		{"accounts list", "[--format json|table]", "print every account: a table on a terminal, else one JSON object per line", cmdAccountsList},
		{"accounts reseal", "[ACCOUNT]", "seal again, in the current format, the secrets an earlier release sealed (every account when none is named)", cmdAccountsReseal},
		{"contacts get", "ACCOUNT EMAIL [--full] [--format json|text]", "print a contact: profile and aggregates, orders, subscriptions, facts and deliveries (on a terminal a summary; --full, or piped, the whole record as JSON)", cmdContactsGet},
		{"contacts erase", "ACCOUNT EMAIL [--yes]", "erase a contact at its request: its personal data goes from everywhere cartrelay keeps it, its orders stay for revenue under a pseudonym, and ONTRAPORT and Iterable are told to forget it; without --yes it prints what would be erased", cmdContactsErase},
		{"orders list", "ACCOUNT [--since DATE] [--format json|table]", "print orders paid since DATE (RFC 3339 or YYYY-MM-DD): a table on a terminal, else one JSON object per line", cmdOrdersList},
		{"quarantine list", "[ACCOUNT] [--limit N] [--format json|table]", "print events kept raw with the reason they were not ingested", cmdQuarantineList},
		{"quarantine show", "ACCOUNT ID", "print one kept-raw event with its message", cmdQuarantineShow},
		{"quarantine replay", "ACCOUNT (ID | --all)", "send kept-raw events to ingest again (after fixing the cause)", cmdQuarantineReplay},
		{"deliveries list", "ACCOUNT [--failed] [--limit N] [--format json|table]", "print delivery attempts to destinations, newest first", cmdDeliveriesList},
		{"deliveries replay", "ACCOUNT [--failed | --id FACT_ID]", "send failed deliveries to their destination again (after fixing the cause)", cmdDeliveriesReplay},
		{"connections put", "ACCOUNT ultracart --simple-key KEY [--base-url URL] [--no-check]", "connect a source API with a key, so the pollers keep the history in sync and backfill it; the key is checked with UltraCart first (one request) unless --no-check", cmdConnectionsPut},
		{"backfill", "ACCOUNT [--since DATE] [--status] [--format json|table]", "walk the account's UltraCart history to the present with a progress bar (or follow the poller doing it); --status prints each stream's progress, last error and since (a table on a terminal, else JSON)", cmdBackfill},
		{"queues stats", "[--format json|table]", "print the message counts of every queue and dead-letter queue", cmdQueuesStats},
		{"queues replay", "QUEUE [--limit N]", "move messages from QUEUE's dead-letter queue back to QUEUE", cmdQueuesReplay},
		{"invites create", "[--account ACCOUNT] [--expires 7d] [--url URL]", "print a single-use link that lets one new UltraCart store connect (to ACCOUNT when given; it then owns that account)", cmdInvitesCreate},
		{"console link", "ACCOUNT [--url URL]", "print a single-use link that signs in to ACCOUNT's console, valid for 10 minutes", cmdConsoleLink},
		{"console signout", "ACCOUNT", "end every console session of ACCOUNT", cmdConsoleSignout},
		{"accounts tracking-secret", "ACCOUNT [--rotate]", "print the secret the store's server signs page-view identity tokens with (made on first use; docs/iterable.md); --rotate replaces it, and tokens signed with the old one stop working", cmdTrackingSecret},
		{"demo", "[--url http://127.0.0.1:8080] [--account demo] [--orders 3000]", "post realistic sample events to a running serve, so a contact fills up, after writing a synthetic history of about N orders over several years (0: none) so the reports have data", cmdDemo},
		{"version", "[--format json|text]", "print cartrelay's version and the source revision it was built from", cmdVersion},
		{"reports verify", "ACCOUNT [--from DATE --to DATE]", "recompute the reports from the stored orders and print every difference (exit 1 if any)", cmdReportsVerify},
		{"reports rebuild", "ACCOUNT", "rebuild the account's reports from its stored orders, with a progress bar (reports answer from the old rollups until it is done; ingest waits meanwhile)", cmdReportsRebuild},
		{"reports drill", "ACCOUNT HANDLE [--cursor C] [--limit N]", "list the orders or contacts behind a number of a report (its \"drill\" handle), a page at a time", cmdReportsDrill},
		{"reports", "KIND ACCOUNT [--from DATE] [--to DATE] [--by day|week|month] [--model first|last|linear] [--touch source|source/medium|source/medium/campaign] [--cohort first-order|first-seen] [--months N] [filters] [--format json|csv|table]", "a report: revenue (or orders), acquisition, attribution, cohorts, subscriptions, products or engagement, in the account's time zone; filters: --source, --product, --currency, --first-source/-medium/-campaign, --last-source/-medium/-campaign", cmdReports},
	}
}

func (c *ctx2) open(ctx context.Context, serving bool) (*wiring.Env, error) {
	log := slog.New(slog.DiscardHandler)
	if serving {
		log = wiring.JSONLogger(c.io.Err, c.io.Getenv("LOG_LEVEL"))
	}
	poll, err := wiring.PollOptionsFromEnv(c.io.Getenv, ucpoll.Options{})
	if err != nil {
		return nil, err
	}
	// The OAuth connect flow and the links in pages need the public URL and UltraCart's
	// Developer Application; locally PUBLIC_BASE_URL is e.g. http://127.0.0.1:8080.
	cfg := app.Config{
		PublicBaseURL:         c.io.Getenv("PUBLIC_BASE_URL"),
		UltraCartClientID:     c.io.Getenv("ULTRACART_CLIENT_ID"),
		UltraCartClientSecret: c.io.Getenv("ULTRACART_CLIENT_SECRET"),
		UltraCartBaseURL:      c.io.Getenv("ULTRACART_BASE_URL"),
		ConsoleSessionKey:     c.io.Getenv("CONSOLE_SESSION_KEY"),
		ThriveCartBaseURL:     c.io.Getenv("THRIVECART_BASE_URL"),
	}
	// Locally anyone may connect a store unless asked otherwise; deployed, the default is the
	// other way round (wiring.Lambda).
	if cfg.ConnectRequiresInvite, err = wiring.RequiresInvite(c.io.Getenv, false); err != nil {
		return nil, err
	}
	if serving && cfg.ConsoleSessionKey == "" && c.globals.Backend == "embedded" {
		// Locally one process serves every request, so a key kept in the data directory is
		// enough and keeps console sign-ins valid across restarts.
		if cfg.ConsoleSessionKey, err = localConsoleKey(c.globals.Data); err != nil {
			return nil, err
		}
	}
	if !serving && !c.globals.DataChosen && c.globals.Backend == "embedded" {
		// Read what the running serve reads, wherever it was started from.
		data, err := c.dataOfRunningServe("")
		if err != nil {
			return nil, err
		}
		if data != "" {
			c.globals.Data = data
		}
		c.globals.DataChosen = true
	}
	opt := wiring.Options{Clock: c.io.Clock, Log: log, Phone: phone.CachedE164(), Poll: poll, Config: cfg}
	if c.globals.Backend == "aws" {
		if serving {
			return nil, usagef("serve runs the embedded runtime; with --backend aws the handlers run in Lambda")
		}
		cfg, err := wiring.AWSConfigFromEnv(c.io.Getenv)
		if err != nil {
			return nil, fmt.Errorf("--backend aws: %w (export the stack's outputs, e.g. TABLE_NAME and QUEUE_URL_INGEST)", err)
		}
		return c.scrubbed(operator.AWS(ctx, cfg, opt))
	}
	return c.scrubbed(operator.Embedded(ctx, c.globals.Data, opt))
}

// scrubbed makes what the command prints go through the runtime's known secrets: a record kept
// before secrets were scrubbed from the table still prints without them.
func (c *ctx2) scrubbed(env *wiring.Env, err error) (*wiring.Env, error) {
	if err == nil {
		c.shown = c.io.Out
		c.io.Out = redact.Writer(c.io.Out, env.Known)
	}
	return env, err
}

// localConsoleKey reads the console session key kept in dataDir, creating it with random
// content on first use; the file is readable by its owner only.
func localConsoleKey(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "console-session.key")
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read the console session key %s: %w", path, err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("console session key: %w", err)
	}
	key := hex.EncodeToString(raw)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("create the data directory %s: %w", dataDir, err)
	}
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write the console session key %s: %w", path, err)
	}
	return key, nil
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeLine prints v as one JSON line.
func writeLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// flagValue pulls "--name value" or "--name=value" out of args.
func flagValue(args []string, name string) (string, []string, bool, error) {
	var rest []string
	val, found := "", false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == name {
			if i+1 >= len(args) {
				return "", nil, false, usagef("%s needs a value", name)
			}
			val, found = args[i+1], true
			i++
			continue
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			val, found = v, true
			continue
		}
		rest = append(rest, a)
	}
	return val, rest, found, nil
}

// flagBool pulls "--name" out of args.
func flagBool(args []string, name string) (bool, []string) {
	var rest []string
	found := false
	for _, a := range args {
		if a == name {
			found = true
			continue
		}
		rest = append(rest, a)
	}
	return found, rest
}

func positional(args []string, want int, names string) ([]string, error) {
	for _, a := range args {
		if strings.HasPrefix(a, "--") {
			return nil, usagef("unknown option %s", a)
		}
	}
	if len(args) != want {
		return nil, usagef("expected %s, got %d argument(s)", names, len(args))
	}
	return args, nil
}
