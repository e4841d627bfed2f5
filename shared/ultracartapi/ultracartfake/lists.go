package ultracartfake

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

// Listings, named as UltraCart names the list in its answers.
const (
	AutoOrders = "auto_orders"
	Customers  = "customers"
	Items      = "items"
)

// listing is one "_since" collection; guarded by Server.mu, since Modify and Add change it
// while clients page through it.
type listing struct {
	// max is the largest _limit UltraCart documents for the listing.
	max int
	// modifiedField names the record's modification time, which _sort may order by; empty for
	// auto orders, whose model has none (the fake still filters them by a hidden one, as
	// UltraCart's _since does).
	modifiedField string
	recs          []*record
	gen           func(opt Options, i int, at time.Time) map[string]any
}

type record struct {
	modified time.Time
	doc      map[string]any
}

func newListings(opt Options) map[string]*listing {
	ls := map[string]*listing{
		AutoOrders: {max: ultracartapi.MaxLimit, gen: makeAutoOrder},
		Customers:  {max: ultracartapi.MaxLimit, modifiedField: "last_modified_dts", gen: makeCustomer},
		Items:      {max: 2000, modifiedField: "last_modified_dts", gen: makeItem},
	}
	for name, n := range map[string]int{AutoOrders: opt.AutoOrders, Customers: opt.Customers, Items: opt.Items} {
		l := ls[name]
		for i := range n {
			l.add(opt, opt.Start.Add(time.Duration(i)*opt.Spacing))
		}
	}
	return ls
}

// add appends a record created (and so last modified) at at, in whole seconds as UltraCart
// reports them.
func (l *listing) add(opt Options, at time.Time) int {
	at = at.Truncate(time.Second)
	i := len(l.recs)
	l.recs = append(l.recs, &record{modified: at, doc: l.gen(opt, i, at)})
	return i
}

func listingPath(p string) string {
	switch p {
	case "/rest/v2/auto_order/auto_orders":
		return AutoOrders
	case "/rest/v2/customer/customers":
		return Customers
	case "/rest/v2/item/items":
		return Items
	}
	return ""
}

// AutoOrderCode is the code of auto order i.
func AutoOrderCode(i int) string { return fmt.Sprintf("AO-%07d", i+1) }

// SubscriberEmail is the billing email of auto order i's original order.
func SubscriberEmail(i int) string { return fmt.Sprintf("subscriber%d@example.com", i) }

// CustomerOID is the customer_profile_oid of customer i.
func CustomerOID(i int) int { return 100000 + i }

// CustomerEmail is the email customer i is created with.
func CustomerEmail(i int) string { return fmt.Sprintf("customer%d@example.com", i) }

// ItemID is the merchant_item_id of item i.
func ItemID(i int) string { return fmt.Sprintf("SKU-%05d", i+1) }

func makeAutoOrder(_ Options, i int, at time.Time) map[string]any {
	return map[string]any{
		"auto_order_oid":    50000 + i,
		"auto_order_code":   AutoOrderCode(i),
		"original_order_id": OrderID(i),
		"status":            "active",
		"enabled":           true,
		"next_attempt":      at.AddDate(0, 1, 0).Format(time.RFC3339),
		"items":             []any{map[string]any{"original_item_id": "TEA-CLUB", "frequency": "Monthly"}},
		"original_order": map[string]any{
			"order_id":      OrderID(i),
			"currency_code": "USD",
			"billing":       map[string]any{"first_name": "Sam", "last_name": fmt.Sprintf("Subscriber%d", i), "email": SubscriberEmail(i)},
			"summary":       map[string]any{"total": map[string]any{"currency_code": "USD", "value": 29.99}},
			"payment":       map[string]any{"payment_dts": at.Format(time.RFC3339)},
		},
	}
}

