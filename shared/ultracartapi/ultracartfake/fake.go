// Package ultracartfake is an in-process stand-in for UltraCart's REST API: the order query
// over a deterministic set of generated orders and the "_since" listings of auto orders,
// customers and items (lists.go), with UltraCart's authentication, pagination,
// 429 on concurrent or too frequent requests, and 410 when the application is disabled; and,
// for the connect flow, the OAuth authorize and token endpoints and the webhook management API
// (oauth.go). It records every API call so tests can check what a client did, not only what it
// got back.
package ultracartfake

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

// Options shapes the fake.
type Options struct {
	// Orders is how many orders exist; order i is paid at Start + i*Spacing.
	Orders  int
	Start   time.Time
	Spacing time.Duration
	// RefundEvery refunds every n-th order three days after payment; 0 refunds none.
	RefundEvery int
	// AutoOrders, Customers and Items are how many of each the listings hold; record i is
	// created, and last modified, at Start + i*Spacing (Modify changes it later).
	AutoOrders int
	Customers  int
	Items      int
	// BearerToken and SimpleKey are the credentials accepted; an empty one is not accepted.
	BearerToken string
	SimpleKey   string
	// Rate requests per Window are answered; more get 429, as UltraCart's bucket does. Rate 0
	// means no limit. Time is read from Clock (the machine clock when nil).
	Rate   int
	Window time.Duration
	Clock  clock.Clock

	// OAuth, served when ClientID is set: /oauth/authorize redirects straight back with a code
	// (the merchant always approves unless DenyAuthorization), and /oauth/token issues tokens
	// that the API then accepts, rotating the refresh token on every refresh.
	ClientID     string
	ClientSecret string
	// ClientAuth is how the token endpoint expects the secret; empty means basic.
	ClientAuth ultracartapi.ClientAuth
	// MerchantID is the store that BearerToken and SimpleKey belong to and whose user approves
	// authorizations until SignInAs names another ("DEMO" when empty). As in UltraCart's
	// documented token response, no answer of the token endpoint names it.
	MerchantID string
	// OmitWebhookMerchantID leaves merchant_id out of the Webhook objects the API returns. The
	// model documents the field, but nothing says UltraCart always fills it in; cartrelay must
	// connect a store either way.
	OmitWebhookMerchantID bool
	// TokenTTL is an access token's lifetime (one hour when zero).
	TokenTTL time.Duration
	// AffiliateQueryNeedsFilter refuses an affiliate query whose AffiliateQuery is empty, one
	// reading of UltraCart's "if no parameters are specified, the API call will fail"
	// (affiliates.go).
	AffiliateQueryNeedsFilter bool
}

// Call is one recorded request.
type Call struct {
	At     time.Time
	Method string
	Path   string
	Limit  int
	Offset int
	// Query is the decoded order query body, or a listing's URL parameters (_since, _sort,
	// _expand).
	Query    map[string]string
	Status   int
	Returned int
}

// Server is a running fake.
type Server struct {
	URL string

	opt    Options
	srv    *httptest.Server
	orders []order

	mu        sync.Mutex
	inflight  int
	calls     []Call
	admitted  []time.Time
	disabled  bool
	forbidden []string // path prefixes the credentials may not read
	overlaps  int
	overRate  int
	onRequest func(ctx context.Context, c Call)
	oauth     oauthState
	lists     map[string]*listing
	// affiliates in signup order; a deleted one is nil.
	affiliates []map[string]any
}

type order struct {
	id      string
	paid    time.Time
	refund  time.Time
	payload json.RawMessage
}

