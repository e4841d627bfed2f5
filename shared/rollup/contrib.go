package rollup

import (
	"cmp"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/ledger"
)

// Contact is what one contact contributes to the rollups: its orders, its subscriptions and its
// first page view. Every contribution is a function of these alone, so the rollups of an account
// are the sum over its contacts, whatever order the events arrived in.
type Contact struct {
	Email  string
	Orders []domain.Order
	Subs   []domain.Subscription
	View   *View
}

// View is a contact's first page view.
type View struct {
	At     time.Time
	Source string
}

// Sink receives contributions: v added to the counter of measure m of cell c in item k.
type Sink interface {
	Add(k ItemKey, c Cell, m string, v int64)
}

// Contribute adds everything c contributes to sink.
func Contribute(cal Calendar, c Contact, sink Sink) {
	p := newPlan(cal, c)
	p.emitContact(sink, 1)
	for _, u := range p.orders {
		p.emitOrder(u, sink, 1)
	}
	for _, u := range p.subs {
		p.emitSub(u, sink, 1)
	}
}

// Diff adds to sink what changes when a contact goes from before to after: their difference.
// Only the orders and subscriptions whose inputs or context changed are computed again, which
// keeps the common case (one new order of a known contact) cheap.
func Diff(cal Calendar, before, after Contact, sink Sink) {
	pb, pa := newPlan(cal, before), newPlan(cal, after)
	if pb.ctx != pa.ctx || pb.email != pa.email {
		pb.emitContact(sink, -1)
		pa.emitContact(sink, 1)
	}
	for key, b := range pb.orders {
		a, ok := pa.orders[key]
		if ok && a.ctx == b.ctx && pb.email == pa.email && sameOrderInputs(a.o, b.o) {
			continue
		}
		pb.emitOrder(b, sink, -1)
		if ok {
			pa.emitOrder(a, sink, 1)
		}
	}
	for key, a := range pa.orders {
		if _, ok := pb.orders[key]; !ok {
			pa.emitOrder(a, sink, 1)
		}
	}
	for key, b := range pb.subs {
		a, ok := pa.subs[key]
		if ok && a.ctx == b.ctx && sameSubInputs(a.s, b.s) {
			continue
		}
		pb.emitSub(b, sink, -1)
		if ok {
			pa.emitSub(a, sink, 1)
		}
	}
	for key, a := range pa.subs {
		if _, ok := pb.subs[key]; !ok {
			pa.emitSub(a, sink, 1)
		}
	}
}

// contactCtx is what every contribution of a contact depends on beyond its own record. It is
// comparable, so a change is found with ==.
type contactCtx struct {
	first    Touch // the contact's first touch
	customer bool  // has a placed order
	firstKey string
	firstAt  int64 // unix nanoseconds of the first placed order
	firstDay Date
	firstSrc string
	seen     bool // first seen is known
	seenDay  Date
	view     bool
	viewAt   int64
	viewSrc  string
}

type orderCtx struct {
	contact  contactCtx
	placed   bool
	reason   string // why an order that is not placed is left out
	last     Touch  // the order's last touch, or for a renewal the original order's
	isFirst  bool
	dayFirst bool // the contact's first placed order of its local day
	wkFirst  bool
	moFirst  bool
}

type subCtx struct {
	first  Touch
	last   Touch // the last touch of the order that started it
	origAt int64 // when that order was placed (0 unknown)
}

type orderUnit struct {
	o   *domain.Order
	ctx orderCtx
}

type subUnit struct {
	s   *domain.Subscription
	ctx subCtx
}

type plan struct {
	cal    Calendar
	email  string
	ctx    contactCtx
	orders map[string]orderUnit
	subs   map[string]subUnit
}

