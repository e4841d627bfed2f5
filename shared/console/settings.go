package console

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/destinations"
)

// kind is how a setting is edited on the page.
type kind int

const (
	kindText kind = iota
	kindBool
	// kindSecret is write-only: the page says whether it is set, never what it is.
	kindSecret
	// kindLists is a comma-separated list of values, ticked among the destination's choices
	// (Iterable's lists) when it can offer them (accounts.FormPick).
	kindLists
	// kindZone is an IANA time zone name.
	kindZone
)

// field is one setting the console edits; Path is the account file's dotted key, so the
// form posts straight into a merge patch and accounts.Repo.Put checks it like any other.
type field struct {
	Path  string
	Label string
	Help  string
	Kind  kind
	// entry marks the inputs that add or remove a section's entry: they are not settings.
	entry bool
	// dest is the destination whose section the field is in; its registration's Form offers
	// the choices of a kindLists field.
	dest string
}

type section struct {
	Title  string
	Fields []field
}

// Settings the console treats itself: ThriveCart's key is checked with ThriveCart before it is
// saved; the destinations' keys are their registrations' to check (deliver.Form).
const (
	thriveCartKeyPath = "thrivecart.api_key"
	timezonePath      = "timezone"
)

// account and sources are the console's own sections: the account's time zone and ThriveCart's
// credentials. Operator-only settings (webhook credentials) stay with the CLI.
func account() section {
	return section{Title: "Account", Fields: []field{
		{Path: timezonePath, Label: "Time zone", Help: "an IANA name such as America/New_York; reports count days, weeks and months in it, and pages show times in it", Kind: kindZone},
	}}
}

func sources() section {
	return section{Title: "ThriveCart", Fields: []field{
		{Path: thriveCartKeyPath, Label: "API key", Help: "checked with ThriveCart before it is saved", Kind: kindSecret},
		{Path: "thrivecart.secret", Label: "Secret word", Help: "authenticates ThriveCart's webhooks", Kind: kindSecret},
	}}
}

// clearPrefix names the checkbox that removes a stored secret; an empty secret input keeps it.
const clearPrefix = "clear:"

// newPrefix names the inputs of a section's new entry ("new:webhooks.endpoints" its name,
// "new:webhooks.endpoints.url" its keys); removePrefix the checkbox that removes an entry.
const (
	newPrefix    = "new:"
	removePrefix = "remove:"
)

// registered are the settings sections the destinations declare (deliver.Registration
// Settings), generated from the registry: each key of the section the form shows, each of the
// account's entries with a box to remove it, and the inputs of one new entry.
func registered(a accounts.Account) []section {
	var out []section
	for _, r := range destinations.All() {
		sec := r.Settings
		if sec == nil {
			continue
		}
		s := section{Title: r.Label}
		add := func(f field, shown bool) {
			if shown {
				f.dest = r.Name
				s.Fields = append(s.Fields, f)
			}
		}
		for _, sf := range sec.Fields {
			add(fromSection(sf, sec.Name+"."+sf.Key, sf.Label))
		}
		if sec.Entries != "" {
			group := sec.Name + "." + sec.Entries
			for _, name := range a.EntryNames(*sec) {
				add(field{Path: removePrefix + group + "." + name, Label: "Remove " + name, Kind: kindBool, entry: true}, true)
				for _, sf := range sec.EntryFields {
					add(fromSection(sf, group+"."+name+"."+sf.Key, name+": "+sf.Label))
				}
			}
			add(field{Path: newPrefix + group, Label: "Add: name", Kind: kindText, entry: true,
				Help: "1 to 40 lower-case letters, digits, - and _; leave empty to add none"}, true)
			for _, sf := range sec.EntryFields {
				f, shown := fromSection(sf, newPrefix+group+"."+sf.Key, "Add: "+sf.Label)
				f.entry = true
				add(f, shown)
			}
		}
		out = append(out, s)
	}
	return out
}

// fromSection is how the form edits a key of a section; shown is false for a key the form
// leaves to operators (accounts.FormHidden).
func fromSection(sf accounts.SectionField, path, label string) (f field, shown bool) {
	k := kindText
	switch {
	case sf.Form == accounts.FormPick:
		k = kindLists
	case sf.Kind == accounts.KindBool:
		k = kindBool
	case sf.Kind == accounts.KindSecret:
		k = kindSecret
	}
	if label == "" {
		label = sf.Key
	}
	return field{Path: path, Label: label, Help: sf.Help, Kind: k}, sf.Form != accounts.FormHidden
}

// allSections are what the form shows: the account's own settings, each destination's
// section, and the sources' credentials.
func allSections(a accounts.Account) []section {
	return append(append([]section{account()}, registered(a)...), sources())
}

// fieldView is a field as the template shows it.
type fieldView struct {
	field
	Value   string
	Checked bool
	// Set says whether a secret is stored; its value never reaches the page.
	Set bool
	// ClearName is the name of a secret's remove checkbox.
	ClearName string
	Text      bool
	Bool      bool
	Secret    bool
	// Selected are a list field's ids.
	Selected []string
}

type sectionView struct {
	Title  string
	Fields []fieldView
}