// New starts a fake; Close stops it.
func New(opt Options) *Server {
	if opt.Clock == nil {
		opt.Clock = clock.System{}
	}
	if opt.Spacing <= 0 {
		opt.Spacing = time.Minute
	}
	if opt.MerchantID == "" {
		opt.MerchantID = "DEMO"
	}
	if opt.TokenTTL <= 0 {
		opt.TokenTTL = time.Hour
	}
	s := &Server{opt: opt, oauth: newOAuthState(opt), lists: newListings(opt)}
	s.orders = make([]order, opt.Orders)
	for i := range s.orders {
		s.orders[i] = makeOrder(opt, i)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// OrderID is the id of order i.
func OrderID(i int) string { return fmt.Sprintf("DEMO-%07d", i+1) }

// PaidAt is when order i was paid.
func (s *Server) PaidAt(i int) time.Time { return s.orders[i].paid }

func makeOrder(opt Options, i int) order {
	paid := opt.Start.Add(time.Duration(i) * opt.Spacing).Truncate(time.Second)
	o := order{id: OrderID(i), paid: paid}
	doc := map[string]any{
		"merchant_id":   "DEMO",
		"order_id":      o.id,
		"creation_dts":  paid.Add(-2 * time.Minute).Format(time.RFC3339),
		"current_stage": "Completed Order",
		"currency_code": "USD",
		"billing":       map[string]any{"first_name": "Pat", "last_name": fmt.Sprintf("Buyer%d", i%997), "email": fmt.Sprintf("buyer%d@example.com", i%997)},
		"items":         []any{map[string]any{"merchant_item_id": "TEA-SAMPLER", "description": "Tea sampler", "quantity": 1 + i%3, "cost": map[string]any{"currency_code": "USD", "value": 19.99}}},
		"summary":       map[string]any{"total": map[string]any{"currency_code": "USD", "value": float64(1999+i%500) / 100}},
		"payment":       map[string]any{"payment_dts": paid.Format(time.RFC3339), "payment_method": "Credit Card", "payment_status": "Processed"},
	}
	if opt.RefundEvery > 0 && i%opt.RefundEvery == opt.RefundEvery-1 {
		o.refund = paid.Add(72 * time.Hour)
		doc["refund_dts"] = o.refund.Format(time.RFC3339)
		doc["current_stage"] = "Refunded"
	}
	o.payload, _ = json.Marshal(doc)
	return o
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// SetDisabled makes every request answer 410, as when UltraCart disables the application.
func (s *Server) SetDisabled(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.disabled = v
}

// OnRequest installs f, called while each authenticated request is in flight (before it is
// answered), with the request's context. Tests use it to kill a client mid-request.
func (s *Server) OnRequest(f func(ctx context.Context, c Call)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRequest = f
}

// Calls returns every request so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Overlaps counts requests that arrived while another was in flight.
func (s *Server) Overlaps() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overlaps
}

// OverRate counts requests refused for exceeding the rate.
func (s *Server) OverRate() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overRate
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/rest/v2/oauth/") {
		s.serveOAuth(w, r)
		return
	}
	c := Call{At: s.opt.Clock.Now(), Method: r.Method, Path: r.URL.Path}
	c.Limit, _ = strconv.Atoi(r.URL.Query().Get("_limit"))
	c.Offset, _ = strconv.Atoi(r.URL.Query().Get("_offset"))
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(r.Body, 8<<20))
	}
	if r.Method == http.MethodPost && r.URL.Path == "/rest/v2/order/orders/query" {
		_ = json.Unmarshal(body, &c.Query)
	}
	if r.Method == http.MethodGet && listingPath(r.URL.Path) != "" {
		c.Query = map[string]string{}
		for _, k := range []string{"_since", "_sort", "_expand"} {
			if v := r.URL.Query().Get(k); v != "" {
				c.Query[k] = v
			}
		}
	}
	s.mu.Lock()
	s.inflight++
	overlap := s.inflight > 1
	if overlap {
		s.overlaps++
	}
	hook := s.onRequest
	s.mu.Unlock()
	status, out := s.answer(r, &c, overlap, body)
	if status == http.StatusOK && hook != nil {
		hook(r.Context(), c)
	}
	s.mu.Lock()
	s.inflight--
	c.Status = status
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if status >= 300 {
		w.Header().Set("UC-REST-ERROR", out)
		out = fmt.Sprintf(`{"error":{"developer_message":%q},"success":false,"metadata":{}}`, out)
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(out))
}

