package accounts

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/outbound"
)

// kind is how a key of the account file is written, checked, stored and shown.
type kind int

const (
	kindText     kind = iota // free text
	kindURL                  // absolute https URL (http only on loopback), stored without a trailing slash
	kindBool                 // true or false
	kindTime                 // RFC 3339 or YYYY-MM-DD in the file; RFC 3339 UTC stored and shown
	kindHistory              // a HistoryMode
	kindSecret               // write-only text, sealed at rest
	kindTimezone             // an IANA time zone name, checked against the embedded zone database
)

// field is one key of the account file.
type field struct {
	// path is the dotted key; the file nests on the dots.
	path string
	kind kind
	// ref points at the Account field: *string for text and URLs, *bool, *time.Time,
	// *HistoryMode or *Secret.
	ref func(a *Account) any
	// def is the default (string, bool or HistoryMode); nil means the zero value. A time
	// defaults to the account's creation.
	def any
	// pattern names a section's secret in Repo.Get and its encryption context; empty: path.
	// A field of a Section has no ref: its value lives in Account.Settings under path.
	pattern string
}

// name is how Repo.Get and the sealer name the field's secret.
func (f field) name() string {
	if f.pattern != "" {
		return f.pattern
	}
	return f.path
}

// fieldTable is every key of the account file that accounts itself owns: the account's own and
// the sources' credentials. A destination's keys are its Section, declared in its own package.
// A new setting here is a new row, a field in Account, and a property in
// examples/account.schema.json (a test checks the last).
func fieldTable() []field {
	return []field{
		{path: "forward_since", kind: kindTime, ref: func(a *Account) any { return &a.ForwardSince }},
		{path: "timezone", kind: kindTimezone, def: DefaultTimezone, ref: func(a *Account) any { return &a.Timezone }},
		{path: "allowed_domains", kind: kindText, ref: func(a *Account) any { return &a.AllowedDomains }},

		{path: "ultracart.webhook_username", kind: kindText, ref: func(a *Account) any { return &a.UltraCart.WebhookUsername }},
		{path: "ultracart.webhook_password", kind: kindSecret, ref: func(a *Account) any { return &a.UltraCart.WebhookPassword }},
		{path: "ultracart.base_currency", kind: kindText, ref: func(a *Account) any { return &a.UltraCart.BaseCurrency }},
		{path: "ultracart.erase_on_customer_delete", kind: kindBool, ref: func(a *Account) any { return &a.UltraCart.EraseOnCustomerDelete }},

		{path: "thrivecart.secret", kind: kindSecret, ref: func(a *Account) any { return &a.ThriveCart.Secret }},
		{path: "thrivecart.api_key", kind: kindSecret, ref: func(a *Account) any { return &a.ThriveCart.APIKey }},
	}
}

// Keys the file may carry beside the settings. They are shown by `accounts get`, so that its
// output can be edited and put back; on put they are ignored ("id" must match).
const (
	keySchema    = "$schema"
	keyID        = "id"
	keyCreatedAt = "created_at"
	keyUpdatedAt = "updated_at"
	// The account's bound UltraCart store (binding.go), shown when there is one.
	keyBoundMerchant = "ultracart_merchant_id"
	keyBoundAt       = "ultracart_bound_at"
)

func metaKeys() []string {
	return []string{keySchema, keyID, keyCreatedAt, keyUpdatedAt, keyBoundMerchant, keyBoundAt}
}

// SetPlaceholder is what Public shows for a stored secret. Writing it back keeps the secret.
const SetPlaceholder = "[set]"

// SecretsDiffer reports whether a and b differ in any secret (a key was set, changed or
// removed), which ends the account's console sessions.
func SecretsDiffer(a, b Account) bool {
	for _, f := range fieldTable() {
		if f.kind == kindSecret && f.get(&a) != f.get(&b) {
			return true
		}
	}
	for _, m := range [][2]map[string]any{{a.Settings, b.Settings}, {b.Settings, a.Settings}} {
		for p, v := range m[0] {
			if s, ok := v.(Secret); ok {
				other, _ := m[1][p].(Secret)
				if s != other {
					return true
				}
			}
		}
	}
	return false
}

// Field names a secret of the account file by its dotted key. It is also the secret's name in
// its KMS encryption context, which IAM policies condition kms:Decrypt on.
type Field string

// The secrets of the account file.
const (
	UltraCartWebhookPassword Field = "ultracart.webhook_password"
	ThriveCartSecretWord     Field = "thrivecart.secret"
	ThriveCartAPIKey         Field = "thrivecart.api_key"
)

// SecretFields lists the secrets of accounts' own keys, in table order (Repo.SecretNames adds
// the sections').
func SecretFields() []Field {
	var out []Field
	for _, f := range fieldTable() {
		if f.kind == kindSecret {
			out = append(out, Field(f.path))
		}
	}
	return out
}

