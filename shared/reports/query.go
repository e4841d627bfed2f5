package reports

import (
	"fmt"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/rollup"
)

// Grain is how a report splits its date range into periods.
type Grain string

// Grains.
const (
	Day   Grain = "day"
	Week  Grain = "week" // ISO weeks, Monday to Sunday
	Month Grain = "month"
)

// ParseGrain reads day, week or month.
func ParseGrain(s string) (Grain, error) {
	switch g := Grain(strings.ToLower(s)); g {
	case Day, Week, Month:
		return g, nil
	case "":
		return Day, nil
	}
	return "", fmt.Errorf("grain %q: use day, week or month", s)
}

// Model is an attribution model.
type Model string

// Attribution models.
const (
	FirstTouch Model = "first"  // all of an order to the contact's first touch
	LastTouch  Model = "last"   // all of it to the order's last touch
	Linear     Model = "linear" // half to each, in whole minor units (the odd one to the first)
)

// ParseModel reads first, last or linear.
func ParseModel(s string) (Model, error) {
	switch m := Model(strings.ToLower(s)); m {
	case FirstTouch, LastTouch, Linear:
		return m, nil
	case "":
		return Linear, nil
	}
	return "", fmt.Errorf("attribution model %q: use first, last or linear", s)
}

// Filter narrows a report to some orders (or subscriptions). Empty fields match everything.
// Touch fields compare as reports show them: lower case, "(none)" for an absent one.
type Filter struct {
	Source        string `json:"source,omitempty"` // ultracart or thrivecart
	Product       string `json:"product,omitempty"`
	Currency      string `json:"currency,omitempty"`
	FirstSource   string `json:"first_source,omitempty"`
	FirstMedium   string `json:"first_medium,omitempty"`
	FirstCampaign string `json:"first_campaign,omitempty"`
	LastSource    string `json:"last_source,omitempty"`
	LastMedium    string `json:"last_medium,omitempty"`
	LastCampaign  string `json:"last_campaign,omitempty"`
}

// normalized puts the filter in the form cells are written in.
func (f Filter) normalized() Filter {
	n := func(s string) string {
		if s == "" {
			return ""
		}
		return rollup.TouchOf(domainUTM(s)).Source
	}
	f.Source = strings.ToLower(strings.TrimSpace(f.Source))
	f.Currency = strings.ToUpper(strings.TrimSpace(f.Currency))
	f.Product = strings.TrimSpace(f.Product)
	f.FirstSource, f.FirstMedium, f.FirstCampaign = n(f.FirstSource), n(f.FirstMedium), n(f.FirstCampaign)
	f.LastSource, f.LastMedium, f.LastCampaign = n(f.LastSource), n(f.LastMedium), n(f.LastCampaign)
	return f
}

func eq(want, got string) bool { return want == "" || want == got }

// segment reports whether a cell's segment passes the filter (the product aside).
func (f Filter) segment(s rollup.Segment) bool {
	return eq(f.Source, s.Source) && eq(f.Currency, s.Currency) &&
		eq(f.FirstSource, s.First.Source) && eq(f.FirstMedium, s.First.Medium) && eq(f.FirstCampaign, s.First.Campaign) &&
		eq(f.LastSource, s.Last.Source) && eq(f.LastMedium, s.Last.Medium) && eq(f.LastCampaign, s.Last.Campaign)
}

// cohort reports whether a cohort cell's key passes the filter.
func (f Filter) cohort(k rollup.CohortKey, currencyToo bool) bool {
	return eq(f.Source, k.Source) && (!currencyToo || eq(f.Currency, k.Currency)) &&
		eq(f.FirstSource, k.First.Source) && eq(f.FirstMedium, k.First.Medium) && eq(f.FirstCampaign, k.First.Campaign)
}

// Query is what every report takes: a range of local dates (inclusive), a grain and filters.
type Query struct {
	Account string
	From    rollup.Date
	To      rollup.Date
	Grain   Grain
	Filter  Filter
	// Model and TouchBy are the attribution report's: the model, and which touch fields make a
	// row (source, source/medium, or source/medium/campaign; the default).
	Model   Model
	TouchBy string
	// Horizon is how many months since a cohort's month the cohort report shows (default 12).
	Horizon int
}

// MaxDays bounds a report's range, to keep one answer to one screen's worth of reading.
const MaxDays = 366 * 20

func (q Query) check() error {
	if q.From > q.To {
		return &ParamError{"from", fmt.Sprintf("the range starts (%s) after it ends (%s)", q.From, q.To)}
	}
	if int(q.To-q.From) > MaxDays {
		return &ParamError{"from", fmt.Sprintf("the range %s to %s is longer than 20 years", q.From, q.To)}
	}
	return nil
}

// Period is one row of a report over time: local dates from Start to End, both included.
type Period struct {
	Start rollup.Date `json:"start"`
	End   rollup.Date `json:"end"`
	Label string      `json:"label"`
	// Whole is false when the report's range cuts the period (a month report from the 15th):
	// counts of distinct customers are then not given for it.
	Whole bool `json:"whole"`
}

// MarshalJSON writes the dates as YYYY-MM-DD.
func (p Period) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"start":%q,"end":%q,"label":%q,"whole":%t}`, p.Start, p.End, p.Label, p.Whole), nil
}

// Periods splits [from, to] by grain.
func Periods(from, to rollup.Date, g Grain) []Period {
	var out []Period
	for d := from; d <= to; {
		var start, end rollup.Date
		var label string
		switch g {
		case Week:
			start = d.WeekStart()
			end = start + 6
			y, w := time.Unix(int64(start)*86400, 0).UTC().ISOWeek()
			label = fmt.Sprintf("%04d-W%02d", y, w)
		case Month:
			m := d.Month()
			start, end, label = m.First(), m.Last(), m.String()
		default:
			start, end, label = d, d, d.String()
		}
		p := Period{Start: max(start, from), End: min(end, to), Label: label}
		p.Whole = p.Start == start && p.End == end
		out = append(out, p)
		d = p.End + 1
	}
	return out
}

// periodOf finds the period a date falls in (-1 when none).
func periodOf(ps []Period, d rollup.Date) int {
	lo, hi := 0, len(ps)-1
	for lo <= hi {
		mid := (lo + hi) / 2
		switch {
		case d < ps[mid].Start:
			hi = mid - 1
		case d > ps[mid].End:
			lo = mid + 1
		default:
			return mid
		}
	}
	return -1
}
