//go:build unix

package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFindChromiumHonoursCHROMIUM(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "my-chrome")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CHROMIUM", exe)
	if got, err := FindChromium(); err != nil || got != exe {
		t.Errorf("FindChromium() = %q, %v; want %q", got, err, exe)
	}

	// A wrong explicit choice is an error even where another browser is installed.
	t.Setenv("CHROMIUM", filepath.Join(t.TempDir(), "missing"))
	if got, err := FindChromium(); err == nil {
		t.Errorf("FindChromium() = %q with CHROMIUM naming nothing, want an error", got)
	}
}
