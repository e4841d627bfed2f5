package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/grants"
	"github.com/cartrelay/cartrelay/shared/secrets"
	"github.com/cartrelay/cartrelay/shared/testenv"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// Condition keys of the statements that open and seal secrets (shared/secrets) and write the
// table.
const (
	secretKey  = "kms:EncryptionContext:" + secrets.ContextSecret
	legacyKey  = "kms:EncryptionContext:" + secrets.LegacyContextKey
	leadingKey = "dynamodb:LeadingKeys"
)

// grantNames maps each function of the template to the name of its grant in shared/grants:
// the program its Makefile target builds, and for the forwarder its DESTINATION.
func grantNames(t *testing.T, tpl *template) map[string]string {
	t.Helper()
	makefile, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, id := range tpl.functions() {
		m := regexp.MustCompile(`(?m)^build-` + id + `:\n\t\$\(call lambda_bootstrap,(\w+)\)`).FindSubmatch(makefile)
		if m == nil {
			t.Fatalf("%s: no build-%s target in the Makefile", id, id)
		}
		env := tpl.env(id)
		out[id] = wiring.FunctionName(string(m[1]), func(k string) string { return scalar(env[k]) })
	}
	return out
}

func sorted(xs []string) []string {
	out := slices.Clone(xs)
	sort.Strings(out)
	return out
}

// TestSecretsAndTableWritesFollowTheGrants holds each function's IAM policy to its grant in
// shared/grants, which the function's own process keeps to: kms:Decrypt only under the
// encryption contexts of the secrets it may open (in the current format, and in the format of
// earlier releases), kms:Encrypt only under those it may seal, no other KMS action, and table
// writes only to its partitions where the grant limits them. No function may decrypt without a
// condition.
func TestSecretsAndTableWritesFollowTheGrants(t *testing.T) {
	tpl := loadTemplate(t)
	names := grantNames(t, tpl)
	seen := map[string]bool{}
	for _, id := range tpl.functions() {
		name := names[id]
		seen[name] = true
		g, err := grants.For(name)
		if err != nil {
			t.Errorf("%s: %v", id, err)
			continue
		}
		var decrypt, legacy, encrypt []string
		for _, s := range tpl.statements(id) {
			for _, a := range s.actions {
				svc, _, _ := strings.Cut(a, ":")
				switch {
				case a == "kms:Decrypt":
					eq, like := s.conditions["StringEquals"][secretKey], s.conditions["StringLike"][legacyKey]
					switch {
					case len(eq) > 0 && len(s.conditions) == 1 && len(s.conditions["StringEquals"]) == 1:
						decrypt = append(decrypt, eq...)
					case len(like) > 0 && len(s.conditions) == 1 && len(s.conditions["StringLike"]) == 1:
						for _, v := range like {
							secret, ok := strings.CutPrefix(v, "account:*:")
							if !ok || strings.ContainsAny(secret, "*?") {
								t.Errorf("%s statement %s: %s %q must be account:*:<secret>", id, s.sid, legacyKey, v)
							}
							legacy = append(legacy, secret)
						}
					default:
						t.Errorf("%s statement %s: kms:Decrypt must be conditioned on %s (StringEquals) or, for values sealed by earlier releases, %s (StringLike) alone; got %v",
							id, s.sid, secretKey, legacyKey, s.conditions)
					}
				case a == "kms:Encrypt":
					eq := s.conditions["StringEquals"][secretKey]
					if len(eq) == 0 || len(s.conditions) != 1 || len(s.conditions["StringEquals"]) != 1 {
						t.Errorf("%s statement %s: kms:Encrypt must be conditioned on %s alone; got %v", id, s.sid, secretKey, s.conditions)
					}
					encrypt = append(encrypt, eq...)
				case svc == "kms":
					t.Errorf("%s statement %s: %s; a function only seals and opens secrets (the table's key is used by DynamoDB through the key policy)", id, s.sid, a)
				}
			}
			writes := slices.ContainsFunc(s.actions, func(a string) bool {
				return a == "dynamodb:PutItem" || a == "dynamodb:UpdateItem" || a == "dynamodb:DeleteItem" || a == "dynamodb:ConditionCheckItem"
			})
			if writes && g.Writes != nil {
				got := s.conditions["ForAllValues:StringLike"][leadingKey]
				if len(s.conditions) != 1 || !slices.Equal(sorted(got), sorted(g.Writes)) {
					t.Errorf("%s statement %s: table writes must be conditioned on ForAllValues:StringLike %s %v (shared/grants); got %v",
						id, s.sid, leadingKey, g.Writes, s.conditions)
				}
			}
		}
		if !slices.Equal(sorted(decrypt), sorted(g.Secrets.Decrypt)) {
			t.Errorf("%s may decrypt %v; its grant (%s) is %v", id, sorted(decrypt), name, sorted(g.Secrets.Decrypt))
		}
		// Secrets of a section's entries ("webhooks.endpoints.*.secret") came after the earlier
		// format, so nothing of theirs is sealed in it.
		var sealedBefore []string
		for _, d := range g.Secrets.Decrypt {
			if !strings.Contains(d, "*") {
				sealedBefore = append(sealedBefore, d)
			}
		}
		if !slices.Equal(sorted(legacy), sorted(sealedBefore)) {
			t.Errorf("%s may decrypt values sealed by earlier releases for %v; its grant (%s) is %v", id, sorted(legacy), name, sorted(sealedBefore))
		}
		if !slices.Equal(sorted(encrypt), sorted(g.Secrets.Encrypt)) {
			t.Errorf("%s may encrypt %v; its grant (%s) is %v", id, sorted(encrypt), name, sorted(g.Secrets.Encrypt))
		}
	}
	for _, fn := range grants.Functions() {
		if !seen[fn] {
			t.Errorf("shared/grants has a grant for %s, which no function of the template runs as", fn)
		}
	}
}

