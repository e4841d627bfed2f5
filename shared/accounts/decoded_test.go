package accounts

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/store"
)

// TestGetNeverServesAStaleAccount: whatever changed the stored account since the last read
// (a put by this repository, a put by another process, a write that keeps the version), the
// next Get returns the account as stored.
func TestGetNeverServesAStaleAccount(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.put(t, "acme", fullFile)
	e.put(t, "acme", `{"timezone": "Europe/Berlin"}`)
	other := e.repoWithKey(t, "master.key") // another process on the same table

	get := func(step string, open ...Field) Account {
		t.Helper()
		a, err := e.repo.Get(ctx, "acme", open...)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return a
	}
	for range 2 {
		if a := get("warm"); a.Timezone != "Europe/Berlin" {
			t.Fatalf("timezone %q, want Europe/Berlin", a.Timezone)
		}
	}

	if _, err := e.repo.Put(ctx, "acme", []byte(`{"timezone": "America/New_York"}`)); err != nil {
		t.Fatal(err)
	}
	if a := get("after a put here"); a.Timezone != "America/New_York" {
		t.Errorf("after a put here: timezone %q, want America/New_York", a.Timezone)
	}

	if _, err := other.Put(ctx, "acme", []byte(`{"timezone": "Asia/Tokyo", "crm": {"api_key": "op-rotated-Key-22"}}`)); err != nil {
		t.Fatal(err)
	}
	if a := get("after another process's put", Field("crm.api_key")); a.Timezone != "Asia/Tokyo" || a.SecretAt("crm.api_key").Reveal() != "op-rotated-Key-22" {
		t.Errorf("after another process's put: timezone %q, key %q; want Asia/Tokyo, op-rotated-Key-22",
			a.Timezone, a.SecretAt("crm.api_key").Reveal())
	}

	// A writer that leaves the version as it was (a restore of the item) is seen too.
	it, doc := e.rawDoc(t, "acme")
	doc["timezone"] = "Europe/Paris"
	e.writeRawDoc(t, "acme", it, doc)
	if a := get("after a write keeping the version"); a.Timezone != "Europe/Paris" {
		t.Errorf("after a write keeping the version: timezone %q, want Europe/Paris", a.Timezone)
	}

	if err := e.st.Write(ctx, store.DeleteKey(Key("acme"), store.Always)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.repo.Get(ctx, "acme"); err == nil {
		t.Error("a deleted account still reads")
	}
}

// TestGetReusesTheDecodedAccount: a second read of the same stored item is not decoded again,
// and hands out a copy that its caller may change.
func TestGetReusesTheDecodedAccount(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.put(t, "acme", fullFile)
	a, err := e.repo.Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	// Mark what is kept: a second read that decoded the item again would not show it.
	k := keyOf("acme", nil)
	e.repo.decoded.mu.Lock()
	kept := e.repo.decoded.entries[k]
	kept.acct.AllowedDomains = "kept.example"
	e.repo.decoded.entries[k] = kept
	e.repo.decoded.mu.Unlock()

	a.Settings["crm.enabled"] = false // the caller's copy
	b, err := e.repo.Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if b.AllowedDomains != "kept.example" {
		t.Errorf("the second read decoded the item again (allowed domains %q)", b.AllowedDomains)
	}
	if !b.Flag("crm.enabled") {
		t.Error("a change to a returned account's settings reached the next read")
	}
}

// TestGetKeepsWhatItOpensApart: an account read opening one secret is never handed to a read
// that opens another or none, in either order.
func TestGetKeepsWhatItOpensApart(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.put(t, "acme", fullFile)
	sealed := func(a Account, path string) (msg string) {
		defer func() {
			if r := recover(); r != nil {
				msg = fmt.Sprint(r)
			}
		}()
		_ = a.SecretAt(path).Reveal()
		return ""
	}
	for _, order := range [][]Field{nil, {"crm.api_key"}, nil, {"mail.api_key"}, {"crm.api_key"}} {
		a, err := e.repo.Get(ctx, "acme", order...)
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"crm.api_key", "mail.api_key"} {
			asked := len(order) == 1 && string(order[0]) == path
			msg := sealed(a, path)
			if asked && msg != "" {
				t.Errorf("opening %v: %s does not reveal: %s", order, path, msg)
			}
			if !asked && !strings.Contains(msg, "was read without being opened") {
				t.Errorf("opening %v: %s is open", order, path)
			}
		}
	}
}

// TestGetKeepsOpenedSecretsScrubbed: a read of a kept account adds its opened secrets to
// the process's scrubbing set again, as opening them does, so that a set that forgot them
// (it keeps a bounded number) learns them back.
func TestGetKeepsOpenedSecretsScrubbed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.put(t, "acme", fullFile)
	if _, err := e.repo.Get(ctx, "acme", UltraCartWebhookPassword); err != nil {
		t.Fatal(err)
	}
	known := e.repo.sealer.Known()
	for i := range 5000 {
		known.Add(fmt.Sprintf("filler-value-%06d", i))
	}
	if known.Contains("uc-Pa55-word") {
		t.Fatal("the set did not forget the password; the test needs more filler")
	}
	if _, err := e.repo.Get(ctx, "acme", UltraCartWebhookPassword); err != nil {
		t.Fatal(err)
	}
	if !known.Contains("uc-Pa55-word") {
		t.Error("a read of the kept account left its opened password out of the scrubbing set")
	}
}
