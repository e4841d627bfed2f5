// Package testenv starts the local stand-ins that cartrelay's contract suites run against
// (DynamoDB Local, the SQS emulator) and decides what happens when one is missing: under
// CI=true a missing tool fails the test, elsewhere it skips with one line saying what to install.
package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// InCI reports whether the suite runs under CI=true, where nothing may be skipped.
func InCI() bool {
	v, _ := strconv.ParseBool(os.Getenv("CI"))
	return v
}

// Missing fails the test under CI and skips it elsewhere. what names the tool; install says
// how to get it.
func Missing(t testing.TB, what, install string) {
	t.Helper()
	msg := fmt.Sprintf("%s is not available: %s", what, install)
	if InCI() {
		t.Fatalf("CI=true requires %s", msg)
	}
	t.Skip(msg)
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitForPort waits until something accepts TCP connections on addr.
func WaitForPort(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := dial(addr)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %s: %w", addr, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dial checks once whether something accepts TCP connections on addr.
func dial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err == nil {
		c.Close()
	}
	return err
}

// RepoRoot finds the module root (the directory holding go.mod) above the working directory,
// where tools fetched at test time are cached under .cache/.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := findRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// findRepoRoot is RepoRoot for callers without a testing.TB (TestMain).
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
