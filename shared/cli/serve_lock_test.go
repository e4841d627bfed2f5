package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/cli"
)

// TestASecondServeOnTheSameDataIsRefused: one serve owns a data directory, so the next one can
// take back what a dead one had received; a second serve beside a running one says who runs.
func TestASecondServeOnTheSameDataIsRefused(t *testing.T) {
	data := t.TempDir()
	startServe(t, data)
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := cli.Main(ctx, []string{"--data", data, "serve", "--addr", "127.0.0.1:0"}, cli.IO{Out: &out, Err: &errb,
		Signals: func(c context.Context) (context.Context, context.CancelFunc) { return c, func() {} },
		Getenv:  func(k string) string { return map[string]string{"CARTRELAY_RUN_DIR": t.TempDir()}[k] }})
	if code == 0 || !strings.Contains(errb.String(), "another cartrelay serve") || !strings.Contains(errb.String(), data) {
		t.Fatalf("second serve exited %d:\n%s%s", code, out.String(), errb.String())
	}
}
