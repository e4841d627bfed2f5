package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/visitortoken"
)

// TestTrackingSecretEndToEnd: the operator prints the account's tracking secret, the store's
// server signs an identity token with it, and `cartrelay serve` accepts that token on /track
// while refusing one signed with the previous secret once it is rotated.
func TestTrackingSecretEndToEnd(t *testing.T) {
	data := t.TempDir()
	putAccount(t, data, "acme", `{"allowed_domains":"shop.example.com","iterable":{"enabled":true}}`)
	show := func(args ...string) string {
		t.Helper()
		out, code := runCLI(t, data, append([]string{"accounts", "tracking-secret", "acme"}, args...)...)
		var v struct {
			Secret string `json:"tracking_secret"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(v.Secret) {
			t.Fatalf("accounts tracking-secret: %d %s", code, out)
		}
		return v.Secret
	}
	secret := show()
	if again := show(); again != secret {
		t.Fatal("the secret changed between two prints")
	}
	s := startServe(t, data)
	base := "http://" + s.addr

	resp, err := http.Get(base + "/track/cartrelay.js")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(js), "cartrelay page-view snippet") {
		t.Fatalf("the snippet: %d", resp.StatusCode)
	}

	track := func(secret string) int {
		t.Helper()
		tok, err := visitortoken.Sign(secret, "ann@example.com", time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		body := `{"visitor":"b7f3c2a1d4e5f60718293a4b5c6d7e8f","url":"https://shop.example.com/account","identity":"` + tok + `"}`
		req, _ := http.NewRequest(http.MethodPost, base+"/track/acme", strings.NewReader(body))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Origin", "https://shop.example.com")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := track(secret); code != http.StatusNoContent {
		t.Fatalf("a token signed with the printed secret: %d", code)
	}
	rotated := show("--rotate")
	if rotated == secret {
		t.Fatal("--rotate kept the secret")
	}
	if code := track(secret); code != http.StatusForbidden {
		t.Fatalf("a token signed with the replaced secret: %d, want 403", code)
	}
	if code := track(rotated); code != http.StatusNoContent {
		t.Fatalf("a token signed with the new secret: %d", code)
	}
}
