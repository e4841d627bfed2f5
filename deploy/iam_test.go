package deploy

// The emulator runs a function with any credentials; in AWS every call is checked against the
// function's role. Here the calls each function made during the end-to-end test are held to the
// IAM statements the template gives it, with each call's action and resource named as IAM
// names them.

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/cartrelay/cartrelay/shared/grants"
)

// permission is one IAM action on one resource ARN, with the values of the condition keys the
// request carries that the template's conditions test: a KMS call's encryption context
// (kms:EncryptionContext:<key>) and an item's partition key (dynamodb:LeadingKeys).
type permission struct {
	action, resource string
	context          map[string][]string
}

func (p permission) String() string {
	if len(p.context) == 0 {
		return p.action + " on " + p.resource
	}
	return fmt.Sprintf("%s on %s with %v", p.action, p.resource, p.context)
}

// consumerActions are what SAM's AWSLambdaSQSQueueExecutionRole grants a function with an SQS
// event source, on every queue.
var consumerActions = []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}

// allowed checks one call against the function's policies.
func (rt *liveStack) allowed(t *testing.T, id string, c awsCall) error {
	t.Helper()
	need, err := rt.permissions(c)
	if err != nil {
		return err
	}
	consumer := slices.ContainsFunc(rt.tpl.events(id), func(e event) bool { return e.typ == "SQS" })
	for _, p := range need {
		if consumer && slices.Contains(consumerActions, p.action) && strings.HasPrefix(p.resource, "arn:aws:sqs:") {
			continue
		}
		if !rt.granted(id, p) {
			return fmt.Errorf("it called %s, which needs %s; its policies in template.yaml do not allow that, so in AWS the call fails with AccessDenied", c.target, p)
		}
	}
	return nil
}

// granted reports whether one of the function's statements allows p.
func (rt *liveStack) granted(id string, p permission) bool {
	for _, s := range rt.tpl.statements(id) {
		if !slices.Contains(s.actions, p.action) {
			continue
		}
		for _, r := range s.resources {
			if ok, _ := path.Match(rt.tpl.value(r, rt.stack.stack), p.resource); ok && conditionsHold(s.conditions, p.context) {
				return true
			}
		}
	}
	return false
}

// conditionsHold evaluates a statement's Condition block against what the request carries, as
// IAM does for the operators the template uses: a condition key the request lacks fails
// StringEquals and StringLike and satisfies ForAllValues. An operator this does not know
// fails, so a new one is noticed here rather than trusted.
func conditionsHold(conds map[string]map[string][]string, ctx map[string][]string) bool {
	for op, byKey := range conds {
		for key, want := range byKey {
			got, present := ctx[key]
			match := func(v string) bool {
				for _, w := range want {
					if (strings.HasSuffix(op, "StringEquals") && v == w) || (strings.HasSuffix(op, "StringLike") && grants.Like(w, v)) {
						return true
					}
				}
				return false
			}
			switch op {
			case "StringEquals", "StringLike":
				if !present || len(got) != 1 || !match(got[0]) {
					return false
				}
			case "ForAllValues:StringLike", "ForAllValues:StringEquals":
				for _, v := range got {
					if !match(v) {
						return false
					}
				}
			default:
				return false
			}
		}
	}
	return true
}

// permissions names what a call needs, as IAM's service authorization reference does: a
// DynamoDB transaction needs the item action of each of its items, a batch send needs
// sqs:SendMessage.
func (rt *liveStack) permissions(c awsCall) ([]permission, error) {
	_, op, ok := strings.Cut(c.target, ".")
	if !ok {
		return nil, fmt.Errorf("a %s call without X-Amz-Target (%q): cannot tell which action it needs", c.service, c.target)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(c.body, &body); err != nil {
		return nil, fmt.Errorf("%s: unreadable body: %w", c.target, err)
	}
	str := func(m map[string]json.RawMessage, k string) string {
		var v string
		_ = json.Unmarshal(m[k], &v)
		return v
	}
	s := rt.stack
	switch c.service {
	case "dynamodb":
		tableARN := func(m map[string]json.RawMessage) string {
			arn := "arn:aws:dynamodb:" + s.region + ":" + s.account + ":table/" + str(m, "TableName")
			if ix := str(m, "IndexName"); ix != "" {
				arn += "/index/" + ix
			}
			return arn
		}
		// leading is the partition key an item call names, for dynamodb:LeadingKeys.
		leading := func(m map[string]json.RawMessage) map[string][]string {
			for _, k := range []string{"Key", "Item"} {
				var attrs map[string]struct{ S string }
				if json.Unmarshal(m[k], &attrs) == nil && attrs["pk"].S != "" {
					return map[string][]string{"dynamodb:LeadingKeys": {attrs["pk"].S}}
				}
			}
			return nil
		}
		switch op {
		case "TransactWriteItems", "TransactGetItems":
			var items []map[string]map[string]json.RawMessage
			if err := json.Unmarshal(body["TransactItems"], &items); err != nil {
				return nil, fmt.Errorf("%s: unreadable TransactItems: %w", c.target, err)
			}
			var out []permission
			for _, it := range items {
				for kind, item := range it {
					out = append(out, permission{"dynamodb:" + kind + "Item", tableARN(item), leading(item)})
				}
			}
			return out, nil
		}
		return []permission{{"dynamodb:" + op, tableARN(body), leading(body)}}, nil
	case "sqs":
		queueURL := str(body, "QueueUrl")
		arn := ""
		for id, u := range s.queueURLs {
			if u == queueURL {
				arn = s.queueARNs[id]
			}
		}
		if arn == "" {
			return nil, fmt.Errorf("%s on %q, which is no queue of the stack", c.target, queueURL)
		}
		return []permission{{"sqs:" + strings.TrimSuffix(op, "Batch"), arn, nil}}, nil
	case "kms":
		key := str(body, "KeyId")
		if key == "" {
			// A ciphertext names its key inside; the stack has one.
			key = s.atts["SecretsKey.Arn"]
		}
		var ec map[string]string
		_ = json.Unmarshal(body["EncryptionContext"], &ec)
		ctx := map[string][]string{}
		for k, v := range ec {
			ctx["kms:EncryptionContext:"+k] = []string{v}
		}
		return []permission{{"kms:" + op, key, ctx}}, nil
	case "ssm":
		return []permission{{"ssm:" + op, "arn:aws:ssm:" + s.region + ":" + s.account + ":parameter" + str(body, "Name"), nil}}, nil
	}
	return nil, fmt.Errorf("a call to %s (%s), a service the template grants nothing on", c.service, c.target)
}
