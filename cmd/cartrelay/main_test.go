package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// build builds the CLI as `make run` does (-buildvcs=auto overrides a GOFLAGS=-buildvcs=false)
// and returns the binary and the linker's dependency dump.
func build(t *testing.T) (bin, deps string) {
	t.Helper()
	bin = filepath.Join(t.TempDir(), "cartrelay")
	cmd := exec.Command("go", "build", "-buildvcs=auto", "-ldflags=-dumpdep", "-o", bin, ".")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v\n%s", err, stderr.String()[:min(stderr.Len(), 4000)])
	}
	return bin, stderr.String()
}

func TestTheCLI(t *testing.T) {
	bin, deps := build(t)

	// A text/template or html/template that can call methods makes the linker keep every
	// exported method of every reachable type (the AWS SDK's included): 6 MB more here.
	t.Run("keeps method pruning", func(t *testing.T) {
		for _, line := range strings.Split(deps, "\n") {
			if strings.Contains(line, "<ReflectMethod>") {
				t.Fatalf("the CLI links method reflection, which disables the linker's pruning of methods: %s", line)
			}
		}
	})

	// `cartrelay version` names the commit it was built from.
	t.Run("version carries the revision built", func(t *testing.T) {
		head, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err != nil {
			t.Skipf("not in a git work tree (%v); the toolchain stamps no revision", err)
		}
		top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err != nil || !fi.IsDir() {
			// The toolchain recognises a repository by its .git directory; a linked work tree
			// (git worktree add) has a .git file, and its builds carry no revision.
			t.Skip("a linked git work tree: the toolchain stamps no revision here")
		}
		out, err := exec.Command(bin, "version", "--format", "json").Output()
		if err != nil {
			t.Fatalf("cartrelay version: %v", err)
		}
		var v struct{ Version, Revision, Go string }
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if v.Revision != strings.TrimSpace(string(head)) || v.Version == "" || !strings.HasPrefix(v.Go, "go1.") {
			t.Fatalf("version %+v, want revision %s", v, head)
		}
	})
}
