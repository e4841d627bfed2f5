package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// run runs one command line in process; terminal says whether stdout plays a terminal.
func run(t *testing.T, terminal bool, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, IO{Out: &out, Err: &errb, Terminal: terminal,
		Getenv: func(string) string { return "" }})
	return out.String(), errb.String(), code
}

func TestUnknownCommandsAndOptionsSuggestTheNearest(t *testing.T) {
	data := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ordrs", "list", "acme"}, `unknown command "ordrs"` + "\nDid you mean 'cartrelay orders'?"},
		{[]string{"orders", "lst", "acme"}, `unknown command "orders lst"` + "\nDid you mean 'cartrelay orders list'?"},
		{[]string{"qeues", "stats"}, "Did you mean 'cartrelay queues'?"},
		{[]string{"backfil", "acme"}, "Did you mean 'cartrelay backfill'?"},
		{[]string{"versoin"}, "Did you mean 'cartrelay version'?"},
		{[]string{"orders", "list", "acme", "--sinse", "2020-01-01"}, `unknown option --sinse for "orders list"` + "\nDid you mean --since?"},
		{[]string{"backfill", "acme", "--stauts"}, "Did you mean --status?"},
		{[]string{"deliveries", "list", "acme", "--fialed"}, "Did you mean --failed?"},
		{[]string{"orders", "list", "acme", "--dat", "x"}, "Did you mean --data?"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"` + "\nRun 'cartrelay help' for the commands."},
		{[]string{"orders", "list", "acme", "--format", "yaml"}, `--format takes json or table, got "yaml"` + "\nRun 'cartrelay orders list --help' for its usage."},
		{[]string{"orders", "list", "acme", "--since"}, "flag needs an argument: --since"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errs, code := run(t, false, append([]string{"--data", data}, tc.args...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2 (a usage error); stdout %q stderr %q", code, out, errs)
			}
			if !strings.Contains(errs, tc.want) {
				t.Fatalf("stderr:\n%s\nwant it to contain:\n%s", errs, tc.want)
			}
		})
	}
}

