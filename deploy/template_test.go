// Package deploy checks template.yaml against the code it deploys: every function builds
// with the Makefile target that `sam build` calls, the queues match destinations.Queues(), the
// table matches the store's keys and indexes, every SQS event source reports batch item
// failures, and each function gets the queue URLs and permissions it needs, no more.
//
// The package has no non-test code. The template is read with yaml.v3's node API, which keeps
// CloudFormation's short-form tags (!Ref, !GetAtt, !Sub) instead of rejecting them.
package deploy

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"github.com/cartrelay/cartrelay/shared/queue"
	queuesqs "github.com/cartrelay/cartrelay/shared/queue/sqs"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/testenv"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

const modulePath = "github.com/cartrelay/cartrelay"

// ---------------------------------------------------------------------------------------------
// Reading the template

type template struct {
	root      *yaml.Node
	resources map[string]*yaml.Node
}

func loadTemplate(t testing.TB) *template {
	t.Helper()
	path := filepath.Join(testenv.RepoRoot(t), "template.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the template: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("%s is not a YAML mapping", path)
	}
	tpl := &template{root: doc.Content[0], resources: map[string]*yaml.Node{}}
	res := get(tpl.root, "Resources")
	for _, id := range keys(res) {
		tpl.resources[id] = get(res, id)
	}
	return tpl
}

// get walks mapping keys; it returns nil when one is missing.
func get(n *yaml.Node, path ...string) *yaml.Node {
	for _, key := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	return n
}

func keys(n *yaml.Node) []string {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out []string
	for i := 0; i < len(n.Content); i += 2 {
		out = append(out, n.Content[i].Value)
	}
	return out
}

// scalar is the value of a plain scalar ("" for anything else).
func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

func seq(n *yaml.Node) []*yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.SequenceNode {
		return n.Content
	}
	return []*yaml.Node{n}
}

func strs(n *yaml.Node) []string {
	var out []string
	for _, c := range seq(n) {
		out = append(out, scalar(c))
	}
	return out
}

func num(t testing.TB, n *yaml.Node, what string) int {
	t.Helper()
	v, err := strconv.Atoi(scalar(n))
	if err != nil {
		t.Fatalf("%s: want a number, got %q", what, scalar(n))
	}
	return v
}

