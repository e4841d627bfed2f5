package accounts

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/store/embedded"
)

var t0 = time.Date(2025, 6, 1, 9, 30, 0, 0, time.UTC)

type testEnv struct {
	repo *Repo
	st   store.Store
	clk  *clock.Fake
	dir  string
}

func newEnv(t *testing.T) testEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	clk := clock.NewFake(t0)
	db, err := sqlitedb.Open(ctx, filepath.Join(dir, sqlitedb.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := embedded.New(ctx, db, clk)
	if err != nil {
		t.Fatal(err)
	}
	e := testEnv{st: st, clk: clk, dir: dir}
	e.repo = e.repoWithKey(t, "master.key")
	return e
}

// repoWithKey is another process on the same table with the key file name.
func (e testEnv) repoWithKey(t *testing.T, name string) *Repo {
	t.Helper()
	key, err := secrets.LoadOrCreateLocalKey(filepath.Join(e.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return NewRepo(e.st, secrets.NewSealer(key, e.clk), e.clk).WithSections(crm(), mail())
}

func (e testEnv) put(t *testing.T, id, patch string) Account {
	t.Helper()
	a, err := e.repo.Put(context.Background(), id, []byte(patch))
	if err != nil {
		t.Fatalf("put %s: %v", patch, err)
	}
	return a
}

func (e testEnv) rawDoc(t *testing.T, id string) (store.Item, map[string]any) {
	t.Helper()
	it, err := e.st.Get(context.Background(), "A#"+id, "ACCOUNT")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(it.Data, &doc); err != nil {
		t.Fatal(err)
	}
	return it, doc
}

func (e testEnv) writeRawDoc(t *testing.T, id string, it store.Item, doc map[string]any) {
	t.Helper()
	it.PK, it.SK, it.GSI1PK, it.GSI1SK = "A#"+id, "ACCOUNT", "ACCOUNTS", id
	it.Data, _ = json.Marshal(doc)
	if err := e.st.Write(context.Background(), store.PutItem(it, store.Always)); err != nil {
		t.Fatal(err)
	}
}

const fullFile = `{
	"forward_since": "2024-01-01T00:00:00Z",
	"ultracart": {"webhook_username": "uc-user", "webhook_password": "uc-Pa55-word"},
	"thrivecart": {"secret": "tc-word-91", "api_key": "tc-api-key-44"},
	"crm": {"enabled": true, "app_id": "2_1_x", "api_key": "op-live-K3y-7f9a2c",
		"base_url": "https://op.example.test/1", "history": "all"},
	"mail": {"enabled": true, "api_key": "it-key-0a1b", "base_url": "https://api.eu.mail.example/", "history": "none"}
}`

func TestPutCreatesWithDefaults(t *testing.T) {
	e := newEnv(t)
	a := e.put(t, "acme", `{}`)
	want := Account{
		ID: "acme", ForwardSince: t0, Timezone: "UTC", CreatedAt: t0, UpdatedAt: t0, Version: 1,
		Settings: sectionDefaults(),
	}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("created\n%+v\nwant\n%+v", a, want)
	}
	got, err := e.repo.Get(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back\n%+v\nwant\n%+v", got, want)
	}
	// The cutover is fixed at creation, so it is stored even though it is the default.
	if _, doc := e.rawDoc(t, "acme"); doc["forward_since"] != "2025-06-01T09:30:00Z" {
		t.Fatalf("stored forward_since = %v", doc["forward_since"])
	}
	e.clk.Advance(time.Hour)
	a = e.put(t, "acme", `{"crm": {"enabled": true}}`)
	if !a.ForwardSince.Equal(t0) || !a.CreatedAt.Equal(t0) || !a.UpdatedAt.Equal(t0.Add(time.Hour)) || a.Version != 2 {
		t.Fatalf("after an update: forward_since %v created %v updated %v version %d", a.ForwardSince, a.CreatedAt, a.UpdatedAt, a.Version)
	}
}

func TestPutMergeSemantics(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		patch string
		check func(t *testing.T, before, after Account)
	}{
		{"absent keys keep their values", `{"crm": {"app_id": "2_9_new"}}`, func(t *testing.T, b, a Account) {
			b.Set("crm.app_id", "2_9_new")
			sameSettings(t, b, a)
		}},
		{"empty object changes nothing", `{}`, func(t *testing.T, b, a Account) { sameSettings(t, b, a) }},
		{"empty group changes nothing", `{"crm": {}, "mail": {}}`, func(t *testing.T, b, a Account) { sameSettings(t, b, a) }},
		{"null clears a secret", `{"crm": {"api_key": null}}`, func(t *testing.T, b, a Account) {
			b.Set("crm.api_key", Secret{})
			sameSettings(t, b, a)
		}},
		{"empty string clears a secret", `{"thrivecart": {"api_key": ""}}`, func(t *testing.T, b, a Account) {
			b.ThriveCart.APIKey = Secret{}
			sameSettings(t, b, a)
		}},
		{"null resets to the default", `{"crm": {"base_url": null, "history": null, "enabled": null}}`, func(t *testing.T, b, a Account) {
			b.Set("crm.base_url", crmBaseURL, "crm.history", HistoryProfiles, "crm.enabled", false)
			sameSettings(t, b, a)
		}},
		{"null group resets all of it", `{"mail": null}`, func(t *testing.T, b, a Account) {
			b.Set("mail.enabled", false, "mail.api_key", Secret{}, "mail.base_url", mailBaseURL, "mail.history", HistoryProfiles)
			sameSettings(t, b, a)
		}},
		{"a time zone", `{"timezone": "America/New_York"}`, func(t *testing.T, b, a Account) {
			b.Timezone = "America/New_York"
			sameSettings(t, b, a)
			if a.Location().String() != "America/New_York" {
				t.Errorf("location %v", a.Location())
			}
		}},
		{"null time zone returns to UTC", `{"timezone": null}`, func(t *testing.T, b, a Account) {
			b.Timezone = "UTC"
			sameSettings(t, b, a)
		}},
		{"null forward_since returns to creation", `{"forward_since": null}`, func(t *testing.T, b, a Account) {
			b.ForwardSince = t0
			sameSettings(t, b, a)
		}},
		{"a date is midnight UTC", `{"forward_since": "2023-07-04"}`, func(t *testing.T, b, a Account) {
			b.ForwardSince = time.Date(2023, 7, 4, 0, 0, 0, 0, time.UTC)
			sameSettings(t, b, a)
		}},
		{"offsets are converted to UTC", `{"forward_since": "2023-07-04T02:00:00+02:00"}`, func(t *testing.T, b, a Account) {
			b.ForwardSince = time.Date(2023, 7, 4, 0, 0, 0, 0, time.UTC)
			sameSettings(t, b, a)
			if a.ForwardSince.Location() != time.UTC {
				t.Errorf("forward_since is in %v", a.ForwardSince.Location())
			}
		}},
		{"the placeholder keeps a stored secret", `{"crm": {"api_key": "[set]"}, "mail": {"api_key": "[set]"}}`, func(t *testing.T, b, a Account) {
			sameSettings(t, b, a)
		}},
		{"secrets are replaced", `{"ultracart": {"webhook_password": "n3w-pass"}}`, func(t *testing.T, b, a Account) {
			b.UltraCart.WebhookPassword = NewSecret("n3w-pass")
			sameSettings(t, b, a)
		}},
		{"read-only keys are accepted and ignored", `{"$schema": "./account.schema.json", "id": "acme", "created_at": "1999-01-01T00:00:00Z", "updated_at": "x"}`, func(t *testing.T, b, a Account) {
			sameSettings(t, b, a)
			if !a.CreatedAt.Equal(t0) {
				t.Errorf("created_at changed to %v", a.CreatedAt)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			before := e.put(t, "acme", fullFile)
			e.clk.Advance(time.Minute)
			after := e.put(t, "acme", tc.patch)
			if after.Version != before.Version+1 {
				t.Errorf("version %d after %d", after.Version, before.Version)
			}
			// What is stored, every secret opened, is what the patch made; and what Put
			// returned agrees with it (a secret the patch left alone comes back unopened).
			got, err := e.repo.Get(ctx, "acme", SecretFields()...)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, before, got)
			sameSettings(t, got, after)
		})
	}
}

// sameSettings compares the settings, ignoring bookkeeping. A secret that one side holds
// unopened is compared by whether it is set.
func sameSettings(t *testing.T, want, got Account) {
	t.Helper()
	for _, f := range fieldTable() {
		w, g := f.get(&want), f.get(&got)
		if f.kind == kindSecret {
			ws, gs := w.(Secret), g.(Secret)
			if !ws.Opened() || !gs.Opened() {
				if ws.IsSet() != gs.IsSet() {
					t.Errorf("%s set = %v, want %v", f.path, gs.IsSet(), ws.IsSet())
				}
				continue
			}
			w, g = ws.Reveal(), gs.Reveal()
		}
		if w != g {
			t.Errorf("%s = %v, want %v", f.path, g, w)
		}
	}
	if !want.CreatedAt.Equal(got.CreatedAt) {
		t.Errorf("created_at = %v, want %v", got.CreatedAt, want.CreatedAt)
	}
}

func TestPutStoredForm(t *testing.T) {
	e := newEnv(t)
	a := e.put(t, "acme", fullFile)
	it, doc := e.rawDoc(t, "acme")

	t.Run("keys and version", func(t *testing.T) {
		if it.GSI1PK != "ACCOUNTS" || it.GSI1SK != "acme" || it.Version != 1 || it.Version != a.Version {
			t.Fatalf("item keys %q/%q version %d", it.GSI1PK, it.GSI1SK, it.Version)
		}
	})
	t.Run("secrets are sealed at rest", func(t *testing.T) {
		assertNoPlaintext(t, "the stored item", it.Data, a)
		for _, f := range fieldTable() {
			if f.kind != kindSecret {
				continue
			}
			v, _ := Lookup(doc, f.path)
			if s, _ := v.(string); !secrets.IsSealed(s) {
				t.Errorf("stored %s = %v, want a sealed value", f.path, v)
			}
		}
	})
	t.Run("other settings are plain and normalized", func(t *testing.T) {
		for path, want := range map[string]any{
			"forward_since": "2024-01-01T00:00:00Z", "crm.enabled": true, "crm.app_id": "2_1_x",
			"crm.history": "all", "mail.base_url": "https://api.eu.mail.example",
		} {
			if got, _ := Lookup(doc, path); got != want {
				t.Errorf("stored %s = %v, want %v", path, got, want)
			}
		}
	})
	t.Run("defaults are not stored", func(t *testing.T) {
		e.put(t, "acme", `{"crm": {"base_url": "https://api.crm.example/1/", "history": "profiles"}, "mail": null}`)
		_, doc := e.rawDoc(t, "acme")
		for _, p := range []string{"crm.base_url", "crm.history", "mail"} {
			if v, ok := Lookup(doc, p); ok {
				t.Errorf("default %s stored as %v", p, v)
			}
		}
	})
	t.Run("untouched secrets are not sealed again", func(t *testing.T) {
		_, before := e.rawDoc(t, "acme")
		e.put(t, "acme", `{"crm": {"app_id": "2_2_y"}}`)
		_, after := e.rawDoc(t, "acme")
		for _, p := range []string{"crm.api_key", "thrivecart.secret", "ultracart.webhook_password"} {
			b, _ := Lookup(before, p)
			g, _ := Lookup(after, p)
			if b != g {
				t.Errorf("%s was sealed again", p)
			}
		}
	})
}

func TestPutKeepsKeysOfNewerReleases(t *testing.T) {
	e := newEnv(t)
	e.put(t, "acme", `{"crm": {"enabled": true}}`)
	it, doc := e.rawDoc(t, "acme")
	doc["mappings"] = map[string]any{"statuses": map[string]any{"paused": "On Hold"}}
	doc["crm"].(map[string]any)["rate_limit"] = "180/min"
	e.writeRawDoc(t, "acme", it, doc)

	e.put(t, "acme", `{"crm": {"enabled": null}}`)
	_, doc = e.rawDoc(t, "acme")
	if v, _ := Lookup(doc, "mappings.statuses.paused"); v != "On Hold" {
		t.Errorf("a key unknown to this release was dropped: %v", doc)
	}
	if v, _ := Lookup(doc, "crm.rate_limit"); v != "180/min" {
		t.Errorf("a key unknown to this release was dropped from its group: %v", doc)
	}
}

func TestPutRejectsBadFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		patch string
		want  []string
		// hide must not appear in the message.
		hide string
	}{
		{"wrong type", `{"crm": {"enabled": "yes"}}`, []string{`crm.enabled must be true or false, got "yes"`}, ""},
		{"number for a bool", `{"mail": {"enabled": 1}}`, []string{`mail.enabled must be true or false, got 1`}, ""},
		{"typo in a key", `{"crm": {"apikey": "x"}}`, []string{`unknown key crm.apikey (did you mean crm.api_key?)`}, ""},
		{"transposed letters", `{"crm": {"enabeld": true}}`, []string{`unknown key crm.enabeld (did you mean crm.enabled?)`}, ""},
		{"typo in a group", `{"ultracrat": {"base_currency": "USD"}}`, []string{`unknown key ultracrat (did you mean ultracart?)`}, ""},
		{"typo in a section", `{"cmr": {"enabled": true}}`, []string{`unknown key cmr (did you mean crm?)`}, ""},
		{"dashes", `{"forward-since": "2024-01-01"}`, []string{`unknown key forward-since (did you mean forward_since?)`}, ""},
		{"key at the wrong level", `{"api_key": "x"}`, []string{`unknown key api_key (did you mean crm.api_key or mail.api_key or thrivecart.api_key?)`}, ""},
		{"dotted key", `{"crm.api_key": "x"}`, []string{`unknown key crm.api_key: the account file nests keys; write {"crm": {"api_key": ...}}`}, ""},
		{"unrelated key", `{"colour": "blue"}`, []string{`unknown key colour (the top-level keys are`, "forward_since", "crm"}, ""},
		{"unrelated nested key", `{"mail": {"region": "eu"}}`, []string{`unknown key mail.region`}, ""},
		{"group is not an object", `{"crm": true}`, []string{`crm must be an object (or null to reset all of it), got true`}, ""},
		{"history", `{"crm": {"history": "everything"}}`, []string{`crm.history must be one of "none", "profiles" or "all", got "everything"`}, ""},
		{"time", `{"forward_since": "yesterday"}`, []string{`forward_since must be an RFC 3339 time`, `got "yesterday"`}, ""},
		{"unknown time zone", `{"timezone": "America/Springfield"}`, []string{`timezone: "America/Springfield" is not a known IANA time zone; use one such as "America/New_York"`}, ""},
		{"the machine's zone", `{"timezone": "Local"}`, []string{`timezone: "Local" is not an IANA time zone name`}, ""},
		{"time zone as a number", `{"timezone": -5}`, []string{`timezone must be an IANA time zone name such as "America/New_York", got -5`}, ""},
		{"url", `{"crm": {"base_url": "api.crm.example"}}`, []string{`crm.base_url must be an absolute https URL`, `got "api.crm.example"`}, ""},
		{"url scheme", `{"mail": {"base_url": "ftp://api.mail.example"}}`, []string{`mail.base_url must be an absolute https URL`}, ""},
		// The API key travels with every request to the base URL.
		{"plain http", `{"crm": {"base_url": "http://api.crm.example/1"}}`, []string{`crm.base_url`, `unencrypted`, `use https://api.crm.example/1`}, ""},
		{"plain http to a private address", `{"mail": {"base_url": "http://10.1.2.3:8080"}}`, []string{`mail.base_url`, `unencrypted`}, ""},
		{"credentials in the url are not echoed", `{"mail": {"base_url": "https://me:pa55w0rd@api.mail.example"}}`, []string{`mail.base_url must not carry a user name or password`}, "pa55w0rd"},
		{"secret of the wrong type is not echoed", `{"mail": {"api_key": 918273645}}`, []string{`mail.api_key must be a string, got a number`}, "918273645"},
		{"secret with a line break is not echoed", `{"thrivecart": {"secret": "s3cr3t-w0rd\n"}}`, []string{`thrivecart.secret starts or ends with spaces or a line break`}, "s3cr3t-w0rd"},
		{"placeholder with nothing stored", `{"crm": {"api_key": "[set]"}}`, []string{`crm.api_key is "[set]", the placeholder`, "none is stored"}, ""},
		{"another id", `{"id": "other"}`, []string{`id is "other" but the account being written is "acme"`}, ""},
		{"not an object", `["crm"]`, []string{`the account file must be a JSON object, got ["crm"]`}, ""},
		{"empty", ``, []string{`the account file is empty`}, ""},
		{"syntax", "{\n  \"crm\": {\"enabled\": true,}\n}", []string{`the account file is not valid JSON: line 2, column 27`}, ""},
		{"two values", `{} {}`, []string{`more than one JSON value`}, ""},
		{"every problem at once", `{"crm": {"enabled": "yes", "apikey": "x"}, "mail": {"history": 3}}`, []string{
			`mail.history must be one of`, `crm.apikey (did you mean crm.api_key?)`, `crm.enabled must be true or false`,
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			_, err := e.repo.Put(context.Background(), "acme", []byte(tc.patch))
			var inv *InvalidError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &inv) {
				t.Fatalf("got %v, want an *InvalidError", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "account acme: ") {
				t.Errorf("message %q does not name the account", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message\n%s\ndoes not say\n%s", msg, w)
				}
			}
			if tc.hide != "" && strings.Contains(msg, tc.hide) {
				t.Errorf("message %q repeats the secret", msg)
			}
			if n := len(tc.want); tc.name == "every problem at once" && len(inv.Problems) != n {
				t.Errorf("%d problems reported, want %d", len(inv.Problems), n)
			}
			if _, err := e.repo.Get(context.Background(), "acme"); !errors.Is(err, ErrNotFound) {
				t.Errorf("a rejected file created the account (Get: %v)", err)
			}
		})
	}
}

