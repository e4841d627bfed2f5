package accounts

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Section is a top-level group of the account file that another package declares and owns (a
// destination's settings, through its registration). accounts only stores it: it checks each
// value's kind, seals its secrets, merges patches into it and shows it, exactly as it does for
// its own keys; what the values mean is the owning package's business (Repo.WithCheck).
//
// A section may hold named entries, a map under Name.Entries whose keys the merchant chooses
// ("webhooks.endpoints.crm.url"), so that one account can have several of a thing. A merge
// patch adds an entry by naming it, and removes it with null.
type Section struct {
	// Name is the top-level key ("webhooks").
	Name string
	// Fields are the keys directly under Name.
	Fields []SectionField
	// Entries is the key of the named entries under Name ("endpoints"); empty: none.
	Entries string
	// EntryFields are the keys of each entry.
	EntryFields []SectionField
}

// SectionField is one key of a section. Key may hold dots: it then nests within the section
// ("tags.shipped" in section "crm" is "crm": {"tags": {"shipped": ...}}).
type SectionField struct {
	Key  string
	Kind Kind
	// Default is a string (a URL's default base URL), bool or HistoryMode; nil means the kind's
	// zero value.
	Default any
	// Label and Help are how the console's settings form shows the key.
	Label, Help string
	// Form is how the console's settings form offers it.
	Form FormHint
}

// FormHint is how the console's settings form offers a key of a section.
type FormHint int

// The form hints.
const (
	// FormShown: an input of the key's kind.
	FormShown FormHint = iota
	// FormHidden: not on the form; operators set it with `cartrelay accounts put` (base URLs,
	// rate limits, field names).
	FormHidden
	// FormPick: comma-separated values the merchant ticks among what the destination's
	// registration offers (a vendor's mailing lists), or types when it can offer none.
	FormPick
)

// Kind is how a key of the account file is written, checked and stored.
type Kind = kind

// The kinds a section may use.
const (
	KindText    Kind = kindText
	KindBool    Kind = kindBool
	KindSecret  Kind = kindSecret
	KindHistory Kind = kindHistory
	// KindURL is an absolute https URL (http only on loopback), stored without a trailing
	// slash; an empty value takes the default.
	KindURL Kind = kindURL
)

// entryName is what a merchant may call an entry: it appears in dotted keys and logs.
var entryName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)

// EntryPattern is the name of an entry field's secret in Repo.Get and in its encryption
// context: one name for every entry ("webhooks.endpoints.*.secret"), so a function's grant
// (and its IAM policy) names it once, whatever the merchant called the entries.
func (s Section) EntryPattern(key string) Field {
	return Field(s.Name + "." + s.Entries + ".*." + key)
}

// EntryNames lists the account's entries of the section, in order.
func (a Account) EntryNames(s Section) []string {
	seen := map[string]bool{}
	prefix := s.Name + "." + s.Entries + "."
	for p := range a.Settings {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			name, _, _ := strings.Cut(rest, ".")
			seen[name] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// Text is a text setting of a section ("webhooks.endpoints.crm.url"); "" when unset.
func (a Account) Text(path string) string { s, _ := a.Settings[path].(string); return s }

// Flag is a boolean setting of a section.
func (a Account) Flag(path string) bool { b, _ := a.Settings[path].(bool); return b }

// SecretAt is a secret of a section.
func (a Account) SecretAt(path string) Secret { s, _ := a.Settings[path].(Secret); return s }

// HistoryAt is a history setting of a section.
func (a Account) HistoryAt(path string) HistoryMode { h, _ := a.Settings[path].(HistoryMode); return h }

// sectionFields are the concrete keys of the sections, with entries named in any of docs.
func sectionFields(sections []Section, docs ...map[string]any) []field {
	var out []field
	for _, s := range sections {
		for _, sf := range s.Fields {
			out = append(out, sf.field(s.Name+"."+sf.Key, ""))
		}
		if s.Entries == "" {
			continue
		}
		names := map[string]bool{}
		for _, doc := range docs {
			if m, ok := Lookup(doc, s.Name+"."+s.Entries); ok {
				if entries, ok := m.(map[string]any); ok {
					for n := range entries {
						names[n] = true
					}
				}
			}
		}
		ordered := make([]string, 0, len(names))
		for n := range names {
			ordered = append(ordered, n)
		}
		sort.Strings(ordered)
		for _, n := range ordered {
			for _, sf := range s.EntryFields {
				out = append(out, sf.field(s.Name+"."+s.Entries+"."+n+"."+sf.Key, string(s.EntryPattern(sf.Key))))
			}
		}
	}
	return out
}

func (sf SectionField) field(path, pattern string) field {
	if pattern == "" {
		pattern = path
	}
	return field{path: path, kind: sf.Kind, def: sf.Default, pattern: pattern}
}

// checkEntryNames reports entry names a patch may not use.
func checkEntryNames(sections []Section, patch map[string]any) []Problem {
	var out []Problem
	for _, s := range sections {
		if s.Entries == "" {
			continue
		}
		group := s.Name + "." + s.Entries
		m, ok := Lookup(patch, group)
		if !ok || m == nil {
			continue
		}
		entries, ok := m.(map[string]any)
		if !ok {
			out = append(out, Problem{Path: group, Message: fmt.Sprintf("%s must be an object of named entries, such as {\"crm\": {...}}, got %s", group, show(m))})
			continue
		}
		for _, n := range sortedKeys(entries) {
			if !entryName.MatchString(n) {
				out = append(out, Problem{Path: group + "." + n, Message: fmt.Sprintf("%s: %q is not a usable name; name an entry with 1 to 40 lower-case letters, digits, dashes and underscores, such as \"crm\"", group, n)})
			}
		}
	}
	return out
}

// Secrets lists the section's secrets as Repo.Get and the sealer name them (an entry's as its
// pattern).
func (s Section) Secrets() []Field {
	var out []Field
	for _, sf := range s.Fields {
		if sf.Kind == kindSecret {
			out = append(out, Field(s.Name+"."+sf.Key))
		}
	}
	for _, sf := range s.EntryFields {
		if sf.Kind == kindSecret {
			out = append(out, s.EntryPattern(sf.Key))
		}
	}
	return out
}

// secretPatterns lists the sections' secrets.
func secretPatterns(sections []Section) []Field {
	var out []Field
	for _, s := range sections {
		out = append(out, s.Secrets()...)
	}
	return out
}

// Set sets settings of a's sections, given as pairs of a dotted key ("webhooks.enabled")
// and a value as Repo reads it (a string, bool, HistoryMode or Secret). The map is copied
// first, so a copy of a made earlier keeps its settings. Tests build accounts with it; an
// account's stored settings change only through Repo.Put.
func (a *Account) Set(pairs ...any) {
	m := maps.Clone(a.Settings)
	if m == nil {
		m = map[string]any{}
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i].(string)] = pairs[i+1]
	}
	a.Settings = m
}