// intrinsic returns the argument of a short-form (!Ref) or long-form ({Ref: ...}) intrinsic.
func intrinsic(n *yaml.Node, short, long string) (*yaml.Node, bool) {
	if n == nil {
		return nil, false
	}
	if n.Tag == short {
		return n, true
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 && n.Content[0].Value == long {
		return n.Content[1], true
	}
	return nil, false
}

// ref is the target of !Ref.
func ref(n *yaml.Node) string {
	arg, ok := intrinsic(n, "!Ref", "Ref")
	if !ok {
		return ""
	}
	return arg.Value
}

// getAtt is the resource and attribute of !GetAtt.
func getAtt(n *yaml.Node) (string, string) {
	arg, ok := intrinsic(n, "!GetAtt", "Fn::GetAtt")
	if !ok {
		return "", ""
	}
	if arg.Kind == yaml.SequenceNode && len(arg.Content) == 2 {
		return arg.Content[0].Value, arg.Content[1].Value
	}
	id, attr, _ := strings.Cut(arg.Value, ".")
	return id, attr
}

// sub is the string of !Sub.
func sub(n *yaml.Node) string {
	arg, ok := intrinsic(n, "!Sub", "Fn::Sub")
	if !ok {
		return ""
	}
	if arg.Kind == yaml.SequenceNode && len(arg.Content) > 0 {
		return arg.Content[0].Value
	}
	return arg.Value
}

func (tpl *template) ofType(typ string) []string {
	var out []string
	for id, r := range tpl.resources {
		if scalar(get(r, "Type")) == typ {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func (tpl *template) functions() []string { return tpl.ofType("AWS::Serverless::Function") }

// fnProp is a function property, falling back to Globals.Function.
func (tpl *template) fnProp(id, prop string) *yaml.Node {
	if n := get(tpl.resources[id], "Properties", prop); n != nil {
		return n
	}
	return get(tpl.root, "Globals", "Function", prop)
}

// env is a function's environment, Globals merged under the function's own variables.
func (tpl *template) env(id string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	for _, vars := range []*yaml.Node{
		get(tpl.root, "Globals", "Function", "Environment", "Variables"),
		get(tpl.resources[id], "Properties", "Environment", "Variables"),
	} {
		for _, k := range keys(vars) {
			out[k] = get(vars, k)
		}
	}
	return out
}

// event is one entry of a function's Events.
type event struct {
	name  string
	typ   string
	props *yaml.Node
}

func (tpl *template) events(id string) []event {
	evs := get(tpl.resources[id], "Properties", "Events")
	var out []event
	for _, name := range keys(evs) {
		e := get(evs, name)
		out = append(out, event{name: name, typ: scalar(get(e, "Type")), props: get(e, "Properties")})
	}
	return out
}

// statement is one IAM statement of a function's inline policies.
type statement struct {
	sid       string
	actions   []string
	resources []*yaml.Node
	// conditions is the Condition block: operator ("StringEquals", "ForAllValues:StringLike")
	// to condition key to the values given.
	conditions map[string]map[string][]string
}

// conditionsOf reads a Condition block; values that are intrinsics keep their argument.
func conditionsOf(n *yaml.Node) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	for _, op := range keys(n) {
		out[op] = map[string][]string{}
		for _, k := range keys(get(n, op)) {
			var vals []string
			for _, v := range seq(get(n, op, k)) {
				vals = append(vals, v.Value)
			}
			out[op][k] = vals
		}
	}
	return out
}

func (tpl *template) statements(id string) []statement {
	var out []statement
	for _, p := range seq(get(tpl.resources[id], "Properties", "Policies")) {
		for _, s := range seq(get(p, "Statement")) {
			// A conditional statement (!If [cond, statement, AWS::NoValue]) counts as granted.
			if s.Tag == "!If" && len(s.Content) == 3 {
				s = s.Content[1]
			}
			if scalar(get(s, "Effect")) != "Allow" {
				continue
			}
			out = append(out, statement{sid: scalar(get(s, "Sid")), actions: strs(get(s, "Action")), resources: seq(get(s, "Resource")),
				conditions: conditionsOf(get(s, "Condition"))})
		}
	}
	return out
}

// allowedOn lists the resources (logical ids of !GetAtt X.Arn) on which the function may do action.
func (tpl *template) allowedOn(id, action string) []string {
	var out []string
	for _, s := range tpl.statements(id) {
		if !slices.Contains(s.actions, action) {
			continue
		}
		for _, r := range s.resources {
			if target, attr := getAtt(r); attr == "Arn" {
				out = append(out, target)
			}
		}
	}
	return out
}

// queueInfo is one AWS::SQS::Queue, by the logical name the code uses (destinations.Queues().Names()).
type queueInfo struct {
	id    string // logical id in the template
	name  string // logical queue name: ingest, ontraport-dlq, ...
	fifo  bool
	props *yaml.Node
}

var queueNameRE = regexp.MustCompile(`^\$\{AWS::StackName\}-([a-z0-9-]+?)(\.fifo)?$`)

func (tpl *template) queues(t testing.TB) map[string]queueInfo {
	t.Helper()
	out := map[string]queueInfo{}
	for _, id := range tpl.ofType("AWS::SQS::Queue") {
		props := get(tpl.resources[id], "Properties")
		physical := sub(get(props, "QueueName"))
		m := queueNameRE.FindStringSubmatch(physical)
		if m == nil {
			t.Fatalf("queue %s: QueueName must be !Sub \"${AWS::StackName}-<name>[.fifo]\", got %q", id, physical)
		}
		q := queueInfo{id: id, name: m[1], fifo: scalar(get(props, "FifoQueue")) == "true", props: props}
		if (m[2] != "") != q.fifo {
			t.Errorf("queue %s: the name %q must end in .fifo exactly when FifoQueue is true", id, physical)
		}
		out[q.name] = q
	}
	return out
}

func (tpl *template) queueByID(t testing.TB) map[string]queueInfo {
	out := map[string]queueInfo{}
	for _, q := range tpl.queues(t) {
		out[q.id] = q
	}
	return out
}

// timeout is a function's Timeout in seconds.
func (tpl *template) timeout(t testing.TB, id string) int {
	return num(t, tpl.fnProp(id, "Timeout"), id+" Timeout")
}

// paramMin is the smallest value a Number parameter can take (its MinValue).
func (tpl *template) paramMin(name string) (int, bool) {
	p := get(tpl.root, "Parameters", name)
	if p == nil {
		return 0, false
	}
	v, err := strconv.Atoi(scalar(get(p, "MinValue")))
	return v, err == nil
}

// ---------------------------------------------------------------------------------------------
// Functions and their builds

// TestFunctionsBuildWithTheirMakeTarget runs, for every function, the Makefile target that
// `sam build` runs (build-<LogicalId>), and checks the result is what Lambda's provided.al2023
// arm64 runtime needs, built from functions/<name>. Every folder under functions/ must be
// deployed by at least one function.
func TestFunctionsBuildWithTheirMakeTarget(t *testing.T) {
	tpl := loadTemplate(t)
	root := testenv.RepoRoot(t)
	if _, err := exec.LookPath("make"); err != nil {
		testenv.Missing(t, "make", "install GNU make; sam build runs the Makefile too")
	}

	fns := tpl.functions()
	if len(fns) == 0 {
		t.Fatal("the template declares no AWS::Serverless::Function")
	}
	for _, id := range fns {
		if got := scalar(get(tpl.resources[id], "Metadata", "BuildMethod")); got != "makefile" {
			t.Errorf("%s: Metadata.BuildMethod = %q, want makefile (SAM's Go builder cannot pass -tags lambda.norpc)", id, got)
		}
		if got := scalar(tpl.fnProp(id, "CodeUri")); got != "." {
			t.Errorf("%s: CodeUri = %q, want . (the folder with the Makefile and go.mod)", id, got)
		}
		if got := scalar(tpl.fnProp(id, "Runtime")); got != "provided.al2023" {
			t.Errorf("%s: Runtime = %q, want provided.al2023", id, got)
		}
		if got := strs(tpl.fnProp(id, "Architectures")); !slices.Equal(got, []string{"arm64"}) {
			t.Errorf("%s: Architectures = %v, want [arm64]", id, got)
		}
		if got := scalar(tpl.fnProp(id, "Handler")); got != "bootstrap" {
			t.Errorf("%s: Handler = %q, want bootstrap", id, got)
		}
	}

	var mu sync.Mutex
	builtFrom := map[string]string{} // logical id -> folder under functions/
	t.Run("build", func(t *testing.T) {
		for _, id := range fns {
			t.Run(id, func(t *testing.T) {
				t.Parallel()
				out := t.TempDir()
				runMake(t, root, "build-"+id, "ARTIFACTS_DIR="+out)
				dir := checkBootstrap(t, filepath.Join(out, "bootstrap"))
				mu.Lock()
				builtFrom[id] = dir
				mu.Unlock()
			})
		}
	})
	if t.Failed() {
		return
	}

	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatalf("list functions/: %v", err)
	}
	used := map[string]bool{}
	for _, dir := range builtFrom {
		used[dir] = true
	}
	for _, e := range entries {
		if e.IsDir() && !used[e.Name()] {
			t.Errorf("functions/%s is not deployed by any function in template.yaml", e.Name())
		}
	}

	// forward is one program deployed once per destination; DESTINATION tells them apart.
	forwarders := map[string]string{}
	for _, id := range fns {
		dest := scalar(tpl.env(id)["DESTINATION"])
		switch {
		case builtFrom[id] == "forward" && dest == "":
			t.Errorf("%s runs functions/forward but sets no DESTINATION", id)
		case builtFrom[id] != "forward" && dest != "":
			t.Errorf("%s sets DESTINATION=%s but runs functions/%s", id, dest, builtFrom[id])
		case dest != "":
			if other, dup := forwarders[dest]; dup {
				t.Errorf("%s and %s both forward to %s", other, id, dest)
			}
			forwarders[dest] = id
		}
	}
	for _, dest := range destinations.Names() {
		if forwarders[dest] == "" {
			t.Errorf("no function forwards to %s (DESTINATION=%s)", dest, dest)
		}
	}
}

// runMake runs make in root and fails the test with make's output if it fails.
func runMake(t testing.TB, root string, args ...string) {
	t.Helper()
	if err := makeIn(root, args...); err != nil {
		t.Fatal(err)
	}
}

// makeIn runs make in root; its error carries make's output.
func makeIn(root string, args ...string) error {
	cmd := exec.Command("make", append([]string{"-s", "--no-print-directory", "-C", root}, args...)...)
	// A make that runs this test must not hand its flags or job server to this one.
	cmd.Env = append(os.Environ(), "MAKEFLAGS=", "MAKELEVEL=", "MFLAGS=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("make %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return nil
}

// maxBootstrapBytes bounds every deployed bootstrap (decimal megabytes, the stricter reading):
// a smaller package is faster to load on a cold start, and growth past it is usually an accident
// of dependencies rather than code. Every function is under it since the AWS services were called
// through shared/awsjson (connect, the largest, is about 9.8 MB), so it holds the line there.
const maxBootstrapBytes = 10_000_000

// awsJSONServices are the AWS services the functions call through shared/awsjson: their SDK
// clients each build the schemas of the whole API at start, which the linker cannot prune.
var awsJSONServices = []string{"kms", "ssm", "sqs", "dynamodb"}

// unlinkedModules are modules no bootstrap links any more, with what replaced them: each made
// a function 0.2 MB (x/text) to 1.4 MB (protobuf) larger. Tests may still use them.
var unlinkedModules = map[string]string{
	"google.golang.org/protobuf": "libphonenumber's copy reads its metadata with third_party/phonenumbers/wire.go",
	"golang.org/x/text":          "currency codes are checked against shared/domain/iso4217.go",
}

// checkBootstrap checks a built bootstrap and returns the folder under functions/ it was built from.
func checkBootstrap(t testing.TB, path string) string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s is not an ELF executable: %v", path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("%s is built for %v, want EM_AARCH64 (Architectures: [arm64])", path, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked; provided.al2023 needs CGO_ENABLED=0", path)
		}
	}
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatalf("%s has no Go build info: %v", path, err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	want := map[string]string{"GOOS": "linux", "GOARCH": "arm64", "CGO_ENABLED": "0", "-trimpath": "true"}
	for k, v := range want {
		if settings[k] != v {
			t.Errorf("%s: built with %s=%q, want %q", path, k, settings[k], v)
		}
	}
	if !slices.Contains(strings.Split(settings["-tags"], ","), "lambda.norpc") {
		t.Errorf("%s: built with -tags=%q, want lambda.norpc", path, settings["-tags"])
	}
	// -trimpath keeps -ldflags out of the build info, so look for what -s -w remove.
	for _, s := range f.Sections {
		if s.Name == ".symtab" || strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			t.Errorf("%s has a %s section; build with -ldflags='-s -w'", path, s.Name)
			break
		}
	}
	if st, err := os.Stat(path); err != nil {
		t.Errorf("%s: %v", path, err)
	} else if st.Size() > maxBootstrapBytes {
		t.Errorf("%s is %.1f MB, over the %.0f MB limit for a bootstrap. Build it with -ldflags=-dumpdep and look for <ReflectMethod>: "+
			"a dependency that calls reflect's Method or MethodByName with a computed name makes the linker keep every exported method",
			path, float64(st.Size())/1e6, float64(maxBootstrapBytes)/1e6)
	}
	dir, ok := strings.CutPrefix(info.Path, modulePath+"/functions/")
	if !ok || strings.Contains(dir, "/") {
		t.Fatalf("%s was built from %s, want %s/functions/<name>", path, info.Path, modulePath)
	}
	for _, dep := range info.Deps {
		if instead, ok := unlinkedModules[dep.Path]; ok {
			t.Errorf("%s links %s %s, which no function needs: %s. To see who imports it: "+
				"go list -deps -f '{{.ImportPath}} {{.Imports}}' ./functions/%s | grep %s", path, dep.Path, dep.Version, instead, dir, dep.Path)
		}
		for _, svc := range awsJSONServices {
			if dep.Path == "github.com/aws/aws-sdk-go-v2/service/"+svc {
				t.Errorf("%s links the SDK's %s client (%s); call %s through shared/awsjson. To see who imports it: "+
					"go list -deps -f '{{.ImportPath}} {{.Imports}}' ./functions/%s | grep service/%s", path, svc, dep.Version, svc, dir, svc)
			}
		}
	}
	return dir
}

