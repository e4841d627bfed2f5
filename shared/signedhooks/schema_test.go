package signedhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/cartrelay/cartrelay/shared/deliver/delivertest"
	"github.com/cartrelay/cartrelay/shared/domain"
)

const schemaPath = "../../examples/webhook-payload.schema.json"

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", schemaPath, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("webhook-payload.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("webhook-payload.schema.json")
	if err != nil {
		t.Fatalf("%s does not compile: %v", schemaPath, err)
	}
	return s
}

func validate(s *jsonschema.Schema, body []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

// TestPayloadSchema: what the destination sent to a receiver, for delivertest's fact of every kind, is
// valid under examples/webhook-payload.schema.json; the schema names every fact kind; and it
// refuses a payload without what it promises.
func TestPayloadSchema(t *testing.T) {
	schema := compileSchema(t)
	e := newEnv(t)
	facts := delivertest.Examples(t)
	for _, f := range facts {
		if _, err := e.dest.Deliver(context.Background(), e.acct, f); err != nil {
			t.Fatalf("%s: %v", f.Kind, err)
		}
	}
	ids, bodies := e.fake.Taken()
	if len(ids) != len(domain.FactKinds()) {
		t.Fatalf("the receiver took %d requests, want one of each of the %d kinds", len(ids), len(domain.FactKinds()))
	}
	for i, body := range bodies {
		if err := validate(schema, body); err != nil {
			t.Errorf("payload of %s does not match the schema: %v", ids[i], err)
		}
	}

	var raw struct {
		Defs struct {
			Kind struct {
				Enum []domain.FactKind `json:"enum"`
			} `json:"kind"`
		} `json:"$defs"`
	}
	b, _ := os.ReadFile(schemaPath)
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(raw.Defs.Kind.Enum, domain.FactKinds()) {
		t.Errorf("the schema's kinds %v, want domain.FactKinds() %v", raw.Defs.Kind.Enum, domain.FactKinds())
	}

	for name, broken := range map[string]string{
		"no id":                    `{"type":"OrderPlaced","timestamp":"2026-11-01T10:01:00Z","data":{"account":"acme","kind":"OrderPlaced","email":"a@example.com","occurred_at":"2026-11-01T10:01:00Z","order":{}}}`,
		"a refund without it":      `{"type":"OrderRefunded","timestamp":"2026-11-01T10:01:00Z","data":{"id":"x","account":"acme","kind":"OrderRefunded","email":"a@example.com","occurred_at":"2026-11-01T10:01:00Z"}}`,
		"an unknown kind":          `{"type":"OrderLost","timestamp":"2026-11-01T10:01:00Z","data":{"id":"x","account":"acme","kind":"OrderLost","email":"a@example.com","occurred_at":"2026-11-01T10:01:00Z"}}`,
		"a timestamp not RFC 3339": `{"type":"ContactChanged","timestamp":"yesterday","data":{"id":"x","account":"acme","kind":"ContactChanged","email":"a@example.com","occurred_at":"2026-11-01T10:01:00Z","contact":{}}}`,
		"money as a float": `{"type":"OrderPlaced","timestamp":"2026-11-01T10:01:00Z","data":{"id":"x","account":"acme","kind":"OrderPlaced","email":"a@example.com","occurred_at":"2026-11-01T10:01:00Z",
			"order":{"key":"ultracart:1","source":"ultracart","order_id":"1","email":"a@example.com","status":"paid","currency":"USD","total":{"amount":110.0,"currency":"USD"}}}}`,
	} {
		if err := validate(schema, []byte(broken)); err == nil {
			t.Errorf("the schema accepts a payload with %s", name)
		}
	}
}
