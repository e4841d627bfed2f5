package ledger

import (
	"bytes"
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

// Order status lattice. Statuses only move up; the merge takes the higher of two:
//
//	(unknown) < pending < paid < shipped < rejected < deleted
//
// shipped is above paid because a shipment implies the payment. A refund is not a status: a paid
// order later refunded stays paid, with Refunded > 0. rejected and deleted are terminal: an order
// rejected after it was pending is rejected whatever order the two events arrive in, and the
// sources offer no way back from either (UltraCart's Rejected stage, a deleted order). deleted
// sits on top because a deletion is the source's last word on an order, rejected or not. An
// unknown status ranks lowest and ties break on the name, so even a mapper's typo merges
// deterministically.
func statusRank(s domain.OrderStatus) int {
	switch s {
	case domain.OrderPending:
		return 1
	case domain.OrderPaid:
		return 2
	case domain.OrderShipped:
		return 3
	case domain.OrderRejected:
		return 4
	case domain.OrderDeleted:
		return 5
	}
	return 0
}

func cmpStatus(a, b domain.OrderStatus) int {
	if c := cmp.Compare(statusRank(a), statusRank(b)); c != 0 {
		return c
	}
	return strings.Compare(string(a), string(b))
}

// Placed reports whether an order is a known sale: paid or shipped, not a test, and known in
// full (not Partial, whose amounts are unknown rather than zero). Only placed orders produce
// order facts and count in a contact's revenue. Statuses only move up, the test flag only turns
// on and an order stops being partial once any complete version is merged, so an order is
// placed during at most one stretch of its history.
func Placed(o domain.Order) bool {
	return !o.Test && !o.Partial && (o.Status == domain.OrderPaid || o.Status == domain.OrderShipped)
}

// MergeOrder folds a new version of an order into the stored one (nil when the order is new)
// and returns what to store. The merge is a join: commutative, associative and idempotent, so
// every permutation and duplication of an order's events converges to the same stored order.
//
//   - Status: the higher in the lattice (see statusRank).
//   - Test: true if any version says so.
//   - CreatedAt, PaidAt: the earliest non-zero.
//   - Refunds: the union of the refund lines by ID (for one ID the greatest line wins).
//   - Refunded: the largest reported, or the sum of the refund lines if that is more. Refunded
//     amounts only grow, so a stale event with a lower total changes nothing.
//   - RefundedAt: the latest refund time reported by any version or line.
//   - Tracking: the union by number, sorted; for one number the greatest (carrier, URL) wins.
//   - ShippedAt, OutForDeliveryAt, DeliveredAt, PaymentFailedAt: the earliest non-zero.
//   - Chargebacks: the union of the dispute lines by ID; for one ID the line furthest along
//     (see cmpChargebackLine), so a stale "open" report never reopens a won dispute.
//   - ChargedBack and ChargedBackAt are derived from the merged result (settleChargebacks).
//   - Everything else (identity, email, stage, items, totals, addresses, phone, opt-ins, UTMs,
//     affiliate, coupons, subscription link, customer id, Partial) is taken whole from one
//     version: a complete version before a partial one, then the later SourceUpdatedAt, then
//     the greater contents (a canonical encoding), so the choice never depends on arrival
//     order.
//
// A Partial version (one that carries only part of the order, its other fields zero because
// unknown) therefore adds what the merged fields above say (status, refunds, tracking, times)
// and never replaces a complete version's contents; until a complete version arrives, the best
// partial one stands in.
//
// Why there is no status in the tie-break of the contents: the stored order's status is the
// join of every version's, not the status of the version its contents came from, so ranking
// contents by status would break associativity (an older shipped version would lend its rank
// to newer pending contents). For the same reason the choice is whole, not field by field: the
// stored order does not remember which version each field came from. Mappers should set
// SourceUpdatedAt to the source's own change time so the newest contents win.
func MergeOrder(stored *domain.Order, in domain.Order) domain.Order {
	b := normalizeOrder(in)
	if stored == nil {
		return b
	}
	a := normalizeOrder(*stored)

	out := a
	if cmpOrderContents(b, a) > 0 {
		out = b
	}
	out.Status = a.Status
	if cmpStatus(b.Status, a.Status) > 0 {
		out.Status = b.Status
	}
	out.Test = a.Test || b.Test
	out.CreatedAt = earliest(a.CreatedAt, b.CreatedAt)
	out.PaidAt = earliest(a.PaidAt, b.PaidAt)
	out.Refunds = unionRefundLines(a.Refunds, b.Refunds)
	out.Refunded = greater(a.Refunded, b.Refunded, cmpMoneyTotal)
	out.RefundedAt = latest(a.RefundedAt, b.RefundedAt)
	settleRefunds(&out)
	out.Tracking = unionTracking(a.Tracking, b.Tracking)
	out.ShippedAt = earliest(a.ShippedAt, b.ShippedAt)
	out.OutForDeliveryAt = earliest(a.OutForDeliveryAt, b.OutForDeliveryAt)
	out.DeliveredAt = earliest(a.DeliveredAt, b.DeliveredAt)
	out.PaymentFailedAt = earliest(a.PaymentFailedAt, b.PaymentFailedAt)
	out.Chargebacks = unionChargebacks(a.Chargebacks, b.Chargebacks)
	settleChargebacks(&out)
	return out
}

// settleRefunds lifts Refunded to the sum of the refund lines and RefundedAt to the latest line,
// when they are more. Lines that cannot be summed (mixed currencies, overflow: only a broken
// mapper produces them, and the merge laws then hold only for the amounts reported) leave
// Refunded as reported.
func settleRefunds(o *domain.Order) {
	if len(o.Refunds) == 0 {
		return
	}
	sum := domain.Money{Currency: o.Refunded.Currency}
	var err error
	for _, l := range o.Refunds {
		o.RefundedAt = latest(o.RefundedAt, l.At)
		if l.Amount.Minor < 0 || err != nil {
			continue // a negative line is no refund, and the sum must only grow with lines
		}
		sum, err = sum.Add(l.Amount)
	}
	if err == nil {
		o.Refunded = greater(o.Refunded, sum, cmpMoneyTotal)
	}
}

// normalizeOrder puts the merged fields in their canonical form, so that merging an order with
// itself returns it unchanged.
func normalizeOrder(o domain.Order) domain.Order {
	if o.Key == "" {
		o.Key = domain.OrderKey(o.Source, o.OrderID, o.InvoiceID)
	}
	o.CreatedAt = o.CreatedAt.UTC()
	o.PaidAt = o.PaidAt.UTC()
	o.RefundedAt = o.RefundedAt.UTC()
	o.SourceUpdatedAt = o.SourceUpdatedAt.UTC()
	o.ShippedAt = o.ShippedAt.UTC()
	o.OutForDeliveryAt = o.OutForDeliveryAt.UTC()
	o.DeliveredAt = o.DeliveredAt.UTC()
	o.PaymentFailedAt = o.PaymentFailedAt.UTC()
	o.Tracking = normalizeTracking(o.Tracking)
	o.Refunds = normalizeRefundLines(o.Refunds)
	settleRefunds(&o)
	o.Chargebacks = normalizeChargebacks(o.Chargebacks)
	settleChargebacks(&o)
	return o
}

// cmpOrderContents orders versions for the choice of descriptive fields: complete before
// partial, then later SourceUpdatedAt, then the canonical encoding of those fields.
func cmpOrderContents(a, b domain.Order) int {
	if a.Partial != b.Partial {
		if a.Partial {
			return -1
		}
		return 1
	}
	if c := a.SourceUpdatedAt.Compare(b.SourceUpdatedAt); c != 0 {
		return c
	}
	// Both encodings in one buffer: one allocation for the two where they fit.
	e := enc{b: make([]byte, 0, 2048)}
	e.orderContents(a)
	n := len(e.b)
	e.orderContents(b)
	return bytes.Compare(e.b[:n], e.b[n:])
}

// orderContents encodes every field MergeOrder takes whole from one version. The merged fields
// (status, test, created/paid/refunded/shipped/delivery times, refunded, refund lines, tracking,
// chargebacks and what is derived from them) are left out, and so are Partial and
// SourceUpdatedAt, which are compared first.
func (e *enc) orderContents(o domain.Order) {
	e.str(o.Key)
	e.str(string(o.Source))
	e.str(o.OrderID)
	e.str(o.InvoiceID)
	e.str(o.Email)
	e.str(o.Stage)
	e.str(o.Currency)
	e.money(o.Subtotal)
	e.money(o.Discount)
	e.money(o.Shipping)
	e.money(o.Handling)
	e.money(o.Tax)
	e.money(o.Total)
	e.money(o.CustomerTotal)
	e.u64(uint64(len(o.Items)))
	for _, li := range o.Items {
		e.lineItem(li)
	}
	e.strs(o.Coupons)
	e.address(o.Billing)
	e.address(o.ShipTo)
	e.str(o.Phone)
	e.optBool(o.EmailOptIn)
	e.optBool(o.SMSOptIn)
	e.u64(uint64(len(o.UTMs)))
	for _, u := range o.UTMs {
		e.utm(u)
	}
	e.boolean(o.Affiliate != nil)
	if a := o.Affiliate; a != nil {
		e.str(a.ID)
		e.str(a.SubID)
		e.str(a.Name)
		e.str(a.Email)
	}
	e.str(o.SubscriptionID)
	e.boolean(o.Rebill)
	e.str(o.CustomerID)
}

// cmpMoneyTotal is a total order on Money: amount, then currency code. Unlike Money.Cmp it
// never fails, which a merge needs (only a broken mapper mixes currencies within an order, and
// the merge must stay a join even then); it is only meaningful within one currency.
func cmpMoneyTotal(a, b domain.Money) int {
	if c := cmp.Compare(a.Minor, b.Minor); c != 0 {
		return c
	}
	return strings.Compare(a.Currency, b.Currency)
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

func cmpTracking(a, b domain.Tracking) int {
	return cmp.Or(strings.Compare(a.Number, b.Number), strings.Compare(a.Carrier, b.Carrier),
		strings.Compare(a.URL, b.URL))
}

// normalizeTracking sorts by number and keeps one entry per number (the greatest), dropping
// entries without a number. A list already in that form is returned as is.
func normalizeTracking(ts []domain.Tracking) []domain.Tracking {
	ok := true
	for i, t := range ts {
		if t.Number == "" || (i > 0 && ts[i-1].Number >= t.Number) {
			ok = false
			break
		}
	}
	if ok {
		if len(ts) == 0 {
			return nil
		}
		return ts
	}
	out := make([]domain.Tracking, 0, len(ts))
	for _, t := range ts {
		if t.Number != "" {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, cmpTracking)
	// Sorted with the greatest last within a number: keep the last of each run.
	w := 0
	for i := range out {
		if i+1 < len(out) && out[i+1].Number == out[i].Number {
			continue
		}
		out[w] = out[i]
		w++
	}
	if w == 0 {
		return nil
	}
	return out[:w]
}

// unionTracking merges two normalized lists. When one already holds everything, it is returned
// without copying, which is the common case of a replayed event.
func unionTracking(a, b []domain.Tracking) []domain.Tracking {
	if covers(a, b) {
		return a
	}
	if covers(b, a) {
		return b
	}
	out := make([]domain.Tracking, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i].Number < b[j].Number):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j].Number < a[i].Number:
			out = append(out, b[j])
			j++
		default:
			out = append(out, greater(a[i], b[j], cmpTracking))
			i++
			j++
		}
	}
	return out
}