// TestUnknownAccountIsAnErrorNamingTheAccounts runs every command whose first argument is an
// ACCOUNT (the commands added later included) with an account that does not exist.
func TestUnknownAccountIsAnErrorNamingTheAccounts(t *testing.T) {
	data := t.TempDir()
	file := filepath.Join(t.TempDir(), "a.json")
	if err := os.WriteFile(file, []byte(`{"ontraport":{"enabled":true}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"acme", "globex"} {
		if out, errs, code := run(t, false, "--data", data, "accounts", "put", id, "--file", file); code != 0 {
			t.Fatalf("accounts put: %s %s", out, errs)
		}
	}
	checked := 0
	for _, cmd := range commands() {
		if _, ok := accountArg(cmd.args, []string{"x"}); !ok || createsAccount[cmd.name] {
			continue
		}
		checked++
		args := append([]string{"--data", data}, strings.Fields(cmd.name)...)
		args = append(args, "acmee")
		if cmd.name == "backfill" {
			args = append(args, "--status")
		}
		t.Run(cmd.name, func(t *testing.T) {
			out, errs, code := run(t, false, args...)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stdout %q stderr %q", code, out, errs)
			}
			if out != "" {
				t.Errorf("printed %q for an unknown account", out)
			}
			want := `no account "acmee" in the data directory ` + data + "; the accounts are: acme, globex. Did you mean acme?"
			if !strings.Contains(errs, want) {
				t.Fatalf("stderr %q, want it to contain %q", errs, want)
			}
		})
	}
	if checked < 10 {
		t.Fatalf("only %d commands take an ACCOUNT; the usage strings changed?", checked)
	}
	// An empty data directory says so, and how to make an account.
	_, errs, code := run(t, false, "--data", t.TempDir(), "orders", "list", "nosuch")
	if code != 1 || !strings.Contains(errs, "which has no accounts yet. Create one with 'cartrelay accounts put nosuch --file FILE.json'") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}

func TestEmptyListsSayItOnATerminalAndStayJSONWhenPiped(t *testing.T) {
	data := t.TempDir()
	file := filepath.Join(t.TempDir(), "a.json")
	if err := os.WriteFile(file, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := run(t, false, "--data", data, "accounts", "put", "acme", "--file", file); code != 0 {
		t.Fatal(errs)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"orders", "list", "acme"}, "no orders in account acme\n"},
		{[]string{"orders", "list", "acme", "--since", "2026-01-02"}, "no orders in account acme paid since 2026-01-02T00:00:00Z\n"},
		{[]string{"deliveries", "list", "acme"}, "no deliveries in account acme yet\n"},
		{[]string{"deliveries", "list", "acme", "--failed"}, "no failed deliveries in account acme\n"},
		{[]string{"quarantine", "list", "acme"}, "no quarantined events in account acme: every event was ingested\n"},
		{[]string{"quarantine", "list"}, "no quarantined events in any account: every event was ingested\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := append([]string{"--data", data}, tc.args...)
			out, errs, code := run(t, true, args...)
			if code != 0 || out != tc.want {
				t.Fatalf("on a terminal: exit %d, stdout %q (stderr %q), want %q", code, out, errs, tc.want)
			}
			out, errs, code = run(t, false, args...)
			if code != 0 || out != "" {
				t.Fatalf("piped: exit %d, stdout %q (stderr %q), want nothing", code, out, errs)
			}
			out, _, _ = run(t, false, append(args, "--format", "table")...)
			if out != tc.want {
				t.Fatalf("piped --format table: %q, want %q", out, tc.want)
			}
		})
	}
}

func TestListsPrintTablesOnATerminalAndJSONLinesOtherwise(t *testing.T) {
	data := t.TempDir()
	file := filepath.Join(t.TempDir(), "a.json")
	if err := os.WriteFile(file, []byte(`{"ontraport":{"enabled":true},"iterable":{"enabled":false}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"acme", "globex"} {
		if _, errs, code := run(t, false, "--data", data, "accounts", "put", id, "--file", file); code != 0 {
			t.Fatal(errs)
		}
	}
	out, errs, code := run(t, true, "--data", data, "accounts", "list")
	if code != 0 {
		t.Fatal(errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ACCOUNT") || !strings.Contains(lines[1], "acme") ||
		!strings.Contains(lines[1], "dry run") || !strings.Contains(lines[1], "off") {
		t.Fatalf("table:\n%s", out)
	}
	// Columns line up: every row's second column starts where the heading's does.
	col := strings.Index(lines[0], "CREATED")
	for _, l := range lines[1:] {
		if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Fatalf("column CREATED not aligned at %d:\n%s", col, out)
		}
	}
	out, _, _ = run(t, true, "--data", data, "accounts", "list", "--format", "json")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil || v["id"] == nil {
			t.Fatalf("--format json line %q: %v", l, err)
		}
	}
	piped, _, _ := run(t, false, "--data", data, "accounts", "list")
	if piped != out {
		t.Fatalf("piped output differs from --format json:\n%s\n%s", piped, out)
	}
}

func TestVersionPrintsTheModuleVersionAndRevision(t *testing.T) {
	info := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/cartrelay/cartrelay", Version: "v1.4.0"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-05-01T10:00:00Z"},
				{Key: "vcs.modified", Value: "true"}}}, true
	}
	var out bytes.Buffer
	if code := Main(context.Background(), []string{"version"}, IO{Out: &out, Err: &out, BuildInfo: info}); code != 0 {
		t.Fatal(out.String())
	}
	var v Version
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v.Version != "v1.4.0" || v.Revision != "0123abcd" || !v.Modified || v.Go != "go1.26.0" {
		t.Fatalf("version JSON %s: %+v %v", out.String(), v, err)
	}
	for _, args := range [][]string{{"version", "--format", "text"}, {"--version"}} {
		out.Reset()
		if code := Main(context.Background(), args, IO{Out: &out, Err: &out, BuildInfo: info}); code != 0 {
			t.Fatal(out.String())
		}
		if want := "cartrelay v1.4.0 (0123abcd, modified, 2026-05-01T10:00:00Z) go1.26.0\n"; out.String() != want {
			t.Fatalf("%v: %q, want %q", args, out.String(), want)
		}
	}
}
