package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestContactsEraseAsksFirst: without --yes, `contacts erase` prints what it would erase and
// erases nothing; with it, the erasure starts and names the pseudonym, never the address; a
// pseudonym cannot be erased again.
func TestContactsEraseAsksFirst(t *testing.T) {
	data := t.TempDir()
	putAccount(t, data, "acme", testAccount)
	out, errText, code := runCLIBoth(t, data, "contacts", "erase", "acme", "Ann@Example.com")
	var plan struct {
		Email        string   `json:"email"`
		Destinations []string `json:"destinations"`
	}
	if code == 0 || json.Unmarshal([]byte(out), &plan) != nil || plan.Email != "ann@example.com" || len(plan.Destinations) != 2 ||
		!strings.Contains(errText, "--yes") {
		t.Fatalf("without --yes: %d %s %s", code, out, errText)
	}
	out, errText, code = runCLIBoth(t, data, "contacts", "erase", "acme", "ann@example.com", "--yes")
	var res struct {
		Pseudonym string `json:"pseudonym"`
		Done      bool   `json:"done"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || !strings.HasSuffix(res.Pseudonym, "@erased.invalid") || res.Done ||
		strings.Contains(out, "ann@") || !strings.Contains(errText, "the schedule finishes it") {
		t.Fatalf("with --yes: %d %s %s", code, out, errText)
	}
	again, errText, code := runCLIBoth(t, data, "contacts", "erase", "acme", "ann@example.com", "--yes")
	if code != 0 || !strings.Contains(again, `"already_under_way": true`) && !strings.Contains(again, `"already_under_way":true`) {
		t.Fatalf("again while under way: %d %s %s", code, again, errText)
	}
	if _, errText, code := runCLIBoth(t, data, "contacts", "erase", "acme", res.Pseudonym, "--yes"); code == 0 || !strings.Contains(errText, "pseudonym") {
		t.Fatalf("erasing a pseudonym: %d %s", code, errText)
	}
}