// Keys lists the dotted keys of the account file's settings, in table order.
func Keys() []string {
	var out []string
	for _, f := range fieldTable() {
		out = append(out, f.path)
	}
	return out
}

func (f field) get(a *Account) any {
	if f.ref == nil {
		if v, ok := a.Settings[f.path]; ok {
			return v
		}
		return f.defaultFor(a)
	}
	switch p := f.ref(a).(type) {
	case *string:
		return *p
	case *bool:
		return *p
	case *time.Time:
		return *p
	case *HistoryMode:
		return *p
	case *Secret:
		return *p
	}
	panic("accounts: field " + f.path + " has an unsupported type")
}

func (f field) set(a *Account, v any) {
	if f.ref == nil {
		if a.Settings == nil {
			a.Settings = map[string]any{}
		}
		a.Settings[f.path] = v
		return
	}
	switch p := f.ref(a).(type) {
	case *string:
		*p = v.(string)
	case *bool:
		*p = v.(bool)
	case *time.Time:
		*p = v.(time.Time)
	case *HistoryMode:
		*p = v.(HistoryMode)
	case *Secret:
		*p = v.(Secret)
	default:
		panic("accounts: field " + f.path + " has an unsupported type")
	}
}

// defaultFor is the value a key takes when it is absent or cleared.
func (f field) defaultFor(a *Account) any {
	switch {
	case f.kind == kindTime:
		return a.CreatedAt
	case f.def != nil:
		return f.def
	}
	if f.ref == nil {
		switch f.kind {
		case kindBool:
			return false
		case kindSecret:
			return Secret{}
		case kindHistory:
			return HistoryMode("")
		}
		return ""
	}
	switch f.ref(a).(type) {
	case *bool:
		return false
	case *Secret:
		return Secret{}
	case *HistoryMode:
		return HistoryMode("")
	}
	return ""
}

func (f field) reset(a *Account) { f.set(a, f.defaultFor(a)) }

func (f field) isDefault(a *Account) bool {
	if t, ok := f.get(a).(time.Time); ok {
		return t.Equal(a.CreatedAt)
	}
	return f.get(a) == f.defaultFor(a)
}

// parse checks a value from an account file and converts it. Messages start with the path.
// A secret's value is never repeated in a message.
func (f field) parse(v any) (any, string) {
	switch f.kind {
	case kindBool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Sprintf("%s must be true or false, got %s", f.path, show(v))
		}
		return b, ""
	case kindText, kindSecret:
		s, ok := v.(string)
		if !ok {
			if f.kind == kindSecret {
				return nil, fmt.Sprintf("%s must be a string, got %s", f.path, typeName(v))
			}
			return nil, fmt.Sprintf("%s must be a string, got %s", f.path, show(v))
		}
		if s != strings.TrimSpace(s) {
			return nil, fmt.Sprintf("%s starts or ends with spaces or a line break; remove them (a pasted value often carries one)", f.path)
		}
		if f.kind == kindSecret {
			return NewSecret(s), ""
		}
		return s, ""
	case kindURL:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Sprintf("%s must be a string, got %s", f.path, show(v))
		}
		if s == "" {
			if f.def == nil {
				return "", ""
			}
			return f.def, ""
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Sprintf("%s must be an absolute https URL without query, such as %s, got %s", f.path, f.def, show(v))
		}
		// The API key goes wherever this points: never in clear over a network.
		if err := outbound.CheckBaseURL(s); err != nil {
			return nil, f.path + " " + err.Error()
		}
		return strings.TrimRight(s, "/"), ""
	case kindTime:
		s, ok := v.(string)
		if ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				return t.UTC(), ""
			}
			if t, err := time.Parse(time.DateOnly, s); err == nil {
				return t.UTC(), ""
			}
		}
		return nil, fmt.Sprintf("%s must be an RFC 3339 time such as \"2024-05-01T00:00:00Z\" or a date such as \"2024-05-01\", got %s", f.path, show(v))
	case kindTimezone:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Sprintf("%s must be an IANA time zone name such as \"America/New_York\", got %s", f.path, show(v))
		}
		if s == "" {
			return f.def, ""
		}
		if err := CheckTimezone(s); err != nil {
			return nil, fmt.Sprintf("%s: %v", f.path, err)
		}
		return s, ""
	case kindHistory:
		s, ok := v.(string)
		if m := HistoryMode(s); ok && m.Valid() {
			return m, ""
		}
		return nil, fmt.Sprintf("%s must be one of \"none\", \"profiles\" or \"all\", got %s", f.path, show(v))
	}
	return nil, f.path + " has an unknown kind"
}

