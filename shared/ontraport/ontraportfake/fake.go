// Package ontraportfake is an in-process stand-in for ONTRAPORT's REST API, for tests. It models
// what the destination depends on: Api-Appid/Api-Key authentication, the {code,data,account_id}
// envelope, the rolling per-minute limit with X-Rate-Limit-* headers and 429, and the endpoints
// cartrelay calls. It also models the dangerous part of ONTRAPORT's bulk operations: a refund or
// tag request without explicit ids applies to every object, so a test can prove it never happens.
//
// Faults (server errors, 429 storms, hangs until the client gives up, before or after the work
// is done) are injected per request, and every call is recorded.
package ontraportfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
)

// Fault is what the server does to one request instead of (or after) answering normally.
type Fault int

// Faults.
const (
	// None answers normally.
	None Fault = iota
	// ServerError answers 500 without doing anything.
	ServerError
	// ServerErrorAfter does the work, then answers 500: the client cannot tell it happened.
	ServerErrorAfter
	// TooMany answers 429 with the rate headers, as a storm of other clients would cause.
	TooMany
	// Hang never answers; the request ends when the client gives up.
	Hang
	// HangAfter does the work, then never answers.
	HangAfter
)

func (f Fault) String() string {
	return [...]string{"none", "server_error", "server_error_after", "too_many", "hang", "hang_after"}[f]
}

// Request is what a fault decision sees.
type Request struct {
	N      int // 1-based count of requests received
	Method string
	Path   string // below /1, "/transaction/processManual"
}

// Options configure a fake.
type Options struct {
	AppID  string
	APIKey string
	// Limit requests per Window (default 180 per minute), counted over every request received.
	Limit  int
	Window time.Duration
	// Clock times the rate window (default the system clock).
	Clock clock.Clock
	// Fault decides a fault per request; nil means none.
	Fault func(Request) Fault
	// StormReset is the X-Rate-Limit-Reset of an injected 429 (default 5 s).
	StormReset time.Duration
	// AccountID is the envelope's account_id.
	AccountID int
	// RefuseZeroPrice makes processManual refuse an offer with a product priced at zero.
	// ONTRAPORT does not document whether it takes one, so tests run both ways.
	RefuseZeroPrice bool
}

// Amount is money in ten-thousandths, exact for every currency's minor units.
type Amount int64

// ParseAmount reads a decimal ("12.5", "-3.10").
func ParseAmount(s string) (Amount, error) {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	ip, fp, _ := strings.Cut(s, ".")
	if ip == "" || len(fp) > 4 {
		return 0, fmt.Errorf("not an amount: %q", s)
	}
	fp += strings.Repeat("0", 4-len(fp))
	i, err := strconv.ParseInt(ip, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not an amount: %q", s)
	}
	f, err := strconv.ParseInt(fp, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not an amount: %q", s)
	}
	a := Amount(i*10000 + f)
	if neg {
		a = -a
	}
	return a, nil
}

// MustAmount is ParseAmount for literals in tests.
func MustAmount(s string) Amount {
	a, err := ParseAmount(s)
	if err != nil {
		panic(err)
	}
	return a
}

func (a Amount) String() string {
	sign := ""
	if a < 0 {
		sign, a = "-", -a
	}
	return fmt.Sprintf("%s%d.%04d", sign, a/10000, a%10000)
}

// Contact is a stored contact.
type Contact struct {
	ID     int64
	Fields map[string]string
	Tags   map[string]bool
}

// Product is a stored product.
type Product struct {
	ID    int64
	Name  string
	SKU   string
	Price string
}

// Line is one product line of a transaction.
type Line struct {
	ProductID int64
	Name      string
	Quantity  int64
	Price     Amount
}

// Transaction is a stored transaction (object 46).
type Transaction struct {
	ID              int64 // the invoice id: what refunds and lookups use
	TransactionID   int64
	ContactID       int64
	ExternalOrderID string
	Status          int // 1 paid, 2 refunded
	Total           Amount
	TransDate       int64
	InvoiceTemplate int
	Lines           []Line
}

