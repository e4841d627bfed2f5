package destinations_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/ontraport"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

// TestRegistrationsAreComplete: every destination is registered once, under its queue's name,
// with every part the rest of cartrelay reads, and its queue is one of Queues' FIFO queues
// (deploy's template test holds template.yaml to both).
func TestRegistrationsAreComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range destinations.All() {
		if r.Name == "" || seen[r.Name] {
			t.Errorf("destination %q is unnamed or registered twice", r.Name)
		}
		seen[r.Name] = true
		if r.Label == "" || r.New == nil || r.Enabled == nil || r.History == nil || r.KeySet == nil || r.Check == nil {
			t.Errorf("destination %s: a registration needs a label, New, Enabled, History, KeySet and Check", r.Name)
		}
		if r.Queue.Name != r.Name || !r.Queue.FIFO {
			t.Errorf("destination %s: queue %+v, want a FIFO queue of the same name (per-contact order)", r.Name, r.Queue)
		}
		if spec, ok := destinations.Queues().SpecFor(r.Queue.Name); !ok || spec != r.Queue {
			t.Errorf("destination %s: destinations.Queues has %+v (found %v), the registration %+v", r.Name, spec, ok, r.Queue)
		}
	}
	for _, spec := range destinations.Queues() {
		if spec.FIFO && !seen[spec.Name] {
			t.Errorf("FIFO queue %s has no registered destination", spec.Name)
		}
	}
}

// TestQueuesComeFromTheRegistrations: the queue package's own layout names no destination, so
// each destination's queue (and its DLQ) is in the topology only because it is registered, and
// a spec a new registration would carry needs no edit to shared/queue to be known.
func TestQueuesComeFromTheRegistrations(t *testing.T) {
	fixed := queue.Layout()
	for _, s := range fixed {
		if s.FIFO {
			t.Errorf("the fixed queues include FIFO queue %s; destination queues come from their registrations", s.Name)
		}
	}
	topo := destinations.Queues()
	if len(topo) != len(fixed)+len(destinations.All()) {
		t.Errorf("Queues has %d queues, want the %d fixed ones and one per destination (%d)", len(topo), len(fixed), len(destinations.All()))
	}
	for _, r := range destinations.All() {
		for _, name := range []string{r.Queue.Name, r.Queue.DLQ()} {
			if _, ok := fixed.SpecFor(name); ok {
				t.Errorf("shared/queue's fixed layout names destination queue %s", name)
			}
			if _, ok := topo.SpecFor(name); !ok {
				t.Errorf("destination %s: queue %s is missing from Queues", r.Name, name)
			}
		}
		if err := fixed.ValidateMessages(r.Queue.Name, nil); !errors.Is(err, queue.ErrUnknownQueue) {
			t.Errorf("fixed layout: ValidateMessages(%s) = %v, want ErrUnknownQueue", r.Name, err)
		}
	}

	// A destination not in this build: its registration's spec is all the topology needs.
	next := queue.Layout(queue.DestinationSpec("mailchimp"))
	if got, ok := next.SpecFor("mailchimp-dlq"); !ok || !got.FIFO {
		t.Errorf("a registered mailchimp's DLQ = %+v (found %v), want a FIFO DLQ", got, ok)
	}
	if src, ok := next.SourceOf("mailchimp-dlq"); !ok || src != "mailchimp" {
		t.Errorf("SourceOf(mailchimp-dlq) = %q, %v", src, ok)
	}
	if err := topo.ValidateMessages("mailchimp", nil); !errors.Is(err, queue.ErrUnknownQueue) {
		t.Errorf("an unregistered destination's queue: %v, want ErrUnknownQueue", err)
	}
}

func TestLookupRefusesAnUnknownName(t *testing.T) {
	for _, name := range []string{"mailchimp", "", "Ontraport"} {
		if _, err := destinations.Lookup(name); !errors.Is(err, destinations.ErrUnknown) {
			t.Errorf("Lookup(%q) = %v, want ErrUnknown", name, err)
		}
	}
	for _, name := range destinations.Names() {
		if r, err := destinations.Lookup(name); err != nil || r.Name != name {
			t.Errorf("Lookup(%q) = %v, %v", name, r.Name, err)
		}
	}
}

func TestEnabledAndHistory(t *testing.T) {
	var a accounts.Account
	a.Set("ontraport.enabled", true, "ontraport.history", accounts.HistoryAll, "iterable.enabled", false)
	for _, tc := range []struct {
		dest    string
		enabled bool
		history accounts.HistoryMode
	}{
		{ontraport.Name, true, accounts.HistoryAll},
		{iterable.Name, false, accounts.HistoryProfiles}, // unset reads as the default
	} {
		r, err := destinations.Lookup(tc.dest)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Enabled(a); got != tc.enabled {
			t.Errorf("%s enabled = %v, want %v", tc.dest, got, tc.enabled)
		}
		if got := r.History(a); got != tc.history {
			t.Errorf("%s history = %q, want %q", tc.dest, got, tc.history)
		}
	}
	got := destinations.Enabled(a)
	if len(got) != 1 || got[0].Name != ontraport.Name {
		t.Errorf("Enabled = %v, want only ontraport (enabled without an API key: it runs dry)", got)
	}
}

