// Package iterablefake is an in-process stand-in for Iterable's REST API, for tests. It models
// what cartrelay depends on: the Api-Key header, per-endpoint rate limits (and users/forget's
// daily cap) answered with 429 and Retry-After, the {msg, code, params} error envelope,
// users/forget and the GDPR-forgotten users it leaves, fields whose type is
// fixed by the first value, purchases and events updated by id, list membership and email
// changes. Faults (5xx, 429, slow answers, answers lost after the request took effect) can be
// injected, and every call is recorded.
//
// When Iterable's Swagger file is given (FindSpec locates it beside the checkout), every
// request body is also checked against it with kin-openapi, with unknown properties refused,
// and a request that does not match is answered 400 BadParams and kept in SpecErrors.
package iterablefake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
)

// Limit is a number of requests per rolling window.
type Limit struct {
	Requests int
	Window   time.Duration
}

// PublishedLimits are Iterable's per-project limits for the endpoints that publish one.
func PublishedLimits() map[string]Limit {
	return map[string]Limit{
		"/api/events/track":     {2000, time.Second},
		"/api/events/trackBulk": {10, time.Second},
		"/api/users/update":     {500, time.Second},
		"/api/users/bulkUpdate": {5, time.Second},
		"/api/users/forget":     {3, time.Second},
	}
}

// PublishedCaps are Iterable's daily caps, counted apart from the rates: users/forget takes at
// most 1,000 requests in 24 hours per project. The spec does not say how a request over the
// cap is answered; the fake answers it as over a rate.
func PublishedCaps() map[string]Limit {
	return map[string]Limit{"/api/users/forget": {1000, 24 * time.Hour}}
}

// Options configure a Server.
type Options struct {
	// APIKey is the only key accepted (required).
	APIKey string
	// Clock drives the rate windows; the system clock when nil.
	Clock clock.Clock
	// Limits per path; PublishedLimits when nil. An empty map means no limits.
	Limits map[string]Limit
	// Caps per path, counted beside Limits; PublishedCaps when nil. An empty map means none.
	Caps map[string]Limit
	// RetryAfter is the Retry-After header of a rate-limit 429, in seconds; none when empty.
	// Iterable's spec promises no Retry-After (its official client's tests show one), so a
	// client must cope without it.
	RetryAfter string
	// SpecPath, when set, validates every request body against Iterable's Swagger file.
	SpecPath string
	// Chaos, when set, may pick a fault for each request that no injected fault matched (nil
	// for none). It is called under the server's lock, one request at a time.
	Chaos func(path string) *Fault
}

// Fault is an answer to force on matching requests.
type Fault struct {
	// Path matches one endpoint ("/api/commerce/trackPurchase"); empty matches every path.
	Path string
	// Status is the HTTP status to answer (500, 503, 429, ...).
	Status int
	// Body replaces the error envelope; HTML here models a gateway page.
	Body string
	// RetryAfter is sent as the Retry-After header when set.
	RetryAfter string
	// Delay holds the answer back; longer than the client's timeout, it is a timeout.
	Delay time.Duration
	// Applied lets the request take effect before the fault is answered: the answer is lost,
	// not the work (a crash or a dropped connection after Iterable accepted the request).
	Applied bool
	// Times is how many matching requests the fault hits; 0 means once.
	Times int
}

// Call is one request the server received.
type Call struct {
	Path   string
	APIKey string
	Body   json.RawMessage
	Status int
	At     time.Time
}

// Purchase is a tracked purchase.
type Purchase struct {
	ID      string
	Email   string
	Total   json.Number
	Body    map[string]any
	Updates int // how many times the same id was sent again
}

// Event is a tracked custom event.
type Event struct {
	ID      string
	Email   string
	Name    string
	Fields  map[string]any
	Updates int
	Seq     int // arrival order
}

// Server is the fake.
type Server struct {
	*httptest.Server
	opt  Options
	clk  clock.Clock
	spec *specValidator

	mu         sync.Mutex
	calls      []Call
	faults     []*Fault
	hits       map[string][]time.Time
	users      map[string]map[string]any
	carts      map[string][]any
	purchases  map[string]*Purchase
	order      []string // purchase ids in first-arrival order
	events     []*Event
	eventByID  map[string]*Event
	lists      map[int64]map[string]bool
	forgotten  map[string]bool
	fieldTypes map[string]string
	specErrors []string
	eventSeq   int
	listInfo   []listInfo
	nextList   int64
}

