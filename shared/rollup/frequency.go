package rollup

import (
	"strconv"
	"strings"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// Period is how often a subscription bills: a number of days or a number of months (months
// differ in length, so "monthly" is not 30 days). The zero Period is unknown.
type Period struct {
	Days, Months int
}

// Known reports whether the period was understood.
func (p Period) Known() bool { return p.Days > 0 || p.Months > 0 }

// ParsePeriod reads a billing frequency as UltraCart ("Monthly", "Every 2 Weeks", "Every 45
// Days", "Quarterly") and ThriveCart ("month", "week", "year") write it. Anything else is
// unknown; such a subscription counts as active but adds nothing to MRR.
func ParsePeriod(freq string) Period {
	f := strings.ToLower(strings.TrimSpace(freq))
	f = strings.NewReplacer("-", " ", "_", " ").Replace(f)
	f = strings.Join(strings.Fields(f), " ")
	switch f {
	case "daily", "day", "every day":
		return Period{Days: 1}
	case "weekly", "week", "every week":
		return Period{Days: 7}
	case "biweekly", "bi weekly", "fortnightly", "every other week":
		return Period{Days: 14}
	case "monthly", "month", "every month":
		return Period{Months: 1}
	case "bimonthly", "bi monthly", "every other month":
		return Period{Months: 2}
	case "quarterly", "quarter", "every quarter":
		return Period{Months: 3}
	case "semiannually", "semi annually", "semi annual", "biannually", "half yearly", "twice a year":
		return Period{Months: 6}
	case "yearly", "annually", "annual", "year", "every year":
		return Period{Months: 12}
	}
	f = strings.TrimPrefix(f, "every ")
	num, unit, ok := strings.Cut(f, " ")
	if !ok {
		return Period{}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 || n > 3660 {
		return Period{}
	}
	switch strings.TrimSuffix(unit, "s") {
	case "day":
		return Period{Days: n}
	case "week":
		return Period{Days: 7 * n}
	case "month":
		return Period{Months: n}
	case "year":
		return Period{Months: 12 * n}
	}
	return Period{}
}

// MRR is amount billed every p normalized to 30 days (a month counts as one month whatever
// its length), in whole minor units rounded half to even. An unknown period gives 0.
func MRR(amount domain.Money, p Period) int64 {
	switch {
	case p.Months > 0:
		m, err := amount.Div(int64(p.Months))
		if err != nil {
			return 0
		}
		return m.Minor
	case p.Days > 0:
		x, err := amount.Mul(30)
		if err != nil {
			return 0
		}
		m, err := x.Div(int64(p.Days))
		if err != nil {
			return 0
		}
		return m.Minor
	}
	return 0
}