// show renders a JSON value for an error message, shortened.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	const max = 60
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// schemaTree answers which dotted paths are settings and which are groups of settings.
type schemaTree struct {
	fields map[string]field
	groups map[string]bool
	all    []field
}

func newSchemaTree(fields []field) schemaTree {
	t := schemaTree{fields: map[string]field{}, groups: map[string]bool{}, all: fields}
	for _, f := range fields {
		t.fields[f.path] = f
		for i := strings.IndexByte(f.path, '.'); i >= 0; i = nextDot(f.path, i) {
			t.groups[f.path[:i]] = true
		}
	}
	return t
}

func nextDot(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '.')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// under lists the settings inside group (all of them for "").
func (t schemaTree) under(group string) []field {
	var out []field
	for _, f := range t.all {
		if group == "" || strings.HasPrefix(f.path, group+".") {
			out = append(out, f)
		}
	}
	return out
}

// siblings lists the names valid at prefix ("" or "ultracart.").
func (t schemaTree) siblings(prefix string) []string {
	seen := map[string]bool{}
	add := func(p string) {
		if rest, ok := strings.CutPrefix(p, prefix); ok && rest != "" {
			name, _, _ := strings.Cut(rest, ".")
			seen[prefix+name] = true
		}
	}
	for p := range t.fields {
		add(p)
	}
	if prefix == "" {
		for _, k := range metaKeys() {
			seen[k] = true
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// patchResult is what applying a patch did.
type patchResult struct {
	// touched holds the settings the patch set or cleared.
	touched  map[string]bool
	problems []Problem
}

// applyPatch merges patch (RFC 7386) into a. stored tells which secrets are stored, for the
// "[set]" placeholder.
func applyPatch(a *Account, id string, patch map[string]any, stored func(path string) bool, fields []field) patchResult {
	t := newSchemaTree(fields)
	r := patchResult{touched: map[string]bool{}}
	var walk func(prefix string, obj map[string]any)
	walk = func(prefix string, obj map[string]any) {
		for _, k := range sortedKeys(obj) {
			v, path := obj[k], prefix+k
			if strings.Contains(k, ".") {
				// Dots only separate levels; a dotted key never names a setting.
				r.add(path, unknownKey(t, prefix, k))
				continue
			}
			if f, ok := t.fields[path]; ok {
				r.applyField(a, f, v, stored)
				continue
			}
			if t.groups[path] {
				switch m := v.(type) {
				case nil:
					for _, f := range t.under(path) {
						f.reset(a)
						r.touched[f.path] = true
					}
				case map[string]any:
					walk(path+".", m)
				default:
					r.add(path, fmt.Sprintf("%s must be an object (or null to reset all of it), got %s", path, show(v)))
				}
				continue
			}
			if prefix == "" {
				if msg, ok := checkMeta(k, v, id); ok {
					if msg != "" {
						r.add(k, msg)
					}
					continue
				}
			}
			r.add(path, unknownKey(t, prefix, k))
		}
	}
	walk("", patch)
	return r
}

func (r *patchResult) add(path, msg string) {
	r.problems = append(r.problems, Problem{Path: path, Message: msg})
}

func (r *patchResult) applyField(a *Account, f field, v any, stored func(string) bool) {
	if v == nil {
		f.reset(a)
		r.touched[f.path] = true
		return
	}
	if f.kind == kindSecret && v == SetPlaceholder {
		// Output of `accounts get` put back unchanged: keep the stored secret.
		if !stored(f.path) {
			r.add(f.path, fmt.Sprintf("%s is %q, the placeholder `accounts get` prints for a stored secret, but none is stored; give the secret itself", f.path, SetPlaceholder))
		}
		return
	}
	val, msg := f.parse(v)
	if msg != "" {
		r.add(f.path, msg)
		return
	}
	f.set(a, val)
	r.touched[f.path] = true
}

// checkMeta handles the read-only keys; ok is false for any other key.
func checkMeta(k string, v any, id string) (msg string, ok bool) {
	switch k {
	case keySchema, keyCreatedAt, keyUpdatedAt, keyBoundMerchant, keyBoundAt:
		return "", true
	case keyID:
		if s, isStr := v.(string); isStr && s == id {
			return "", true
		}
		return fmt.Sprintf("id is %s but the account being written is %q; the id comes from the command line, so remove it from the file or make them match", show(v), id), true
	}
	return "", false
}

// unknownKey explains an unknown key and guesses the intended one.
func unknownKey(t schemaTree, prefix, k string) string {
	path := prefix + k
	msg := "unknown key " + path
	// A dotted key at the top level: the file nests instead.
	if f, ok := t.fields[prefix+normalize(k)]; ok && strings.Contains(k, ".") {
		group, leaf, _ := strings.Cut(f.path, ".")
		return fmt.Sprintf("%s: the account file nests keys; write {%q: {%q: ...}}", msg, group, leaf)
	}
	if best := closest(normalize(k), t.siblings(prefix), prefix); best != "" {
		return msg + " (did you mean " + best + "?)"
	}
	// The right name at the wrong level ("api_key" at the top).
	var elsewhere []string
	for p := range t.fields {
		if leaf := p[strings.LastIndexByte(p, '.')+1:]; leaf == normalize(k) && p != path {
			elsewhere = append(elsewhere, p)
		}
	}
	if len(elsewhere) > 0 {
		sort.Strings(elsewhere)
		return msg + " (did you mean " + strings.Join(elsewhere, " or ") + "?)"
	}
	if prefix == "" {
		var settings []string
		for _, s := range t.siblings("") {
			if !slices.Contains(metaKeys(), s) {
				settings = append(settings, s)
			}
		}
		return msg + " (the top-level keys are " + strings.Join(settings, ", ") + ")"
	}
	return msg
}

func normalize(k string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(k)), "-", "_")
}

// closest picks the candidate nearest to name (edit distance on the last segment), if it is
// near enough to be a typo.
func closest(name string, candidates []string, prefix string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		leaf := strings.TrimPrefix(c, prefix)
		if d := editDistance(name, leaf); d < bestD {
			best, bestD = c, d
		}
	}
	limit := 1
	if len(name) >= 5 {
		limit = 2
	}
	if len(name) >= 9 {
		limit = 3
	}
	if bestD <= limit {
		return best
	}
	// "apikey" vs "api_key", "webhookpassword" vs "webhook_password".
	for _, c := range candidates {
		if strings.ReplaceAll(strings.TrimPrefix(c, prefix), "_", "") == strings.ReplaceAll(name, "_", "") {
			return c
		}
	}
	return ""
}