// New starts a server; Close it when done.
func New(opt Options) (*Server, error) {
	if opt.APIKey == "" {
		return nil, fmt.Errorf("iterablefake: an API key is required")
	}
	if opt.Clock == nil {
		opt.Clock = clock.System{}
	}
	if opt.Limits == nil {
		opt.Limits = PublishedLimits()
	}
	if opt.Caps == nil {
		opt.Caps = PublishedCaps()
	}
	s := &Server{opt: opt, clk: opt.Clock, hits: map[string][]time.Time{}, users: map[string]map[string]any{},
		carts: map[string][]any{}, purchases: map[string]*Purchase{}, eventByID: map[string]*Event{},
		lists: map[int64]map[string]bool{}, forgotten: map[string]bool{}, fieldTypes: map[string]string{}}
	if opt.SpecPath != "" {
		v, err := loadSpec(opt.SpecPath)
		if err != nil {
			return nil, err
		}
		s.spec = v
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s, nil
}

// Inject adds a fault; faults apply in the order added.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Times <= 0 {
		f.Times = 1
	}
	s.faults = append(s.faults, &f)
}

// Forget marks an email as GDPR-forgotten, as users/forget does: requests about it are refused.
func (s *Server) Forget(email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forget(strings.ToLower(email))
}

// Forgotten reports whether an email was forgotten.
func (s *Server) Forgotten(email string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forgotten[strings.ToLower(email)]
}

// Knows reports whether anything about email is kept: a profile, a cart, a purchase, an event or
// a list membership.
func (s *Server) Knows(email string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	email = strings.ToLower(email)
	if _, ok := s.users[email]; ok {
		return true
	}
	if _, ok := s.carts[email]; ok {
		return true
	}
	for _, p := range s.purchases {
		if p.Email == email {
			return true
		}
	}
	for _, e := range s.events {
		if e.Email == email {
			return true
		}
	}
	for _, l := range s.lists {
		if l[email] {
			return true
		}
	}
	return false
}

// Calls returns every request received, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallsTo returns the requests to one path.
func (s *Server) CallsTo(path string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

// User returns a user's data fields (nil when unknown).
func (s *Server) User(email string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[strings.ToLower(email)]
	if !ok {
		return nil
	}
	out := map[string]any{}
	for k, v := range u {
		out[k] = v
	}
	return out
}

// Cart returns a user's shoppingCartItems.
func (s *Server) Cart(email string) []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.carts[strings.ToLower(email)]
}

// Purchases returns the tracked purchases in first-arrival order.
func (s *Server) Purchases() []Purchase {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Purchase, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, *s.purchases[id])
	}
	return out
}

// Events returns the tracked events in arrival order; name filters when not empty.
func (s *Server) Events(name string) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Event
	for _, e := range s.events {
		if name == "" || e.Name == name {
			out = append(out, *e)
		}
	}
	return out
}

// AddList creates a list in the project (as Iterable's own UI would) and returns its id; GET
// /api/lists lists it as ListDetails (id, name, listType, createdAt).
func (s *Server) AddList(name, listType string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextList++
	id := 1000 + s.nextList
	s.listInfo = append(s.listInfo, listInfo{ID: id, Name: name, Type: listType, CreatedAt: s.clk.Now().UnixMilli()})
	if s.lists[id] == nil {
		s.lists[id] = map[string]bool{}
	}
	return id
}

type listInfo struct {
	ID        int64
	Name      string
	Type      string
	CreatedAt int64
}

// getLists answers GET /api/lists: GetListsResponse, whose "lists" is required.
func (s *Server) getLists() answer {
	lists := []map[string]any{}
	for _, l := range s.listInfo {
		lists = append(lists, map[string]any{"id": l.ID, "name": l.Name, "listType": l.Type, "createdAt": l.CreatedAt})
	}
	return answer{status: http.StatusOK, body: map[string]any{"lists": lists}}
}

// ListMembers returns a list's members, sorted.
func (s *Server) ListMembers(id int64) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for e, in := range s.lists[id] {
		if in {
			out = append(out, e)
		}
	}
	sort.Strings(out)
	return out
}

