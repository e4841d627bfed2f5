package ultracartfake

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cartrelay/cartrelay/shared/ultracartapi"
)

// Affiliates answer POST /affiliate/affiliates/query as UltraCart's AffiliateApi documents it:
// an AffiliateQuery body whose fields filter, _limit up to 200 (100 when absent), _offset, and
// an AffiliatesResponse with the result_set. UltraCart does not enumerate the status values;
// the fake's are those of the affiliate admin's signup approval ("Pending", "Approved",
// "Rejected"), set by the test. Where the documentation is silent the fake does the harder
// thing: _sort is refused (no sortable field is documented), the order is creation order, and
// with Options.AffiliateQueryNeedsFilter an empty query object is refused with 400, the reading
// of "if no parameters are specified, the API call will fail" that cartrelay cannot satisfy.

// affiliateQueryFields are AffiliateQuery's documented members.
var affiliateQueryFields = map[string]bool{"affiliate_oid": true, "city": true, "company_name": true, "country_code": true,
	"email": true, "first_name": true, "last_name": true, "postal_code": true, "short_code": true, "state": true, "status": true}

// AffiliateOID is the affiliate_oid of affiliate i.
func AffiliateOID(i int) int { return 300000 + i }

// AffiliateEmail is the email affiliate i signs up with.
func AffiliateEmail(i int) string { return fmt.Sprintf("affiliate%d@example.com", i) }

// AddAffiliate signs up an affiliate with status and returns its index.
func (s *Server) AddAffiliate(status string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := len(s.affiliates)
	s.affiliates = append(s.affiliates, map[string]any{
		"affiliate_oid": AffiliateOID(i), "email": AffiliateEmail(i), "first_name": "Alex",
		"last_name": fmt.Sprintf("Affiliate%d", i), "status": status, "merchant_id": s.opt.MerchantID,
	})
	return i
}

// SetAffiliate merges fields into affiliate i (a new status, a new email).
func (s *Server) SetAffiliate(i int, fields map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	maps.Copy(s.affiliates[i], fields)
}

// DeleteAffiliate removes affiliate i from the listing, as deleteAffiliate disables it; the
// later ones move up a place.
func (s *Server) DeleteAffiliate(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.affiliates[i] = nil
}

func (s *Server) queryAffiliates(params url.Values, c *Call, body []byte) (int, string) {
	c.Limit = 100
	if v := params.Get("_limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > ultracartapi.MaxLimit {
			return http.StatusBadRequest, "limit out of range"
		}
		c.Limit = n
	}
	if v := params.Get("_sort"); v != "" {
		return http.StatusBadRequest, fmt.Sprintf("cannot sort affiliates by %q", v)
	}
	var q map[string]any
	if err := json.Unmarshal(body, &q); err != nil || q == nil {
		return http.StatusBadRequest, "the body is not an AffiliateQuery"
	}
	for k := range q {
		if !affiliateQueryFields[k] {
			return http.StatusBadRequest, fmt.Sprintf("unknown AffiliateQuery field %q", k)
		}
	}
	if len(q) == 0 && s.opt.AffiliateQueryNeedsFilter {
		return http.StatusBadRequest, "Please specify some query parameters to limit the scope of the affiliates returned."
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var hits []map[string]any
	for _, a := range s.affiliates {
		if a == nil {
			continue
		}
		match := true
		for k, v := range q {
			if !strings.EqualFold(fmt.Sprint(a[k]), fmt.Sprint(v)) {
				match = false
			}
		}
		if match {
			hits = append(hits, a)
		}
	}
	total := len(hits)
	from := min(c.Offset, total)
	to := min(from+c.Limit, total)
	recs := hits[from:to]
	c.Returned = len(recs)
	if recs == nil {
		recs = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{
		"affiliates": recs,
		"success":    true,
		"metadata": map[string]any{"result_set": ultracartapi.ResultSet{
			Count: len(recs), Limit: c.Limit, Offset: from, More: to < total, NextOffset: to, TotalRecords: &total,
		}},
	})
	if err != nil {
		return http.StatusInternalServerError, err.Error()
	}
	return http.StatusOK, string(b)
}
