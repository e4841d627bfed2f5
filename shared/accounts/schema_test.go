package accounts

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// The account file's documentation lives in examples/; these tests keep it true to the code.

func examplePath(name string) string { return filepath.Join("..", "..", "examples", name) }

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

func TestExampleFile(t *testing.T) {
	schema := readJSON(t, examplePath("account.schema.json"))
	raw, err := os.ReadFile(examplePath("account.example.json"))
	if err != nil {
		t.Fatal(err)
	}
	var example map[string]any
	if err := json.Unmarshal(raw, &example); err != nil {
		t.Fatal(err)
	}
	if errs := validate(schema, example, ""); len(errs) > 0 {
		t.Fatalf("the example does not match the schema:\n%s", strings.Join(errs, "\n"))
	}

	// The destinations' sections are theirs to check (shared/destinations' tests); accounts
	// alone stores the rest.
	own := maps.Clone(example)
	for name, p := range schema["properties"].(map[string]any) {
		if _, section := p.(map[string]any)["x-cartrelay-section"]; section {
			delete(own, name)
		}
	}
	raw, err = json.Marshal(own)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	a, err := NewRepo(e.st, e.repo.sealer, e.clk).Put(context.Background(), "acme", raw)
	if err != nil {
		t.Fatalf("the Go decoder rejects the example: %v", err)
	}
	// Every setting in the example arrives where it belongs.
	for _, f := range fieldTable() {
		want, ok := Lookup(example, f.path)
		if !ok {
			continue
		}
		var got any
		switch v := f.get(&a).(type) {
		case Secret:
			got = v.Reveal()
		case time.Time:
			got = formatTime(v)
		case HistoryMode:
			got = string(v)
		default:
			got = v
		}
		if got != want {
			t.Errorf("%s: example says %v, decoded %v", f.path, want, got)
		}
	}

	// What `accounts get` prints is a valid account file too.
	out, _ := json.Marshal(Public(a))
	var shown map[string]any
	_ = json.Unmarshal(out, &shown)
	if errs := validate(schema, shown, ""); len(errs) > 0 {
		t.Fatalf("accounts get output does not match the schema:\n%s", strings.Join(errs, "\n"))
	}
}

