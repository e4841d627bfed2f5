package destinations_test

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/queue"
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
	a := accounts.Account{
		Ontraport: accounts.OntraportSettings{Enabled: true, History: accounts.HistoryAll},
		Iterable:  accounts.IterableSettings{Enabled: false},
	}
	for _, tc := range []struct {
		dest    string
		enabled bool
		history accounts.HistoryMode
	}{
		{accounts.DestOntraport, true, accounts.HistoryAll},
		{accounts.DestIterable, false, accounts.HistoryProfiles}, // unset reads as the default
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
	if len(got) != 1 || got[0].Name != accounts.DestOntraport {
		t.Errorf("Enabled = %v, want only ontraport (enabled without an API key: it runs dry)", got)
	}
}

// TestSectionsAreInTheAccountSchema: each destination's section of the account file is in
// examples/account.schema.json with exactly its keys, its secrets write-only.
func TestSectionsAreInTheAccountSchema(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "account.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	type prop struct {
		Section    string          `json:"x-cartrelay-section"`
		WriteOnly  bool            `json:"writeOnly"`
		Properties map[string]prop `json:"properties"`
		// Entries is additionalProperties: false, or the schema of a section's entries.
		Entries json.RawMessage `json:"additionalProperties"`
	}
	var schema prop
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	check := func(where string, got map[string]prop, want []accounts.SectionField) {
		t.Helper()
		var names []string
		for _, f := range want {
			names = append(names, f.Key)
			if p, ok := got[f.Key]; !ok || p.WriteOnly != (f.Kind == accounts.KindSecret) {
				t.Errorf("account.schema.json: %s.%s is missing or its writeOnly is not %v", where, f.Key, f.Kind == accounts.KindSecret)
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
			var entry prop
			if !ok || json.Unmarshal(e.Entries, &entry) != nil {
				t.Errorf("account.schema.json: %s.%s must describe its entries in additionalProperties", s.Name, s.Entries)
			} else {
				check(s.Name+"."+s.Entries+".NAME", entry.Properties, s.EntryFields)
			}
		}
		check(s.Name, top, s.Fields)
	}
}
