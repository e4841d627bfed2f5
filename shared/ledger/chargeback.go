package ledger

import (
	"cmp"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// chargebackRank orders a dispute's statuses for merging: a dispute only moves forward, so of two
// reports of one dispute the one further along wins (see domain.ChargebackStatus). An unknown
// status ranks lowest.
func chargebackRank(s domain.ChargebackStatus) int {
	switch s {
	case domain.ChargebackOpen:
		return 1
	case domain.ChargebackLost:
		return 2
	case domain.ChargebackWon:
		return 3
	case domain.ChargebackDeleted:
		return 4
	}
	return 0
}

// cmpChargebackLine is a total order on the reports of one dispute: its status's rank, then the
// contents (amount, times, words), so that the merge is a join whatever arrives first.
func cmpChargebackLine(a, b domain.ChargebackLine) int {
	return cmp.Or(strings.Compare(a.ID, b.ID),
		cmp.Compare(chargebackRank(a.Status), chargebackRank(b.Status)),
		strings.Compare(string(a.Status), string(b.Status)),
		cmpMoneyTotal(a.Amount, b.Amount),
		a.At.Compare(b.At), a.ResolvedAt.Compare(b.ResolvedAt),
		strings.Compare(a.SourceStatus, b.SourceStatus), strings.Compare(a.Reason, b.Reason))
}

// chargebackLines merges dispute lines by their ID.
func chargebackLines() keyedLines[domain.ChargebackLine] {
	return keyedLines[domain.ChargebackLine]{
		id:  func(l domain.ChargebackLine) string { return l.ID },
		cmp: cmpChargebackLine,
		utc: func(l domain.ChargebackLine) (domain.ChargebackLine, bool) {
			ok := l.At.Location() == time.UTC && l.ResolvedAt.Location() == time.UTC
			l.At, l.ResolvedAt = l.At.UTC(), l.ResolvedAt.UTC()
			return l, ok
		},
	}
}

// normalizeChargebacks sorts lines by ID, keeps the line furthest along per ID and puts times in
// UTC. A list already in that form is returned as is.
func normalizeChargebacks(ls []domain.ChargebackLine) []domain.ChargebackLine {
	return chargebackLines().normalize(ls)
}

// unionChargebacks merges two normalized lists of dispute lines.
func unionChargebacks(a, b []domain.ChargebackLine) []domain.ChargebackLine {
	return chargebackLines().union(a, b)
}

func findChargeback(ls []domain.ChargebackLine, id string) (domain.ChargebackLine, bool) {
	i, ok := slices.BinarySearchFunc(ls, id, func(l domain.ChargebackLine, id string) int { return strings.Compare(l.ID, id) })
	if !ok {
		return domain.ChargebackLine{}, false
	}
	return ls[i], true
}

// settleChargebacks derives ChargedBack and ChargedBackAt from the dispute lines: the sum of the
// standing lines in the order's currency, at most the order's total once the order is known in
// full (a dispute cannot take back more than was paid; a partial order's total is unknown, not
// zero). A line in the customer's currency is converted at the order's own rate
// (Total/CustomerTotal, rounded half to even); a line that cannot be converted is left out, and
// UncountableChargebacks names it.
func settleChargebacks(o *domain.Order) {
	o.ChargedBack, o.ChargedBackAt = domain.Money{}, time.Time{}
	if len(o.Chargebacks) == 0 {
		return
	}
	cur := orderCurrency(*o)
	sum := domain.Money{Currency: cur}
	var at time.Time
	for _, l := range o.Chargebacks {
		if !l.Status.Stands() {
			continue
		}
		amt, ok := chargebackAmount(*o, l)
		if !ok {
			continue
		}
		s, err := sum.Add(amt)
		if err != nil {
			continue
		}
		sum = s
		at = latest(at, l.At)
	}
	if !o.Partial && sum.Minor > o.Total.Minor {
		sum.Minor = max(o.Total.Minor, 0)
	}
	if sum.Minor <= 0 {
		return
	}
	o.ChargedBack, o.ChargedBackAt = sum, at
}

// chargebackAmount is a dispute's amount in the order's currency; ok is false when it cannot be
// known exactly: a negative amount, or a currency that is neither the order's nor its
// customer's.
func chargebackAmount(o domain.Order, l domain.ChargebackLine) (domain.Money, bool) {
	cur := orderCurrency(o)
	a := l.Amount
	switch {
	case a.Minor < 0:
		return domain.Money{}, false
	case a.Currency == "" || a.Currency == cur:
		return domain.Money{Minor: a.Minor, Currency: cur}, true
	case a.Currency != o.CustomerTotal.Currency || o.CustomerTotal.Minor <= 0 || o.Partial:
		return domain.Money{}, false
	}
	// a × Total / CustomerTotal, half to even, exactly.
	num := new(big.Int).Mul(big.NewInt(a.Minor), big.NewInt(o.Total.Minor))
	den := big.NewInt(o.CustomerTotal.Minor)
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	r2 := new(big.Int).Mul(r, big.NewInt(2))
	if c := r2.Cmp(den); c > 0 || (c == 0 && q.Bit(0) == 1) {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return domain.Money{}, false
	}
	return domain.Money{Minor: q.Int64(), Currency: cur}, true
}

// UncountableChargebacks lists the disputes of a complete order whose amount cannot be counted:
// in a currency that is neither the order's nor the one its customer paid in (so there is no
// rate to convert it exactly), or negative. Ingest refuses the report of such a dispute rather
// than leave revenue wrong without a word.
func UncountableChargebacks(o domain.Order) []domain.ChargebackLine {
	if o.Partial {
		return nil
	}
	var out []domain.ChargebackLine
	for _, l := range o.Chargebacks {
		if _, ok := chargebackAmount(o, l); !ok {
			out = append(out, l)
		}
	}
	return out
}

// chargebackState is a short hash of an order's disputes as they stand and of the order contents
// their amounts were counted against: the identity of an OrderChargedBack. Both only move forward
// under MergeOrder, so an order never returns to a state it left.
func chargebackState(o domain.Order) string {
	e := enc{b: make([]byte, 0, 256)}
	e.u64(uint64(len(o.Chargebacks)))
	for _, l := range o.Chargebacks {
		e.str(l.ID)
		e.str(string(l.Status))
		e.money(l.Amount)
		e.time(l.At)
		e.time(l.ResolvedAt)
		e.str(l.SourceStatus)
		e.str(l.Reason)
	}
	e.boolean(o.Partial)
	e.time(o.SourceUpdatedAt)
	e.orderContents(o)
	return e.hash()
}