func TestBadIDs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, id := range []string{"Acme", "a", "acme_store", "../acme", "acme#x"} {
		_, err := e.repo.Put(ctx, id, []byte(`{}`))
		if !errors.Is(err, ErrInvalidID) || !strings.Contains(err.Error(), "lower-case letters, digits and dashes") {
			t.Errorf("Put(%q): %v", id, err)
		}
		if _, err := e.repo.Get(ctx, id); !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrInvalidID) {
			t.Errorf("Get(%q): %v, want ErrNotFound and ErrInvalidID", id, err)
		}
	}
	if _, err := e.repo.Get(ctx, "nobody"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"nobody"`) {
		t.Errorf("Get of a missing account: %v", err)
	}
}

func TestSealedValuesStayWhereTheyBelong(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		move   func(t *testing.T, e testEnv)
		id     string
		wantIn string
	}{
		{"to another field", func(t *testing.T, e testEnv) {
			it, doc := e.rawDoc(t, "acme")
			v, _ := Lookup(doc, "crm.api_key")
			setPath(doc, "mail.api_key", v)
			e.writeRawDoc(t, "acme", it, doc)
		}, "acme", "cannot decrypt mail.api_key of account acme: the sealed value was altered, or it belongs to another account or field"},
		{"to another account", func(t *testing.T, e testEnv) {
			it, doc := e.rawDoc(t, "acme")
			e.writeRawDoc(t, "other", it, doc)
		}, "other", "cannot decrypt ultracart.webhook_password of account other: the sealed value was altered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.put(t, "acme", fullFile)
			tc.move(t, e)
			_, err := e.repo.Get(ctx, tc.id, e.repo.SecretNames()...)
			if !errors.Is(err, secrets.ErrTampered) || !strings.Contains(err.Error(), tc.wantIn) {
				t.Fatalf("got %v, want %q", err, tc.wantIn)
			}
		})
	}
}

func TestAnotherMasterKey(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.put(t, "acme", fullFile)
	replaced := e.repoWithKey(t, "replaced.key")

	if _, err := replaced.Get(ctx, "acme"); err != nil {
		t.Fatalf("reading the settings without opening a secret: %v", err)
	}
	_, err := replaced.Get(ctx, "acme", UltraCartWebhookPassword)
	if !errors.Is(err, secrets.ErrWrongKey) {
		t.Fatalf("got %v, want ErrWrongKey", err)
	}
	for _, want := range []string{
		"cannot decrypt ultracart.webhook_password of account acme: the data key was sealed with another master key (",
		"was the local key file replaced?)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// A put opens nothing, so settings can be changed while the secrets are unreadable.
	if _, err = replaced.Put(ctx, "acme", []byte(`{"crm": {"app_id": "2_1_x"}}`)); err != nil {
		t.Fatalf("put beside unreadable secrets: %v", err)
	}
	// Setting every secret again recovers the account under the new key.
	a, err := replaced.Put(ctx, "acme", []byte(`{"ultracart": {"webhook_password": "p2"}, "thrivecart": {"secret": "s2", "api_key": null},
		"crm": {"api_key": "o2"}, "mail": {"api_key": null}}`))
	if err != nil {
		t.Fatalf("re-entering the secrets: %v", err)
	}
	if a.SecretAt("crm.api_key").Reveal() != "o2" || a.Text("crm.app_id") != "2_1_x" {
		t.Fatalf("recovered account: %+v", a)
	}
	if _, err := replaced.Get(ctx, "acme", SecretFields()...); err != nil {
		t.Fatalf("Get after recovery: %v", err)
	}
}

func TestPublic(t *testing.T) {
	e := newEnv(t)
	a := e.put(t, "acme", `{"crm": {"enabled": true, "api_key": "op-live-K3y-7f9a2c"}, "thrivecart": {"secret": "tc-word-91"}}`)
	got, _ := json.Marshal(Public(a))
	want := `{"created_at":"2025-06-01T09:30:00Z",` +
		`"crm":{"api_key":"[set]","base_url":"https://api.crm.example/1","enabled":true,"history":"profiles"},` +
		`"forward_since":"2025-06-01T09:30:00Z","id":"acme",` +
		`"mail":{"base_url":"https://api.mail.example","enabled":false,"history":"profiles"},` +
		`"thrivecart":{"secret":"[set]"},"timezone":"UTC","ultracart":{"erase_on_customer_delete":false},"updated_at":"2025-06-01T09:30:00Z"}`
	if string(got) != want {
		t.Fatalf("Public\n%s\nwant\n%s", got, want)
	}
	assertNoPlaintext(t, "Public", got, a)
}

func TestPublicOutputPutsBack(t *testing.T) {
	e := newEnv(t)
	before := e.put(t, "acme", fullFile)
	out, _ := json.MarshalIndent(Public(before), "", "  ")
	e.clk.Advance(time.Minute)
	after, err := e.repo.Put(context.Background(), "acme", out)
	if err != nil {
		t.Fatalf("putting back the output of get: %v\n%s", err, out)
	}
	sameSettings(t, before, after)
}

func TestListAndIDs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if ids, err := e.repo.IDs(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("IDs of an empty table: %v %v", ids, err)
	}
	for _, id := range []string{"zeta", "acme", "beta-2"} {
		e.put(t, id, fmt.Sprintf(`{"crm": {"app_id": %q}}`, id))
	}
	ids, err := e.repo.IDs(ctx)
	if err != nil || !reflect.DeepEqual(ids, []string{"acme", "beta-2", "zeta"}) {
		t.Fatalf("IDs = %v, %v", ids, err)
	}
	list, err := e.repo.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range list {
		if a.ID != ids[i] || a.Text("crm.app_id") != ids[i] {
			t.Errorf("List[%d] = %s (app_id %s)", i, a.ID, a.Text("crm.app_id"))
		}
	}
}

func TestConcurrentPutsKeepEveryUpdate(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.put(t, "acme", `{}`)
	values := map[string]any{
		"forward_since":              "2020-02-02T00:00:00Z",
		"ultracart.webhook_username": "u",
		"ultracart.webhook_password": "p",
		"thrivecart.secret":          "s",
		"thrivecart.api_key":         "k",
		"crm.enabled":                true,
		"crm.app_id":                 "app",
		"crm.api_key":                "ok",
		"crm.base_url":               "https://op.test",
		"crm.history":                "all",
		"mail.enabled":               true,
		"mail.api_key":               "ik",
		"mail.base_url":              "https://it.test",
		"mail.history":               "none",
	}
	var wg sync.WaitGroup
	for path, v := range values {
		wg.Go(func() {
			doc := map[string]any{}
			setPath(doc, path, v)
			patch, _ := json.Marshal(doc)
			if _, err := e.repo.Put(ctx, "acme", patch); err != nil {
				t.Errorf("put %s: %v", path, err)
			}
		})
	}
	wg.Wait()
	a, err := e.repo.Get(ctx, "acme", e.repo.SecretNames()...)
	if err != nil {
		t.Fatal(err)
	}
	if a.Version != int64(len(values))+1 {
		t.Errorf("version %d after %d puts", a.Version, len(values)+1)
	}
	pub := Public(a)
	for path, v := range values {
		got, _ := Lookup(pub, path)
		if f := newSchemaTree(e.repo.fields()).fields[path]; f.kind == kindSecret {
			got = f.get(&a).(Secret).Reveal()
		}
		if got != v {
			t.Errorf("%s = %v, want %v (an update was lost)", path, got, v)
		}
	}
}

// racingStore lets another writer in between Put's read and its write, once per key.
type racingStore struct {
	store.Store
	raced  atomic.Bool
	before func()
}

func (s *racingStore) Write(ctx context.Context, w store.Write) error {
	if s.raced.CompareAndSwap(false, true) {
		s.before()
	}
	return s.Store.Write(ctx, w)
}

func TestPutRetriesAfterAConflict(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.put(t, "acme", `{}`)
	key, _ := secrets.LoadOrCreateLocalKey(filepath.Join(e.dir, "master.key"))
	var seals atomic.Int32
	sealer := secrets.NewSealer(countingWrapper{key, &seals}, e.clk)
	rs := &racingStore{Store: e.st}
	rs.before = func() { e.put(t, "acme", `{"crm": {"app_id": "from-the-other-writer"}}`) }
	repo := NewRepo(rs, sealer, e.clk).WithSections(crm(), mail())

	a, err := repo.Put(ctx, "acme", []byte(`{"crm": {"api_key": "mine"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if a.Text("crm.app_id") != "from-the-other-writer" || a.SecretAt("crm.api_key").Reveal() != "mine" || a.Version != 3 {
		t.Fatalf("after the retry: app_id %q api key set %v version %d", a.Text("crm.app_id"), a.SecretAt("crm.api_key").IsSet(), a.Version)
	}
	if n := seals.Load(); n != 1 {
		t.Errorf("the retry sealed the secret again (%d seals)", n)
	}
}

type countingWrapper struct {
	secrets.KeyWrapper
	n *atomic.Int32
}

func (c countingWrapper) Wrap(ctx context.Context, key []byte, ec secrets.EncryptionContext) ([]byte, string, error) {
	c.n.Add(1)
	return c.KeyWrapper.Wrap(ctx, key, ec)
}

func TestPutGivesUpUnderEndlessConflicts(t *testing.T) {
	e := newEnv(t)
	e.put(t, "acme", `{}`)
	repo := NewRepo(alwaysConflict{e.st}, e.repo.sealer, e.clk).WithSections(crm(), mail())
	_, err := repo.Put(context.Background(), "acme", []byte(`{"crm": {"enabled": true}}`))
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("got %v, want ErrConflict", err)
	}
}

type alwaysConflict struct{ store.Store }

func (alwaysConflict) Write(_ context.Context, w store.Write) error {
	return &store.ConditionError{Key: w.Target(), Cond: w.Cond, Expect: w.Expect}
}

func TestStoredDocumentIsJSON(t *testing.T) {
	e := newEnv(t)
	e.put(t, "acme", fullFile)
	it, _ := e.rawDoc(t, "acme")
	if !json.Valid(it.Data) || !bytes.HasPrefix(it.Data, []byte("{")) {
		t.Fatalf("stored data is not a JSON object: %s", it.Data)
	}
}

// TestPutAcceptsLoopbackHTTP: a fake or proxy on this machine may be plain http; nothing
// crosses a network.
func TestPutAcceptsLoopbackHTTP(t *testing.T) {
	e := newEnv(t)
	a, err := e.repo.Put(context.Background(), "acme", []byte(`{"crm": {"base_url": "http://127.0.0.1:9000/1"}, "mail": {"base_url": "http://localhost:9001"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if a.Text("crm.base_url") != "http://127.0.0.1:9000/1" || a.Text("mail.base_url") != "http://localhost:9001" {
		t.Errorf("stored %q and %q", a.Text("crm.base_url"), a.Text("mail.base_url"))
	}
}

// TestGetOpensOnlyWhatItIsAsked: the webhook path reads an account for its webhook password
// and must not decrypt the API keys and the ThriveCart words beside it.
func TestGetOpensOnlyWhatItIsAsked(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.put(t, "acme", fullFile)
	key, err := secrets.LoadOrCreateLocalKey(filepath.Join(e.dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingWrapper{KeyWrapper: key}
	repo := NewRepo(e.st, secrets.NewSealer(rec, e.clk), e.clk).WithSections(crm(), mail())

	a, err := repo.Get(ctx, "acme", UltraCartWebhookPassword)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.opened(); len(got) != 1 || got[0] != "ultracart.webhook_password" {
		t.Errorf("opened %v, want only ultracart.webhook_password", got)
	}
	if !webhookCredentials(a, "uc-user", "uc-Pa55-word") {
		t.Error("the opened password does not check")
	}
	for _, s := range []Secret{a.ThriveCart.Secret, a.ThriveCart.APIKey, a.SecretAt("crm.api_key"), a.SecretAt("mail.api_key")} {
		if !s.IsSet() || s.Opened() {
			t.Errorf("an unasked secret: set %v, opened %v; want set and sealed", s.IsSet(), s.Opened())
		}
	}
	if known := repo.sealer.Known(); known.Contains("op-live-K3y-7f9a2c") || known.Contains("tc-word-91") {
		t.Error("the process holds a secret it did not ask for")
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "crm.api_key of account acme was read without being opened") {
				t.Errorf("revealing an unopened secret: %v", r)
			}
		}()
		_ = a.SecretAt("crm.api_key").Reveal()
	}()
	if _, err := repo.Get(ctx, "acme", Field("crm.app_id")); err == nil || !strings.Contains(err.Error(), "is not a secret") {
		t.Errorf("asking to open a setting that is not a secret: %v", err)
	}

	rec.reset()
	if _, err := repo.Put(ctx, "acme", []byte(`{"crm": {"api_key": "op-new-key-1"}, "mail": {"enabled": false}}`)); err != nil {
		t.Fatal(err)
	}
	if got := rec.opened(); len(got) != 0 {
		t.Errorf("a put opened %v; it needs to open nothing", got)
	}
	if _, err := repo.List(ctx); err != nil || len(rec.opened()) != 0 {
		t.Errorf("List opened %v (%v)", rec.opened(), err)
	}
}

// recordingWrapper records the secret of every data key it unwraps.
type recordingWrapper struct {
	secrets.KeyWrapper
	mu   sync.Mutex
	seen []string
}

func (r *recordingWrapper) Unwrap(ctx context.Context, wrapped []byte, keyID string, ec secrets.EncryptionContext) ([]byte, error) {
	r.mu.Lock()
	r.seen = append(r.seen, secrets.SecretOf(ec))
	r.mu.Unlock()
	return r.KeyWrapper.Unwrap(ctx, wrapped, keyID, ec)
}

func (r *recordingWrapper) opened() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

func (r *recordingWrapper) reset() {
	r.mu.Lock()
	r.seen = nil
	r.mu.Unlock()
}

// The webhook password of account acme as the previous release sealed it (format v1), under
// the fixed key of 32 bytes of 7. (shared/destinations holds a destination's key sealed so.)
const (
	v1WebhookPassword = "v1.local-3ecf24992363.xB2clyOVg4HpFt91q6EYvBgNVx5QEGUDpOVae2dq4qOkLXBpf_H1a-VHydbQQZYuqpw2x2vSyCjJxG2F.NAnRycp3_0YgQmDXkWryA1eJPQ_WBPhBkGYPWwNKfAnxKrQB1GxVNA0JGpw"
	v1WebhookPlain    = "v1-value-of-2025"
)

// TestSecretsOfTheLastReleaseOpenAndReseal: an upgrade strands no deployment. Secrets sealed
// before the encryption context named the account and the secret apart still open, and
// Reseal moves them to the current format without changing them.
func TestSecretsOfTheLastReleaseOpenAndReseal(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if err := os.WriteFile(filepath.Join(e.dir, "fixed.key"), []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	repo := e.repoWithKey(t, "fixed.key")
	if _, err := repo.Put(ctx, "acme", []byte(`{"ultracart":{"webhook_username":"uc-user"},"crm":{"api_key":"crm-key"}}`)); err != nil {
		t.Fatal(err)
	}
	it, doc := e.rawDoc(t, "acme")
	setPath(doc, "ultracart.webhook_password", v1WebhookPassword)
	e.writeRawDoc(t, "acme", it, doc)

	a, err := repo.Get(ctx, "acme", UltraCartWebhookPassword, "crm.api_key")
	if err != nil {
		t.Fatalf("open v1 secrets: %v", err)
	}
	if !webhookCredentials(a, "uc-user", v1WebhookPlain) || a.SecretAt("crm.api_key").Reveal() != "crm-key" {
		t.Fatal("the v1 secret or the current one beside it did not open")
	}
	done, err := repo.Reseal(ctx, "acme")
	if err != nil || !slices.Equal(done, []string{"ultracart.webhook_password"}) {
		t.Fatalf("reseal: %v, %v; want only the v1 secret", done, err)
	}
	_, doc = e.rawDoc(t, "acme")
	if v, _ := Lookup(doc, "ultracart.webhook_password"); !secrets.Current(v.(string)) {
		t.Errorf("the webhook password is still %.3s after reseal", v)
	}
	a, err = repo.Get(ctx, "acme", UltraCartWebhookPassword, "crm.api_key")
	if err != nil || !webhookCredentials(a, "uc-user", v1WebhookPlain) || a.SecretAt("crm.api_key").Reveal() != "crm-key" {
		t.Fatalf("after reseal: %v", err)
	}
	if done, err := repo.Reseal(ctx, "acme"); err != nil || len(done) != 0 {
		t.Fatalf("a second reseal: %v, %v", done, err)
	}
}

// webhookCredentials reports whether a holds these UltraCart webhook credentials, opened.
func webhookCredentials(a Account, user, pass string) bool {
	return a.UltraCart.WebhookUsername == user && a.UltraCart.WebhookPassword.Reveal() == pass
}

// TestPreviewWritesNothing: Preview is the account a put would leave, checked like a put, with
// a secret the patch gives opened, one it keeps sealed and one it removes unset; the stored
// account does not change.
func TestPreviewWritesNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	stored := e.put(t, "acme", `{"crm": {"app_id": "2_1_x", "api_key": "crm-key"}, "mail": {"api_key": "mail-key"}}`)
	a, err := e.repo.Preview(ctx, "acme", []byte(`{"crm": {"app_id": "2_9_new"}, "mail": {"api_key": null}, "thrivecart": {"api_key": "tc-new"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if crmKey := a.SecretAt("crm.api_key"); a.Text("crm.app_id") != "2_9_new" || !crmKey.IsSet() || crmKey.Opened() {
		t.Errorf("preview: app id %q, crm key set %v opened %v; want the new app id beside the stored key, sealed",
			a.Text("crm.app_id"), crmKey.IsSet(), crmKey.Opened())
	}
	if a.SecretAt("mail.api_key").IsSet() || a.ThriveCart.APIKey.Reveal() != "tc-new" {
		t.Error("preview: a removed secret is still set, or a given one is not opened")
	}
	again, err := e.repo.Get(ctx, "acme", e.repo.SecretNames()...)
	if err != nil || again.Version != stored.Version || again.Text("crm.app_id") != "2_1_x" ||
		again.SecretAt("mail.api_key").Reveal() != "mail-key" || again.ThriveCart.APIKey.IsSet() {
		t.Fatalf("Preview wrote: version %d (was %d), %v", again.Version, stored.Version, err)
	}
	if _, err := e.repo.Preview(ctx, "acme", []byte(`{"crm": {"history": "everything"}}`)); !errors.Is(err, ErrInvalid) ||
		!strings.Contains(err.Error(), "crm.history") {
		t.Errorf("a bad value previewed: %v", err)
	}
	if _, err := e.repo.Get(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := e.repo.Preview(ctx, "nobody", []byte(`{}`)); err != nil {
		t.Errorf("preview of a new account: %v", err)
	}
	if _, err := e.repo.Get(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Preview created the account: %v", err)
	}
}
