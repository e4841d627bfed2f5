package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/agnivade/levenshtein"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/cartrelay/cartrelay/shared/clock"
)

// The command tree is built with cobra from the table in commands(): cobra parses the flags
// (--name value, --name=value, -h, --), routes words to commands, suggests the nearest command
// for a typo and writes shell completions. Each command's flags are read from its usage string
// ("ACCOUNT [--since DATE] [--status]"), so the help a user reads and the flags the parser
// accepts cannot disagree, and adding a command stays one line in the table.

// noEnv lists the commands that run without opening a runtime.
var noEnv = map[string]bool{"demo": true, "version": true}

// createsAccount lists the commands whose ACCOUNT argument may name an account that does not
// exist yet; every other command refuses an unknown account and names the ones that exist.
var createsAccount = map[string]bool{"accounts put": true}

// printsRecords lists the commands that print what was recorded about an account (requests and
// answers, errors, raw events). They open the account's secrets first, so that the output is
// scrubbed of them even in records kept before secrets were scrubbed when written.
var printsRecords = map[string]bool{"contacts get": true, "deliveries list": true, "quarantine list": true,
	"quarantine show": true, "backfill": true}

// Main runs one command line and returns the exit status: 0, 1 for a failure, 2 for a mistake
// in the command line.
func Main(ctx context.Context, args []string, io IO) int {
	if io.Getenv == nil {
		io.Getenv = os.Getenv
	}
	if io.Clock == nil {
		io.Clock = clock.System{}
	}
	if f, ok := io.Out.(*os.File); ok && !io.Terminal {
		io.Terminal = term.IsTerminal(int(f.Fd()))
	}
	root := newRoot(ctx, io, args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		fmt.Fprintf(io.Err, "cartrelay: %s\n%s", ue.Msg, ue.hint())
		return 2
	}
	fmt.Fprintf(io.Err, "cartrelay: %s\n", err)
	return 1
}

// newRoot builds the command tree for one command line.
func newRoot(ctx context.Context, io IO, args []string) *cobra.Command {
	g := Globals{Backend: "embedded", Data: "./.cartrelay"}
	if v := io.Getenv("CARTRELAY_DATA"); v != "" {
		g.Data, g.DataChosen = v, true
	}
	root := &cobra.Command{
		Use:           "cartrelay",
		Short:         "an open integration hub for UltraCart and ThriveCart merchants",
		SilenceErrors: true,
		SilenceUsage:  true,
		// Completion scripts are generated, but `completion` stays out of the command list.
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: true},
	}
	root.SetArgs(args)
	root.SetOut(io.Out)
	root.SetErr(io.Err)
	pf := root.PersistentFlags()
	pf.StringVar(&g.Backend, "backend", g.Backend, "embedded (the local SQLite runtime in --data) or aws (a deployed stack)")
	pf.StringVar(&g.Data, "data", g.Data, "the embedded runtime's data directory (or $CARTRELAY_DATA)")
	root.SetFlagErrorFunc(flagError)
	root.SetHelpFunc(func(cc *cobra.Command, _ []string) { printHelp(cc.OutOrStdout(), cc) })
	group(root, args)
	// --version without cobra's version template: a template would link text/template's
	// reflection into the binary, which keeps every method of every type.
	showVersion := root.Flags().Bool("version", false, "print the version")
	groupRun := root.RunE
	root.RunE = func(cc *cobra.Command, pos []string) error {
		if *showVersion {
			_, err := fmt.Fprintln(cc.OutOrStdout(), "cartrelay "+buildVersion(io).String())
			return err
		}
		return groupRun(cc, pos)
	}

	for _, cmd := range commands() {
		parent := root
		words := strings.Fields(cmd.name)
		for _, w := range words[:len(words)-1] {
			parent = child(parent, w, args)
		}
		leaf := child(parent, words[len(words)-1], args)
		leaf.Short = cmd.summary
		leaf.Annotations = map[string]string{"args": cmd.args, "name": cmd.name}
		leaf.Args = nil // the run function checks its own arguments
		flags := parseUsageFlags(cmd.args)
		for _, f := range flags {
			if f.value == "" {
				leaf.Flags().Bool(f.name, false, "")
			} else {
				leaf.Flags().String(f.name, "", f.value)
			}
		}
		leaf.FParseErrWhitelist = cobra.FParseErrWhitelist{}
		leaf.RunE = func(cc *cobra.Command, pos []string) error {
			if err := checkGlobals(cc, &g); err != nil {
				return err
			}
			if err := checkChoices(cc, flags); err != nil {
				return err
			}
			c := &ctx2{io: io, globals: g}
			if !noEnv[cmd.name] {
				env, err := c.open(ctx, cmd.name == "serve")
				if err != nil {
					return err
				}
				defer env.Close()
				c.env = env
				if account, ok := accountArg(cmd.args, pos); ok && !createsAccount[cmd.name] {
					if err := c.requireAccount(ctx, account); err != nil {
						return err
					}
					if printsRecords[cmd.name] {
						c.learnSecrets(ctx, account)
					}
				}
			}
			err := cmd.run(ctx, c, canonicalArgs(cc.Flags(), flags, pos))
			var ue *UsageError
			if errors.As(err, &ue) && ue.Help == "" {
				ue.Help = cc.CommandPath()
			}
			return err
		}
	}
	return root
}