// PurchaseTime is when an order counts as happening: paid, else created, else the source's
// last change (the same as the contact's purchase dates).
func PurchaseTime(o *domain.Order) time.Time {
	for _, t := range []time.Time{o.PaidAt, o.CreatedAt, o.SourceUpdatedAt} {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// Currency is the currency an order's amounts are in.
func Currency(o *domain.Order) string {
	return cmp.Or(o.Total.Currency, o.Currency, o.Refunded.Currency, None)
}

// Excluded says why an order is not revenue ("" when it is): test, rejected, deleted, incomplete
// (a paid order whose amounts were never reported) or unpaid.
func Excluded(o *domain.Order) string {
	switch {
	case ledger.Placed(*o):
		return ""
	case o.Test:
		return "test"
	case o.Status == domain.OrderRejected:
		return "rejected"
	case o.Status == domain.OrderDeleted:
		return "deleted"
	case o.Partial && (o.Status == domain.OrderPaid || o.Status == domain.OrderShipped):
		return "incomplete"
	}
	return "unpaid"
}

func newPlan(cal Calendar, c Contact) plan {
	p := plan{cal: cal, email: c.Email, orders: make(map[string]orderUnit, len(c.Orders)), subs: make(map[string]subUnit, len(c.Subs))}

	// The first touch: the earliest UTM on any order that is not a test, by the touch's own
	// time, else its order's.
	var ftAt time.Time
	var ftKey string
	ft, hasFT := NoTouch, false
	var seen time.Time
	see := func(t time.Time) {
		if !t.IsZero() && (seen.IsZero() || t.Before(seen)) {
			seen = t
		}
	}
	placed := make([]*domain.Order, 0, len(c.Orders))
	for i := range c.Orders {
		o := &c.Orders[i]
		if o.Test {
			continue
		}
		t := PurchaseTime(o)
		see(t)
		for _, u := range o.UTMs {
			if u.Empty() {
				continue
			}
			at := u.At
			if at.IsZero() {
				at = t
			}
			see(u.At)
			if at.IsZero() {
				continue
			}
			if !hasFT || at.Before(ftAt) || (at.Equal(ftAt) && o.Key < ftKey) {
				ft, ftAt, ftKey, hasFT = TouchOf(u), at, o.Key, true
			}
		}
		if ledger.Placed(*o) && !t.IsZero() {
			placed = append(placed, o)
		}
	}
	for i := range c.Subs {
		if h := c.Subs[i].History; len(h) > 0 {
			see(h[0].At)
		} else {
			see(c.Subs[i].StatusAt)
		}
	}
	if c.View != nil {
		see(c.View.At)
		p.ctx.view, p.ctx.viewAt, p.ctx.viewSrc = true, c.View.At.UnixNano(), c.View.Source
	}
	p.ctx.first = ft
	if !seen.IsZero() {
		p.ctx.seen, p.ctx.seenDay = true, cal.Day(seen)
	}
	slices.SortFunc(placed, func(a, b *domain.Order) int {
		return cmp.Or(PurchaseTime(a).Compare(PurchaseTime(b)), strings.Compare(a.Key, b.Key))
	})
	if len(placed) > 0 {
		f := placed[0]
		p.ctx.customer, p.ctx.firstKey, p.ctx.firstAt = true, f.Key, PurchaseTime(f).UnixNano()
		p.ctx.firstDay, p.ctx.firstSrc = cal.Day(PurchaseTime(f)), string(f.Source)
	}

	// The order that started each subscription, for the touches its renewals inherit.
	type origin struct {
		last Touch
		at   time.Time
		key  string
	}
	bySub := map[string]origin{}
	byID := map[string]origin{}
	for i := range c.Orders {
		o := &c.Orders[i]
		if o.Test {
			continue
		}
		og := origin{last: lastTouch(o), at: PurchaseTime(o), key: o.Key}
		byID[string(o.Source)+"\x00"+o.OrderID] = og
		if o.SubscriptionID == "" || o.Rebill {
			continue
		}
		k := string(o.Source) + "\x00" + o.SubscriptionID
		if prev, ok := bySub[k]; !ok || og.at.Before(prev.at) || (og.at.Equal(prev.at) && og.key < prev.key) {
			bySub[k] = og
		}
	}

	// Each placed order's place among the contact's: first ever, first of its day, week, month.
	firsts := make(map[string][3]bool, len(placed))
	var lastDay, lastWeek Date
	var lastMonth Month
	for i, o := range placed {
		d := cal.Day(PurchaseTime(o))
		f := [3]bool{i == 0 || d != lastDay, i == 0 || d.WeekStart() != lastWeek, i == 0 || d.Month() != lastMonth}
		firsts[o.Key] = f
		lastDay, lastWeek, lastMonth = d, d.WeekStart(), d.Month()
	}
	for i := range c.Orders {
		o := &c.Orders[i]
		x := orderCtx{contact: p.ctx, last: lastTouch(o), reason: Excluded(o)}
		x.placed = x.reason == ""
		if o.Rebill && o.SubscriptionID != "" {
			if og, ok := bySub[string(o.Source)+"\x00"+o.SubscriptionID]; ok {
				x.last = og.last
			}
		}
		if f, ok := firsts[o.Key]; ok {
			x.isFirst = o.Key == p.ctx.firstKey
			x.dayFirst, x.wkFirst, x.moFirst = f[0], f[1], f[2]
		}
		p.orders[o.Key] = orderUnit{o: o, ctx: x}
	}
	for i := range c.Subs {
		s := &c.Subs[i]
		x := subCtx{first: ft, last: NoTouch}
		og, ok := bySub[string(s.Source)+"\x00"+s.ID]
		if !ok && s.OriginalOrderID != "" {
			og, ok = byID[string(s.Source)+"\x00"+s.OriginalOrderID]
		}
		if ok {
			x.last = og.last
			if !og.at.IsZero() {
				x.origAt = og.at.UnixNano()
			}
		}
		p.subs[s.Key] = subUnit{s: s, ctx: x}
	}
	return p
}

func lastTouch(o *domain.Order) Touch {
	for i := len(o.UTMs) - 1; i >= 0; i-- {
		if !o.UTMs[i].Empty() {
			return TouchOf(o.UTMs[i])
		}
	}
	return NoTouch
}

// shardOf spreads keys over the shards.
func shardOf(key string) uint16 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return uint16(h.Sum32() % Shards)
}

func firstHalf(v int64) int64 { return v - v/2 }

// emitContact adds what the contact itself counts: one lead in the month it was first seen.
func (p *plan) emitContact(sink Sink, sign int64) {
	if !p.ctx.seen {
		return
	}
	src := None
	if p.ctx.customer {
		src = p.ctx.firstSrc
	}
	k := ItemKey{PartCohort, int32(p.ctx.seenDay.Month()), shardOf(p.email)}
	sink.Add(k, LeadCell(CohortKey{Source: src, Currency: None, First: p.ctx.first}), MLeads, sign)
}

func (p *plan) emitOrder(u orderUnit, sink Sink, sign int64) {
	o, x := u.o, &u.ctx
	t := PurchaseTime(o)
	if t.IsZero() {
		return // an order with no time at all cannot be placed on a day
	}
	day := p.cal.Day(t)
	cur := Currency(o)
	seg := Segment{Source: string(o.Source), Currency: cur, First: x.contact.first, Last: x.last}
	dk := ItemKey{Part: PartDay, Period: int32(day), Shard: shardOf(o.Key)}
	// The order's cells go to its day and, in the same shard, to its month (see PartMonth), one
	// item after the other so a Delta finds each cell it adds to right after the previous add.
	mk := ItemKey{Part: PartMonth, Period: int32(day.Month()), Shard: dk.Shard}
	// A chargeback counts as a refund while it stands.
	total, chargedBack := o.Total.Minor, o.ChargedBack.Minor
	refunded := o.Refunded.Minor + chargedBack
	if !x.placed {
		c := ExcludedCell(seg, x.reason)
		for _, k := range [2]ItemKey{dk, mk} {
			sink.Add(k, c, MOrders, sign)
			sink.Add(k, c, MGross, sign*total)
		}
		return
	}

	c := OrderCell(seg)
	sink.Add(dk, c, MOrders, sign)
	sink.Add(dk, c, MGross, sign*total)
	sink.Add(dk, c, MGrossFirstHalf, sign*firstHalf(total))
	sink.Add(dk, c, MRefunds, sign*refunded)
	sink.Add(dk, c, MRefundsFirstHalf, sign*firstHalf(refunded))
	sink.Add(dk, c, MChargebacks, sign*chargedBack)
	if x.isFirst {
		sink.Add(dk, c, MNew, sign)
		sink.Add(dk, c, MNewGross, sign*total)
		sink.Add(dk, c, MNewRefunds, sign*refunded)
	}
	if o.Rebill {
		sink.Add(dk, c, MRebills, sign)
		sink.Add(dk, c, MRebillGross, sign*total)
		sink.Add(dk, c, MRebillRefunds, sign*refunded)
	}
	if x.dayFirst {
		sink.Add(dk, c, MCustomersDay, sign)
	}
	if x.wkFirst {
		sink.Add(dk, c, MCustomersWeek, sign)
	}
	if x.moFirst {
		sink.Add(dk, c, MCustomersMonth, sign)
	}
	// The month holds only what the revenue report reads by month (see MonthMeasure): every
	// counter is rewritten with its item on each add.
	sink.Add(mk, c, MOrders, sign)
	sink.Add(mk, c, MGross, sign*total)
	sink.Add(mk, c, MRefunds, sign*refunded)
	sink.Add(mk, c, MChargebacks, sign*chargedBack)
	if x.isFirst {
		sink.Add(mk, c, MNew, sign)
		sink.Add(mk, c, MNewGross, sign*total)
	}
	if o.Rebill {
		sink.Add(mk, c, MRebills, sign)
		sink.Add(mk, c, MRebillGross, sign*total)
	}
	if x.moFirst {
		sink.Add(mk, c, MCustomersMonth, sign)
	}

	// Products: one cell per SKU, the order counted once in each.
	prodRefunds := ProductRefunds(o)
	var refundedBySKU map[string][2]int64 // most orders have no product refund
	if len(prodRefunds) > 0 {
		refundedBySKU = make(map[string][2]int64, len(prodRefunds))
	}
	for _, r := range prodRefunds {
		v := refundedBySKU[r.SKU]
		refundedBySKU[r.SKU] = [2]int64{v[0] + r.Amount, v[1] + r.Units}
	}
	for _, l := range productLines(o) {
		pc := ProductCell(seg, l.sku)
		sink.Add(dk, pc, MOrders, sign)
		sink.Add(dk, pc, MUnits, sign*l.units)
		sink.Add(dk, pc, MGross, sign*l.gross)
		r := refundedBySKU[l.sku]
		delete(refundedBySKU, l.sku)
		sink.Add(dk, pc, MRefunds, sign*r[0])
		sink.Add(dk, pc, MUnitsRefunded, sign*r[1])
	}
	for sku, r := range refundedBySKU { // a refund naming a product the order has no line for
		pc := ProductCell(seg, sku)
		sink.Add(dk, pc, MRefunds, sign*r[0])
		sink.Add(dk, pc, MUnitsRefunded, sign*r[1])
	}

	// Refunds on the day they happened (the cash view).
	for _, r := range CashRefunds(o) {
		rd := p.cal.Day(r.At)
		rk := ItemKey{Part: PartDay, Period: int32(rd), Shard: dk.Shard}
		rc := RefundCell(seg)
		sink.Add(rk, rc, MRefunds, sign*r.Amount)
		sink.Add(rk, rc, MRefundedOrders, sign)
		if r.Chargeback {
			sink.Add(rk, rc, MChargebacks, sign*r.Amount)
		}
		rk = ItemKey{Part: PartMonth, Period: int32(rd.Month()), Shard: dk.Shard}
		sink.Add(rk, rc, MRefunds, sign*r.Amount)
		if r.Chargeback {
			sink.Add(rk, rc, MChargebacks, sign*r.Amount)
		}
	}
	for _, r := range prodRefunds {
		rk := ItemKey{Part: PartDay, Period: int32(p.cal.Day(r.At)), Shard: dk.Shard}
		rc := ProductRefundCell(seg, r.SKU)
		sink.Add(rk, rc, MRefunds, sign*r.Amount)
		sink.Add(rk, rc, MUnitsRefunded, sign*r.Units)
	}

	// Cohorts: the customer's first-order month, and the month it was first seen.
	net := total - refunded // refunds and chargebacks taken off
	ctx := x.contact
	ck := CohortKey{Source: ctx.firstSrc, Currency: cur, First: ctx.first}
	cohort := ctx.firstDay.Month()
	ci := ItemKey{Part: PartCohort, Period: int32(cohort), Shard: shardOf(p.email)}
	cc := CohortCell(ck)
	sink.Add(ci, cc, NetAfter(int(day.Month()-cohort)), sign*net)
	_, _, dom := ctx.firstDay.YMD()
	ac := AcquisitionCell(ck, dom)
	sink.Add(ci, ac, MAcqToDate, sign*net)
	if x.isFirst {
		sink.Add(ci, cc, MCustomers, sign)
		sink.Add(ci, ac, MAcqNew, sign)
		sink.Add(ci, ac, MAcqGross, sign*total)
		sink.Add(ci, ac, MAcqRefunds, sign*refunded)
		if ctx.seen {
			days := int(ctx.firstDay - ctx.seenDay)
			sink.Add(ci, ac, MAcqDaysSum, sign*int64(days))
			sink.Add(ci, ac, DaysBucket(days), sign)
		}
		if ctx.view && ctx.viewAt <= ctx.firstAt {
			wc := ConversionCell(seg, ctx.viewSrc)
			sink.Add(dk, wc, MConverted, sign)
			sink.Add(dk, wc, MConvertedGross, sign*total)
		}
	}
	if ctx.seen {
		lead := ctx.seenDay.Month()
		li := ItemKey{Part: PartCohort, Period: int32(lead), Shard: ci.Shard}
		lc := LeadCell(ck)
		sink.Add(li, lc, NetAfter(int(day.Month()-lead)), sign*net)
		if x.isFirst {
			sink.Add(li, lc, MCustomers, sign)
		}
	}
}

type productLine struct {
	sku          string
	units, gross int64
}

// productLines sums an order's lines by SKU, in the order the SKUs first appear.
func productLines(o *domain.Order) []productLine {
	out := make([]productLine, 0, len(o.Items))
	for _, li := range o.Items {
		sku := norm(li.SKU)
		if sku != None {
			sku = strings.TrimSpace(li.SKU) // SKUs are codes: case is kept
		}
		found := false
		for i := range out {
			if out[i].sku == sku {
				out[i].units += li.Quantity
				out[i].gross += li.Total.Minor
				found = true
				break
			}
		}
		if !found {
			out = append(out, productLine{sku: sku, units: li.Quantity, gross: li.Total.Minor})
		}
	}
	return out
}

// Refund is one dated refund amount, of an order or of one of its products.
type Refund struct {
	At     time.Time
	Amount int64
	SKU    string
	Units  int64
	// Chargeback is set on the order's standing chargebacks.
	Chargeback bool
}

// refundTime is when a refund without its own time happened: the order's last refund time,
// else its purchase time.
func refundTime(o *domain.Order) time.Time {
	if !o.RefundedAt.IsZero() {
		return o.RefundedAt
	}
	return PurchaseTime(o)
}

// CashRefunds dates an order's refunded total: each refund line the source reported on its own
// day, and whatever the lines do not cover (all of it, for a source that reports only a running
// total, as UltraCart does) on the order's last refund day. Standing chargebacks count as a refund
// on the day the latest of them was raised. They add up to the order's refunded and charged-back
// total.
func CashRefunds(o *domain.Order) []Refund {
	var out []Refund
	if cb := o.ChargedBack.Minor; cb != 0 {
		at := o.ChargedBackAt
		if at.IsZero() {
			at = refundTime(o)
		}
		out = append(out, Refund{At: at, Amount: cb, Chargeback: true})
	}
	if o.Refunded.Minor == 0 {
		return out
	}
	rest := o.Refunded.Minor
	for _, l := range o.Refunds {
		if l.Amount.Minor <= 0 || l.Amount.Minor > rest {
			continue
		}
		at := l.At
		if at.IsZero() {
			at = refundTime(o)
		}
		out = append(out, Refund{At: at, Amount: l.Amount.Minor})
		rest -= l.Amount.Minor
	}
	if rest != 0 {
		out = append(out, Refund{At: refundTime(o), Amount: rest})
	}
	return out
}

// ProductRefunds is the part of an order's refunds that names a product: the refund lines that
// name a SKU, or else the refunded amounts of the order's lines, on the order's last refund day.
// Refunds of shipping, tax or the order as a whole name none.
func ProductRefunds(o *domain.Order) []Refund {
	var out []Refund
	for _, l := range o.Refunds {
		if l.SKU == "" || l.Amount.Minor <= 0 {
			continue
		}
		at := l.At
		if at.IsZero() {
			at = refundTime(o)
		}
		out = append(out, Refund{At: at, Amount: l.Amount.Minor, SKU: strings.TrimSpace(l.SKU)})
	}
	if len(out) > 0 {
		return out
	}
	for _, li := range o.Items {
		if li.Refunded.Minor == 0 && li.QtyRefunded == 0 {
			continue
		}
		sku := strings.TrimSpace(li.SKU)
		if sku == "" {
			sku = None
		}
		out = append(out, Refund{At: refundTime(o), Amount: li.Refunded.Minor, SKU: sku, Units: li.QtyRefunded})
	}
	return out
}

func (p *plan) emitSub(u subUnit, sink Sink, sign int64) {
	s, x := u.s, &u.ctx
	var orig time.Time
	if x.origAt != 0 {
		orig = time.Unix(0, x.origAt)
	}
	events := SubEvents(s, orig)
	if len(events) == 0 {
		return
	}
	cur := cmp.Or(s.Amount.Currency, None)
	seg := Segment{Source: string(s.Source), Currency: cur, First: x.first, Last: x.last}
	cells := []Cell{SubCell(seg)}
	for _, sku := range dedupeSorted(s.Products) {
		cells = append(cells, SubProductCell(seg, sku))
	}
	period := ParsePeriod(s.Frequency)
	mrr := MRR(s.Amount, period)
	shard := shardOf(s.Key)
	for _, ev := range events {
		d := p.cal.Day(ev.At)
		keys := [3]ItemKey{
			{Part: PartSubDay, Period: int32(d), Shard: shard},
			{Part: PartSubMonth, Period: int32(d.Month()), Shard: shard},
			{Part: PartSubYear, Period: int32(d.Month().Year()), Shard: shard},
		}
		for _, k := range keys {
			for _, c := range cells {
				emitSubEvent(sink, k, c, ev.What, sign, mrr, period.Known())
			}
		}
	}
}

func emitSubEvent(sink Sink, k ItemKey, c Cell, what SubEventKind, sign, mrr int64, known bool) {
	switch what {
	case SubStart, SubRestart:
		if what == SubStart {
			sink.Add(k, c, MSubStarted, sign)
		} else {
			sink.Add(k, c, MSubRestarted, sign)
		}
		sink.Add(k, c, MSubActive, sign)
		sink.Add(k, c, MSubMRR, sign*mrr)
		if !known {
			sink.Add(k, c, MSubNoFrequency, sign)
		}
	case SubCancel, SubMerge:
		if what == SubCancel {
			sink.Add(k, c, MSubCancelled, sign)
		} else {
			sink.Add(k, c, MSubMerged, sign)
		}
		sink.Add(k, c, MSubActive, -sign)
		sink.Add(k, c, MSubMRR, -sign*mrr)
		if !known {
			sink.Add(k, c, MSubNoFrequency, -sign)
		}
	case SubPause:
		sink.Add(k, c, MSubPaused, sign)
	case SubResume:
		sink.Add(k, c, MSubPaused, -sign)
	}
}

func dedupeSorted(xs []string) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		x = strings.TrimSpace(x)
		if x == "" {
			x = None
		}
		out = append(out, x)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// SubEventKind is what happened to a subscription.
type SubEventKind byte

// Subscription events.
const (
	SubStart   SubEventKind = 's' // active for the first time
	SubRestart SubEventKind = 'r' // active again after it ended
	SubCancel  SubEventKind = 'c' // ended: cancelled or disabled
	SubMerge   SubEventKind = 'm' // ended: replaced by an upgrade
	SubPause   SubEventKind = 'p'
	SubResume  SubEventKind = 'u'
)

// SubEvent is one dated event of a subscription.
type SubEvent struct {
	At   time.Time
	What SubEventKind
}

// SubEvents reads a subscription's history as the starts, ends and pauses reports count. Active,
// paused and payment_failed are active (a paused subscription is not over); cancelled, disabled
// and merged end it. It starts when its history first shows it active, or when the order that
// started it was placed if that is earlier (a backfilled subscription may be known only from its
// current status). One known only as ended starts and ends at that moment, so that started minus
// ended is always what is active.
func SubEvents(s *domain.Subscription, origAt time.Time) []SubEvent {
	hist := s.History
	if len(hist) == 0 && s.Status != "" {
		hist = []domain.StatusChange{{Status: s.Status, At: s.StatusAt}}
	}
	if len(hist) == 0 {
		return nil
	}
	var out []SubEvent
	active, paused, started := false, false, false
	if !origAt.IsZero() && origAt.Before(hist[0].At) {
		out = append(out, SubEvent{origAt, SubStart})
		active, started = true, true
	}
	for _, h := range hist {
		switch {
		case ledger.IsActive(h.Status):
			if !active {
				what := SubStart
				if started {
					what = SubRestart
				}
				out = append(out, SubEvent{h.At, what})
				active, started = true, true
			}
			if h.Status == domain.SubPaused && !paused {
				out = append(out, SubEvent{h.At, SubPause})
				paused = true
			} else if h.Status != domain.SubPaused && paused {
				out = append(out, SubEvent{h.At, SubResume})
				paused = false
			}
		case h.Status == domain.SubCancelled || h.Status == domain.SubDisabled || h.Status == domain.SubMerged:
			if !active {
				if started {
					continue // ended again: still ended
				}
				out = append(out, SubEvent{h.At, SubStart})
				started = true
			}
			if paused {
				out = append(out, SubEvent{h.At, SubResume})
				paused = false
			}
			what := SubCancel
			if h.Status == domain.SubMerged {
				what = SubMerge
			}
			out = append(out, SubEvent{h.At, what})
			active = false
		}
	}
	return out
}

// sameOrderInputs reports whether two versions of an order contribute the same, given the same
// context: the fields contributions read are equal.
func sameOrderInputs(a, b *domain.Order) bool {
	if a.Key != b.Key || a.Source != b.Source || a.OrderID != b.OrderID || a.Status != b.Status ||
		a.Test != b.Test || a.Partial != b.Partial || a.Rebill != b.Rebill || a.SubscriptionID != b.SubscriptionID ||
		!a.PaidAt.Equal(b.PaidAt) || !a.CreatedAt.Equal(b.CreatedAt) || !a.SourceUpdatedAt.Equal(b.SourceUpdatedAt) ||
		!a.RefundedAt.Equal(b.RefundedAt) || a.Currency != b.Currency || a.Total != b.Total || a.Refunded != b.Refunded ||
		a.ChargedBack != b.ChargedBack || !a.ChargedBackAt.Equal(b.ChargedBackAt) ||
		len(a.Refunds) != len(b.Refunds) || len(a.Items) != len(b.Items) || len(a.UTMs) != len(b.UTMs) {
		return false
	}
	for i := range a.Refunds {
		x, y := a.Refunds[i], b.Refunds[i]
		if x.Amount != y.Amount || !x.At.Equal(y.At) || x.SKU != y.SKU {
			return false
		}
	}
	for i := range a.Items {
		x, y := a.Items[i], b.Items[i]
		if x.SKU != y.SKU || x.Quantity != y.Quantity || x.Total != y.Total || x.Refunded != y.Refunded || x.QtyRefunded != y.QtyRefunded {
			return false
		}
	}
	for i := range a.UTMs {
		x, y := a.UTMs[i], b.UTMs[i]
		if x.Empty() != y.Empty() || TouchOf(x) != TouchOf(y) || !x.At.Equal(y.At) {
			return false
		}
	}
	return true
}

func sameSubInputs(a, b *domain.Subscription) bool {
	if a.Key != b.Key || a.Source != b.Source || a.Status != b.Status || !a.StatusAt.Equal(b.StatusAt) ||
		a.Amount != b.Amount || a.Frequency != b.Frequency || !slices.Equal(a.Products, b.Products) || len(a.History) != len(b.History) {
		return false
	}
	for i := range a.History {
		if a.History[i].Status != b.History[i].Status || !a.History[i].At.Equal(b.History[i].At) {
			return false
		}
	}
	return true
}

// UnitSink receives contributions with the unit that made them: an order's key, a
// subscription's key, or "" for the contact itself.
type UnitSink interface {
	AddUnit(unit string, k ItemKey, c Cell, m string, v int64)
}

type unitSink struct {
	unit string
	to   UnitSink
}

func (u *unitSink) Add(k ItemKey, c Cell, m string, v int64) { u.to.AddUnit(u.unit, k, c, m, v) }

// ContributeUnits is Contribute with each contribution's unit, which is what a drill-down
// needs to tell which orders add to a number.
func ContributeUnits(cal Calendar, c Contact, sink UnitSink) {
	p := newPlan(cal, c)
	s := &unitSink{to: sink}
	p.emitContact(s, 1)
	for key, u := range p.orders {
		s.unit = key
		p.emitOrder(u, s, 1)
	}
	for key, u := range p.subs {
		s.unit = key
		p.emitSub(u, s, 1)
	}
}