// schemaProp is a property of examples/account.schema.json, as far as the sections' test reads it.
type schemaProp struct {
	Section     string                `json:"x-cartrelay-section"`
	Description string                `json:"description"`
	WriteOnly   bool                  `json:"writeOnly"`
	Type        any                   `json:"type"`
	Enum        []any                 `json:"enum"`
	Default     any                   `json:"default"`
	Properties  map[string]schemaProp `json:"properties"`
	// Entries is additionalProperties: false, or the schema of a section's entries.
	Entries json.RawMessage `json:"additionalProperties"`
}

// leaves flattens a group's properties to their dotted keys within it ("tags.shipped").
func (p schemaProp) leaves(prefix string, out map[string]schemaProp) map[string]schemaProp {
	for k, c := range p.Properties {
		if c.Properties != nil {
			c.leaves(prefix+k+".", out)
			continue
		}
		out[prefix+k] = c
	}
	return out
}

// TestSectionsAreInTheAccountSchema: each destination's section of the account file is in
// examples/account.schema.json with exactly its keys, nested as their dots say, each of the
// JSON type its kind takes (null resets it), its default, and its secrets write-only.
func TestSectionsAreInTheAccountSchema(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "account.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema schemaProp
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	wantType := map[accounts.Kind]any{
		accounts.KindText: []any{"string", "null"}, accounts.KindURL: []any{"string", "null"},
		accounts.KindSecret: []any{"string", "null"}, accounts.KindBool: []any{"boolean", "null"},
	}
	check := func(where string, got map[string]schemaProp, want []accounts.SectionField) {
		t.Helper()
		var names []string
		for _, f := range want {
			names = append(names, f.Key)
			p, ok := got[f.Key]
			if !ok {
				t.Errorf("account.schema.json: %s.%s is missing", where, f.Key)
				continue
			}
			secret := f.Kind == accounts.KindSecret
			if p.WriteOnly != secret || secret != strings.HasPrefix(p.Description, "Secret, write-only.") {
				t.Errorf("account.schema.json: %s.%s must be writeOnly, and say \"Secret, write-only.\" first, exactly when it is a secret", where, f.Key)
			}
			if len(p.Description) < 20 {
				t.Errorf("account.schema.json: %s.%s needs a description", where, f.Key)
			}
			if f.Kind == accounts.KindHistory {
				if !reflect.DeepEqual(p.Enum, []any{"none", "profiles", "all", nil}) {
					t.Errorf("account.schema.json: %s.%s enum = %v", where, f.Key, p.Enum)
				}
			} else if !reflect.DeepEqual(p.Type, wantType[f.Kind]) {
				t.Errorf("account.schema.json: %s.%s type = %v, want %v (null resets it)", where, f.Key, p.Type, wantType[f.Kind])
			}
			var def any
			switch {
			case f.Kind == accounts.KindBool:
				def = false
			case f.Default != nil:
				def = fmt.Sprint(f.Default)
				if !strings.Contains(p.Description, fmt.Sprint(f.Default)) {
					t.Errorf("account.schema.json: %s.%s does not mention its default %v", where, f.Key, f.Default)
				}
			}
			if !reflect.DeepEqual(p.Default, def) {
				t.Errorf("account.schema.json: %s.%s default = %v, want %v", where, f.Key, p.Default, def)
			}
		}
		for k := range got {
			if !slices.Contains(names, k) {
				t.Errorf("account.schema.json: %s.%s is not a key of the section", where, k)
			}
		}
	}
	for _, s := range destinations.Sections() {
		g, ok := schema.Properties[s.Name]
		if !ok || g.Section != s.Name {
			t.Errorf("account.schema.json has no group %q marked \"x-cartrelay-section\": %q", s.Name, s.Name)
			continue
		}
		top := maps.Clone(g.Properties)
		if s.Entries != "" {
			e, ok := top[s.Entries]
			delete(top, s.Entries)
			var entry schemaProp
			if !ok || json.Unmarshal(e.Entries, &entry) != nil {
				t.Errorf("account.schema.json: %s.%s must describe its entries in additionalProperties", s.Name, s.Entries)
			} else {
				check(s.Name+"."+s.Entries+".NAME", entry.leaves("", map[string]schemaProp{}), s.EntryFields)
			}
		}
		check(s.Name, schemaProp{Properties: top}.leaves("", map[string]schemaProp{}), s.Fields)
	}
}

// TestExampleFileSections: the destinations' sections of examples/account.example.json are
// stored where they belong and pass the destinations' checks.
func TestExampleFileSections(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "account.example.json"))
	if err != nil {
		t.Fatal(err)
	}
	var example map[string]any
	if err := json.Unmarshal(raw, &example); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	key, err := secrets.NewLocalKey(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	repo := accounts.NewRepo(testenv.EmbeddedStore(t, clk), secrets.NewSealer(key, clk), clk).
		WithCheck(destinations.Check).WithSections(destinations.Sections()...)
	if _, err := repo.Put(context.Background(), "acme", raw); err != nil {
		t.Fatalf("the example is refused: %v", err)
	}
	a, err := repo.Get(context.Background(), "acme", repo.SecretNames()...)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range destinations.Sections() {
		for _, f := range s.Fields {
			path := s.Name + "." + f.Key
			want, ok := accounts.Lookup(example, path)
			if !ok {
				continue
			}
			n++
			var got any
			switch v := a.Settings[path].(type) {
			case accounts.Secret:
				got = v.Reveal()
			case accounts.HistoryMode:
				got = string(v)
			default:
				got = v
			}
			if got != want {
				t.Errorf("%s: the example says %v, stored %v", path, want, got)
			}
		}
	}
	if n < 10 {
		t.Errorf("the example sets only %d keys of the destinations' sections; show more of them", n)
	}
}