// greater returns the greater of two values under cmp, a when they are equal.
func greater[T any](a, b T, cmp func(T, T) int) T {
	if cmp(b, a) > 0 {
		return b
	}
	return a
}

// covers reports whether the normalized list a already is the union of a and b.
func covers(a, b []domain.Tracking) bool {
	i := 0
	for _, t := range b {
		for i < len(a) && a[i].Number < t.Number {
			i++
		}
		if i == len(a) || a[i].Number != t.Number || cmpTracking(t, a[i]) > 0 {
			return false
		}
	}
	return true
}

func cmpRefundLine(a, b domain.RefundLine) int {
	return cmp.Or(strings.Compare(a.ID, b.ID), cmpMoneyTotal(a.Amount, b.Amount), a.At.Compare(b.At),
		strings.Compare(a.Reason, b.Reason), strings.Compare(a.SKU, b.SKU))
}

// refundLines merges refund lines by their ID.
func refundLines() keyedLines[domain.RefundLine] {
	return keyedLines[domain.RefundLine]{
		id:  func(l domain.RefundLine) string { return l.ID },
		cmp: cmpRefundLine,
		utc: func(l domain.RefundLine) (domain.RefundLine, bool) {
			ok := l.At.Location() == time.UTC
			l.At = l.At.UTC()
			return l, ok
		},
	}
}