// SpecErrors returns the requests that did not match Iterable's Swagger file.
func (s *Server) SpecErrors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.specErrors...)
}

// FieldType is the type Iterable fixed for a field ("user.ltv", "purchase.total",
// "event:orderShipped.carrier").
func (s *Server) FieldType(field string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fieldTypes[field]
}

// answer is what a handler decided.
type answer struct {
	status int
	body   any
}

func envelope(status int, code, msg string) answer {
	return answer{status: status, body: map[string]any{"msg": msg, "code": code, "params": map[string]any{}}}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	path := r.URL.Path
	s.mu.Lock()
	call := Call{Path: path, APIKey: r.Header.Get("Api-Key"), Body: append(json.RawMessage(nil), raw...), At: s.clk.Now()}
	fault := s.takeFault(path)
	s.mu.Unlock()

	a, retryAfter := s.handle(r, path, raw, fault)
	if fault != nil {
		if fault.Delay > 0 {
			select {
			case <-time.After(fault.Delay):
			case <-r.Context().Done():
			}
		}
		if fault.Status != 0 {
			a = envelope(fault.Status, faultCode(fault.Status), http.StatusText(fault.Status))
			if fault.Body != "" {
				a.body = rawBody(fault.Body)
			}
			retryAfter = fault.RetryAfter
		}
	}
	call.Status = a.status
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()

	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	if rb, ok := a.body.(rawBody); ok {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(rb))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_ = json.NewEncoder(w).Encode(a.body)
}

type rawBody string

func faultCode(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "RateLimitExceeded"
	case status == http.StatusUnauthorized:
		return "BadApiKey"
	case status == http.StatusConflict:
		return "ForgottenUserError"
	case status >= 500:
		return "GenericError"
	}
	return "BadParams"
}

func (s *Server) takeFault(path string) *Fault {
	for i, f := range s.faults {
		if f.Path != "" && f.Path != path {
			continue
		}
		f.Times--
		if f.Times <= 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		cp := *f
		return &cp
	}
	if s.opt.Chaos != nil {
		return s.opt.Chaos(path)
	}
	return nil
}

