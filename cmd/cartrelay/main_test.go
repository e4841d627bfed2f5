package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersionCarriesTheRevisionBuilt builds the CLI as `make run` does and checks that
// `cartrelay version` names the commit it was built from.
func TestVersionCarriesTheRevisionBuilt(t *testing.T) {
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
	bin := filepath.Join(t.TempDir(), "cartrelay")
	// As the Makefile builds it: -buildvcs=auto overrides a GOFLAGS=-buildvcs=false.
	if out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
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
}