// child returns parent's sub-command named word, adding it (as a group until a table entry
// gives it a run function) when missing.
func child(parent *cobra.Command, word string, args []string) *cobra.Command {
	for _, c := range parent.Commands() {
		if c.Name() == word {
			return c
		}
	}
	c := &cobra.Command{Use: word}
	group(c, args)
	parent.AddCommand(c)
	return c
}

// group makes c answer a command line that stops at it: with help, or with the nearest
// sub-command when the next word is not one of its own. A table entry with the same name
// replaces this with its own run function and keeps the sub-commands.
func group(c *cobra.Command, args []string) {
	c.SuggestionsMinimumDistance = 2
	// A group does not know its sub-commands' flags: let them through to the word check.
	c.FParseErrWhitelist = cobra.FParseErrWhitelist{UnknownFlags: true}
	c.Args = func(cc *cobra.Command, pos []string) error {
		if len(pos) > 0 {
			return unknownCommand(cc, pos[0])
		}
		return nil
	}
	c.RunE = func(cc *cobra.Command, _ []string) error {
		if name := firstUnknownFlag(cc, args); name != "" {
			return unknownFlag(cc, name)
		}
		printHelp(cc.OutOrStdout(), cc)
		return nil
	}
}

// unknownCommand is the usage error for a word that names no command under c, with the
// nearest ones.
func unknownCommand(c *cobra.Command, word string) error {
	path := strings.TrimPrefix(c.CommandPath()+" "+word, "cartrelay ")
	e := &UsageError{Msg: fmt.Sprintf("unknown command %q", path)}
	for _, s := range c.SuggestionsFor(word) {
		e.Suggestions = append(e.Suggestions, "'"+c.CommandPath()+" "+s+"'")
	}
	if len(e.Suggestions) == 0 {
		e.Help = c.CommandPath()
	}
	return e
}

// firstUnknownFlag returns the first flag in args that neither c nor a parent declares.
func firstUnknownFlag(c *cobra.Command, args []string) string {
	for _, a := range args {
		if a == "--" {
			break
		}
		name, ok := strings.CutPrefix(a, "--")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "=")
		if c.Flags().Lookup(name) == nil && c.InheritedFlags().Lookup(name) == nil && name != "help" && name != "version" {
			return name
		}
	}
	return ""
}

// flagError turns pflag's complaint into a usage error.
func flagError(c *cobra.Command, err error) error {
	var ne *pflag.NotExistError
	if errors.As(err, &ne) && ne.GetSpecifiedName() != "" {
		return unknownFlag(c, ne.GetSpecifiedName())
	}
	return &UsageError{Msg: err.Error(), Help: c.CommandPath()}
}

// unknownFlag is the usage error for a flag c does not take, with the nearest ones it does.
func unknownFlag(c *cobra.Command, name string) error {
	e := &UsageError{Msg: fmt.Sprintf("unknown option --%s for %q", name, strings.TrimPrefix(c.CommandPath(), "cartrelay "))}
	seen := map[string]bool{"help": true, "version": true}
	suggest := func(f *pflag.Flag) {
		if !seen[f.Name] && near(name, f.Name) {
			e.Suggestions = append(e.Suggestions, "--"+f.Name)
		}
		seen[f.Name] = true
	}
	c.Flags().VisitAll(suggest)
	c.InheritedFlags().VisitAll(suggest)
	if len(e.Suggestions) == 0 {
		e.Help = c.CommandPath()
	}
	return e
}

// near is cobra's own rule for suggesting a command: two edits away at most, or a prefix.
func near(typed, name string) bool {
	typed, name = strings.ToLower(typed), strings.ToLower(name)
	return levenshtein.ComputeDistance(typed, name) <= 2 || strings.HasPrefix(name, typed)
}

// checkGlobals validates the options every command takes.
func checkGlobals(c *cobra.Command, g *Globals) error {
	if g.Backend != "embedded" && g.Backend != "aws" {
		return usagef("--backend must be embedded or aws, got %q", g.Backend)
	}
	if c.Flags().Changed("data") {
		g.DataChosen = true
	}
	return nil
}

