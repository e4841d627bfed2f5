package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/cartrelay/cartrelay/shared/testenv"
)

// TestMain removes the bootstraps built for this machine once every test has used them.
func TestMain(m *testing.M) {
	code := m.Run()
	hostBuilds.remove()
	os.Exit(code)
}

// hostBuilds are the bootstraps built for this machine's architecture, each once per test
// binary: the start-up test, the init benchmark and the end-to-end test under the emulator
// run the same programs, and a link costs seconds.
var hostBuilds = &buildCache{byID: map[string]*hostBuild{}}

type buildCache struct {
	mu   sync.Mutex
	dir  string
	byID map[string]*hostBuild
}

type hostBuild struct {
	once sync.Once
	path string
	err  error
}

// build returns the bootstrap of function id, built with its Makefile target on first use.
// It is safe to call from several goroutines.
func (c *buildCache) build(root, id string) (string, error) {
	c.mu.Lock()
	if c.dir == "" {
		dir, err := os.MkdirTemp("", "cartrelay-bootstraps-")
		if err != nil {
			c.mu.Unlock()
			return "", err
		}
		c.dir = dir
	}
	b := c.byID[id]
	if b == nil {
		b = &hostBuild{}
		c.byID[id] = b
	}
	dir := filepath.Join(c.dir, id)
	c.mu.Unlock()
	b.once.Do(func() {
		b.err = makeIn(root, "build-"+id, "ARTIFACTS_DIR="+dir, "LAMBDA_ENV=GOOS=linux GOARCH="+runtime.GOARCH+" CGO_ENABLED=0")
		b.path = filepath.Join(dir, "bootstrap")
	})
	return b.path, b.err
}

func (c *buildCache) remove() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dir != "" {
		os.RemoveAll(c.dir)
	}
}

// canBuildForHost skips the test where the bootstraps cannot run or be built.
func canBuildForHost(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("the bootstrap is a Linux program; this machine runs %s", runtime.GOOS)
	}
	if _, err := exec.LookPath("make"); err != nil {
		testenv.Missing(t, "make", "install GNU make; sam build runs the Makefile too")
	}
}

// buildForHost builds a function's bootstrap with its Makefile target, for this machine's
// architecture instead of arm64, and returns its path.
func buildForHost(t testing.TB, root, id string) string {
	t.Helper()
	canBuildForHost(t)
	path, err := hostBuilds.build(root, id)
	if err != nil {
		t.Fatalf("build %s for this machine: %v", id, err)
	}
	return path
}

// prebuild builds the bootstraps of ids, as many at once as this machine has cores (a link is
// mostly one thread), and returns when all are done. Errors stay in the cache, for build to
// return to the test that needs the bootstrap.
func (c *buildCache) prebuild(root string, ids []string) {
	todo := make(chan string)
	var wg sync.WaitGroup
	for range min(runtime.NumCPU(), len(ids)) {
		wg.Go(func() {
			for id := range todo {
				_, _ = c.build(root, id)
			}
		})
	}
	for _, id := range ids {
		todo <- id
	}
	close(todo)
	wg.Wait()
}
