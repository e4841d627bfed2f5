package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/cli"
	"github.com/cartrelay/cartrelay/shared/console"
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

// runCLIBoth runs one command against dataDir and returns its stdout and stderr.
func runCLIBoth(t *testing.T, dataDir string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), append([]string{"--data", dataDir}, args...), cli.IO{Out: &out, Err: &errb})
	return out.String(), errb.String(), code
}

// noRedirects is a browser that shows each answer instead of following it.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// useLink posts a console sign-in link as its page's button does and returns the answer.
func useLink(t *testing.T, link string) *http.Response {
	t.Helper()
	u, _ := url.Parse(link)
	req, _ := http.NewRequest(http.MethodPost, link, nil)
	req.Header.Set("Origin", u.Scheme+"://"+u.Host)
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// consoleHome opens the dashboard with the session cookie and returns the status.
func consoleHome(t *testing.T, base string, cookie *http.Cookie) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/console/home", nil)
	req.AddCookie(cookie)
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == console.CookieName && c.Value != "" {
			return c
		}
	}
	t.Fatalf("no session cookie in %d %v", resp.StatusCode, resp.Header)
	return nil
}

// On `cartrelay serve` without any UltraCart application, the operator's console link signs
// in once; `console signout` and a key change by `accounts put` end the session.
func TestConsoleLinkOnServe(t *testing.T) {
	data := t.TempDir()
	s := startServe(t, data)
	base := "http://" + s.addr
	putAccount(t, data, "shop", `{}`)

	if out, code := runCLI(t, data, "console", "link", "nosuch", "--url", base); code != 1 || !strings.Contains(out, "shop") {
		t.Errorf("a link to an unknown account: %d %s", code, out)
	}
	link := func() string {
		out, errOut, code := runCLIBoth(t, data, "console", "link", "shop", "--url", base)
		var v struct{ Link, Account string }
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil || !strings.HasPrefix(v.Link, base+"/console/link/") ||
			v.Account != "shop" || !strings.Contains(errOut, "10m0s") {
			t.Fatalf("console link: %d %s %s", code, out, errOut)
		}
		return v.Link
	}
	first := link()
	resp := useLink(t, first)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/console/home" {
		t.Fatalf("using the link: %d %v", resp.StatusCode, resp.Header)
	}
	cookie := sessionCookie(t, resp)
	if got := consoleHome(t, base, cookie); got != http.StatusOK {
		t.Fatalf("the dashboard: %d", got)
	}
	if again := useLink(t, first); again.StatusCode != http.StatusGone {
		t.Errorf("the link used twice: %d", again.StatusCode)
	}

	if out, code := runCLI(t, data, "console", "signout", "shop"); code != 0 || !strings.Contains(out, "sessions_ended_at") {
		t.Fatalf("console signout: %d %s", code, out)
	}
	if got := consoleHome(t, base, cookie); got != http.StatusFound {
		t.Errorf("after console signout the session opens the dashboard: %d", got)
	}

	time.Sleep(10 * time.Millisecond)
	cookie = sessionCookie(t, useLink(t, link()))
	putAccount(t, data, "shop", `{"iterable":{"enabled":true}}`)
	if got := consoleHome(t, base, cookie); got != http.StatusOK {
		t.Errorf("a change without keys ended the session: %d", got)
	}
	putAccount(t, data, "shop", `{"iterable":{"api_key":"new-key"}}`)
	if got := consoleHome(t, base, cookie); got != http.StatusFound {
		t.Errorf("after a key change by accounts put the session opens the dashboard: %d", got)
	}
}

func TestInvitesCreate(t *testing.T) {
	data := t.TempDir()
	out, errOut, code := runCLIBoth(t, data, "invites", "create", "--url", "https://hub.example.com/", "--expires", "2d")
	var v struct {
		Link      string `json:"link"`
		ExpiresAt string `json:"expires_at"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || !strings.HasPrefix(v.Link, "https://hub.example.com/connect?invite=") ||
		!strings.Contains(errOut, "as a new account") {
		t.Fatalf("invites create: %d %s %s", code, out, errOut)
	}
	if exp, err := time.Parse(time.RFC3339, v.ExpiresAt); err != nil || time.Until(exp) < 47*time.Hour || time.Until(exp) > 49*time.Hour {
		t.Errorf("expires_at %q, want two days from now", v.ExpiresAt)
	}
	if out, code := runCLI(t, data, "invites", "create", "--account", "nosuch"); code != 1 || !strings.Contains(out, "nosuch") {
		t.Errorf("an invite for an unknown account: %d %s", code, out)
	}
	putAccount(t, data, "acme", `{}`)
	if out, code := runCLI(t, data, "invites", "create", "--account", "acme"); code != 0 || !strings.Contains(out, `"account": "acme"`) {
		t.Errorf("an invite for acme: %d %s", code, out)
	}
	env := openData(t, data)
	if err := env.Accounts.Bind(context.Background(), accounts.Binding{Account: "acme", MerchantID: "ACME"}); err != nil {
		t.Fatal(err)
	}
	env.Close()
	if out, code := runCLI(t, data, "invites", "create", "--account", "acme"); code != 1 || !strings.Contains(out, "already bound to the UltraCart store ACME") {
		t.Errorf("an invite for a bound account: %d %s", code, out)
	}
	if out, code := runCLI(t, data, "--backend", "aws", "invites", "create"); code == 0 || !strings.Contains(out, "PUBLIC_BASE_URL") && !strings.Contains(out, "TABLE_NAME") {
		t.Errorf("--backend aws without a public URL: %d %s", code, out)
	}
}

// demo ends with a console link to the demo account, so a newcomer on `make run` sees the
// console without any UltraCart application.
func TestDemoPrintsAConsoleLink(t *testing.T) {
	data := t.TempDir()
	s := startServe(t, data)
	_, errOut, code := runCLIBoth(t, data, "demo", "--url", "http://"+s.addr)
	link := regexp.MustCompile(`http://\S+/console/link/\S+`).FindString(errOut)
	if code != 0 || link == "" {
		t.Fatalf("demo: %d %s", code, errOut)
	}
	resp := useLink(t, link)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("the demo's link: %d", resp.StatusCode)
	}
	if got := consoleHome(t, "http://"+s.addr, sessionCookie(t, resp)); got != http.StatusOK {
		t.Errorf("the dashboard: %d", got)
	}
}
