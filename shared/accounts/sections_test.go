package accounts

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// hooks is a section as a destination package declares one: keys of its own and named entries.
func hooks() Section {
	return Section{
		Name:    "hooks",
		Fields:  []SectionField{{Key: "enabled", Kind: KindBool}, {Key: "history", Kind: KindHistory, Default: HistoryProfiles}},
		Entries: "endpoints",
		EntryFields: []SectionField{
			{Key: "url", Kind: KindText},
			{Key: "secret", Kind: KindSecret},
			{Key: "kinds", Kind: KindText},
		},
	}
}

func TestSectionEntriesAreStoredSealedAndRemoved(t *testing.T) {
	e := newEnv(t)
	e.repo.WithSections(hooks())
	ctx := context.Background()
	a := e.put(t, "acme", `{"hooks": {"enabled": true, "endpoints": {
		"crm": {"url": "https://crm.example.com/in", "secret": "s3cret-crm"},
		"zap": {"url": "https://hooks.zapier.com/x", "secret": "s3cret-zap", "kinds": "OrderPlaced"}}}}`)
	if got := a.EntryNames(hooks()); !reflect.DeepEqual(got, []string{"crm", "zap"}) {
		t.Fatalf("entries %v, want crm and zap", got)
	}
	if !a.Flag("hooks.enabled") || a.HistoryAt("hooks.history") != HistoryProfiles {
		t.Errorf("enabled %v, history %q", a.Flag("hooks.enabled"), a.HistoryAt("hooks.history"))
	}

	_, doc := e.rawDoc(t, "acme")
	sealed, _ := Lookup(doc, "hooks.endpoints.crm.secret")
	if s, _ := sealed.(string); s == "" || strings.Contains(s, "s3cret") {
		t.Fatalf("stored secret %v: want it sealed", sealed)
	}

	// Not named: sealed. Named by its pattern: opened, for every entry.
	closed, err := e.repo.Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if s := closed.SecretAt("hooks.endpoints.crm.secret"); !s.IsSet() || s.Opened() {
		t.Errorf("an unnamed section secret: set %v, opened %v; want set and sealed", s.IsSet(), s.Opened())
	}
	open, err := e.repo.Get(ctx, "acme", hooks().EntryPattern("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if got := open.SecretAt("hooks.endpoints.zap.secret").Reveal(); got != "s3cret-zap" {
		t.Errorf("opened secret %q", got)
	}
	if got := open.Text("hooks.endpoints.zap.kinds"); got != "OrderPlaced" {
		t.Errorf("kinds %q", got)
	}

	pub := Public(open)
	if v, _ := Lookup(pub, "hooks.endpoints.crm.secret"); v != SetPlaceholder {
		t.Errorf("Public shows the secret as %v, want %q", v, SetPlaceholder)
	}
	if v, _ := Lookup(pub, "hooks.endpoints.crm.url"); v != "https://crm.example.com/in" {
		t.Errorf("Public shows the url as %v", v)
	}

	// A secret written back as the placeholder stays; a null entry goes.
	a = e.put(t, "acme", `{"hooks": {"endpoints": {"crm": {"secret": "[set]", "kinds": "OrderRefunded"}, "zap": null}}}`)
	if got := a.EntryNames(hooks()); !reflect.DeepEqual(got, []string{"crm"}) {
		t.Fatalf("entries after removing zap: %v", got)
	}
	again, err := e.repo.Get(ctx, "acme", hooks().EntryPattern("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if got := again.SecretAt("hooks.endpoints.crm.secret").Reveal(); got != "s3cret-crm" {
		t.Errorf("secret after a placeholder put: %q", got)
	}
	if got := again.EntryNames(hooks()); !reflect.DeepEqual(got, []string{"crm"}) {
		t.Errorf("stored entries %v", got)
	}
	if !SecretsDiffer(open, again) {
		t.Error("removing an entry with a secret is a change of secrets")
	}
}

func TestSectionPatchProblems(t *testing.T) {
	e := newEnv(t)
	e.repo.WithSections(hooks())
	for _, tc := range []struct{ patch, want string }{
		{`{"hooks": {"endpoints": {"Big Name": {"url": "x"}}}}`, `"Big Name" is not a usable name`},
		{`{"hooks": {"endpoints": {"crm": {"uri": "x"}}}}`, "unknown key hooks.endpoints.crm.uri (did you mean hooks.endpoints.crm.url?)"},
		{`{"hooks": {"endpoints": {"crm": {"secret": 5}}}}`, "hooks.endpoints.crm.secret must be a string"},
		{`{"hooks": {"endpoints": ["crm"]}}`, "hooks.endpoints must be an object of named entries"},
		{`{"hooks": {"enabled": "yes"}}`, "hooks.enabled must be true or false"},
	} {
		_, err := e.repo.Put(context.Background(), "acme", []byte(tc.patch))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("put %s: %v; want an invalid-settings error saying %q", tc.patch, err, tc.want)
		}
	}
}

func TestASectionIsUnknownToARepoWithoutIt(t *testing.T) {
	e := newEnv(t)
	_, err := e.repo.Put(context.Background(), "acme", []byte(`{"hooks": {"enabled": true}}`))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "unknown key hooks") {
		t.Fatalf("put to a repo without the section: %v", err)
	}
	if _, err := e.repo.Get(context.Background(), "acme", hooks().EntryPattern("secret")); err == nil || !strings.Contains(err.Error(), "not a secret") {
		t.Fatalf("Get naming a secret no section declares: %v", err)
	}
}