// checkChoices refuses a flag value outside the choices its usage lists ("--format json|table").
func checkChoices(c *cobra.Command, flags []usageFlag) error {
	for _, f := range flags {
		choices := strings.Split(f.value, "|")
		if len(choices) < 2 || !c.Flags().Changed(f.name) {
			continue
		}
		if v, _ := c.Flags().GetString(f.name); !slices.Contains(choices, v) {
			return &UsageError{Msg: fmt.Sprintf("--%s takes %s, got %q", f.name, strings.Join(choices, " or "), v), Help: c.CommandPath()}
		}
	}
	return nil
}

// usageFlag is one flag read from a usage string: value names its argument ("" for a switch).
type usageFlag struct{ name, value string }

// parseUsageFlags reads the flags of a usage string: "--name VALUE" takes a value, "--name"
// followed by nothing, "|", or another option is a switch. Brackets and parentheses only group.
func parseUsageFlags(usage string) []usageFlag {
	toks := strings.Fields(usage)
	var out []usageFlag
	for i, t := range toks {
		t = strings.TrimLeft(t, "[(")
		name, ok := strings.CutPrefix(t, "--")
		if !ok {
			continue
		}
		closed := strings.ContainsAny(name, "])")
		name = strings.TrimRight(name, "])")
		f := usageFlag{name: name}
		if !closed && i+1 < len(toks) {
			next := toks[i+1]
			if next != "|" && !strings.HasPrefix(next, "-") && !strings.HasPrefix(next, "[") && !strings.HasPrefix(next, "(") {
				f.value = strings.TrimRight(next, "])")
			}
		}
		if !slices.ContainsFunc(out, func(o usageFlag) bool { return o.name == f.name }) {
			out = append(out, f)
		}
	}
	return out
}

// canonicalArgs is what a command's run function reads: the positional arguments, then each
// flag given, as "--name value" or "--name".
func canonicalArgs(fs *pflag.FlagSet, flags []usageFlag, pos []string) []string {
	out := slices.Clone(pos)
	for _, f := range flags {
		if !fs.Changed(f.name) {
			continue
		}
		if f.value == "" {
			out = append(out, "--"+f.name)
			continue
		}
		v, _ := fs.GetString(f.name)
		out = append(out, "--"+f.name, v)
	}
	return out
}

// accountArg returns the ACCOUNT positional argument when the usage string starts with one.
func accountArg(usage string, pos []string) (string, bool) {
	first, _, _ := strings.Cut(strings.TrimSpace(usage), " ")
	if strings.Trim(first, "[]") != "ACCOUNT" || len(pos) == 0 {
		return "", false
	}
	return pos[0], true
}

// printHelp writes the commands under c (all of them for the root) or, for a command, its
// usage.
func printHelp(w io.Writer, c *cobra.Command) {
	if name := c.Annotations["name"]; name != "" && !c.HasAvailableSubCommands() {
		fmt.Fprintf(w, "Usage: cartrelay %s %s\n\n  %s\n", name, c.Annotations["args"], c.Short)
		fmt.Fprint(w, globalHelp)
		return
	}
	if c.HasParent() {
		fmt.Fprintf(w, "Usage: %s COMMAND [ARGS]\n\nCommands:\n", c.CommandPath())
	} else {
		fmt.Fprintf(w, "cartrelay: %s.\n\nUsage: cartrelay [--backend embedded|aws] [--data DIR] COMMAND [ARGS]\n\nCommands:\n", c.Short)
	}
	prefix := strings.TrimPrefix(c.CommandPath()+" ", "cartrelay ")
	for _, cmd := range commands() {
		if strings.HasPrefix(cmd.name+" ", prefix) || prefix == "" {
			fmt.Fprintf(w, "  %-18s %s\n  %18s %s\n", cmd.name, cmd.args, "", cmd.summary)
		}
	}
	fmt.Fprint(w, globalHelp)
}

const globalHelp = `
Global options:
  --backend embedded   the local SQLite runtime in --data (default)
  --backend aws        a deployed stack: TABLE_NAME, KMS_KEY_ID and QUEUE_URL_* from the
                       environment; endpoints from the standard AWS_* variables
  --data DIR           the embedded runtime's data directory (default: the running
                       serve's, else ./.cartrelay; or $CARTRELAY_DATA)

Output is JSON with snake_case keys (list commands also take --format table); money is a
decimal string beside its currency; times are RFC 3339 in UTC. 'cartrelay COMMAND --help'
shows one command.
`
