package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// openData opens dataDir as another process would, alongside the CLI.
func openData(t *testing.T, dataDir string) *wiring.Env {
	t.Helper()
	env, err := operator.Embedded(context.Background(), dataDir, wiring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	return env
}

// The operator cannot create an account in the id space of connected stores, so no name of
// theirs can ever be a store's; the bound store shows in accounts get.
func TestAccountsPutRefusesStoreIDsAndGetShowsTheBinding(t *testing.T) {
	data := t.TempDir()
	out, code := runCLI(t, data, "accounts", "put", "uc-acme", "--file", writeFile(t, `{}`))
	if code != 1 || !strings.Contains(out, `"uc-acme" is reserved`) || !strings.Contains(out, "choose another id") {
		t.Fatalf("accounts put uc-acme: %d %s", code, out)
	}
	if out, code := runCLI(t, data, "demo", "--account", "uc-demo", "--url", "http://127.0.0.1:1"); code != 1 || !strings.Contains(out, "reserved") {
		t.Errorf("demo --account uc-demo: %d %s", code, out)
	}
	putAccount(t, data, "acme", `{}`)
	env := openData(t, data)
	if err := env.Accounts.Bind(context.Background(), accounts.Binding{Account: "acme", MerchantID: "ACME"}); err != nil {
		t.Fatal(err)
	}
	out, code = runCLI(t, data, "accounts", "get", "acme")
	var got map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got["ultracart_merchant_id"] != "ACME" || got["ultracart_bound_at"] == "" {
		t.Fatalf("accounts get: %d %s", code, out)
	}
	// The output can be put back as it is.
	if out, code := runCLI(t, data, "accounts", "put", "acme", "--file", writeFile(t, out)); code != 0 {
		t.Errorf("putting accounts get's output back: %d %s", code, out)
	}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "file.json")
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