// ---------------------------------------------------------------------------------------------
// Queues

// TestQueuesMatchTopology holds the template's queues to destinations.Queues(): the same names,
// FIFO flags, redrive counts and visibility timeouts, each source with its own DLQ.
func TestQueuesMatchTopology(t *testing.T) {
	tpl := loadTemplate(t)
	qs := tpl.queues(t)
	byID := tpl.queueByID(t)

	want := map[string]bool{}
	for _, n := range destinations.Queues().Names() {
		want[n] = true
		if _, ok := qs[n]; !ok {
			t.Errorf("queue %s (destinations.Queues) is missing from the template", n)
		}
	}
	for n, q := range qs {
		if !want[n] {
			t.Errorf("queue %s (%s) is not in destinations.Queues()", n, q.id)
		}
	}

	for _, spec := range destinations.Queues() {
		src, ok1 := qs[spec.Name]
		dlq, ok2 := qs[spec.DLQ()]
		if !ok1 || !ok2 {
			continue
		}
		if src.fifo != spec.FIFO {
			t.Errorf("%s: FifoQueue=%v, Topology says FIFO=%v", spec.Name, src.fifo, spec.FIFO)
		}
		if dlq.fifo != spec.FIFO {
			t.Errorf("%s: FifoQueue=%v; the DLQ of a FIFO queue must be FIFO and of a standard queue standard", spec.DLQ(), dlq.fifo)
		}
		for _, q := range []queueInfo{src, dlq} {
			if q.fifo && scalar(get(q.props, "ContentBasedDeduplication")) != "false" {
				t.Errorf("%s: ContentBasedDeduplication must be false: the fact id is the deduplication id", q.name)
			}
			if got := num(t, get(q.props, "VisibilityTimeout"), q.name+" VisibilityTimeout"); time.Duration(got)*time.Second != spec.VisibilityTimeout {
				t.Errorf("%s: VisibilityTimeout %ds, Topology says %s", q.name, got, spec.VisibilityTimeout)
			}
		}
		redrive := get(src.props, "RedrivePolicy")
		if target, _ := getAtt(get(redrive, "deadLetterTargetArn")); byID[target].name != spec.DLQ() {
			t.Errorf("%s redrives to %q, want its DLQ %s", spec.Name, target, spec.DLQ())
		}
		if got := num(t, get(redrive, "maxReceiveCount"), spec.Name+" maxReceiveCount"); got != spec.MaxReceiveCount {
			t.Errorf("%s: maxReceiveCount %d, Topology says %d", spec.Name, got, spec.MaxReceiveCount)
		}
		if get(dlq.props, "RedrivePolicy") != nil {
			t.Errorf("%s is a DLQ and must not redrive further", spec.DLQ())
		}
		if got := num(t, get(dlq.props, "MessageRetentionPeriod"), spec.DLQ()+" MessageRetentionPeriod"); got != 14*24*3600 {
			t.Errorf("%s keeps messages %ds, want 14 days (1209600)", spec.DLQ(), got)
		}
	}
}

