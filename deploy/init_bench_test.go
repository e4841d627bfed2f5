package deploy

// The functions' start-up, measured on the real bootstrap binaries: each one is built with its
// Makefile target for this machine's architecture, started with the environment template.yaml
// gives it, and timed until it asks a fake Lambda Runtime API for its first invocation.
// A cold start adds this span to the first request, on top of Lambda fetching the code, which
// grows with its size (see scripts/bench-figures.sh).

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/testenv"
)

// startLimit is how long a function may take to ask for its first invocation.
const startLimit = 10 * time.Second

// fakeRuntimeAPI serves the Lambda Runtime API's invocation/next and init/error on loopback.
// It never hands out an invocation: the run ends when the function asks for one.
type fakeRuntimeAPI struct {
	srv  *httptest.Server
	pid  atomic.Int64
	next chan nextRequest
	// initError receives the body of POST /runtime/init/error.
	initError chan string
	done      chan struct{}
}

type nextRequest struct {
	at    time.Time
	rssKB int64
	cpu   time.Duration
}

func newFakeRuntimeAPI(t testing.TB) *fakeRuntimeAPI {
	api := &fakeRuntimeAPI{next: make(chan nextRequest, 1), initError: make(chan string, 1), done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		pid := int(api.pid.Load())
		req := nextRequest{at: time.Now(), rssKB: rssKB(pid), cpu: cpuTime(pid)}
		select {
		case api.next <- req:
		default:
		}
		// Hold the request, as Lambda does between invocations, until the process is stopped.
		select {
		case <-r.Context().Done():
		case <-api.done:
		}
	})
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		select {
		case api.initError <- string(body):
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	})
	api.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		close(api.done)
		api.srv.Close()
	})
	return api
}

func (api *fakeRuntimeAPI) addr() string { return strings.TrimPrefix(api.srv.URL, "http://") }

// rssKB is the resident set of a process (Linux), 0 when unknown.
func rssKB(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// cpuTime is the CPU time all threads of a process have run (Linux), 0 when unknown. Unlike
// the wall-clock span, it does not grow when other work on the machine delays the process.
func cpuTime(pid int) time.Duration {
	stats, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var total time.Duration
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// The first field is the time the thread has spent on a CPU, in nanoseconds.
		fields := strings.Fields(string(data))
		if len(fields) > 0 {
			ns, _ := strconv.ParseInt(fields[0], 10, 64)
			total += time.Duration(ns)
		}
	}
	return total
}

// networkTrap accepts every connection a function makes outside the Runtime API: the SDK's
// endpoints and the HTTP(S) proxy point here, so any call to AWS or elsewhere lands on it.
type networkTrap struct {
	ln    net.Listener
	mu    sync.Mutex
	calls []string
}

func newNetworkTrap(t testing.TB) *networkTrap {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	trap := &networkTrap{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				line, _ := bufio.NewReader(c).ReadString('\n')
				trap.mu.Lock()
				trap.calls = append(trap.calls, strings.TrimSpace(line))
				trap.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return trap
}

func (trap *networkTrap) url() string { return "http://" + trap.ln.Addr().String() }

func (trap *networkTrap) taken() []string {
	trap.mu.Lock()
	defer trap.mu.Unlock()
	out := slices.Clone(trap.calls)
	trap.calls = nil
	return out
}

// offlineEnv is a function's environment with made-up resources, the Runtime API at api, and
// every AWS endpoint and proxy pointed at trap.
func offlineEnv(tpl *template, id string, api *fakeRuntimeAPI, trap *networkTrap, home string) []string {
	return lambdaEnv(tpl, id, fakeStack(),
		"AWS_LAMBDA_RUNTIME_API="+api.addr(),
		"AWS_ENDPOINT_URL="+trap.url(),
		"HTTP_PROXY="+trap.url(),
		"HTTPS_PROXY="+trap.url(),
		"HOME="+home)
}

// startResult is one start of a function.
type startResult struct {
	took  time.Duration
	rssKB int64
	cpu   time.Duration
}

// startOnce starts bin and waits until it asks api for an invocation, then stops it.
func startOnce(bin string, env []string, api *fakeRuntimeAPI) (startResult, error) {
	for drained := false; !drained; {
		select {
		case <-api.next:
		case <-api.initError:
		default:
			drained = true
		}
	}
	cmd := exec.Command(bin)
	cmd.Env = env
	cmd.Dir = filepath.Dir(bin)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return startResult{}, err
	}
	api.pid.Store(int64(cmd.Process.Pid))
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	timer := time.NewTimer(startLimit)
	defer timer.Stop()
	select {
	case req := <-api.next:
		stop()
		return startResult{took: req.at.Sub(start), rssKB: req.rssKB, cpu: req.cpu}, nil
	case body := <-api.initError:
		stop()
		return startResult{}, fmt.Errorf("reported an init error: %s\n%s", body, output.String())
	case err := <-exited:
		return startResult{}, fmt.Errorf("exited (%v) before asking for an invocation:\n%s", err, output.String())
	case <-timer.C:
		stop()
		return startResult{}, fmt.Errorf("did not ask for an invocation within %s:\n%s", startLimit, output.String())
	}
}