// handle checks and applies one request; the lock is taken inside.
func (s *Server) handle(r *http.Request, path string, raw []byte, fault *Fault) (answer, string) {
	if r.Method != http.MethodPost && !(r.Method == http.MethodGet && path == "/api/lists") {
		return envelope(http.StatusMethodNotAllowed, "BadParams", "use POST"), ""
	}
	key := r.Header.Get("Api-Key")
	if key == "" {
		key = r.Header.Get("Api_Key")
	}
	if key != s.opt.APIKey {
		a := envelope(http.StatusUnauthorized, "BadApiKey", "Invalid API key")
		a.body.(map[string]any)["params"] = map[string]any{"ip": "127.0.0.1", "endpoint": path}
		return a, ""
	}
	if r.Method == http.MethodGet {
		if fault != nil && fault.Status != 0 {
			return answer{}, ""
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.getLists(), ""
	}
	s.mu.Lock()
	limited, retry := s.rateLimited(path)
	s.mu.Unlock()
	if limited {
		return envelope(http.StatusTooManyRequests, "RateLimitExceeded", "Exceeded rate limit."), retry
	}
	if fault != nil && fault.Status != 0 && !fault.Applied {
		return answer{}, ""
	}
	var body map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		return envelope(http.StatusBadRequest, "BadJsonBody", "Could not parse the request body: "+err.Error()), ""
	}
	if s.spec != nil {
		// A path the spec lacks is answered 404 below, as Iterable would.
		if err := s.spec.validate(r, path, raw); err != nil && !errors.Is(err, errNoOperation) {
			s.mu.Lock()
			s.specErrors = append(s.specErrors, path+": "+err.Error())
			s.mu.Unlock()
			return envelope(http.StatusBadRequest, "BadParams", "Request does not match the API: "+firstLine(err.Error())), ""
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch path {
	case "/api/users/update":
		return s.usersUpdate(body), ""
	case "/api/users/bulkUpdate":
		if len(raw) > 4<<20 {
			return envelope(http.StatusRequestEntityTooLarge, "BatchTooLarge", "Request body exceeds 4 MB"), ""
		}
		return s.bulkUpdate(body), ""
	case "/api/users/updateEmail":
		return s.updateEmail(body), ""
	case "/api/commerce/trackPurchase":
		return s.trackPurchase(body), ""
	case "/api/commerce/updateCart":
		return s.updateCart(body), ""
	case "/api/events/track":
		return s.track(body, http.StatusBadRequest), ""
	case "/api/events/trackBulk":
		return s.trackBulk(body), ""
	case "/api/lists/subscribe":
		return s.listChange(body, true), ""
	case "/api/lists/unsubscribe":
		return s.listChange(body, false), ""
	case "/api/users/forget":
		return s.usersForget(body), ""
	}
	return envelope(http.StatusNotFound, "NotFound", "No such endpoint: "+path), ""
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// rateLimited counts the request in its path's rolling window and daily cap.
func (s *Server) rateLimited(path string) (bool, string) {
	now := s.clk.Now()
	full := func(key string, lim Limit, ok bool) bool {
		if !ok || lim.Requests <= 0 {
			return false
		}
		kept := s.hits[key][:0]
		for _, t := range s.hits[key] {
			if now.Sub(t) < lim.Window {
				kept = append(kept, t)
			}
		}
		s.hits[key] = kept
		return len(kept) >= lim.Requests
	}
	rate, hasRate := s.opt.Limits[path]
	capped, hasCap := s.opt.Caps[path]
	if full(path, rate, hasRate) || full("cap:"+path, capped, hasCap) {
		return true, s.opt.RetryAfter
	}
	if hasRate && rate.Requests > 0 {
		s.hits[path] = append(s.hits[path], now)
	}
	if hasCap && capped.Requests > 0 {
		s.hits["cap:"+path] = append(s.hits["cap:"+path], now)
	}
	return false, ""
}

func success() answer { return envelope(http.StatusOK, "Success", "") }

func str(v any) string {
	s, _ := v.(string)
	return s
}

func obj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// checkTypes fixes each field's type on first sight and refuses a change, as Iterable does.
func (s *Server) checkTypes(scope string, fields map[string]any) error {
	pending := map[string]string{}
	var walk func(prefix string, v any) error
	walk = func(prefix string, v any) error {
		t := typeOf(v)
		if t == "" {
			return nil
		}
		if old, ok := s.fieldTypes[prefix]; ok && old != t {
			return fmt.Errorf("field %s is %s, got %s", prefix, old, t)
		}
		if p, ok := pending[prefix]; ok && p != t {
			return fmt.Errorf("field %s is %s, got %s", prefix, p, t)
		}
		pending[prefix] = t
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if err := walk(prefix+"."+k, c); err != nil {
					return err
				}
			}
		case []any:
			for _, c := range x {
				if err := walk(prefix+"[]", c); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for k, v := range fields {
		if err := walk(scope+"."+k, v); err != nil {
			return err
		}
	}
	for k, t := range pending {
		s.fieldTypes[k] = t
	}
	return nil
}

func typeOf(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case bool:
		return "boolean"
	case json.Number:
		if strings.ContainsAny(string(x), ".eE") {
			return "double"
		}
		return "long"
	case string:
		if isDate(x) {
			return "date"
		}
		return "string"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

func isDate(s string) bool {
	for _, layout := range []string{"2006-01-02 15:04:05 -07:00", "2006-01-02 15:04:05", "2006-01-02", "2006-01-02T15:04:05.000Z07:00"} {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}

func typeMismatch(err error) answer {
	return envelope(http.StatusBadRequest, "RequestFieldsTypesMismatched", err.Error())
}

func (s *Server) forgottenAnswer(status int) answer {
	return envelope(status, "ForgottenUserError", "This user has been forgotten (GDPR)")
}

// usersForget deletes what is kept about a user and refuses data about it from then on
// (users/forget). The project is email-based, so the user must be named by email. Forgetting an
// address never seen succeeds too: nothing will be collected about it.
func (s *Server) usersForget(body map[string]any) answer {
	email := strings.ToLower(str(body["email"]))
	if email == "" {
		return envelope(http.StatusBadRequest, "BadParams", "email is required: this project identifies users by email")
	}
	s.forget(email)
	return success()
}

func (s *Server) forget(email string) {
	s.forgotten[email] = true
	delete(s.users, email)
	delete(s.carts, email)
	for id, p := range s.purchases {
		if p.Email == email {
			delete(s.purchases, id)
			s.order = slices.DeleteFunc(s.order, func(x string) bool { return x == id })
		}
	}
	s.events = slices.DeleteFunc(s.events, func(e *Event) bool { return e.Email == email })
	for id, e := range s.eventByID {
		if e.Email == email {
			delete(s.eventByID, id)
		}
	}
	for _, l := range s.lists {
		delete(l, email)
	}
}

// upsertUser merges data fields into a user, creating it.
func (s *Server) upsertUser(email string, fields map[string]any) {
	u, ok := s.users[email]
	if !ok {
		u = map[string]any{}
		s.users[email] = u
	}
	for k, v := range fields {
		u[k] = v
	}
}

func (s *Server) usersUpdate(body map[string]any) answer {
	email := strings.ToLower(str(body["email"]))
	if email == "" {
		return envelope(http.StatusBadRequest, "BadParams", "email or userId is required")
	}
	if s.forgotten[email] {
		return s.forgottenAnswer(http.StatusConflict)
	}
	fields := obj(body["dataFields"])
	if err := s.checkTypes("user", fields); err != nil {
		return typeMismatch(err)
	}
	s.upsertUser(email, fields)
	return success()
}

func (s *Server) bulkUpdate(body map[string]any) answer {
	users, _ := body["users"].([]any)
	if len(users) > 1000 {
		return envelope(http.StatusBadRequest, "BatchTooLarge", "at most 1000 users per request")
	}
	failed := map[string][]string{}
	okCount := 0
	for _, u := range users {
		m := obj(u)
		email := strings.ToLower(str(m["email"]))
		switch {
		case !strings.Contains(email, "@"):
			failed["invalidEmails"] = append(failed["invalidEmails"], email)
		case s.forgotten[email]:
			failed["forgottenEmails"] = append(failed["forgottenEmails"], email)
		default:
			if err := s.checkTypes("user", obj(m["dataFields"])); err != nil {
				failed["invalidDataEmails"] = append(failed["invalidDataEmails"], email)
				continue
			}
			s.upsertUser(email, obj(m["dataFields"]))
			okCount++
		}
	}
	n := 0
	for _, v := range failed {
		n += len(v)
	}
	return answer{status: http.StatusOK, body: map[string]any{"successCount": okCount, "failCount": n, "failedUpdates": failed}}
}

func (s *Server) updateEmail(body map[string]any) answer {
	cur, next := strings.ToLower(str(body["currentEmail"])), strings.ToLower(str(body["newEmail"]))
	if next == "" || cur == "" {
		return envelope(http.StatusBadRequest, "BadParams", "currentEmail and newEmail are required")
	}
	if s.forgotten[cur] || s.forgotten[next] {
		return s.forgottenAnswer(http.StatusConflict)
	}
	u, ok := s.users[cur]
	if !ok {
		return envelope(http.StatusBadRequest, "UnknownEmailError", "No user with email "+cur)
	}
	if _, taken := s.users[next]; taken {
		return envelope(http.StatusConflict, "EmailAlreadyExists", "A user with email "+next+" exists")
	}
	delete(s.users, cur)
	s.users[next] = u
	for _, p := range s.purchases {
		if p.Email == cur {
			p.Email = next
		}
	}
	for _, e := range s.events {
		if e.Email == cur {
			e.Email = next
		}
	}
	for _, l := range s.lists {
		if l[cur] {
			delete(l, cur)
			l[next] = true
		}
	}
	return success()
}

func (s *Server) checkItems(items []any) error {
	for _, it := range items {
		m := obj(it)
		fields := map[string]any{}
		for k, v := range m {
			if k != "dataFields" {
				fields[k] = v
			}
		}
		if err := s.checkTypes("item", fields); err != nil {
			return err
		}
		if err := s.checkTypes("item.dataFields", obj(m["dataFields"])); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) trackPurchase(body map[string]any) answer {
	user := obj(body["user"])
	email := strings.ToLower(str(user["email"]))
	if email == "" {
		return envelope(http.StatusBadRequest, "BadParams", "user.email or user.userId is required")
	}
	if s.forgotten[email] {
		return s.forgottenAnswer(http.StatusConflict)
	}
	items, _ := body["items"].([]any)
	if err := s.checkTypes("user", obj(user["dataFields"])); err != nil {
		return typeMismatch(err)
	}
	if err := s.checkTypes("purchase", map[string]any{"total": body["total"]}); err != nil {
		return typeMismatch(err)
	}
	if err := s.checkTypes("purchase", obj(body["dataFields"])); err != nil {
		return typeMismatch(err)
	}
	if err := s.checkItems(items); err != nil {
		return typeMismatch(err)
	}
	s.upsertUser(email, obj(user["dataFields"]))
	delete(s.carts, email)
	id := str(body["id"])
	if id == "" {
		id = fmt.Sprintf("generated-%d", len(s.order)+1)
	}
	total, _ := body["total"].(json.Number)
	if p, ok := s.purchases[id]; ok {
		p.Updates++
		p.Total, p.Body, p.Email = total, body, email
		return success()
	}
	s.purchases[id] = &Purchase{ID: id, Email: email, Total: total, Body: body}
	s.order = append(s.order, id)
	return success()
}

func (s *Server) updateCart(body map[string]any) answer {
	user := obj(body["user"])
	email := strings.ToLower(str(user["email"]))
	if email == "" {
		return envelope(http.StatusBadRequest, "BadParams", "user.email or user.userId is required")
	}
	if s.forgotten[email] {
		return s.forgottenAnswer(http.StatusConflict)
	}
	items, _ := body["items"].([]any)
	if err := s.checkItems(items); err != nil {
		return typeMismatch(err)
	}
	s.upsertUser(email, obj(user["dataFields"]))
	s.carts[email] = items
	return success()
}

func (s *Server) track(body map[string]any, forgottenStatus int) answer {
	email := strings.ToLower(str(body["email"]))
	name := str(body["eventName"])
	if email == "" || name == "" {
		return envelope(http.StatusBadRequest, "BadParams", "eventName and email or userId are required")
	}
	if s.forgotten[email] {
		return s.forgottenAnswer(forgottenStatus)
	}
	fields := obj(body["dataFields"])
	if err := s.checkTypes("event:"+name, fields); err != nil {
		return typeMismatch(err)
	}
	if _, ok := s.users[email]; !ok {
		s.users[email] = map[string]any{}
	}
	id := str(body["id"])
	if e, ok := s.eventByID[id]; ok && id != "" {
		e.Updates++
		e.Fields, e.Name, e.Email = fields, name, email
		return success()
	}
	s.eventSeq++
	e := &Event{ID: id, Email: email, Name: name, Fields: fields, Seq: s.eventSeq}
	s.events = append(s.events, e)
	if id != "" {
		s.eventByID[id] = e
	}
	return success()
}

func (s *Server) trackBulk(body map[string]any) answer {
	evs, _ := body["events"].([]any)
	okCount := 0
	failed := map[string][]string{}
	for _, e := range evs {
		a := s.track(obj(e), http.StatusBadRequest)
		if a.status == http.StatusOK {
			okCount++
			continue
		}
		email := strings.ToLower(str(obj(e)["email"]))
		key := "invalidEmails"
		if s.forgotten[email] {
			// BulkTrackResponse.failedUpdates lists forgotten users apart.
			key = "forgottenEmails"
		}
		failed[key] = append(failed[key], email)
	}
	return answer{status: http.StatusOK, body: map[string]any{"successCount": okCount, "failCount": len(evs) - okCount, "failedUpdates": failed}}
}

func (s *Server) listChange(body map[string]any, subscribe bool) answer {
	id, err := body["listId"].(json.Number).Int64()
	if err != nil {
		return envelope(http.StatusBadRequest, "BadParams", "listId must be a number")
	}
	subs, _ := body["subscribers"].([]any)
	failed := map[string][]string{}
	okCount := 0
	for _, sub := range subs {
		email := strings.ToLower(str(obj(sub)["email"]))
		if s.forgotten[email] {
			failed["forgottenEmails"] = append(failed["forgottenEmails"], email)
			continue
		}
		if s.lists[id] == nil {
			s.lists[id] = map[string]bool{}
		}
		if subscribe {
			s.lists[id][email] = true
			s.upsertUser(email, obj(obj(sub)["dataFields"]))
		} else {
			delete(s.lists[id], email)
		}
		okCount++
	}
	n := len(failed["forgottenEmails"])
	return answer{status: http.StatusOK, body: map[string]any{"successCount": okCount, "failCount": n, "failedUpdates": failed}}
}