// TestDestinationsAreDeployed holds the template to the destination registry: every registered
// destination has its queue (as destinations.Queues has it) and exactly one forward function that
// names it in DESTINATION, and every DESTINATION names a registered destination, so a
// destination registered without its queue and forwarder in template.yaml fails here.
func TestDestinationsAreDeployed(t *testing.T) {
	tpl := loadTemplate(t)
	qs := tpl.queues(t)
	forwarders := map[string][]string{} // destination -> function ids
	for _, id := range tpl.functions() {
		if d := tpl.env(id)["DESTINATION"]; d != nil {
			name := scalar(d)
			if _, err := destinations.Lookup(name); err != nil {
				t.Errorf("%s: %v", id, err)
			}
			forwarders[name] = append(forwarders[name], id)
		}
	}
	for _, r := range destinations.All() {
		spec, ok := destinations.Queues().SpecFor(r.Queue.Name)
		if !ok || spec != r.Queue {
			t.Errorf("destination %s registers queue %+v; destinations.Queues has %+v (found %v)", r.Name, r.Queue, spec, ok)
		}
		if q, ok := qs[r.Queue.Name]; !ok || !q.fifo {
			t.Errorf("destination %s: template.yaml has no FIFO queue %s (found %v): add the queue, its DLQ and their alarm", r.Name, r.Queue.Name, ok)
		}
		if got := forwarders[r.Name]; len(got) != 1 {
			t.Errorf("destination %s has forward functions %v in template.yaml, want exactly one with DESTINATION=%s", r.Name, got, r.Name)
		}
	}
}

