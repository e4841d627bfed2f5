package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ErrMotoMissing is wrapped by StartMoto when no moto_server can be found.
var ErrMotoMissing = errors.New("moto_server not found")

const (
	motoWhat    = "the SQS emulator (moto_server)"
	motoInstall = "install moto 5.x (pip install 'moto[server]')"
	// It starts in a few seconds; beside DynamoDB Local's JVM on a loaded 2-core machine it
	// has taken over 20.
	motoStartup    = 60 * time.Second
	motoStopWithin = 5 * time.Second
)

// FindMoto returns the path of moto_server. It looks under pyenv's versions before PATH,
// because a bare CI shell may not have pyenv's shims on PATH.
func FindMoto() (string, error) {
	if home, err := os.UserHomeDir(); err == nil {
		// Any installed copy will do: the suites use only what moto 5.x has in common.
		matches, _ := filepath.Glob(filepath.Join(home, ".pyenv", "versions", "*", "bin", "moto_server"))
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return m, nil
			}
		}
	}
	if p, err := exec.LookPath("moto_server"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w under ~/.pyenv/versions/*/bin or on PATH", ErrMotoMissing)
}

// StartMoto starts moto_server on a free loopback port and returns its endpoint URL and a
// function that stops it. It suits TestMain, which has no *testing.T: pass a failure to
// MotoUnavailable in each test that needs the endpoint.
func StartMoto() (endpoint string, stop func(), err error) {
	bin, err := FindMoto()
	if err != nil {
		return "", nil, err
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return "", nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	dieWithParent(cmd.SysProcAttr)
	out := &headBuffer{limit: 16 << 10}
	start := time.Now()
	p, err := startProcess(cmd, out, motoStopWithin, nil)
	if err != nil {
		return "", nil, fmt.Errorf("start %s: %w", bin, err)
	}
	if err := p.waitListening(context.Background(), addr, motoStartup); err != nil {
		p.stop()
		return "", nil, fmt.Errorf("%s did not start: %w; its output:\n%s", bin, err, out.String())
	}
	fmt.Fprintf(os.Stderr, "moto_server %s ready in %s\n", addr, time.Since(start).Round(time.Millisecond))
	return "http://" + addr, p.stop, nil
}

// Moto starts a moto_server for one test (or fails under CI, or skips, when there is none)
// and stops it when the test ends. A package with several tests is faster with StartMoto in
// TestMain.
func Moto(t testing.TB) (endpoint string) {
	t.Helper()
	endpoint, stop, err := StartMoto()
	if err != nil {
		MotoUnavailable(t, err)
	}
	t.Cleanup(stop)
	return endpoint
}

// MotoUnavailable reports StartMoto's error for one test: a missing moto_server skips the
// test (and fails it under CI); any other failure fails it.
func MotoUnavailable(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrMotoMissing) {
		Missing(t, motoWhat, motoInstall)
	}
	t.Fatalf("%s: %v", motoWhat, err)
}

// dieWithParent asks the kernel to kill the server if the test binary dies before stop runs
// (a -timeout panic, a killed `go test`), so no orphan keeps running. Pdeathsig exists only on
// Linux; setting it by name keeps this file building on macOS, where an orphan is possible.
func dieWithParent(attr *syscall.SysProcAttr) {
	if f := reflect.ValueOf(attr).Elem().FieldByName("Pdeathsig"); f.IsValid() && f.CanSet() {
		f.Set(reflect.ValueOf(syscall.SIGKILL))
	}
}

// headBuffer keeps the first bytes written to it: moto logs every request, and only its
// start-up output helps explain a failure.
type headBuffer struct {
	mu    sync.Mutex
	buf   []byte
	limit int
}

func (b *headBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.limit - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *headBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
