//go:build unix

package testenv

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// process is a local server that a suite talks to. It runs in its own process group, so
// stopping it reaches everything it started, and a Ctrl-C aimed at go test does not race the
// test binary's own clean-up.
type process struct {
	cmd        *exec.Cmd
	stopWithin time.Duration
	release    io.Closer
	once       sync.Once
	exited     chan struct{}
	waitErr    error
}

// startProcess starts cmd with its output going to out. release, when not nil, is closed at
// the start of stop, before any signal: a server may be set up to end on its own when that
// happens.
func startProcess(cmd *exec.Cmd, out io.Writer, stopWithin time.Duration, release io.Closer) (*process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Stdout, cmd.Stderr = out, out
	// A grandchild that keeps the output open must not hold up Wait, and so stop, for ever.
	cmd.WaitDelay = stopWithin
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, stopWithin: stopWithin, release: release, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop ends the process group: politely first, by force after stopWithin. It may be called
// more than once.
func (p *process) stop() {
	p.once.Do(func() {
		if p.release != nil {
			p.release.Close()
		}
		pgid := -p.cmd.Process.Pid
		_ = syscall.Kill(pgid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(p.stopWithin):
			_ = syscall.Kill(pgid, syscall.SIGKILL)
			<-p.exited
		}
	})
}

// waitListening waits until something accepts TCP connections on addr, and gives up early
// when the process exits first: a server that failed to start would otherwise cost the
// whole wait.
func (p *process) waitListening(ctx context.Context, addr string, within time.Duration) error {
	deadline := time.After(within)
	for {
		if dial(addr) == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("it exited before listening on %s (%v)", addr, p.waitErr)
		case <-deadline:
			return fmt.Errorf("nothing listens on %s after %s", addr, within)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
