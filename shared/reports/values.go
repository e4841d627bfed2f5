package reports

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/rollup"
)

// Num is a count (orders, customers, subscriptions) with the handle that lists what it counts.
type Num struct {
	N     int64  `json:"n"`
	Drill string `json:"drill,omitempty"`
}

// Amount is money in minor units of one currency, with the handle that lists the orders behind
// it. Its JSON is {"amount":"129.90","currency":"USD","drill":"..."}.
type Amount struct {
	Minor    int64
	Currency string
	Drill    string
}

// Money is the amount as domain money.
func (a Amount) Money() domain.Money { return domain.Money{Minor: a.Minor, Currency: a.Currency} }

// Decimal is the amount as an exact decimal string.
func (a Amount) Decimal() string { return a.Money().Decimal() }

// MarshalJSON writes the amount as a decimal string beside its currency.
func (a Amount) MarshalJSON() ([]byte, error) {
	if a.Drill == "" {
		return fmt.Appendf(nil, `{"amount":%q,"currency":%q}`, a.Decimal(), a.Currency), nil
	}
	return fmt.Appendf(nil, `{"amount":%q,"currency":%q,"drill":%q}`, a.Decimal(), a.Currency, a.Drill), nil
}

// div is a ÷ n rounded half to even (0 when n is 0).
func div(a int64, n int64) int64 {
	if n == 0 {
		return 0
	}
	m, err := domain.Money{Minor: a}.Div(n)
	if err != nil {
		return 0
	}
	return m.Minor
}

// Drill-down: every number of a report carries a handle that names what it counts, precisely
// enough to find the orders, contacts or subscriptions behind it again: the rollup part and cell
// kind it sums, the measure, the periods, and the cell filter (the report's filters and the row).
// Drill lists them by computing each candidate's contributions the way the rollups did and
// keeping those that add to that number, so a drill-down list always matches its number.

// DrillSpec is what a drill-down handle holds.
type DrillSpec struct {
	Report string
	// List is what the handle lists: orders, contacts or subscriptions.
	List string
	Part rollup.Part
	// Kinds are the cell kinds summed (usually one).
	Kinds string
	// Measure is the measure an order must add to; Without one it must not (returning orders:
	// orders without a first order).
	Measure string
	Without string
	// From and To are the periods summed: dates for day parts, months for cohort items.
	From, To int32
	// AsOf, for stock measures (active subscriptions), is the date the stock is taken on.
	AsOf int32
	Gen  int
	// Filter selects cells: the report's filters and the row's dimensions.
	Filter Filter
	// Dims selects cells by other dimensions (a touch row, a cohort's day of month).
	Dims map[string]string
}

const drillVersion = "1"

// Encode is the handle: URL-safe, so a console can put it in a link.
func (s DrillSpec) Encode() string {
	v := url.Values{}
	v.Set("v", drillVersion)
	v.Set("r", s.Report)
	v.Set("l", s.List)
	v.Set("p", string(s.Part))
	v.Set("k", s.Kinds)
	v.Set("m", s.Measure)
	if s.Without != "" {
		v.Set("w", s.Without)
	}
	v.Set("f", strconv.Itoa(int(s.From)))
	v.Set("t", strconv.Itoa(int(s.To)))
	if s.AsOf != 0 {
		v.Set("a", strconv.Itoa(int(s.AsOf)))
	}
	v.Set("g", strconv.Itoa(s.Gen))
	f := s.Filter
	for k, x := range map[string]string{"src": f.Source, "sku": f.Product, "cur": f.Currency,
		"fs": f.FirstSource, "fm": f.FirstMedium, "fc": f.FirstCampaign, "ls": f.LastSource, "lm": f.LastMedium, "lc": f.LastCampaign} {
		if x != "" {
			v.Set(k, x)
		}
	}
	for k, x := range s.Dims {
		v.Set("d."+k, x)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(v.Encode()))
}

// ErrBadHandle is wrapped by the error for a drill-down handle that cannot be read.
var ErrBadHandle = errors.New("not a drill-down handle of this cartrelay (copy it whole from a report's output)")

// ParseDrill reads a handle back.
func ParseDrill(h string) (DrillSpec, error) {
	raw, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return DrillSpec{}, ErrBadHandle
	}
	v, err := url.ParseQuery(string(raw))
	if err != nil || v.Get("v") != drillVersion {
		return DrillSpec{}, ErrBadHandle
	}
	atoi := func(k string) (int, bool) {
		if v.Get(k) == "" {
			return 0, true
		}
		n, err := strconv.Atoi(v.Get(k))
		return n, err == nil
	}
	from, ok1 := atoi("f")
	to, ok2 := atoi("t")
	asOf, ok3 := atoi("a")
	gen, ok4 := atoi("g")
	p := v.Get("p")
	if !ok1 || !ok2 || !ok3 || !ok4 || len(p) != 1 || v.Get("m") == "" || v.Get("k") == "" {
		return DrillSpec{}, ErrBadHandle
	}
	s := DrillSpec{Report: v.Get("r"), List: v.Get("l"), Part: rollup.Part(p[0]), Kinds: v.Get("k"), Measure: v.Get("m"),
		Without: v.Get("w"), From: int32(from), To: int32(to), AsOf: int32(asOf), Gen: gen,
		Filter: Filter{Source: v.Get("src"), Product: v.Get("sku"), Currency: v.Get("cur"),
			FirstSource: v.Get("fs"), FirstMedium: v.Get("fm"), FirstCampaign: v.Get("fc"),
			LastSource: v.Get("ls"), LastMedium: v.Get("lm"), LastCampaign: v.Get("lc")}}
	for k := range v {
		if name, ok := cutPrefix(k, "d."); ok {
			if s.Dims == nil {
				s.Dims = map[string]string{}
			}
			s.Dims[name] = v.Get(k)
		}
	}
	switch s.List {
	case ListOrders, ListContacts, ListSubscriptions, ListPageViews:
	default:
		return DrillSpec{}, ErrBadHandle
	}
	return s, nil
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

// What a drill-down lists.
const (
	ListOrders        = "orders"
	ListContacts      = "contacts"
	ListSubscriptions = "subscriptions"
	ListPageViews     = "pageviews"
)
