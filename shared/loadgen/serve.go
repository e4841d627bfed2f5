package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Serve is a `cartrelay serve` process started from a built binary, as a merchant runs it.
type Serve struct {
	// Addr is where it listens (host:port).
	Addr string
	// LogPath is the file its log lines go to.
	LogPath string

	cmd    *exec.Cmd
	exited chan error
}

// ServeOptions say how to start serve.
type ServeOptions struct {
	// Binary is the cartrelay executable.
	Binary string
	// Data is the data directory.
	Data string
	// Args are added after "serve" (for example --no-throttle, --cpuprofile FILE).
	Args []string
	// Env is added to the process's environment.
	Env []string
	// Addr is the listen address; "" means a free port on 127.0.0.1.
	Addr string
}

// StartServe starts serve and returns once it says where it listens. Its log goes to
// serve.log in the data directory (appended to, so a restart keeps the earlier lines).
func StartServe(ctx context.Context, o ServeOptions) (*Serve, error) {
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	logPath := filepath.Join(o.Data, "serve.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open serve's log file: %w", err)
	}
	args := append([]string{"--data", o.Data, "serve", "--addr", addr}, o.Args...)
	cmd := exec.Command(o.Binary, args...)
	// Its own run directory, so this serve is not noted where a developer's own serve is.
	cmd.Env = append(os.Environ(), "CARTRELAY_RUN_DIR="+filepath.Join(o.Data, "run"))
	cmd.Env = append(cmd.Env, o.Env...)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	cmd.Stdout = logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s serve: %w", o.Binary, err)
	}
	s := &Serve{LogPath: logPath, cmd: cmd, exited: make(chan error, 1)}
	go func() {
		err := cmd.Wait()
		pw.Close()
		s.exited <- err
	}()
	ready := make(chan string, 1)
	go func() {
		// Read lines until serve says where it listens, then copy the rest as it comes.
		defer logFile.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = logFile.Write(append(line, '\n'))
			if a, ok := servingAddr(line); ok {
				ready <- a
				_, _ = io.Copy(logFile, pr)
				return
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case s.Addr = <-ready:
		return s, nil
	case err := <-s.exited:
		return nil, fmt.Errorf("serve exited before it was ready (%v); its log: %s", err, logPath)
	case <-time.After(60 * time.Second):
		_ = s.Kill()
		return nil, fmt.Errorf("serve was not ready within 60 s; its log: %s", logPath)
	case <-ctx.Done():
		_ = s.Kill()
		return nil, ctx.Err()
	}
}

// servingAddr reads the address from serve's "cartrelay is serving" line.
func servingAddr(line []byte) (string, bool) {
	if !bytes.Contains(line, []byte(`"cartrelay is serving"`)) {
		return "", false
	}
	var l struct{ Addr string }
	if json.Unmarshal(line, &l) != nil || l.Addr == "" {
		return "", false
	}
	return l.Addr, true
}

// PID is the process id.
func (s *Serve) PID() int { return s.cmd.Process.Pid }

// Kill ends serve at once (SIGKILL), as a crash or a power cut would, and waits for it.
func (s *Serve) Kill() error {
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-s.exited
	return nil
}

// Stop asks serve to stop (SIGTERM) and waits up to timeout for it to exit.
func (s *Serve) Stop(timeout time.Duration) error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case err := <-s.exited:
		return err
	case <-time.After(timeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("serve did not stop within %s of SIGTERM; killed", timeout)
	}
}

// ProcStats is what the kernel says about a process.
type ProcStats struct {
	// PeakRSS is the resident set's high-water mark (VmHWM).
	PeakRSS int64
	// CPU is the user and system time it used.
	CPU time.Duration
}

// Stats reads serve's peak memory and CPU time from /proc (Linux).
func (s *Serve) Stats() (ProcStats, error) {
	return procStats(s.PID())
}

func procStats(pid int) (ProcStats, error) {
	var st ProcStats
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, fmt.Errorf("read the process status (Linux /proc): %w", err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return st, fmt.Errorf("read VmHWM %q: %w", v, err)
			}
			st.PeakRSS = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, fmt.Errorf("read the process times (Linux /proc): %w", err)
	}
	// The command name (field 2) may hold spaces; the fields after its ")" are fixed.
	rest := string(stat)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) > 13 {
		// utime and stime are fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		stt, _ := strconv.ParseInt(f[12], 10, 64)
		st.CPU = time.Duration(ut+stt) * 10 * time.Millisecond
	}
	return st, nil
}
