package accounts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

const plainKey = "op-live-K3y-7f9a2c"

func secretAccount() Account {
	return Account{
		ID:         "acme",
		UltraCart:  UltraCartSettings{WebhookUsername: "uc-user", WebhookPassword: NewSecret("uc-Pa55-word")},
		ThriveCart: ThriveCartSettings{Secret: NewSecret("tc-word-91"), APIKey: NewSecret("tc-api-key-44")},
		Settings: map[string]any{"crm.enabled": true, "crm.app_id": "2_1_x", "crm.api_key": NewSecret(plainKey),
			"crm.base_url": crmBaseURL, "crm.history": HistoryProfiles,
			"mail.enabled": true, "mail.api_key": NewSecret("it-key-0a1b"), "mail.base_url": mailBaseURL, "mail.history": HistoryAll},
	}
}

func plaintexts(a Account) []string {
	return []string{
		a.UltraCart.WebhookPassword.Reveal(), a.ThriveCart.Secret.Reveal(), a.ThriveCart.APIKey.Reveal(),
		a.SecretAt("crm.api_key").Reveal(), a.SecretAt("mail.api_key").Reveal(),
	}
}

func assertNoPlaintext(t *testing.T, where string, out []byte, a Account) {
	t.Helper()
	for _, p := range plaintexts(a) {
		if p != "" && bytes.Contains(out, []byte(p)) {
			t.Errorf("%s shows the secret %q:\n%s", where, p, out)
		}
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	a := secretAccount()
	for _, tc := range []struct {
		name  string
		print func() []byte
	}{
		{"%v", func() []byte { return fmt.Appendf(nil, "%v", a) }},
		{"%+v", func() []byte { return fmt.Appendf(nil, "%+v", a) }},
		{"%#v", func() []byte { return fmt.Appendf(nil, "%#v", a) }},
		{"%s", func() []byte { return fmt.Appendf(nil, "%s", a.SecretAt("crm.api_key")) }},
		{"%q", func() []byte { return fmt.Appendf(nil, "%q", a.SecretAt("crm.api_key")) }},
		{"%x", func() []byte { return fmt.Appendf(nil, "%x", a.SecretAt("crm.api_key")) }},
		{"%10.3s", func() []byte { return fmt.Appendf(nil, "%10.3s", a.SecretAt("crm.api_key")) }},
		{"pointer %+v", func() []byte { return fmt.Appendf(nil, "%+v", &a) }},
		{"Sprint", func() []byte { return []byte(fmt.Sprint(a.Settings)) }},
		{"json", func() []byte { b, _ := json.Marshal(a); return b }},
		{"slog json", func() []byte {
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "account", a, "key", a.SecretAt("crm.api_key"))
			return buf.Bytes()
		}},
		{"slog text", func() []byte {
			var buf bytes.Buffer
			slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "account", a, slog.Any("key", a.SecretAt("mail.api_key")), "crm", a.Settings)
			return buf.Bytes()
		}},
		{"error wrapping", func() []byte {
			return []byte(fmt.Errorf("bad key %v: %w", a.ThriveCart.Secret, errors.New("x")).Error())
		}},
		{"Public", func() []byte { b, _ := json.Marshal(Public(a)); return b }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := tc.print()
			assertNoPlaintext(t, tc.name, out, a)
			if tc.name != "Public" && !bytes.Contains(out, []byte("[secret]")) {
				t.Errorf("%s does not say [secret]: %s", tc.name, out)
			}
		})
	}
	if a.SecretAt("crm.api_key").Reveal() != plainKey {
		t.Fatal("Reveal does not return the plaintext")
	}
}

func TestValidateID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"acme", true},
		{"acme-store-2", true},
		{"a1", true},
		{strings.Repeat("a", 63), true},
		{"a", false},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"Acme", false},
		{"acme_store", false},
		{"acme store", false},
		{"-acme", false},
		{"acme-", false},
		{"a#b", false},
		{"a/b", false},
		{"café", false},
	} {
		err := ValidateID(tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidID) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.id)) || !strings.Contains(err.Error(), "lower-case letters, digits and dashes") {
				t.Errorf("ValidateID(%q) error %q is not clear", tc.id, err)
			}
		}
	}
}

// TestFieldTable keeps the table internally consistent: every kind points at the Go type it
// needs, defaults have that type, and paths are unique.
func TestFieldTable(t *testing.T) {
	seen := map[string]bool{}
	var a Account
	for _, f := range fieldTable() {
		if seen[f.path] {
			t.Errorf("%s appears twice", f.path)
		}
		seen[f.path] = true
		var ok bool
		switch f.kind {
		case kindText, kindURL, kindTimezone:
			_, ok = f.ref(&a).(*string)
		case kindBool:
			_, ok = f.ref(&a).(*bool)
		case kindTime:
			_, ok = f.ref(&a).(*time.Time)
		case kindHistory:
			_, ok = f.ref(&a).(*HistoryMode)
		case kindSecret:
			_, ok = f.ref(&a).(*Secret)
		}
		if !ok {
			t.Errorf("%s: kind %d points at %T", f.path, f.kind, f.ref(&a))
		}
		if f.def != nil {
			f.set(&a, f.def) // panics on a default of the wrong type
		}
		if f.path != strings.ToLower(f.path) || strings.Contains(f.path, "-") {
			t.Errorf("%s: keys are snake_case", f.path)
		}
	}
	for _, p := range []string{"forward_since", "ultracart.webhook_username", "ultracart.webhook_password",
		"thrivecart.secret", "thrivecart.api_key", "timezone", "allowed_domains"} {
		if !seen[p] {
			t.Errorf("required key %s is missing", p)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"api_key", "api_key", 0},
		{"apikey", "api_key", 1},
		{"api_kye", "api_key", 1},
		{"enabeld", "enabled", 1},
		{"", "abc", 3},
		{"history", "base_url", 6},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