// normalizeRefundLines sorts lines by ID, keeps the greatest line per ID and puts times in UTC.
// A list already in that form is returned as is.
func normalizeRefundLines(ls []domain.RefundLine) []domain.RefundLine {
	return refundLines().normalize(ls)
}

// unionRefundLines merges two normalized lists of refund lines.
func unionRefundLines(a, b []domain.RefundLine) []domain.RefundLine {
	return refundLines().union(a, b)
}

// keyedLines describes a list of lines keyed by an ID (refund lines, dispute lines) so that one
// normalization and one union serve every such list. Normalized, a list is sorted by ID with one
// line per ID, the greatest under cmp, its times in UTC.
type keyedLines[T any] struct {
	id func(T) string
	// cmp is a total order on lines whose first key is the ID.
	cmp func(a, b T) int
	// utc returns the line with its times in UTC, and whether they were already.
	utc func(T) (T, bool)
}

// normalize puts ls in normal form; a list already in it is returned as is.
func (k keyedLines[T]) normalize(ls []T) []T {
	ok := true
	for i, l := range ls {
		if _, inUTC := k.utc(l); !inUTC || (i > 0 && k.id(ls[i-1]) >= k.id(l)) {
			ok = false
			break
		}
	}
	if ok {
		if len(ls) == 0 {
			return nil
		}
		return ls
	}
	out := make([]T, len(ls))
	for i, l := range ls {
		out[i], _ = k.utc(l)
	}
	slices.SortFunc(out, k.cmp)
	// Sorted with the greatest last within an ID: keep the last of each run.
	w := 0
	for i := range out {
		if i+1 < len(out) && k.id(out[i+1]) == k.id(out[i]) {
			continue
		}
		out[w] = out[i]
		w++
	}
	return out[:w]
}

