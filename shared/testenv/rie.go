//go:build unix

package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	rieWhat    = "the AWS Lambda Runtime Interface Emulator (aws-lambda-rie)"
	rieFetch   = "scripts/fetch-rie.sh"
	rieInstall = "run scripts/fetch-rie.sh (it builds the emulator with go install from the Go module proxy)"
	// rieStartWithin bounds the emulator's own start; the function starts on the first invoke.
	rieStartWithin = 20 * time.Second
	rieStopWithin  = 5 * time.Second
	// invokePath is where the emulator takes invocations, as the Lambda Invoke API does.
	invokePath = "/2015-03-31/functions/function/invocations"
)

// RIE returns the path of the Lambda Runtime Interface Emulator, building it first with
// scripts/fetch-rie.sh when it is missing. It skips the test (fails it under CI=true) when the
// emulator cannot be built here.
func RIE(t testing.TB) string {
	t.Helper()
	path, err := findRIE(context.Background())
	if err != nil {
		t.Log(err)
		Missing(t, rieWhat, rieInstall)
	}
	return path
}

// findRIE runs the fetch script, which builds the emulator unless it is cached, and returns
// the path it prints.
func findRIE(ctx context.Context) (string, error) {
	root, err := findRepoRoot()
	if err != nil {
		return "", err
	}
	if _, err := exec.LookPath("bash"); err != nil {
		return "", fmt.Errorf("%w: bash is not on PATH to run %s", ErrUnavailable, rieFetch)
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, rieFetch))
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%w: %s failed (%v):\n%s", ErrUnavailable, rieFetch, err, stderr.String())
	}
	path := strings.TrimSpace(string(out))
	if _, err := exec.LookPath(path); err != nil {
		return "", fmt.Errorf("%w: %s printed %q, which is not an executable: %v", ErrUnavailable, rieFetch, path, err)
	}
	return path, nil
}

// Lambda is one function running under the Runtime Interface Emulator: the emulator serves
// the Runtime API to the function's bootstrap and takes invocations over HTTP. The bootstrap
// starts on the first invocation (its init phase) and stays warm for the next ones, as in a
// Lambda execution environment.
type Lambda struct {
	// Name names the function in errors.
	Name string
	url  string
	p    *process
	out  *tailBuffer
}

// FunctionError is the error a function returned from its handler: the emulator answers the
// invocation with its type and message, as Lambda does for a function error.
type FunctionError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

// StartLambda runs bootstrap under the emulator at rie with exactly the environment env (the
// emulator hands its own environment to the function, and sets AWS_LAMBDA_RUNTIME_API), and
// stops both when the test ends. The emulator's and the function's output are kept for
// Output.
func StartLambda(t testing.TB, rie, name, bootstrap string, env []string) *Lambda {
	t.Helper()
	ports := make([]string, 2)
	for i := range ports {
		ports[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
	}
	invokeAddr, runtimeAddr := ports[0], ports[1]
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", invokeAddr, "--runtime-api-address", runtimeAddr, bootstrap)
	cmd.Env = env
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	dieWithParent(cmd.SysProcAttr)
	out := &tailBuffer{max: 256 << 10}
	p, err := startProcess(cmd, out, rieStopWithin, nil)
	if err != nil {
		t.Fatalf("start %s under the emulator: %v", name, err)
	}
	t.Cleanup(p.stop)
	if err := p.waitListening(context.Background(), invokeAddr, rieStartWithin); err != nil {
		t.Fatalf("start %s under the emulator: %v; its output:\n%s", name, err, out)
	}
	return &Lambda{Name: name, url: "http://" + invokeAddr + invokePath, p: p, out: out}
}

// Invoke sends one event and returns the function's response payload. A handler that
// returned an error, or a start that failed and said why, gives a *FunctionError; a function
// that crashed or timed out gives another error.
func (l *Lambda) Invoke(ctx context.Context, event []byte) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(event))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", l.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: read the response: %w", l.Name, err)
	}
	// A handler's error comes with 200, a failed start with 502; both carry the error as JSON.
	var fe FunctionError
	if json.Unmarshal(body, &fe) == nil && fe.Type != "" && fe.Message != "" {
		return nil, fmt.Errorf("invoke %s: %w", l.Name, &fe)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("invoke %s: the emulator answered %s: %s", l.Name, resp.Status, body)
	}
	// The emulator answers a timeout in plain text, with 200.
	if !json.Valid(body) {
		return nil, fmt.Errorf("invoke %s: the response is not JSON: %.500s", l.Name, body)
	}
	return body, nil
}

// Output is the tail of what the emulator and the function wrote: the function's JSON log
// lines among the emulator's START, END and REPORT lines.
func (l *Lambda) Output() string { return l.out.String() }
