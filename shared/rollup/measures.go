package rollup

import "strconv"

// Measures: the counter names of each cell kind. Money is in the cell currency's minor units.
const (
	// KindOrder
	MOrders           = "o"  // placed orders
	MGross            = "g"  // their totals
	MGrossFirstHalf   = "gh" // the first touch's share of the totals under the linear model
	MRefunds          = "r"  // refunded and charged back, counted against the order's paid day (order view)
	MChargebacks      = "cb" // of which standing chargebacks
	MRefundsFirstHalf = "rh" // the first touch's share of those refunds under the linear model
	MNew              = "n"  // first orders of a contact (new customers)
	MNewGross         = "ng" // their totals
	MNewRefunds       = "nr" // their refunds (order view)
	MRebills          = "b"  // subscription renewals
	MRebillGross      = "bg" // their totals
	MRebillRefunds    = "br" // their refunds (order view)
	MCustomersDay     = "cd" // contacts counted on the day of their first order that day
	MCustomersWeek    = "cw" // ... that week
	MCustomersMonth   = "cm" // ... that month

	// KindProduct (also MOrders, MGross, MRefunds)
	MUnits         = "u"  // units sold
	MUnitsRefunded = "ur" // units refunded

	// KindRefund (also MRefunds, MRefundsFirstHalf): refunds on the day they happened.
	MRefundedOrders = "k" // orders with a refund that day

	// KindConversion
	MConverted      = "c" // viewers whose first order followed their first page view
	MConvertedGross = "g" // the totals of those first orders

	// KindSub: flows (+1 when something begins, -1 when it ends), summed to a stock.
	MSubStarted     = "st" // subscriptions started for the first time
	MSubRestarted   = "re" // subscriptions active again after they ended
	MSubCancelled   = "ca" // subscriptions cancelled (or disabled)
	MSubMerged      = "mg" // subscriptions replaced by an upgrade
	MSubActive      = "a"  // flow of active subscriptions (paused ones included)
	MSubPaused      = "p"  // flow of paused subscriptions
	MSubMRR         = "m"  // flow of monthly recurring revenue, normalized to 30 days
	MSubNoFrequency = "nf" // flow of active subscriptions whose billing frequency is unknown

	// KindCohort, KindLead
	MCustomers = "c" // customers (a lead cohort: leads who bought)
	MLeads     = "l" // leads first seen in the month
	// Net revenue k months after the cohort's month is "n<k>" (NetAfter).

	// KindAcquisition
	MAcqNew      = "n"  // new customers that day
	MAcqGross    = "g"  // their first orders' totals
	MAcqRefunds  = "r"  // their first orders' refunds
	MAcqToDate   = "lt" // their net revenue to date (every order, refunds taken off)
	MAcqDaysSum  = "t"  // sum of their times to purchase, in days
	MAcqDaysZero = "t0" // bought the day they were first seen
	MAcqDaysWeek = "t1" // 1 to 7 days later
	MAcqDaysMon  = "t2" // 8 to 30 days later
	MAcqDaysQtr  = "t3" // 31 to 90 days later
	MAcqDaysMore = "t4" // more than 90 days later

	// KindPageView
	MViews       = "v"  // page views
	MNewVisitors = "nv" // browsers seen for the first time
)

// MonthMeasure reports whether PartMonth items keep measure m of cells of kind k: the order,
// refund and excluded cells' measures that the revenue report reads by month. A report that
// needs another (an attribution's linear halves, a day's or week's customers) reads days.
func MonthMeasure(k Kind, m string) bool {
	switch k {
	case KindOrder:
		switch m {
		case MOrders, MGross, MRefunds, MChargebacks, MNew, MNewGross, MRebills, MRebillGross, MCustomersMonth:
			return true
		}
	case KindRefund:
		return m == MRefunds || m == MChargebacks
	case KindExcluded:
		return m == MOrders || m == MGross
	}
	return false
}

// NetAfter is the measure of net revenue k months after a cohort's month.
func NetAfter(k int) string { return "n" + strconv.Itoa(k) }

// ParseNetAfter reads k back from a NetAfter measure.
func ParseNetAfter(m string) (int, bool) {
	if len(m) < 2 || m[0] != 'n' {
		return 0, false
	}
	k, err := strconv.Atoi(m[1:])
	return k, err == nil && k >= 0
}

// DaysBucket is the time-to-purchase measure for a number of days.
func DaysBucket(days int) string {
	switch {
	case days <= 0:
		return MAcqDaysZero
	case days <= 7:
		return MAcqDaysWeek
	case days <= 30:
		return MAcqDaysMon
	case days <= 90:
		return MAcqDaysQtr
	}
	return MAcqDaysMore
}