// views shows the account's settings. With form non-nil, text and toggles show what was
// posted (so a refused post can be corrected), while secrets still only say set or unset.
func views(a accounts.Account, form url.Values) []sectionView {
	pub := accounts.Public(a)
	var out []sectionView
	for _, s := range allSections(a) {
		sv := sectionView{Title: s.Title}
		for _, f := range s.Fields {
			v := fieldView{field: f, Text: f.Kind == kindText || f.Kind == kindZone || f.Kind == kindLists, Bool: f.Kind == kindBool,
				Secret: f.Kind == kindSecret, ClearName: clearPrefix + f.Path}
			stored, _ := accounts.Lookup(pub, f.Path)
			switch f.Kind {
			case kindSecret:
				v.Set = stored != nil
			case kindBool:
				v.Checked = stored == true
				if form != nil {
					v.Checked = checked(form, f.Path)
				}
			default:
				if stored != nil {
					v.Value = fmt.Sprint(stored)
				}
				if form != nil {
					v.Value = formText(form, f)
				}
				if f.Kind == kindLists {
					v.Selected = splitIDs(v.Value)
				}
			}
			sv.Fields = append(sv.Fields, v)
		}
		out = append(out, sv)
	}
	return out
}

func checked(form url.Values, name string) bool {
	v := form.Get(name)
	return v == "on" || v == "true" || v == "1"
}

// submission is a posted settings form as a merge patch.
type submission struct {
	Patch []byte
	// NewThriveCartKey is a ThriveCart key being set, to be checked before saving (the
	// destinations check theirs in the previewed account, deliver.Form).
	NewThriveCartKey string
}

// formText is a text field as posted: trimmed, and for a list field the ids of its checkboxes
// (or of its text box) joined with commas.
func formText(form url.Values, f field) string {
	if f.Kind != kindLists {
		return strings.TrimSpace(form.Get(f.Path))
	}
	var ids []string
	for _, v := range form[f.Path] {
		ids = append(ids, splitIDs(v)...)
	}
	return strings.Join(ids, ",")
}

// splitIDs reads "1, 2,3" as its ids, in order, without repeats.
func splitIDs(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" && !contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseForm turns the posted form into a merge patch over the console's fields of account a
// only, so a post cannot reach any other setting. Every toggle is written (an unticked box is
// absent from the form); empty text resets a setting to its default; an empty secret input
// keeps the stored secret, and its remove box deletes it. A section's new entry is added under
// the name given, and an entry whose remove box is ticked goes.
func parseForm(a accounts.Account, form url.Values) (submission, error) {
	doc := map[string]any{}
	var sub submission
	var removed []string
	for _, s := range allSections(a) {
		for _, f := range s.Fields {
			if f.entry {
				if group, ok := strings.CutPrefix(f.Path, removePrefix); ok && checked(form, f.Path) {
					removed = append(removed, group)
				}
				continue
			}
			if slices.ContainsFunc(removed, func(g string) bool { return strings.HasPrefix(f.Path, g+".") }) {
				continue
			}
			var v any
			switch f.Kind {
			case kindBool:
				v = checked(form, f.Path)
			case kindText, kindZone, kindLists:
				if t := formText(form, f); t != "" {
					v = t
				}
			case kindSecret:
				t := strings.TrimSpace(form.Get(f.Path))
				switch {
				case t != "":
					v = t
					if f.Path == thriveCartKeyPath {
						sub.NewThriveCartKey = t
					}
				case checked(form, clearPrefix+f.Path):
					v = nil
				default:
					continue
				}
			}
			setPath(doc, f.Path, v)
		}
	}
	for _, g := range removed {
		setPath(doc, g, nil)
	}
	addEntries(a, form, doc)
	b, err := json.Marshal(doc)
	if err != nil {
		return sub, fmt.Errorf("encode settings patch: %w", err)
	}
	sub.Patch = b
	return sub, nil
}

func setPath(doc map[string]any, path string, v any) {
	head, rest, nested := strings.Cut(path, ".")
	if !nested {
		doc[head] = v
		return
	}
	m, ok := doc[head].(map[string]any)
	if !ok {
		m = map[string]any{}
		doc[head] = m
	}
	setPath(m, rest, v)
}

// addEntries puts into doc the new entry of each registered section that the form names.
// Its name and values are checked by accounts.Repo.Put like any others.
func addEntries(a accounts.Account, form url.Values, doc map[string]any) {
	for _, r := range destinations.All() {
		sec := r.Settings
		if sec == nil || sec.Entries == "" {
			continue
		}
		group := sec.Name + "." + sec.Entries
		name := strings.TrimSpace(form.Get(newPrefix + group))
		if name == "" || strings.Contains(name, ".") {
			if name != "" {
				// Dots separate levels: the name is refused with the others' rule.
				setPath(doc, group, map[string]any{name: map[string]any{}})
			}
			continue
		}
		entry := map[string]any{}
		for _, sf := range sec.EntryFields {
			v := strings.TrimSpace(form.Get(newPrefix + group + "." + sf.Key))
			switch {
			case sf.Kind == accounts.KindBool:
				entry[sf.Key] = checked(form, newPrefix+group+"."+sf.Key)
			case v != "":
				entry[sf.Key] = v
			}
		}
		setPath(doc, group+"."+name, entry)
	}
}