// editDistance is the optimal string alignment distance (Levenshtein plus transpositions).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Lookup finds a dotted path ("webhooks.endpoints.crm.url") in a nested document such as the
// account file or Public's output.
func Lookup(doc map[string]any, path string) (any, bool) {
	cur := doc
	for {
		head, rest, nested := strings.Cut(path, ".")
		v, ok := cur[head]
		if !ok || !nested {
			return v, ok
		}
		if cur, ok = v.(map[string]any); !ok {
			return nil, false
		}
		path = rest
	}
}

// setPath writes a dotted path into a nested document, creating groups.
func setPath(doc map[string]any, path string, v any) {
	cur := doc
	for {
		head, rest, nested := strings.Cut(path, ".")
		if !nested {
			cur[head] = v
			return
		}
		next, ok := cur[head].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[head] = next
		}
		cur, path = next, rest
	}
}

// deletePath removes a dotted path and any group it leaves empty.
func deletePath(doc map[string]any, path string) {
	head, rest, nested := strings.Cut(path, ".")
	if !nested {
		delete(doc, head)
		return
	}
	next, ok := doc[head].(map[string]any)
	if !ok {
		return
	}
	deletePath(next, rest)
	if len(next) == 0 {
		delete(doc, head)
	}
}

// Public is the account as operators see it: the nested account file with the resolved value
// of every setting, RFC 3339 UTC times, and read-only id, created_at and updated_at. Secrets
// are never shown: a stored one reads "[set]", an unset one is left out, as is unset text.
func Public(a Account) map[string]any {
	out := map[string]any{
		keyID:        a.ID,
		keyCreatedAt: formatTime(a.CreatedAt),
		keyUpdatedAt: formatTime(a.UpdatedAt),
	}
	for _, f := range fieldTable() {
		v := f.get(&a)
		switch f.kind {
		case kindSecret:
			if v.(Secret).IsSet() {
				setPath(out, f.path, SetPlaceholder)
			}
		case kindText:
			if v.(string) != "" {
				setPath(out, f.path, v)
			}
		case kindURL:
			if v.(string) == "" {
				v = f.def
			}
			setPath(out, f.path, v)
		case kindHistory:
			if v.(HistoryMode) == "" {
				v = f.def
			}
			setPath(out, f.path, string(v.(HistoryMode)))
		case kindTime:
			setPath(out, f.path, formatTime(v.(time.Time)))
		default:
			setPath(out, f.path, v)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(a.Settings)) {
		switch v := a.Settings[p].(type) {
		case Secret:
			if v.IsSet() {
				setPath(out, p, SetPlaceholder)
			}
		case string:
			if v != "" {
				setPath(out, p, v)
			}
		case HistoryMode:
			setPath(out, p, string(v))
		default:
			setPath(out, p, v)
		}
	}
	return out
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
