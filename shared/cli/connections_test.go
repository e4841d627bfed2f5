package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestConnectionsPutAndBackfillStatus(t *testing.T) {
	data := t.TempDir()
	putAccount(t, data, "acme", testAccount)
	out, code := runCLI(t, data, "connections", "put", "acme", "ultracart", "--simple-key", "sk-0123456789")
	if code != 0 {
		t.Fatalf("connections put: %d %s", code, out)
	}
	if strings.Contains(out, "sk-0123456789") {
		t.Fatal("the key was printed back")
	}
	if out, code := runCLI(t, data, "connections", "put", "ghost", "ultracart", "--simple-key", "k"); code == 0 {
		t.Fatalf("a connection for an unknown account was accepted: %s", out)
	}
	out, code = runCLI(t, data, "backfill", "acme", "--status")
	if code != 0 {
		t.Fatalf("backfill --status: %d %s", code, out)
	}
	var cursors []struct {
		Stream string `json:"stream"`
	}
	if err := json.Unmarshal([]byte(out), &cursors); err != nil || len(cursors) != 2 {
		t.Fatalf("status %q: %v", out, err)
	}
}
