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
	// kindLists is a comma-separated list of Iterable list ids, picked from the project's lists
	// when they can be read.
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
}

type section struct {
	Title  string
	Fields []field
}

// Settings checked against the vendor before they are saved.
const (
	thriveCartKeyPath  = "thrivecart.api_key"
	ontraportKeyPath   = "ontraport.api_key"
	ontraportAppIDPath = "ontraport.app_id"
	iterableKeyPath    = "iterable.api_key"
	iterableCenterPath = "iterable.data_center"
	timezonePath       = "timezone"
)

// sections lists what the console shows: the destinations' keys and toggles and ThriveCart's
// credentials. Operator-only settings (base URLs, webhook credentials) stay with the CLI.
func sections() []section {
	return []section{
		{Title: "Account", Fields: []field{
			{Path: timezonePath, Label: "Time zone", Help: "an IANA name such as America/New_York; reports count days, weeks and months in it, and pages show times in it", Kind: kindZone},
		}},
		{Title: "ONTRAPORT", Fields: []field{
			{Path: "ontraport.enabled", Label: "Send to ONTRAPORT", Kind: kindBool},
			{Path: "ontraport.app_id", Label: "App ID", Kind: kindText},
			{Path: ontraportKeyPath, Label: "API key", Help: "checked with ONTRAPORT, with the App ID, before it is saved", Kind: kindSecret},
			{Path: "ontraport.send_invoice", Label: "Send ONTRAPORT invoices", Kind: kindBool},
			{Path: "ontraport.invoice_template", Label: "Invoice template id", Kind: kindText},
			{Path: "ontraport.disable_contacts", Label: "Do not send contacts", Kind: kindBool},
			{Path: "ontraport.disable_orders", Label: "Do not send orders", Kind: kindBool},
			{Path: "ontraport.disable_refunds", Label: "Do not send refunds", Kind: kindBool},
			{Path: "ontraport.disable_subscriptions", Label: "Do not send subscriptions", Kind: kindBool},
			{Path: "ontraport.disable_affiliates", Label: "Do not send affiliates", Kind: kindBool},
			{Path: "ontraport.disable_products", Label: "Do not send products", Kind: kindBool},
			{Path: "ontraport.tags.shipped", Label: "Tag on each shipment", Help: "empty: none", Kind: kindText},
			{Path: "ontraport.tags.delivered", Label: "Tag on each delivery", Help: "empty: none", Kind: kindText},
		}},
		{Title: "Iterable", Fields: []field{
			{Path: "iterable.enabled", Label: "Send to Iterable", Kind: kindBool},
			{Path: iterableKeyPath, Label: "API key", Help: "checked with Iterable before it is saved", Kind: kindSecret},
			{Path: "iterable.data_center", Label: "Data center", Help: "us or eu", Kind: kindText},
			{Path: "iterable.disable_regular_events", Label: "Do not send purchases and events", Kind: kindBool},
			{Path: "iterable.disable_return_cart_events", Label: "Do not send abandoned carts", Kind: kindBool},
			{Path: "iterable.return_cart_delay", Label: "Abandoned-cart event delay", Help: "a duration, e.g. 1h", Kind: kindText},
			{Path: "iterable.abandon_cart_after", Label: "Cart counts as abandoned after", Help: "a duration, e.g. 30m", Kind: kindText},
			{Path: "iterable.email_list_ids", Label: "Email lists", Help: "contacts who opt in to email join these lists", Kind: kindLists},
			{Path: "iterable.sms_list_ids", Label: "SMS lists", Help: "contacts with a phone who opt in to SMS join these lists", Kind: kindLists},
			{Path: "iterable.review_url_template", Label: "Review page URL template", Kind: kindText},
			{Path: "iterable.review_wait", Label: "Review request after", Help: "a duration, e.g. 336h", Kind: kindText},
			{Path: "iterable.review_after", Label: "Review wait starts at", Help: "shipment or delivery", Kind: kindText},
			{Path: "iterable.review_link_ttl", Label: "Review links valid for", Help: "a duration", Kind: kindText},
			{Path: "iterable.thumbnail_size", Label: "Thumbnail size", Help: "e.g. 200x200", Kind: kindText},
		}},
		{Title: "ThriveCart", Fields: []field{
			{Path: thriveCartKeyPath, Label: "API key", Help: "checked with ThriveCart before it is saved", Kind: kindSecret},
			{Path: "thrivecart.secret", Label: "Secret word", Help: "authenticates ThriveCart's webhooks", Kind: kindSecret},
		}},
	}
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
// Settings), generated from the registry: each key of the section, each of the account's
// entries with a box to remove it, and the inputs of one new entry.
func registered(a accounts.Account) []section {
	var out []section
	for _, r := range destinations.All() {
		sec := r.Settings
		if sec == nil {
			continue
		}
		s := section{Title: r.Label}
		for _, sf := range sec.Fields {
			s.Fields = append(s.Fields, fromSection(sf, sec.Name+"."+sf.Key, sf.Label))
		}
		if sec.Entries != "" {
			group := sec.Name + "." + sec.Entries
			for _, name := range a.EntryNames(*sec) {
				s.Fields = append(s.Fields, field{Path: removePrefix + group + "." + name, Label: "Remove " + name, Kind: kindBool, entry: true})
				for _, sf := range sec.EntryFields {
					s.Fields = append(s.Fields, fromSection(sf, group+"."+name+"."+sf.Key, name+": "+sf.Label))
				}
			}
			s.Fields = append(s.Fields, field{Path: newPrefix + group, Label: "Add: name", Kind: kindText, entry: true,
				Help: "1 to 40 lower-case letters, digits, - and _; leave empty to add none"})
			for _, sf := range sec.EntryFields {
				f := fromSection(sf, newPrefix+group+"."+sf.Key, "Add: "+sf.Label)
				f.entry = true
				s.Fields = append(s.Fields, f)
			}
		}
		out = append(out, s)
	}
	return out
}

func fromSection(sf accounts.SectionField, path, label string) field {
	k := kindText
	switch sf.Kind {
	case accounts.KindBool:
		k = kindBool
	case accounts.KindSecret:
		k = kindSecret
	}
	if label == "" {
		label = sf.Key
	}
	return field{Path: path, Label: label, Help: sf.Help, Kind: k}
}

// allSections are the console's own sections and the registered ones.
func allSections(a accounts.Account) []section { return append(sections(), registered(a)...) }

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
			stored, _ := lookup(pub, f.Path)
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

func lookup(doc map[string]any, path string) (any, bool) {
	head, rest, nested := strings.Cut(path, ".")
	v, ok := doc[head]
	if !ok || !nested {
		return v, ok
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	return lookup(m, rest)
}

func checked(form url.Values, name string) bool {
	v := form.Get(name)
	return v == "on" || v == "true" || v == "1"
}

// submission is a posted settings form as a merge patch.
type submission struct {
	Patch []byte
	// NewThriveCartKey, NewOntraportKey and NewIterableKey are keys being set, to be checked
	// before saving.
	NewThriveCartKey string
	NewOntraportKey  string
	NewIterableKey   string
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
					switch f.Path {
					case thriveCartKeyPath:
						sub.NewThriveCartKey = t
					case ontraportKeyPath:
						sub.NewOntraportKey = t
					case iterableKeyPath:
						sub.NewIterableKey = t
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