// union merges two normalized lists, the greater line winning for one ID. When a already holds
// the result it is returned without copying, the common case of a replayed event.
func (k keyedLines[T]) union(a, b []T) []T {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := make([]T, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && k.id(a[i]) < k.id(b[j])):
			out = append(out, a[i])
			i++
		case i == len(a) || k.id(b[j]) < k.id(a[i]):
			out = append(out, b[j])
			j++
		default:
			out = append(out, greater(a[i], b[j], k.cmp))
			i++
			j++
		}
	}
	if slices.EqualFunc(out, a, func(x, y T) bool { return k.cmp(x, y) == 0 }) {
		return a
	}
	return out
}

// OrderFacts compares an order before and after a merge and returns the facts the change
// produces; before is nil for a new order. Order facts are measured against the last placed
// state (see Placed), so that an order whose first event to arrive is already refunded, charged
// back or shipped, or that was known only in part, still yields every fact once:
//
//   - OrderPlaced when the order becomes placed. Statuses only rise and the test flag only turns
//     on, so that happens once per order.
//   - OrderReversed when a placed order stops being placed (rejected or deleted at the source, or
//     marked a test): destinations counted a sale that is none. Only that fact, once per order;
//     what happens to the order afterwards (refunds, chargebacks) is no longer sent.
//   - OrderRefunded when the cumulative refunded amount grew; Delta is the growth, Full whether
//     it now covers the total. The id carries the cumulative amount, so the deltas of one
//     order's refund facts add up to its refunded amount.
//   - OrderChargedBack when the amount of standing chargebacks changed, either way; the deltas
//     of one order's chargeback facts add up to its standing amount.
//   - OrderShipped for each tracking number not seen before, and once, without a number, when
//     the order became shipped with none known.
//   - OrderOutForDelivery and OrderDelivered the first time the order reports each.
//   - OrderPaymentFailed, for an order that was never placed, the first time it reports a declined
//     payment (a one-off decline; a subscription's declines are SubscriptionChanged).
//
// Times: OrderPlaced occurs at PaidAt, OrderRefunded at RefundedAt, OrderChargedBack when its
// dispute was raised (or resolved, for a negative delta), OrderShipped at ShippedAt, the delivery
// facts and OrderPaymentFailed at their own times; each falls back to the source's update time, then the creation time.
// The cutover marks facts older than the account's forward_since as historical. Every fact
// carries a snapshot of after.
func OrderFacts(account string, before *domain.Order, after domain.Order, cut Cutover) []domain.Fact {
	wasPlaced := before != nil && Placed(*before)
	// The state destinations know: nothing unless the order was already placed.
	var known domain.Order
	if wasPlaced {
		known = *before
	}
	if !Placed(after) {
		if !wasPlaced {
			return paymentFailed(account, before, after, cut)
		}
		return []domain.Fact{reversal(account, known, after, factMaker(account, after, cut))}
	}
	// Both are MergeOrder results and so normalized already; this costs nothing then, and keeps
	// the tracking lookups right for an order stored by anything else.
	known.Tracking = normalizeTracking(known.Tracking)
	after.Tracking = normalizeTracking(after.Tracking)
	known.Refunds = normalizeRefundLines(known.Refunds)
	grew := refundGrew(known.Refunded, after.Refunded)
	chargebackMoved := known.ChargedBack.Minor != after.ChargedBack.Minor
	fresh := newTracking(known.Tracking, after.Tracking)
	untracked := after.Status == domain.OrderShipped && len(after.Tracking) == 0 &&
		known.Status != domain.OrderShipped && len(known.Tracking) == 0
	outForDelivery := !after.OutForDeliveryAt.IsZero() && known.OutForDeliveryAt.IsZero()
	delivered := !after.DeliveredAt.IsZero() && known.DeliveredAt.IsZero()
	if wasPlaced && !grew && !chargebackMoved && fresh == 0 && !untracked && !outForDelivery && !delivered {
		return nil
	}
	fact := factMaker(account, after, cut)

	facts := make([]domain.Fact, 0, 2+fresh)
	if !wasPlaced {
		facts = append(facts, fact(domain.FactOrderPlaced, domain.OrderPlacedID(account, after.Key), after.PaidAt))
	}
	if grew {
		delta, err := after.Refunded.Sub(known.Refunded)
		if err != nil {
			// Only a mapper that switched currencies gets here; the cumulative amount is the
			// best statement of what was refunded.
			delta = after.Refunded
		}
		c, err := after.Refunded.Cmp(after.Total)
		f := fact(domain.FactOrderRefunded, domain.OrderRefundedID(account, after.Key, after.Refunded), after.RefundedAt)
		f.Refund = &domain.Refund{Delta: delta, Cumulative: after.Refunded, Full: err == nil && c >= 0, At: f.OccurredAt,
			Reason: newRefundReason(known.Refunds, after.Refunds)}
		facts = append(facts, f)
	}
	if chargebackMoved {
		facts = append(facts, chargebackFact(account, known, after, fact))
	}
	if fresh > 0 {
		for _, t := range after.Tracking {
			if !hasTracking(known.Tracking, t.Number) {
				f := fact(domain.FactOrderShipped, domain.OrderShippedID(account, after.Key, t.Number), after.ShippedAt)
				f.Tracking = []domain.Tracking{t}
				facts = append(facts, f)
			}
		}
	}
	if untracked {
		facts = append(facts, fact(domain.FactOrderShipped, domain.OrderUntrackedShipmentID(account, after.Key), after.ShippedAt))
	}
	if outForDelivery {
		facts = append(facts, fact(domain.FactOrderOutForDelivery, domain.OrderOutForDeliveryID(account, after.Key), after.OutForDeliveryAt))
	}
	if delivered {
		facts = append(facts, fact(domain.FactOrderDelivered, domain.OrderDeliveredID(account, after.Key), after.DeliveredAt))
	}
	return facts
}

