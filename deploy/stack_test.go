package deploy

// What CloudFormation decides when it deploys template.yaml: the values of the parameters and
// the physical names, URLs and ARNs behind the logical ids. Functions get their environment
// from the template through these, either with made-up resources (the start-up checks) or with
// resources created in local stand-ins of AWS (the end-to-end test under the emulator).

import (
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// stack is one deployment of the template.
type stack struct {
	name, account, region string
	// params are the parameter values given at deploy time; the others take their Default.
	params map[string]string
	// refs are the values of !Ref of resources, by logical id; atts the values of !GetAtt, by
	// "LogicalId.Attribute". Resources missing from them get made-up values.
	refs, atts map[string]string
}

// fakeStack is a deployment whose resources are all made up: enough to start the functions,
// not to use them.
func fakeStack() *stack {
	return &stack{name: "cartrelay", account: "123456789012", region: "us-east-1"}
}

// Made-up values for resources a fake stack does not name.
const (
	fakeKeyARN   = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	fakeEndpoint = "https://abcde12345.execute-api.us-east-1.amazonaws.com"
)

// Fake credentials of the functions' execution roles. DynamoDB Local keeps one database per
// access key, so whoever sets up the stack's table uses them too.
const (
	fakeAccessKey    = "AKIAIOSFODNN7EXAMPLE"
	fakeSecretKey    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	fakeSessionToken = "fake-session-token"
)

// value resolves a template value the way CloudFormation would for s.
func (tpl *template) value(n *yaml.Node, s *stack) string {
	if target := ref(n); target != "" {
		return tpl.refValue(target, s)
	}
	if target, attr := getAtt(n); target != "" {
		return tpl.attValue(target, attr, s)
	}
	if str := sub(n); str != "" {
		return tpl.subValue(str, s)
	}
	return scalar(n)
}

func (tpl *template) refValue(target string, s *stack) string {
	switch target {
	case "AWS::StackName":
		return s.name
	case "AWS::Region":
		return s.region
	case "AWS::AccountId":
		return s.account
	case "AWS::Partition":
		return "aws"
	}
	if p := get(tpl.root, "Parameters", target); p != nil {
		if v, ok := s.params[target]; ok {
			return v
		}
		if d := get(p, "Default"); d != nil {
			return scalar(d)
		}
		return "fake-" + strings.ToLower(target) + "-0123456789abcdef0123456789abcdef"
	}
	if v, ok := s.refs[target]; ok {
		return v
	}
	r := tpl.resources[target]
	switch scalar(get(r, "Type")) {
	case "AWS::SQS::Queue":
		return "https://sqs." + s.region + ".amazonaws.com/" + s.account + "/" + tpl.queueName(target, s)
	case "AWS::DynamoDB::Table":
		return s.name + "-" + target + "-1A2B3C4D5E6F"
	}
	return s.name + "-" + target
}

func (tpl *template) attValue(target, attr string, s *stack) string {
	if v, ok := s.atts[target+"."+attr]; ok {
		return v
	}
	switch {
	case attr == "ApiEndpoint":
		return fakeEndpoint
	case scalar(get(tpl.resources[target], "Type")) == "AWS::KMS::Key":
		return fakeKeyARN
	}
	return "arn:aws:fake:" + s.region + ":" + s.account + ":" + target
}

var subVarRE = regexp.MustCompile(`\$\{([^}!]+)\}`)

func (tpl *template) subValue(str string, s *stack) string {
	return subVarRE.ReplaceAllStringFunc(str, func(m string) string {
		name := m[2 : len(m)-1]
		if target, attr, ok := strings.Cut(name, "."); ok {
			return tpl.attValue(target, attr, s)
		}
		return tpl.refValue(name, s)
	})
}

// queueName is the physical name of a queue: its QueueName with the stack's name in it.
func (tpl *template) queueName(logicalID string, s *stack) string {
	return tpl.value(get(tpl.resources[logicalID], "Properties", "QueueName"), s)
}

// lambdaEnv is the environment of a function as Lambda would set it for stack s: Lambda's own
// variables (no HOME among them), fake credentials of the execution role, and the template's
// variables resolved, then extra (NAME=value) on top.
func lambdaEnv(tpl *template, id string, s *stack, extra ...string) []string {
	env := []string{
		"AWS_LAMBDA_FUNCTION_NAME=" + s.name + "-" + id,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + scalar(tpl.fnProp(id, "MemorySize")),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + s.name + "-" + id,
		"AWS_LAMBDA_LOG_STREAM_NAME=2026/01/01/[$LATEST]0123456789abcdef",
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"AWS_REGION=" + s.region,
		"AWS_DEFAULT_REGION=" + s.region,
		"AWS_ACCESS_KEY_ID=" + fakeAccessKey,
		"AWS_SECRET_ACCESS_KEY=" + fakeSecretKey,
		"AWS_SESSION_TOKEN=" + fakeSessionToken,
		"AWS_EC2_METADATA_DISABLED=true",
		"_HANDLER=bootstrap",
		"LAMBDA_TASK_ROOT=/var/task",
		"LAMBDA_RUNTIME_DIR=/var/runtime",
		"LANG=en_US.UTF-8",
		"TZ=:UTC",
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
	}
	vars := tpl.env(id)
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		env = append(env, name+"="+tpl.value(vars[name], s))
	}
	return append(env, extra...)
}