// answer decides the response; it returns the status and, for errors, the message.
func (s *Server) answer(r *http.Request, c *Call, overlap bool, body []byte) (int, string) {
	if r.Header.Get("X-UltraCart-Api-Version") != ultracartapi.APIVersion {
		return http.StatusBadRequest, "missing X-UltraCart-Api-Version"
	}
	auth := r.Header.Get("Authorization")
	key := r.Header.Get("x-ultracart-simple-key")
	merchant, issued := s.issuedAccess(auth, c.At)
	switch {
	case s.opt.BearerToken != "" && auth == "Bearer "+s.opt.BearerToken, s.opt.SimpleKey != "" && key == s.opt.SimpleKey:
		merchant = s.opt.MerchantID
	case issued:
	default:
		return http.StatusUnauthorized, "invalid credentials"
	}
	s.mu.Lock()
	disabled := s.disabled
	forbidden := slices.ContainsFunc(s.forbidden, func(p string) bool { return strings.HasPrefix(r.URL.Path, p) })
	s.mu.Unlock()
	if forbidden {
		return http.StatusUnauthorized, "permission denied for this resource"
	}
	if disabled {
		return http.StatusGone, "application disabled"
	}
	if overlap {
		return http.StatusTooManyRequests, "concurrent requests are not allowed"
	}
	if !s.admit(c.At) {
		return http.StatusTooManyRequests, fmt.Sprintf("rate of %d per %d second(s) exceeded.", s.opt.Rate, int(s.opt.Window.Seconds()))
	}
	if strings.HasPrefix(r.URL.Path, "/rest/v2/webhook/webhooks") {
		return s.webhooks(r, body, merchant)
	}
	if name := listingPath(r.URL.Path); name != "" && r.Method == http.MethodGet {
		return s.list(name, r.URL.Query(), c)
	}
	if r.Method == http.MethodPost && r.URL.Path == "/rest/v2"+ultracartapi.AffiliatesPath {
		return s.queryAffiliates(r.URL.Query(), c, body)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/rest/v2/order/orders/query" {
		return http.StatusNotFound, "not implemented by the fake"
	}
	if c.Limit <= 0 || c.Limit > ultracartapi.MaxLimit {
		return http.StatusBadRequest, "limit out of range"
	}
	return s.query(c)
}

// admit applies the rolling rate; refused requests do not count.
func (s *Server) admit(now time.Time) bool {
	if s.opt.Rate <= 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := now.Add(-s.opt.Window)
	i := sort.Search(len(s.admitted), func(i int) bool { return s.admitted[i].After(cut) })
	s.admitted = s.admitted[i:]
	if len(s.admitted) >= s.opt.Rate {
		s.overRate++
		return false
	}
	s.admitted = append(s.admitted, now)
	return true
}

// query answers the order query; the body is carried in the message slot.
func (s *Server) query(c *Call) (int, string) {
	q := c.Query
	parse := func(k string) (time.Time, bool, error) {
		v := q[k]
		if v == "" {
			return time.Time{}, false, nil
		}
		t, err := ultracartapi.ParseTime(v)
		return t, true, err
	}
	pb, hasPB, e1 := parse("payment_date_begin")
	pe, hasPE, e2 := parse("payment_date_end")
	rb, hasRB, e3 := parse("refund_date_begin")
	re, hasRE, e4 := parse("refund_date_end")
	for _, e := range []error{e1, e2, e3, e4} {
		if e != nil {
			return http.StatusBadRequest, "bad date: " + e.Error()
		}
	}
	if !hasPB && !hasPE && !hasRB && !hasRE {
		return http.StatusBadRequest, "empty query"
	}
	refunds := hasRB || hasRE
	var hits []order
	for _, o := range s.orders {
		if hasPB && o.paid.Before(pb) || hasPE && o.paid.After(pe) {
			continue
		}
		if refunds && (o.refund.IsZero() || hasRB && o.refund.Before(rb) || hasRE && o.refund.After(re)) {
			continue
		}
		hits = append(hits, o)
	}
	if refunds {
		sort.SliceStable(hits, func(i, j int) bool { return hits[i].refund.Before(hits[j].refund) })
	}
	total := len(hits)
	from := min(c.Offset, total)
	to := min(from+c.Limit, total)
	recs := make([]json.RawMessage, 0, to-from)
	for _, o := range hits[from:to] {
		recs = append(recs, o.payload)
	}
	c.Returned = len(recs)
	more := to < total
	out := map[string]any{
		"orders":  recs,
		"success": true,
		"metadata": map[string]any{"result_set": ultracartapi.ResultSet{
			Count: len(recs), Limit: c.Limit, Offset: from, More: more, NextOffset: to, TotalRecords: &total,
		}},
	}
	b, _ := json.Marshal(out)
	return http.StatusOK, string(b)
}