// TestQueueConsumers checks the SQS event sources: one consumer per source queue, none on a
// DLQ, partial batch responses everywhere, visibility at least six times the consumer's
// timeout, and a concurrency cap on the forwarders.
func TestQueueConsumers(t *testing.T) {
	tpl := loadTemplate(t)
	qs := tpl.queues(t)
	byID := tpl.queueByID(t)

	consumers := map[string][]string{} // queue name -> function ids
	for _, id := range tpl.functions() {
		for _, ev := range tpl.events(id) {
			if ev.typ != "SQS" {
				continue
			}
			target, _ := getAtt(get(ev.props, "Queue"))
			q, ok := byID[target]
			if !ok {
				t.Errorf("%s.%s: Queue must be !GetAtt <queue>.Arn of a queue in this template", id, ev.name)
				continue
			}
			consumers[q.name] = append(consumers[q.name], id)
			what := id + " event " + ev.name

			if !slices.Contains(strs(get(ev.props, "FunctionResponseTypes")), "ReportBatchItemFailures") {
				t.Errorf("%s: FunctionResponseTypes must include ReportBatchItemFailures", what)
			}
			batch := num(t, get(ev.props, "BatchSize"), what+" BatchSize")
			if batch < 1 || batch > 10 {
				t.Errorf("%s: BatchSize %d, want 1..10", what, batch)
			}
			if q.fifo && get(ev.props, "MaximumBatchingWindowInSeconds") != nil {
				t.Errorf("%s: FIFO event sources take no batching window", what)
			}
			vis := num(t, get(q.props, "VisibilityTimeout"), q.name+" VisibilityTimeout")
			if timeout := tpl.timeout(t, id); vis < 6*timeout {
				t.Errorf("%s: %s's visibility timeout %ds is under 6 × the function's timeout %ds", what, q.name, vis, timeout)
			}
			if tpl.env(id)["DESTINATION"] != nil {
				mc := get(ev.props, "ScalingConfig", "MaximumConcurrency")
				switch {
				case mc == nil:
					t.Errorf("%s: a forwarder needs ScalingConfig.MaximumConcurrency to protect the destination's rate limit", what)
				case ref(mc) != "":
					if min, ok := tpl.paramMin(ref(mc)); !ok || min < 2 {
						t.Errorf("%s: MaximumConcurrency parameter %s needs MinValue >= 2 (the lowest SQS accepts)", what, ref(mc))
					}
				case num(t, mc, what+" MaximumConcurrency") < 2:
					t.Errorf("%s: MaximumConcurrency below 2, the lowest SQS accepts", what)
				}
				if want := scalar(tpl.env(id)["DESTINATION"]); q.name != want {
					t.Errorf("%s: DESTINATION=%s consumes %s", what, want, q.name)
				}
			}
		}
	}
	for _, spec := range destinations.Queues() {
		if got := consumers[spec.Name]; len(got) != 1 {
			t.Errorf("queue %s has consumers %v, want exactly one", spec.Name, got)
		}
		if got := consumers[spec.DLQ()]; len(got) != 0 {
			t.Errorf("DLQ %s is consumed by %v; DLQs are only replayed by hand", spec.DLQ(), got)
		}
	}
	if len(qs) == 0 {
		t.Error("the template declares no queues")
	}

	ticks := 0
	for _, id := range tpl.functions() {
		for _, ev := range tpl.events(id) {
			if ev.typ == "Schedule" && scalar(get(ev.props, "Schedule")) == "rate(1 minute)" {
				ticks++
			}
		}
	}
	if ticks != 1 {
		t.Errorf("want exactly one function on an EventBridge rate(1 minute) schedule, found %d", ticks)
	}
}