// TestFunctionsStartOffline starts every function's bootstrap with the environment the
// template gives it, and checks that it reaches the Runtime API's invocation/next without a
// single network call: its configuration is complete, and a cold start costs no round trip.
func TestFunctionsStartOffline(t *testing.T) {
	tpl := loadTemplate(t)
	root := testenv.RepoRoot(t)
	api := newFakeRuntimeAPI(t)
	trap := newNetworkTrap(t)
	canBuildForHost(t)
	hostBuilds.prebuild(root, tpl.functions())
	for _, id := range tpl.functions() {
		t.Run(id, func(t *testing.T) {
			bin := buildForHost(t, root, id)
			res, err := startOnce(bin, offlineEnv(tpl, id, api, trap, t.TempDir()), api)
			if err != nil {
				t.Fatalf("%s with the template's environment: %v", id, err)
			}
			if calls := trap.taken(); len(calls) > 0 {
				t.Errorf("%s made %d network call(s) before its first invocation, first %q; init must not call out", id, len(calls), calls[0])
			}
			t.Logf("%s asked for its first invocation after %s (RSS %d KiB)", id, res.took.Round(100*time.Microsecond), res.rssKB)
		})
	}
}

// BenchmarkInit measures each function's start: from process start to its first request for
// an invocation. Metrics: ms-p50 and ms-p90 of that span, MB-rss at that moment, and
// ms-cpu-p50, the CPU time the process had used by then (the span less the time it waited for
// a CPU, which a loaded machine inflates).
func BenchmarkInit(b *testing.B) {
	tpl := loadTemplate(b)
	root := testenv.RepoRoot(b)
	api := newFakeRuntimeAPI(b)
	trap := newNetworkTrap(b)
	for _, id := range tpl.functions() {
		b.Run(id, func(b *testing.B) {
			bin := buildForHost(b, root, id)
			env := offlineEnv(tpl, id, api, trap, b.TempDir())
			var took []time.Duration
			var rss []int64
			var cpu []time.Duration
			for b.Loop() {
				res, err := startOnce(bin, env, api)
				if err != nil {
					b.Fatalf("%s: %v", id, err)
				}
				took = append(took, res.took)
				rss = append(rss, res.rssKB)
				cpu = append(cpu, res.cpu)
			}
			slices.Sort(took)
			slices.Sort(rss)
			slices.Sort(cpu)
			b.ReportMetric(float64(took[len(took)/2])/1e6, "ms-p50")
			b.ReportMetric(float64(took[len(took)*9/10])/1e6, "ms-p90")
			b.ReportMetric(float64(rss[len(rss)/2])/1024, "MB-rss")
			b.ReportMetric(float64(cpu[len(cpu)/2])/1e6, "ms-cpu-p50")
		})
	}
}
