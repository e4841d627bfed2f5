//go:build unix

package testenv

import (
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWatchdogEndsChildWhenPipeCloses checks the mechanism that keeps DynamoDB Local from
// outliving a crashed test binary, with sleep standing in for the JVM.
func TestWatchdogEndsChildWhenPipeCloses(t *testing.T) {
	cmd := exec.Command("sh", "-c", watchdog, "watchdog", "sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	select {
	case err := <-exited:
		t.Fatalf("watchdog exited while its pipe was open: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	stdin.Close() // what the kernel does when the test binary dies
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("child still running 5s after the pipe closed")
	}
	// The whole group is gone, the child included. The killed child is reaped by whoever
	// inherits it, a moment after the watchdog exits, so give that a few seconds.
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(-cmd.Process.Pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatal("process group still exists 5s after the watchdog exited")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDynamoDBLocalStartsAndStops(t *testing.T) {
	endpoint, stop, err := StartDynamoDBLocal(t.Context())
	if err != nil {
		dynamoDBLocalFailed(t, err)
	}
	t.Cleanup(stop)
	addr := strings.TrimPrefix(endpoint, "http://")
	if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
		t.Fatalf("endpoint %s is not on loopback", endpoint)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("DynamoDB Local not reachable at %s: %v", addr, err)
	}
	c.Close()
	stop()
	stop() // a second stop is harmless
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("DynamoDB Local still listening on %s after stop", addr)
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	b := &tailBuffer{max: 8}
	for _, s := range []string{"abc", "defgh", "ijkl", ""} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := b.String(); got != "efghijkl" {
		t.Fatalf("kept %q, want %q", got, "efghijkl")
	}
}