// TestEnvironmentAndPermissions checks that each function's environment has the queue URLs
// the code reads at init (queue/sqs URLsFromEnv), that every queue URL names the right queue, and that
// IAM lets each function use only the queues it consumes or sends to and only the item-level
// table actions of the store port.
func TestEnvironmentAndPermissions(t *testing.T) {
	tpl := loadTemplate(t)
	qs := tpl.queues(t)
	byID := tpl.queueByID(t)
	byEnvVar := map[string]queueInfo{}
	for _, q := range qs {
		byEnvVar[queuesqs.EnvVar(q.name)] = q
	}

	tableItemActions := []string{"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"}
	for _, id := range tpl.functions() {
		env := tpl.env(id)
		if ref(env["TABLE_NAME"]) != "Table" {
			t.Errorf("%s: TABLE_NAME must be !Ref Table", id)
		}
		if target, attr := getAtt(env["KMS_KEY_ID"]); scalar(get(tpl.resources[target], "Type")) != "AWS::KMS::Key" || attr != "Arn" {
			t.Errorf("%s: KMS_KEY_ID must be the ARN of the stack's key", id)
		}
		if ref(env["LOG_LEVEL"]) == "" && scalar(env["LOG_LEVEL"]) == "" {
			t.Errorf("%s: LOG_LEVEL is not set", id)
		}
		if _, err := queuesqs.URLsFromEnv(destinations.Queues(), func(k string) string {
			if env[k] != nil {
				return "set-by-template"
			}
			return ""
		}); err != nil {
			t.Errorf("%s: the template's environment does not satisfy the code: %v", id, err)
		}

		consumed := map[string]bool{}
		for _, ev := range tpl.events(id) {
			if ev.typ == "SQS" {
				target, _ := getAtt(get(ev.props, "Queue"))
				consumed[target] = true
			}
		}
		sends := map[string]bool{}
		for _, target := range tpl.allowedOn(id, "sqs:SendMessage") {
			sends[target] = true
		}

		for name, val := range env {
			if !strings.HasPrefix(name, "QUEUE_URL_") {
				continue
			}
			q, ok := byEnvVar[name]
			if !ok {
				t.Errorf("%s: %s names no queue of the template", id, name)
				continue
			}
			if ref(val) != q.id {
				t.Errorf("%s: %s must be !Ref %s", id, name, q.id)
			}
		}
		for target := range sends {
			q, ok := byID[target]
			if !ok {
				t.Errorf("%s: sqs:SendMessage on %s, which is not a queue", id, target)
				continue
			}
			if env[queuesqs.EnvVar(q.name)] == nil {
				t.Errorf("%s: may send to %s but has no %s", id, q.name, queuesqs.EnvVar(q.name))
			}
		}
		for target := range consumed {
			q := byID[target]
			if env[queuesqs.EnvVar(q.name)] == nil {
				t.Errorf("%s: consumes %s but has no %s (needed to change visibility and park)", id, q.name, queuesqs.EnvVar(q.name))
			}
			if !slices.Contains(tpl.allowedOn(id, "sqs:ChangeMessageVisibility"), target) {
				t.Errorf("%s: consumes %s but may not change its visibility (per-message backoff)", id, q.name)
			}
			if dlq := qs[q.name+queue.DLQSuffix]; !sends[dlq.id] {
				t.Errorf("%s: consumes %s but may not park a message in %s", id, q.name, dlq.name)
			}
		}

		for _, s := range tpl.statements(id) {
			for _, a := range s.actions {
				svc, op, _ := strings.Cut(a, ":")
				if strings.Contains(op, "*") {
					t.Errorf("%s statement %s: wildcard action %s", id, s.sid, a)
				}
				if svc == "dynamodb" && !slices.Contains(tableItemActions, a) {
					t.Errorf("%s statement %s: %s is beyond the store port's item-level actions %v", id, s.sid, a, tableItemActions)
				}
			}
			for _, r := range s.resources {
				if scalar(r) == "*" {
					t.Errorf("%s statement %s: Resource \"*\"", id, s.sid)
				}
			}
		}
		if len(tpl.allowedOn(id, "dynamodb:GetItem")) == 0 {
			t.Errorf("%s cannot read the table", id)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Table

// TestTableMatchesStore checks the table's keys, indexes and TTL against the store's item layout.
func TestTableMatchesStore(t *testing.T) {
	tpl := loadTemplate(t)
	tables := tpl.ofType("AWS::DynamoDB::Table")
	if len(tables) != 1 {
		t.Fatalf("want one DynamoDB table, found %v", tables)
	}
	p := get(tpl.resources[tables[0]], "Properties")

	if got := scalar(get(p, "BillingMode")); got != "PAY_PER_REQUEST" {
		t.Errorf("BillingMode %q, want PAY_PER_REQUEST", got)
	}
	if got := scalar(get(p, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled")); got != "true" {
		t.Errorf("point-in-time recovery must be on")
	}
	if got := scalar(get(p, "TimeToLiveSpecification", "AttributeName")); got != "ttl" {
		t.Errorf("TTL attribute %q, want ttl", got)
	}
	if got := scalar(get(p, "TimeToLiveSpecification", "Enabled")); got != "true" {
		t.Errorf("TTL must be enabled")
	}

	attrs := map[string]string{}
	for _, a := range seq(get(p, "AttributeDefinitions")) {
		attrs[scalar(get(a, "AttributeName"))] = scalar(get(a, "AttributeType"))
	}
	wantAttrs := map[string]string{"pk": "S", "sk": "S", "gsi1pk": "S", "gsi1sk": "S", "gsi2pk": "S", "gsi2sk": "S"}
	if fmt.Sprint(attrs) != fmt.Sprint(wantAttrs) {
		t.Errorf("AttributeDefinitions %v, want %v", attrs, wantAttrs)
	}

	keySchema := func(n *yaml.Node) string {
		var parts []string
		for _, k := range seq(n) {
			parts = append(parts, scalar(get(k, "AttributeName"))+" "+scalar(get(k, "KeyType")))
		}
		return strings.Join(parts, ", ")
	}
	if got := keySchema(get(p, "KeySchema")); got != "pk HASH, sk RANGE" {
		t.Errorf("KeySchema %q, want pk HASH, sk RANGE", got)
	}

	indexes := map[string]*yaml.Node{}
	for _, g := range seq(get(p, "GlobalSecondaryIndexes")) {
		indexes[scalar(get(g, "IndexName"))] = g
	}
	if len(indexes) != 2 {
		t.Errorf("want 2 global secondary indexes, found %d", len(indexes))
	}
	for _, ix := range []store.Index{store.GSI1, store.GSI2} {
		name := ix.String()
		g, ok := indexes[name]
		if !ok {
			t.Errorf("index %s (store.%s) is missing", name, name)
			continue
		}
		if got, want := keySchema(get(g, "KeySchema")), name+"pk HASH, "+name+"sk RANGE"; got != want {
			t.Errorf("index %s KeySchema %q, want %q", name, got, want)
		}
		if got := scalar(get(g, "Projection", "ProjectionType")); got != "ALL" {
			t.Errorf("index %s projects %q, want ALL (the store reads whole items from indexes)", name, got)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// HTTP API

// TestRoutes checks that each path prefix reaches the function docs/architecture.md (Security) gives it.
func TestRoutes(t *testing.T) {
	tpl := loadTemplate(t)
	// The routes `cartrelay serve` plays are the deployed ones.
	want := map[string]string{}
	for _, r := range wiring.HTTPRoutes() {
		want[r.RouteKey] = r.Function
	}
	got := map[string]string{}
	for _, id := range tpl.ofType("AWS::ApiGatewayV2::Route") {
		p := get(tpl.resources[id], "Properties")
		target := sub(get(p, "Target"))
		integ, ok := strings.CutPrefix(target, "integrations/${")
		integ = strings.TrimSuffix(integ, "}")
		ip := get(tpl.resources[integ], "Properties")
		if !ok || ip == nil {
			t.Errorf("route %s: Target %q is not integrations/${<integration>}", id, target)
			continue
		}
		if v := scalar(get(ip, "PayloadFormatVersion")); v != "2.0" {
			t.Errorf("integration %s: PayloadFormatVersion %q, want 2.0 (the handlers take API Gateway v2 HTTP events)", integ, v)
		}
		fn, _ := getAtt(get(ip, "IntegrationUri"))
		got[scalar(get(p, "RouteKey"))] = fn
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("routes:\n got %v\nwant %v", got, want)
	}

	allowed := map[string]bool{}
	for _, id := range tpl.ofType("AWS::Lambda::Permission") {
		p := get(tpl.resources[id], "Properties")
		if scalar(get(p, "Principal")) == "apigateway.amazonaws.com" {
			allowed[ref(get(p, "FunctionName"))] = true
		}
	}
	for _, fn := range want {
		if !allowed[fn] {
			t.Errorf("%s serves routes but API Gateway has no permission to invoke it", fn)
		}
		if tpl.env(fn)["PUBLIC_BASE_URL"] == nil {
			t.Errorf("%s serves routes but has no PUBLIC_BASE_URL", fn)
		}
	}

	outputs := get(tpl.root, "Outputs")
	for _, name := range []string{"WebhookBaseUrl", "ConnectUrl", "TableName"} {
		if get(outputs, name) == nil {
			t.Errorf("output %s is missing", name)
		}
	}
	if s := sub(get(outputs, "WebhookBaseUrl", "Value")); !strings.HasSuffix(s, "/webhooks/") {
		t.Errorf("WebhookBaseUrl %q must end in /webhooks/", s)
	}
	if s := sub(get(outputs, "ConnectUrl", "Value")); !strings.HasSuffix(s, "/connect") {
		t.Errorf("ConnectUrl %q must end in /connect", s)
	}
	for _, q := range tpl.queues(t) {
		found := false
		for _, o := range keys(outputs) {
			found = found || ref(get(outputs, o, "Value")) == q.id
		}
		if !found {
			t.Errorf("no output gives the URL of queue %s (%s)", q.name, q.id)
		}
	}
}

// TestSecretParametersAreHidden checks that secrets passed as parameters are NoEcho.
func TestSecretsComeFromParameterStore(t *testing.T) {
	tpl := loadTemplate(t)
	params := get(tpl.root, "Parameters")
	// No parameter carries a secret's value: a secret is named, and read at start.
	for _, name := range keys(params) {
		secret := strings.Contains(name, "Secret") || strings.Contains(name, "SessionKey") || strings.Contains(name, "ApiKey")
		if secret && !strings.HasSuffix(name, "Parameter") {
			t.Errorf("parameter %s looks like a secret's value; give the name of an SSM parameter instead (%sParameter)", name, name)
		}
	}
	for _, name := range []string{"UltraCartClientSecretParameter", "ConsoleSessionKeyParameter", "UltraCartClientId",
		"UltraCartBaseUrl", "ThriveCartBaseUrl", "AlarmEmail"} {
		if get(params, name) == nil {
			t.Errorf("parameter %s is missing", name)
		}
	}
	root := testenv.RepoRoot(t)
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range tpl.functions() {
		env := tpl.env(id)
		reads := false
		for _, secret := range wiring.SecretEnv() {
			if env[secret] != nil {
				t.Errorf("%s: %s is set as a value; set %s_PARAMETER to the SSM parameter's name", id, secret, secret)
			}
			named := env[secret+"_PARAMETER"]
			if named == nil {
				continue
			}
			reads = true
			param := ref(named)
			if get(params, param) == nil {
				t.Errorf("%s: %s_PARAMETER must be !Ref of a template parameter", id, secret)
				continue
			}
			want := "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${" + param + "}"
			granted := false
			for _, s := range tpl.statements(id) {
				if !slices.Contains(s.actions, "ssm:GetParameter") {
					continue
				}
				for _, r := range s.resources {
					if r.Tag == "!Sub" && r.Value == want {
						granted = true
					}
				}
			}
			if !granted {
				t.Errorf("%s: reads %s from the parameter %s but may not ssm:GetParameter %s", id, secret, param, want)
			}
		}
		if !reads {
			continue
		}
		// The function must be able to read parameters at all: its main passes an opener.
		m := regexp.MustCompile(`(?m)^build-` + id + `:\n\t\$\(call lambda_bootstrap,(\w+)\)`).FindSubmatch(makefile)
		if m == nil {
			t.Errorf("%s: no build-%s target in the Makefile", id, id)
			continue
		}
		dir := string(m[1])
		cmd := exec.Command("go", "list", "-deps", "-tags", "lambda.norpc", "./functions/"+dir)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list ./functions/%s: %v\n%s", dir, err, out)
		}
		if !strings.Contains(string(out), modulePath+"/shared/ssmparams\n") {
			t.Errorf("%s is given secret parameters, but functions/%s does not link shared/ssmparams to read them", id, dir)
		}
	}
}

// TestParkedDeliveriesRaiseAnAlarm checks that each forwarder's log group counts the log lines of
// parked deliveries (app.ParkedLogMessage) and that an alarm tells the operator: a fact the
// forwarder gave up on waits for a replay, as a message in a dead-letter queue does.
func TestParkedDeliveriesRaiseAnAlarm(t *testing.T) {
	tpl := loadTemplate(t)
	for _, group := range []string{"ForwardOntraportLogs", "ForwardIterableLogs"} {
		metric := ""
		for id, r := range tpl.resources {
			if scalar(get(r, "Type")) != "AWS::Logs::MetricFilter" || ref(get(r, "Properties", "LogGroupName")) != group {
				continue
			}
			if !strings.Contains(scalar(get(r, "Properties", "FilterPattern")), `"`+app.ParkedLogMessage+`"`) {
				t.Errorf("%s filters %q, not the parked-delivery message %q", id, scalar(get(r, "Properties", "FilterPattern")), app.ParkedLogMessage)
			}
			tr := get(r, "Properties", "MetricTransformations")
			if tr == nil || tr.Kind != yaml.SequenceNode || len(tr.Content) != 1 {
				t.Fatalf("%s needs one metric transformation", id)
			}
			metric = scalar(get(tr.Content[0], "MetricName"))
		}
		if metric == "" {
			t.Errorf("no metric filter counts the parked deliveries logged in %s", group)
			continue
		}
		alarmed := false
		for _, r := range tpl.resources {
			if scalar(get(r, "Type")) == "AWS::CloudWatch::Alarm" && scalar(get(r, "Properties", "MetricName")) == metric &&
				get(r, "Properties", "AlarmActions") != nil {
				alarmed = true
			}
		}
		if !alarmed {
			t.Errorf("no alarm with actions watches %s (the parked deliveries of %s)", metric, group)
		}
	}
}