// TestTableIsEncryptedWithTheStackKey: the table, which holds customers' personal data, is
// encrypted at rest with the stack's key, which DynamoDB may use only through DynamoDB.
func TestTableIsEncryptedWithTheStackKey(t *testing.T) {
	tpl := loadTemplate(t)
	tables := tpl.ofType("AWS::DynamoDB::Table")
	if len(tables) != 1 {
		t.Fatalf("tables %v", tables)
	}
	sse := get(tpl.resources[tables[0]], "Properties", "SSESpecification")
	key, attr := getAtt(get(sse, "KMSMasterKeyId"))
	if scalar(get(sse, "SSEEnabled")) != "true" || scalar(get(sse, "SSEType")) != "KMS" ||
		scalar(get(tpl.resources[key], "Type")) != "AWS::KMS::Key" || attr != "Arn" {
		t.Fatalf("SSESpecification must enable KMS encryption with the stack's key (KMSMasterKeyId !GetAtt <key>.Arn)")
	}
	if scalar(get(tpl.resources[key], "DeletionPolicy")) != "Retain" {
		t.Errorf("%s must be retained with the table: without it the table cannot be read", key)
	}
	throughDynamoDB := false
	for _, s := range seq(get(tpl.resources[key], "Properties", "KeyPolicy", "Statement")) {
		principal := get(s, "Principal", "AWS")
		root := strings.HasSuffix(sub(principal), ":root")
		via := get(s, "Condition", "StringEquals", "kms:ViaService")
		switch {
		case root:
		case strings.HasPrefix(sub(via), "dynamodb."):
			throughDynamoDB = true
			if ref(get(s, "Condition", "StringEquals", "kms:CallerAccount")) != "AWS::AccountId" {
				t.Errorf("key policy statement %s: use through DynamoDB must stay within the account (kms:CallerAccount)", scalar(get(s, "Sid")))
			}
		default:
			t.Errorf("key policy statement %s grants the key other than to the account's IAM or through DynamoDB", scalar(get(s, "Sid")))
		}
	}
	if !throughDynamoDB {
		t.Error("the key policy does not let DynamoDB use the key for the table")
	}
}

// TestConditionsHoldAsIAMEvaluatesThem checks the evaluator the end-to-end test uses to hold
// each function's calls to its statements, on the conditions the template writes.
func TestConditionsHoldAsIAMEvaluatesThem(t *testing.T) {
	tpl := loadTemplate(t)
	conds := func(sid string) map[string]map[string][]string {
		for _, s := range tpl.statements("WebhookFunction") {
			if s.sid == sid {
				return s.conditions
			}
		}
		t.Fatalf("WebhookFunction has no statement %s", sid)
		return nil
	}
	open, before, writes := conds("OpenOwnSecrets"), conds("OpenOwnSecretsSealedBefore"), conds("TableWrites")
	for _, tc := range []struct {
		name  string
		conds map[string]map[string][]string
		ctx   map[string][]string
		want  bool
	}{
		{"its own secret", open, map[string][]string{secretKey: {"ultracart.webhook_password"}, "kms:EncryptionContext:cartrelay:account": {"acme"}}, true},
		{"an API key", open, map[string][]string{secretKey: {"ontraport.api_key"}}, false},
		{"no context", open, nil, false},
		{"its own secret sealed before", before, map[string][]string{legacyKey: {"account:acme:thrivecart.secret"}}, true},
		{"an API key sealed before", before, map[string][]string{legacyKey: {"account:acme:ontraport.api_key"}}, false},
		{"the current format under the legacy statement", before, map[string][]string{secretKey: {"thrivecart.secret"}}, false},
		{"account data", writes, map[string][]string{leadingKey: {"A#acme#E#jane@example.com"}}, true},
		{"an event body", writes, map[string][]string{leadingKey: {"BLOB#abc"}}, true},
		{"the account's settings", writes, map[string][]string{leadingKey: {"A#acme"}}, false},
		{"a merchant's binding", writes, map[string][]string{leadingKey: {"UCM#DEMO"}}, false},
	} {
		if got := conditionsHold(tc.conds, tc.ctx); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