// paymentFailed is OrderPaymentFailed for an order, not a sale, whose payment was declined for
// the first time. A test order sends nothing; nor does a decline reported only after the order
// was placed (it happened before the payment that went through, and is news to nobody).
func paymentFailed(account string, before *domain.Order, after domain.Order, cut Cutover) []domain.Fact {
	if after.Test || after.PaymentFailedAt.IsZero() || (before != nil && !before.PaymentFailedAt.IsZero()) {
		return nil
	}
	fact := factMaker(account, after, cut)
	return []domain.Fact{fact(domain.FactOrderPaymentFailed, domain.OrderPaymentFailedID(account, after.Key), after.PaymentFailedAt)}
}

// factMaker returns the constructor of after's facts: each carries one shared snapshot of after
// and occurs at the given time, else at the order's last change or creation. It is made only
// once a fact is due, since the snapshot is a copy of the whole order.
func factMaker(account string, after domain.Order, cut Cutover) func(domain.FactKind, string, time.Time) domain.Fact {
	snap := after
	return func(kind domain.FactKind, id string, at time.Time) domain.Fact {
		at = firstNonZero(at, after.SourceUpdatedAt, after.CreatedAt).UTC()
		return domain.Fact{ID: id, Account: account, Kind: kind, Email: after.Email, OccurredAt: at,
			Historical: cut.Historical(at), Order: &snap}
	}
}