// TestSchemaMatchesFieldTable fails when a key is added to one and not the other, or when they
// disagree on a key's type, default or secrecy.
func TestSchemaMatchesFieldTable(t *testing.T) {
	schema := readJSON(t, examplePath("account.schema.json"))
	if schema["$schema"] != "https://json-schema.org/draft/2020-12/schema" || schema["additionalProperties"] != false {
		t.Fatal("the schema must be draft 2020-12 with additionalProperties false")
	}
	leaves := map[string]map[string]any{}
	var walk func(prefix string, node map[string]any)
	walk = func(prefix string, node map[string]any) {
		props, _ := node["properties"].(map[string]any)
		for name, p := range props {
			prop := p.(map[string]any)
			path := prefix + name
			if d, _ := prop["description"].(string); len(d) < 20 {
				t.Errorf("schema: %s needs a description", path)
			}
			if _, owned := prop["x-cartrelay-section"]; owned {
				// A section another package declares (Section); shared/destinations' tests
				// hold it to its declaration.
				continue
			}
			if _, isGroup := prop["properties"]; isGroup {
				if prop["additionalProperties"] != false {
					t.Errorf("schema: group %s must set additionalProperties false", path)
				}
				if !reflect.DeepEqual(prop["type"], []any{"object", "null"}) {
					t.Errorf("schema: group %s must be an object or null (null resets it), got %v", path, prop["type"])
				}
				walk(path+".", prop)
				continue
			}
			leaves[path] = prop
		}
	}
	walk("", schema)

	fields := map[string]field{}
	for _, f := range fieldTable() {
		fields[f.path] = f
	}
	for _, k := range metaKeys() {
		prop, ok := leaves[k]
		if !ok {
			t.Errorf("schema: %s is missing (accounts get prints it)", k)
			continue
		}
		if k != keySchema && prop["readOnly"] != true {
			t.Errorf("schema: %s must be readOnly", k)
		}
		delete(leaves, k)
	}
	var missing, extra []string
	for p := range fields {
		if _, ok := leaves[p]; !ok {
			missing = append(missing, p)
		}
	}
	for p := range leaves {
		if _, ok := fields[p]; !ok {
			extra = append(extra, p)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("keys in the field table but not in the schema: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("keys in the schema but not in the field table: %v", extra)
	}

	for path, prop := range leaves {
		f, ok := fields[path]
		if !ok {
			continue
		}
		secret := f.kind == kindSecret
		if (prop["writeOnly"] == true) != secret {
			t.Errorf("schema: %s writeOnly = %v, but secret = %v", path, prop["writeOnly"], secret)
		}
		if desc, _ := prop["description"].(string); secret != strings.HasPrefix(desc, "Secret, write-only.") {
			t.Errorf("schema: %s description must start with \"Secret, write-only.\" exactly when it is a secret", path)
		}
		wantType := map[kind]any{
			kindText: []any{"string", "null"}, kindURL: []any{"string", "null"}, kindSecret: []any{"string", "null"},
			kindTime: []any{"string", "null"}, kindBool: []any{"boolean", "null"}, kindTimezone: []any{"string", "null"},
		}
		if f.kind == kindHistory {
			if !reflect.DeepEqual(prop["enum"], []any{"none", "profiles", "all", nil}) {
				t.Errorf("schema: %s enum = %v", path, prop["enum"])
			}
		} else if !reflect.DeepEqual(prop["type"], wantType[f.kind]) {
			t.Errorf("schema: %s type = %v, want %v (null clears)", path, prop["type"], wantType[f.kind])
		}
		var wantDefault any
		switch {
		case f.kind == kindBool:
			wantDefault = false
		case f.def != nil:
			wantDefault = fmt.Sprint(f.def)
		}
		if !reflect.DeepEqual(prop["default"], wantDefault) {
			t.Errorf("schema: %s default = %v, want %v", path, prop["default"], wantDefault)
		}
		if f.def != nil {
			if desc, _ := prop["description"].(string); !strings.Contains(desc, fmt.Sprint(f.def)) {
				t.Errorf("schema: %s description does not mention its default %v", path, f.def)
			}
		}
	}
}

// TestValidatorRejects makes sure the small validator below is not vacuous.
func TestValidatorRejects(t *testing.T) {
	schema := readJSON(t, examplePath("account.schema.json"))
	for _, tc := range []struct {
		doc  string
		want string
	}{
		{`{"ultracart": {"erase_on_customer_delete": "yes"}}`, "ultracart.erase_on_customer_delete"},
		{`{"ultracart": {"webhookusername": "x"}}`, "ultracart.webhookusername"},
		{`{"colour": 1}`, "colour"},
		{`{"forward_since": "yesterday"}`, "forward_since"},
		{`{"timezone": 5}`, "timezone"},
		{`{"allowed_domains": ["shop.example.com"]}`, "allowed_domains"},
		{`{"id": "Acme Inc"}`, "id"},
		{`{"ultracart": []}`, "ultracart"},
	} {
		var doc map[string]any
		if err := json.Unmarshal([]byte(tc.doc), &doc); err != nil {
			t.Fatal(err)
		}
		errs := validate(schema, doc, "")
		if len(errs) == 0 || !strings.Contains(strings.Join(errs, "\n"), tc.want) {
			t.Errorf("%s: validator said %v, want a complaint about %s", tc.doc, errs, tc.want)
		}
	}
	var ok map[string]any
	_ = json.Unmarshal([]byte(`{"thrivecart": null, "forward_since": "2024-05-01", "ultracart": {"base_currency": null}}`), &ok)
	if errs := validate(schema, ok, ""); len(errs) > 0 {
		t.Errorf("validator rejects nulls and dates: %v", errs)
	}
}

// validate checks v against the subset of JSON Schema 2020-12 the account schema uses: type,
// properties, additionalProperties false, enum, pattern, anyOf and the formats date-time,
// date and uri.
func validate(schema map[string]any, v any, path string) []string {
	var errs []string
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Sprintf("%s: ", strings.TrimPrefix(path, "."))+fmt.Sprintf(format, args...))
	}
	if types, ok := schema["type"]; ok {
		var allowed []string
		switch tv := types.(type) {
		case string:
			allowed = []string{tv}
		case []any:
			for _, x := range tv {
				allowed = append(allowed, x.(string))
			}
		}
		if !slices.Contains(allowed, jsonType(v)) {
			fail("%s is not one of %v", jsonType(v), allowed)
			return errs
		}
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.ContainsFunc(enum, func(x any) bool { return reflect.DeepEqual(x, v) }) {
		fail("%v is not one of %v", v, enum)
	}
	if anyOf, ok := schema["anyOf"].([]any); ok {
		matched := false
		for _, s := range anyOf {
			if len(validate(s.(map[string]any), v, path)) == 0 {
				matched = true
			}
		}
		if !matched {
			fail("%v matches none of anyOf", v)
		}
	}
	if s, ok := v.(string); ok {
		if pat, ok := schema["pattern"].(string); ok && !regexp.MustCompile(pat).MatchString(s) {
			fail("%q does not match %s", s, pat)
		}
		switch schema["format"] {
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				fail("%q is not a date-time", s)
			}
		case "date":
			if _, err := time.Parse(time.DateOnly, s); err != nil {
				fail("%q is not a date", s)
			}
		case "uri":
			if u, err := url.Parse(s); err != nil || !u.IsAbs() {
				fail("%q is not an absolute URI", s)
			}
		}
	}
	if obj, ok := v.(map[string]any); ok {
		props, _ := schema["properties"].(map[string]any)
		for k, child := range obj {
			p, known := props[k]
			if !known {
				if schema["additionalProperties"] == false {
					errs = append(errs, fmt.Sprintf("%s: not allowed", strings.TrimPrefix(path+"."+k, ".")))
				}
				continue
			}
			errs = append(errs, validate(p.(map[string]any), child, path+"."+k)...)
		}
	}
	return errs
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64, json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
