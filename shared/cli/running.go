package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// A running `serve` leaves a note in a well-known directory saying where it listens and which
// data directory it uses, so the CLI started from another terminal (or another folder) reads
// and writes the same data: `make run DATA=./elsewhere` followed by `cartrelay demo` then works
// instead of failing on credentials the server never saw.

// running is the note one serve keeps while it runs.
type running struct {
	Addr      string    `json:"addr"`
	Data      string    `json:"data"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
}

// runDir is where the notes live: $CARTRELAY_RUN_DIR, else $XDG_RUNTIME_DIR/cartrelay, else
// the user's cache directory.
func runDir(getenv func(string) string) (string, error) {
	if d := getenv("CARTRELAY_RUN_DIR"); d != "" {
		return d, nil
	}
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "cartrelay"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no directory to note the running serve in (set CARTRELAY_RUN_DIR): %w", err)
	}
	return filepath.Join(d, "cartrelay", "running"), nil
}

func noteFile(dir, addr string) string {
	return filepath.Join(dir, strings.NewReplacer(":", "_", "/", "_", "[", "", "]", "").Replace(addr)+".json")
}

// noteRunning records that this process serves addr over data; the returned function removes
// the note.
func noteRunning(getenv func(string) string, addr, data string, now time.Time) (func(), error) {
	dir, err := runDir(getenv)
	if err != nil {
		return func() {}, err
	}
	abs, err := filepath.Abs(data)
	if err != nil {
		return func() {}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return func() {}, fmt.Errorf("note the running serve: %w", err)
	}
	b, _ := json.Marshal(running{Addr: addr, Data: abs, PID: os.Getpid(), StartedAt: now.UTC()})
	path := noteFile(dir, addr)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return func() {}, fmt.Errorf("note the running serve: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return func() {}, fmt.Errorf("note the running serve: %w", err)
	}
	return func() {
		// Only our own note: a later serve on the same address may have replaced it.
		if r, err := readNote(path); err == nil && r.PID == os.Getpid() && r.Data == abs {
			_ = os.Remove(path)
		}
	}, nil
}

func readNote(path string) (running, error) {
	var r running
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	err = json.Unmarshal(b, &r)
	return r, err
}

// runningServes lists the serves whose process still runs; a note left by one that was
// killed is skipped.
func runningServes(getenv func(string) string) ([]running, error) {
	dir, err := runDir(getenv)
	if err != nil {
		return nil, err
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []running
	for _, p := range paths {
		r, err := readNote(p)
		if err != nil || !alive(r.PID) {
			continue
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b running) int { return strings.Compare(a.Addr, b.Addr) })
	return out, nil
}

// alive reports whether a process with pid exists.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EPERM)
}

// serveAt returns the running serve listening on the host and port of addr ("127.0.0.1:8080");
// "localhost" and 127.0.0.1 are the same host.
func serveAt(serves []running, addr string) (running, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return running{}, false
	}
	for _, r := range serves {
		h, p, err := net.SplitHostPort(r.Addr)
		if err == nil && p == port && sameHost(h, host) {
			return r, true
		}
	}
	return running{}, false
}

func sameHost(a, b string) bool {
	loop := func(h string) bool {
		if h == "localhost" || h == "" {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
	}
	return a == b || loop(a) && loop(b)
}

// dataOfRunningServe picks the data directory when none was chosen: that of the running serve
// (of the only one, or of the one on addr when given), with a note on stderr when it is not
// the default. It returns "" when no serve runs, and an error when several run over different
// directories and none is the default.
func (c *ctx2) dataOfRunningServe(addr string) (string, error) {
	serves, err := runningServes(c.io.Getenv)
	if err != nil || len(serves) == 0 {
		return "", nil
	}
	if addr != "" {
		r, ok := serveAt(serves, addr)
		if !ok {
			return "", nil
		}
		serves = []running{r}
	}
	def, _ := filepath.Abs(c.globals.Data)
	dirs := map[string][]string{}
	for _, r := range serves {
		dirs[r.Data] = append(dirs[r.Data], r.Addr)
	}
	if _, ok := dirs[def]; ok {
		return c.globals.Data, nil
	}
	if len(dirs) > 1 {
		var list []string
		for _, r := range serves {
			list = append(list, r.Addr+" over "+r.Data)
		}
		return "", fmt.Errorf("several cartrelay serve processes run (%s), none over %s; pass --data DIR to say which data to read", strings.Join(list, ", "), c.globals.Data)
	}
	r := serves[0]
	fmt.Fprintf(c.io.Err, "cartrelay: using %s, the data directory of the serve running on %s (pass --data to use another)\n", r.Data, r.Addr)
	return r.Data, nil
}