// reversal is the OrderReversed of an order that was placed (known) and no longer is (after).
// Its amounts are what destinations had been told, not what after says: a refund that arrives
// together with the rejection was never sent, so it is not subtracted.
func reversal(account string, known, after domain.Order, fact func(domain.FactKind, string, time.Time) domain.Fact) domain.Fact {
	why := "test"
	switch after.Status {
	case domain.OrderDeleted:
		why = "deleted"
	case domain.OrderRejected:
		why = "rejected"
	}
	cur := orderCurrency(known)
	refunded, charged := inCurrency(known.Refunded, cur), inCurrency(known.ChargedBack, cur)
	net, err := inCurrency(known.Total, cur).Sub(refunded)
	if err == nil {
		net, err = net.Sub(charged)
	}
	if err != nil {
		// Only a mapper that mixed currencies gets here; the total is what was logged.
		net = known.Total
	}
	f := fact(domain.FactOrderReversed, domain.OrderReversedID(account, after.Key), time.Time{})
	f.Reversal = &domain.Reversal{Why: why, Net: net, Refunded: refunded, ChargedBack: charged, At: f.OccurredAt}
	return f
}

// chargebackFact is the OrderChargedBack for a change of the standing chargeback amount from
// known's to after's.
func chargebackFact(account string, known, after domain.Order, fact func(domain.FactKind, string, time.Time) domain.Fact) domain.Fact {
	cur := orderCurrency(after)
	standing := inCurrency(after.ChargedBack, cur)
	delta, err := standing.Sub(inCurrency(known.ChargedBack, cur))
	if err != nil {
		delta = domain.Money{Minor: after.ChargedBack.Minor - known.ChargedBack.Minor, Currency: cur}
	}
	// What changed: the disputes that stand now and did not, or not for this amount, before;
	// and those that stood and no longer do.
	var ids []string
	var at time.Time
	reason := ""
	for _, l := range after.Chargebacks {
		k, ok := findChargeback(known.Chargebacks, l.ID)
		stood := ok && k.Status.Stands()
		switch {
		case l.Status.Stands() && (!stood || k.Amount != l.Amount):
			ids = append(ids, l.ID)
			if delta.Minor > 0 && !l.At.Before(at) {
				at, reason = l.At, l.Reason
			}
		case !l.Status.Stands() && stood:
			ids = append(ids, l.ID)
			if delta.Minor < 0 && !l.ResolvedAt.Before(at) {
				at, reason = l.ResolvedAt, l.Reason
			}
		}
	}
	state := chargebackState(after)
	f := fact(domain.FactOrderChargedBack, domain.OrderChargedBackID(account, after.Key, standing, state), at)
	f.Chargeback = &domain.Chargeback{Delta: delta, Standing: standing, State: state, At: f.OccurredAt, Disputes: ids, Reason: reason}
	return f
}

// refundGrew reports whether the refunded amount went from known to after. A zero amount in
// another currency (or none) is no refund at all.
func refundGrew(known, after domain.Money) bool {
	if after.Minor <= 0 {
		return false
	}
	if c, err := after.Cmp(known); err == nil {
		return c > 0
	}
	return cmpMoneyTotal(after, known) > 0
}

// newRefundReason is the reason of the latest refund line the destinations have not heard of.
func newRefundReason(known, after []domain.RefundLine) string {
	var last *domain.RefundLine
	for i, l := range after {
		if _, seen := slices.BinarySearchFunc(known, l.ID, func(k domain.RefundLine, id string) int {
			return strings.Compare(k.ID, id)
		}); seen || l.Reason == "" {
			continue
		}
		if last == nil || l.At.After(last.At) {
			last = &after[i]
		}
	}
	if last == nil {
		return ""
	}
	return last.Reason
}

// newTracking counts the numbers in after that known lacks (both normalized).
func newTracking(known, after []domain.Tracking) int {
	n := 0
	for _, t := range after {
		if !hasTracking(known, t.Number) {
			n++
		}
	}
	return n
}

func hasTracking(ts []domain.Tracking, number string) bool {
	_, ok := slices.BinarySearchFunc(ts, number, func(t domain.Tracking, n string) int {
		return strings.Compare(t.Number, n)
	})
	return ok
}

func firstNonZero(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}