// Refund is one refund the server performed.
type Refund struct {
	TransactionID int64 // the invoice id refunded
	// All is true when the request selected every transaction (no explicit ids).
	All bool
}

// Call is one recorded request.
type Call struct {
	N      int
	At     time.Time
	Method string
	Path   string
	Query  url.Values
	Body   string
	Status int
	Fault  Fault
}

// Server is the fake.
type Server struct {
	o   Options
	srv *httptest.Server
	// URL is the API base, ending in /1 like https://api.ontraport.com/1.
	URL string

	mu       sync.Mutex
	calls    []Call
	window   []time.Time
	nextID   int64
	contacts map[int64]*Contact
	byEmail  map[string]int64
	products map[int64]*Product
	txs      map[int64]*Transaction
	refunds  []Refund
	fields   map[string]string // key → alias
	allTags  []string          // tag names applied to every contact (empty-selection requests)
}

// New starts a fake; Close stops it.
func New(o Options) *Server {
	if o.Limit <= 0 {
		o.Limit = 180
	}
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.StormReset <= 0 {
		o.StormReset = 5 * time.Second
	}
	if o.AccountID == 0 {
		o.AccountID = 12345
	}
	s := &Server{o: o, nextID: 100, contacts: map[int64]*Contact{}, byEmail: map[string]int64{},
		products: map[int64]*Product{}, txs: map[int64]*Transaction{}, fields: map[string]string{
			"firstname": "First Name", "lastname": "Last Name", "email": "Email", "office_phone": "Office Phone",
			"sms_number": "SMS Number", "freferrer": "First Referrer", "lreferrer": "Last Referrer",
		}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/1"
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// SetFault replaces the fault decision.
func (s *Server) SetFault(f func(Request) Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.o.Fault = f
}

// AddField declares a custom contact field (as a merchant creates one) and returns its key.
func (s *Server) AddField(alias string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	key := "f" + strconv.FormatInt(s.nextID, 10)
	s.fields[key] = alias
	return key
}

// AddContact stores a contact (for example a partner) and returns its id.
func (s *Server) AddContact(fields map[string]string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createContact(fields).ID
}

// AddTransaction stores a transaction made elsewhere (for example by an earlier integration).
func (s *Server) AddTransaction(t Transaction) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	t.ID = s.nextID
	if t.Status == 0 {
		t.Status = 1
	}
	s.txs[t.ID] = &t
	return t.ID
}

// Calls returns every request received, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallsTo returns the requests to one method and path.
func (s *Server) CallsTo(method, path string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Method == method && c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

// MaxInWindow is the most requests received in any rolling window, the measure the limit
// applies to.
func (s *Server) MaxInWindow() int {
	calls := s.Calls()
	best, j := 0, 0
	for i := range calls {
		for calls[i].At.Sub(calls[j].At) >= s.o.Window {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// Transactions returns the stored transactions by id.
func (s *Server) Transactions() []Transaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Transaction, 0, len(s.txs))
	for _, t := range s.txs {
		c := *t
		c.Lines = append([]Line(nil), t.Lines...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// TransactionsFor returns the transactions with an external_order_id.
func (s *Server) TransactionsFor(ext string) []Transaction {
	var out []Transaction
	for _, t := range s.Transactions() {
		if t.ExternalOrderID == ext {
			out = append(out, t)
		}
	}
	return out
}

// Refunds returns the refunds performed, in order.
func (s *Server) Refunds() []Refund {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Refund(nil), s.refunds...)
}

// ContactByEmail returns a copy of the contact with email.
func (s *Server) ContactByEmail(email string) (Contact, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.byEmail[strings.ToLower(email)]
	if !ok {
		return Contact{}, false
	}
	return s.copyContact(s.contacts[id]), true
}

// Contacts returns copies of every contact.
func (s *Server) Contacts() []Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Contact, 0, len(s.contacts))
	for _, c := range s.contacts {
		out = append(out, s.copyContact(c))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (s *Server) copyContact(c *Contact) Contact {
	out := Contact{ID: c.ID, Fields: map[string]string{}, Tags: map[string]bool{}}
	for k, v := range c.Fields {
		out.Fields[k] = v
	}
	for k := range c.Tags {
		out.Tags[k] = true
	}
	for _, t := range s.allTags {
		out.Tags[t] = true
	}
	return out
}

// Products returns every product.
func (s *Server) Products() []Product {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Product, 0, len(s.products))
	for _, p := range s.products {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// answer is one response.
type answer struct {
	status int
	data   any    // enveloped when status is 2xx
	text   string // a plain body for errors, as ONTRAPORT sends for most of them
}

func ok(data any) answer { return answer{status: http.StatusOK, data: data} }

func fail(status int, format string, args ...any) answer {
	return answer{status: status, text: fmt.Sprintf(format, args...)}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	path := strings.TrimPrefix(r.URL.Path, "/1")
	s.mu.Lock()
	now := s.o.Clock.Now()
	call := Call{N: len(s.calls) + 1, At: now, Method: r.Method, Path: path, Query: r.URL.Query(), Body: string(raw)}
	// The window counts every request received, answered or not.
	cut := 0
	for cut < len(s.window) && now.Sub(s.window[cut]) >= s.o.Window {
		cut++
	}
	s.window = append(s.window[cut:], now)
	over := len(s.window) > s.o.Limit
	remaining := max(s.o.Limit-len(s.window), 0)
	reset := s.o.Window - now.Sub(s.window[0])
	fault := None
	if s.o.Fault != nil {
		fault = s.o.Fault(Request{N: call.N, Method: r.Method, Path: path})
	}
	var a answer
	switch {
	case over:
		a = fail(http.StatusTooManyRequests, "You have exceeded the rate limit of %d requests per minute.", s.o.Limit)
	case r.Header.Get("Api-Appid") != s.o.AppID || r.Header.Get("Api-Key") != s.o.APIKey || s.o.APIKey == "":
		a = fail(http.StatusUnauthorized, "Invalid API credentials.")
	case fault == TooMany:
		a = fail(http.StatusTooManyRequests, "You have exceeded the rate limit of %d requests per minute.", s.o.Limit)
		remaining, reset = 0, s.o.StormReset
	case fault == ServerError:
		a = fail(http.StatusInternalServerError, "Internal Server Error")
	case fault == Hang:
	default:
		a = s.route(r.Method, path, r.URL.Query(), r.Header.Get("Content-Type"), raw)
		if fault == ServerErrorAfter {
			a = fail(http.StatusInternalServerError, "Internal Server Error")
		}
	}
	call.Fault = fault
	if fault != Hang && fault != HangAfter {
		call.Status = a.status
	}
	s.calls = append(s.calls, call)
	s.mu.Unlock()

	if fault == Hang || fault == HangAfter {
		// Hold the request until the client gives up (its timeout closes the connection).
		<-r.Context().Done()
		return
	}
	w.Header().Set("X-Rate-Limit-Limit", strconv.Itoa(s.o.Limit))
	w.Header().Set("X-Rate-Limit-Remaining", strconv.Itoa(remaining))
	w.Header().Set("X-Rate-Limit-Reset", strconv.Itoa(int((reset+time.Second-1)/time.Second)))
	if a.status >= 200 && a.status < 300 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_ = json.NewEncoder(w).Encode(map[string]any{"code": 0, "data": a.data, "account_id": s.o.AccountID})
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.text)
}

// body reads a JSON or form body into plain values.
func body(contentType string, raw []byte) (map[string]any, error) {
	m := map[string]any{}
	if len(raw) == 0 {
		return m, nil
	}
	if strings.HasPrefix(contentType, "application/x-www-form-urlencoded") {
		v, err := url.ParseQuery(string(raw))
		if err != nil {
			return nil, err
		}
		for k := range v {
			m[k] = v.Get(k)
		}
		return m, nil
	}
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "1"
		}
		return "0"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func num(v any) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(str(v)), 10, 64)
	return n, err == nil
}

func (s *Server) route(method, path string, q url.Values, ct string, raw []byte) answer {
	b, err := body(ct, raw)
	if err != nil {
		return fail(http.StatusBadRequest, "Malformed request body: %v", err)
	}
	switch method + " " + path {
	case "POST /Contacts/saveorupdate", "POST /objects/saveorupdate":
		return s.saveOrUpdate(b)
	case "PUT /Contacts":
		return s.updateContact(b)
	case "GET /Contact":
		return s.getContact(q)
	case "DELETE /Contact":
		return s.deleteContact(q)
	case "GET /object/getByEmail":
		return s.getByEmail(q)
	case "GET /Contacts/meta":
		fields := map[string]any{}
		for k, a := range s.fields {
			fields[k] = map[string]any{"alias": a, "type": "text"}
		}
		return ok(map[string]any{"0": map[string]any{"name": "Contact", "fields": fields}})
	case "GET /Products":
		return s.listProducts(q)
	case "POST /Products":
		return s.createProduct(b)
	case "PUT /Products":
		return s.updateProduct(b)
	case "GET /Transactions":
		return s.listTransactions(q)
	case "GET /Transaction":
		id, _ := num(q.Get("id"))
		t, found := s.txs[id]
		if !found {
			return fail(http.StatusBadRequest, "Invalid transaction id %s", q.Get("id"))
		}
		return ok(txRow(t))
	case "POST /transaction/processManual":
		return s.processManual(b)
	case "PUT /transaction/refund":
		return s.refund(b)
	case "PUT /objects/tagByName", "DELETE /objects/tagByName":
		return s.tagByName(method == http.MethodDelete, b)
	}
	return fail(http.StatusNotFound, "Unknown endpoint %s %s", method, path)
}

func (s *Server) createContact(fields map[string]string) *Contact {
	s.nextID++
	c := &Contact{ID: s.nextID, Fields: map[string]string{"freferrer": "0", "lreferrer": "0"}, Tags: map[string]bool{}}
	for k, v := range fields {
		c.Fields[k] = v
	}
	s.contacts[c.ID] = c
	if e := strings.ToLower(c.Fields["email"]); e != "" {
		s.byEmail[e] = c.ID
	}
	return c
}

func (s *Server) checkFields(b map[string]any) (map[string]string, *answer) {
	out := map[string]string{}
	for k, v := range b {
		if k == "id" || k == "objectID" {
			continue
		}
		if _, known := s.fields[k]; !known && !standardField(k) {
			a := fail(http.StatusBadRequest, "Invalid field %s", k)
			return nil, &a
		}
		out[k] = str(v)
	}
	if e, has := out["email"]; has && !strings.Contains(e, "@") {
		a := fail(http.StatusUnprocessableEntity, "Invalid email address %q", e)
		return nil, &a
	}
	return out, nil
}

func standardField(k string) bool {
	switch k {
	case "firstname", "lastname", "email", "address", "address2", "city", "state", "zip", "country",
		"office_phone", "home_phone", "sms_number", "company", "title", "website", "bulk_mail", "bulk_sms",
		"freferrer", "lreferrer", "program_id", "aff_paypal", "birthday", "owner":
		return true
	}
	return false
}

func (s *Server) saveOrUpdate(b map[string]any) answer {
	fields, bad := s.checkFields(b)
	if bad != nil {
		return *bad
	}
	email := strings.ToLower(fields["email"])
	if email == "" {
		return fail(http.StatusBadRequest, "An email is required to save or update a contact.")
	}
	if id, found := s.byEmail[email]; found {
		c := s.contacts[id]
		attrs := map[string]any{"id": strconv.FormatInt(id, 10), "dlm": strconv.FormatInt(s.o.Clock.Now().Unix(), 10)}
		for k, v := range fields {
			if c.Fields[k] != v {
				attrs[k] = v
			}
			c.Fields[k] = v
		}
		return ok(map[string]any{"attrs": attrs})
	}
	c := s.createContact(fields)
	rec := map[string]any{"id": strconv.FormatInt(c.ID, 10), "owner": "1"}
	for k, v := range c.Fields {
		rec[k] = v
	}
	return ok(rec)
}

func (s *Server) updateContact(b map[string]any) answer {
	id, _ := num(b["id"])
	c, found := s.contacts[id]
	if !found {
		return fail(http.StatusBadRequest, "Invalid contact id %v", b["id"])
	}
	fields, bad := s.checkFields(b)
	if bad != nil {
		return *bad
	}
	if e, has := fields["email"]; has {
		e = strings.ToLower(e)
		if other, taken := s.byEmail[e]; taken && other != id {
			return fail(http.StatusBadRequest, "A contact with email %s already exists.", e)
		}
		delete(s.byEmail, strings.ToLower(c.Fields["email"]))
		s.byEmail[e] = id
	}
	attrs := map[string]any{"id": strconv.FormatInt(id, 10)}
	for k, v := range fields {
		c.Fields[k] = v
		attrs[k] = v
	}
	return ok(map[string]any{"attrs": attrs})
}

// deleteContact deletes one contact (the SDK's Contacts::deleteSingle: DELETE /Contact with the
// id in the query). The contact's transactions stay, naming an id that no longer exists; a
// missing id is refused as GET /Contact refuses it.
func (s *Server) deleteContact(q url.Values) answer {
	id, _ := num(q.Get("id"))
	c, found := s.contacts[id]
	if !found {
		return fail(http.StatusBadRequest, "Invalid contact id %s", q.Get("id"))
	}
	delete(s.contacts, id)
	if e := strings.ToLower(c.Fields["email"]); s.byEmail[e] == id {
		delete(s.byEmail, e)
	}
	return ok(map[string]any{})
}

func (s *Server) getContact(q url.Values) answer {
	id, _ := num(q.Get("id"))
	c, found := s.contacts[id]
	if !found {
		return fail(http.StatusBadRequest, "Invalid contact id %s", q.Get("id"))
	}
	rec := map[string]any{"id": strconv.FormatInt(id, 10)}
	for k, v := range c.Fields {
		rec[k] = v
	}
	return ok(rec)
}

func (s *Server) getByEmail(q url.Values) answer {
	if q.Get("objectID") != "0" {
		return fail(http.StatusBadRequest, "objectID must be 0 for contacts")
	}
	e := strings.ToLower(q.Get("email"))
	if !strings.Contains(e, "@") {
		return fail(http.StatusNotFound, "Invalid email")
	}
	if id, found := s.byEmail[e]; found {
		return ok(map[string]any{"id": id})
	}
	return ok(map[string]any{"id": nil})
}

// cond is a parsed search condition "field op value".
type cond struct {
	field, op, value string
}

func parseCondition(raw string) ([]cond, error) {
	if raw == "" {
		return nil, nil
	}
	var cs []struct {
		Field struct {
			Field string `json:"field"`
		} `json:"field"`
		Op    string `json:"op"`
		Value struct {
			Value any `json:"value"`
		} `json:"value"`
	}
	if err := json.Unmarshal([]byte(raw), &cs); err != nil {
		return nil, err
	}
	out := make([]cond, 0, len(cs))
	for _, c := range cs {
		if c.Op != "=" {
			return nil, fmt.Errorf("operator %q is not modelled", c.Op)
		}
		out = append(out, cond{field: c.Field.Field, op: c.Op, value: str(c.Value.Value)})
	}
	return out, nil
}

func matches(conds []cond, get func(string) string) bool {
	for _, c := range conds {
		if get(c.field) != c.value {
			return false
		}
	}
	return true
}

func (s *Server) listProducts(q url.Values) answer {
	conds, err := parseCondition(q.Get("condition"))
	if err != nil {
		return fail(http.StatusBadRequest, "Invalid condition: %v", err)
	}
	rows := []any{}
	for _, p := range s.sortedProducts() {
		get := func(f string) string {
			switch f {
			case "id":
				return strconv.FormatInt(p.ID, 10)
			case "name":
				return p.Name
			case "sku":
				return p.SKU
			}
			return ""
		}
		if matches(conds, get) {
			rows = append(rows, map[string]any{"id": strconv.FormatInt(p.ID, 10), "name": p.Name, "sku": p.SKU, "price": p.Price})
		}
	}
	return ok(rows)
}

// sortedProducts lists the products by id; the caller holds the lock.
func (s *Server) sortedProducts() []*Product {
	out := make([]*Product, 0, len(s.products))
	for _, p := range s.products {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (s *Server) createProduct(b map[string]any) answer {
	name := str(b["name"])
	if name == "" {
		return fail(http.StatusBadRequest, "A product name is required.")
	}
	s.nextID++
	p := &Product{ID: s.nextID, Name: name, SKU: str(b["sku"]), Price: str(b["price"])}
	s.products[p.ID] = p
	return ok(map[string]any{"id": p.ID, "name": p.Name, "sku": p.SKU, "price": p.Price})
}

func (s *Server) updateProduct(b map[string]any) answer {
	id, _ := num(b["id"])
	p, found := s.products[id]
	if !found {
		return fail(http.StatusBadRequest, "Invalid product id %v", b["id"])
	}
	if str(b["name"]) == "" {
		return fail(http.StatusBadRequest, "A product name is required.")
	}
	p.Name, p.Price = str(b["name"]), str(b["price"])
	if v := str(b["sku"]); v != "" {
		p.SKU = v
	}
	return ok(map[string]any{"attrs": map[string]any{"id": id, "name": p.Name, "price": p.Price}})
}

func txRow(t *Transaction) map[string]any {
	return map[string]any{"id": strconv.FormatInt(t.ID, 10), "status": strconv.Itoa(t.Status),
		"contact_id": strconv.FormatInt(t.ContactID, 10), "external_order_id": t.ExternalOrderID,
		"total": t.Total.String(), "date": strconv.FormatInt(t.TransDate/1000, 10)}
}

func (s *Server) listTransactions(q url.Values) answer {
	conds, err := parseCondition(q.Get("condition"))
	if err != nil {
		return fail(http.StatusBadRequest, "Invalid condition: %v", err)
	}
	ids := make([]int64, 0, len(s.txs))
	for id := range s.txs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	rows := []any{}
	for _, id := range ids {
		row := txRow(s.txs[id])
		if matches(conds, func(f string) string { return str(row[f]) }) {
			rows = append(rows, row)
		}
	}
	return ok(rows)
}

func (s *Server) processManual(b map[string]any) answer {
	cid, _ := num(b["contact_id"])
	if _, found := s.contacts[cid]; !found {
		return fail(http.StatusBadRequest, "Invalid contact id %v", b["contact_id"])
	}
	if str(b["chargeNow"]) != "chargeLog" {
		return fail(http.StatusBadRequest, "A gateway_id is required to charge a transaction.")
	}
	td, isNum := num(b["trans_date"])
	if !isNum || td < 1e12 {
		return fail(http.StatusBadRequest, "trans_date must be a timestamp in milliseconds, got %v", b["trans_date"])
	}
	tmpl, _ := num(b["invoice_template"])
	offer, _ := b["offer"].(map[string]any)
	prods, _ := offer["products"].([]any)
	if len(prods) == 0 {
		return fail(http.StatusBadRequest, "An offer needs at least one product.")
	}
	t := &Transaction{ContactID: cid, ExternalOrderID: str(b["external_order_id"]), Status: 1, TransDate: td, InvoiceTemplate: int(tmpl)}
	for _, raw := range prods {
		p, _ := raw.(map[string]any)
		pid, _ := num(p["id"])
		if _, found := s.products[pid]; !found {
			return fail(http.StatusBadRequest, "Invalid product id %v", p["id"])
		}
		qty, _ := num(p["quantity"])
		if qty < 1 {
			return fail(http.StatusBadRequest, "Invalid quantity %v", p["quantity"])
		}
		prices, _ := p["price"].([]any)
		if len(prices) == 0 {
			return fail(http.StatusBadRequest, "Product %d has no price.", pid)
		}
		first, _ := prices[0].(map[string]any)
		price, err := ParseAmount(str(first["price"]))
		if err != nil {
			return fail(http.StatusBadRequest, "Invalid price: %v", err)
		}
		if price == 0 && s.o.RefuseZeroPrice {
			return fail(http.StatusBadRequest, "Product %d has no price.", pid)
		}
		t.Lines = append(t.Lines, Line{ProductID: pid, Name: str(p["name"]), Quantity: qty, Price: price})
		t.Total += price * Amount(qty)
	}
	s.nextID++
	t.ID = s.nextID
	s.nextID++
	t.TransactionID = s.nextID
	s.txs[t.ID] = t
	return ok(map[string]any{"result_code": 1, "transaction_id": strconv.FormatInt(t.TransactionID, 10),
		"external_txn": "", "message": "Success!", "invoice_id": t.ID})
}

// selection reads a bulk operation's ids. As in ONTRAPORT, no ids, ids 0 or performAll select
// every object.
func selection(b map[string]any) (ids []int64, all bool, bad *answer) {
	if str(b["performAll"]) == "1" || str(b["performAll"]) == "true" {
		return nil, true, nil
	}
	switch v := b["ids"].(type) {
	case nil:
		return nil, true, nil
	case []any:
		for _, x := range v {
			n, isNum := num(x)
			if !isNum {
				a := fail(http.StatusBadRequest, "Invalid id %v", x)
				return nil, false, &a
			}
			ids = append(ids, n)
		}
	default:
		for _, part := range strings.Split(str(v), ",") {
			n, isNum := num(part)
			if !isNum {
				a := fail(http.StatusBadRequest, "Invalid id %v", part)
				return nil, false, &a
			}
			ids = append(ids, n)
		}
	}
	if len(ids) == 0 || (len(ids) == 1 && ids[0] == 0) {
		return nil, true, nil
	}
	return ids, false, nil
}

func (s *Server) refund(b map[string]any) answer {
	ids, all, bad := selection(b)
	if bad != nil {
		return *bad
	}
	if all {
		for id, t := range s.txs {
			t.Status = 2
			s.refunds = append(s.refunds, Refund{TransactionID: id, All: true})
		}
		return ok("Refunded")
	}
	for _, id := range ids {
		if _, found := s.txs[id]; !found {
			return fail(http.StatusBadRequest, "Invalid transaction id %d", id)
		}
	}
	for _, id := range ids {
		s.txs[id].Status = 2
		s.refunds = append(s.refunds, Refund{TransactionID: id})
	}
	return ok("Refunded")
}

func (s *Server) tagByName(remove bool, b map[string]any) answer {
	if str(b["objectID"]) != "0" {
		return fail(http.StatusBadRequest, "objectID is required")
	}
	key := "add_names"
	if remove {
		key = "remove_names"
	}
	var names []string
	switch v := b[key].(type) {
	case []any:
		for _, x := range v {
			names = append(names, str(x))
		}
	case string:
		names = strings.Split(v, ",")
	}
	if len(names) == 0 {
		return fail(http.StatusBadRequest, "%s is required", key)
	}
	ids, all, bad := selection(b)
	if bad != nil {
		return *bad
	}
	if all {
		if !remove {
			s.allTags = append(s.allTags, names...)
		}
		return ok("The tag(s) were applied to all contacts.")
	}
	for _, id := range ids {
		c, found := s.contacts[id]
		if !found {
			return fail(http.StatusBadRequest, "Invalid contact id %d", id)
		}
		for _, n := range names {
			if remove {
				delete(c.Tags, n)
			} else {
				c.Tags[n] = true
			}
		}
	}
	return ok("The tag(s) are now being processed.")
}