func makeCustomer(_ Options, i int, at time.Time) map[string]any {
	return map[string]any{
		"customer_profile_oid": CustomerOID(i),
		"email":                CustomerEmail(i),
		"billing": []any{map[string]any{"first_name": "Casey", "last_name": fmt.Sprintf("Customer%d", i), "city": "Austin",
			"state_region": "TX", "postal_code": "78701", "country_code": "US", "default_billing": true}},
		"shipping":          []any{},
		"signup_dts":        at.Format(time.RFC3339),
		"last_modified_dts": at.Format(time.RFC3339),
	}
}

func makeItem(_ Options, i int, at time.Time) map[string]any {
	return map[string]any{
		"merchant_item_oid":    70000 + i,
		"merchant_item_id":     ItemID(i),
		"description":          fmt.Sprintf("Tea blend %d", i+1),
		"inactive":             false,
		"creation_dts":         at.Format(time.RFC3339),
		"last_modified_dts":    at.Format(time.RFC3339),
		"parent_category_path": "/teas/",
		"pricing":              map[string]any{"cost": float64(500+i%2000) / 100, "currency_code": "USD"},
	}
}

// Modify changes record i of a listing now (on the fake's clock): fields are merged into it and
// its modification time moves to now, so it sorts last and matches a later _since.
func (s *Server) Modify(name string, i int, fields map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lists[name]
	r := l.recs[i]
	r.modified = s.opt.Clock.Now().Truncate(time.Second)
	maps.Copy(r.doc, fields)
	if l.modifiedField != "" {
		r.doc[l.modifiedField] = r.modified.Format(time.RFC3339)
	}
}

// Add creates a record in a listing now (on the fake's clock) and returns its index.
func (s *Server) Add(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists[name].add(s.opt, s.opt.Clock.Now())
}

// Len is how many records a listing holds.
func (s *Server) Len(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lists[name].recs)
}

// list answers GET on a listing: records modified at or after _since, in the _sort order (or
// creation order), paged by _limit (100 when absent) and _offset.
func (s *Server) list(name string, q url.Values, c *Call) (int, string) {
	l := s.lists[name]
	c.Limit = 100
	if v := q.Get("_limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > l.max {
			return http.StatusBadRequest, "limit out of range"
		}
		c.Limit = n
	}
	var since time.Time
	if v := q.Get("_since"); v != "" {
		t, err := ultracartapi.ParseTime(v)
		if err != nil {
			return http.StatusBadRequest, "bad _since: " + err.Error()
		}
		since = t
	}
	desc := false
	switch srt := q.Get("_sort"); {
	case srt == "":
	case l.modifiedField != "" && (srt == "+"+l.modifiedField || srt == l.modifiedField):
	case l.modifiedField != "" && srt == "-"+l.modifiedField:
		desc = true
	default:
		return http.StatusBadRequest, fmt.Sprintf("cannot sort %s by %q", name, srt)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var hits []*record
	for _, r := range l.recs {
		if !since.IsZero() && r.modified.Before(since) {
			continue
		}
		hits = append(hits, r)
	}
	if q.Get("_sort") != "" {
		sort.SliceStable(hits, func(i, j int) bool {
			if desc {
				return hits[i].modified.After(hits[j].modified)
			}
			return hits[i].modified.Before(hits[j].modified)
		})
	}
	total := len(hits)
	from := min(c.Offset, total)
	to := min(from+c.Limit, total)
	recs := make([]map[string]any, 0, to-from)
	for _, r := range hits[from:to] {
		recs = append(recs, r.doc)
	}
	c.Returned = len(recs)
	out := map[string]any{
		name:      recs,
		"success": true,
		"metadata": map[string]any{"result_set": ultracartapi.ResultSet{
			Count: len(recs), Limit: c.Limit, Offset: from, More: to < total, NextOffset: to, TotalRecords: &total,
		}},
	}
	b, err := json.Marshal(out)
	if err != nil {
		return http.StatusInternalServerError, err.Error()
	}
	return http.StatusOK, string(b)
}

// Record is record i of a listing as the listing currently returns it.
func (s *Server) Record(name string, i int) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := json.Marshal(s.lists[name].recs[i].doc)
	return b
}
