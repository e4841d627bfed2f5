package reports

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/rollup"
	"github.com/cartrelay/cartrelay/shared/store"
)

// DrillPage is one page of what a number counts.
type DrillPage struct {
	Account       string         `json:"account"`
	Report        string         `json:"report"`
	List          string         `json:"list"`
	Zone          string         `json:"timezone"`
	Orders        []DrillOrder   `json:"orders,omitempty"`
	Contacts      []DrillContact `json:"contacts,omitempty"`
	Subscriptions []DrillSub     `json:"subscriptions,omitempty"`
	PageViews     []PageViewRow  `json:"page_views,omitempty"`
	// Next continues the list (empty on the last page).
	Next string `json:"next,omitempty"`
}

// DrillOrder is an order behind a number, with what it adds to it.
type DrillOrder struct {
	Key      string             `json:"key"`
	Source   string             `json:"source"`
	OrderID  string             `json:"order_id"`
	Email    string             `json:"email"`
	Status   domain.OrderStatus `json:"status"`
	At       time.Time          `json:"at"`
	Total    domain.Money       `json:"total"`
	Refunded domain.Money       `json:"refunded"`
	Adds     int64              `json:"adds"`
	Value    *domain.Money      `json:"value,omitempty"`
}

// DrillContact is a contact behind a number.
type DrillContact struct {
	Email           string       `json:"email"`
	FirstPurchaseAt time.Time    `json:"first_purchase_at,omitzero"`
	PurchaseCount   int          `json:"purchase_count"`
	LTV             domain.Money `json:"ltv"`
	Adds            int64        `json:"adds"`
}

// DrillSub is a subscription behind a number.
type DrillSub struct {
	Key       string                    `json:"key"`
	Email     string                    `json:"email"`
	Status    domain.SubscriptionStatus `json:"status"`
	StatusAt  time.Time                 `json:"status_at"`
	Amount    domain.Money              `json:"amount"`
	Frequency string                    `json:"frequency,omitempty"`
	Products  []string                  `json:"products,omitempty"`
}

// DefaultDrillLimit is a drill-down page's length when none is asked for.
const DefaultDrillLimit = 50

// drillCursor is where a page ended: in the order index, the refund index, or the contact index.
type drillCursor struct {
	Pos   string `json:"p,omitempty"` // order index position
	Shard int    `json:"s,omitempty"` // contact index shard
	After string `json:"a,omitempty"` // last refund-index key or email
}

func encodeCursor(c drillCursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (drillCursor, error) {
	var c drillCursor
	if s == "" {
		return c, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &c) != nil {
		return c, &ParamError{"cursor", "not a drill-down cursor (copy it whole from the previous page's next)"}
	}
	return c, nil
}

// Drill lists a page of what a drill-down handle counts.
func (e *Engine) Drill(ctx context.Context, account, handle, cursor string, limit int) (*DrillPage, error) {
	spec, err := ParseDrill(handle)
	if err != nil {
		return nil, err
	}
	cur, err := decodeCursor(cursor)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = DefaultDrillLimit
	}
	v, err := e.open(ctx, account)
	if err != nil {
		return nil, err
	}
	if spec.Gen != v.gen.N {
		return nil, &ParamError{"handle", fmt.Sprintf("the reports of %s were rebuilt (time zone %s) since this number was shown; run the report again and drill from its new output", account, v.gen.Zone)}
	}
	spec.Filter = spec.Filter.normalized()
	d := &driller{e: e, v: v, spec: spec, repo: history.New(e.Store), contacts: map[string]*loaded{}, limit: limit,
		page: &DrillPage{Account: account, Report: spec.Report, List: spec.List, Zone: v.gen.Zone}}
	switch {
	case spec.List == ListPageViews:
		err = d.byViewLog(ctx, cur)
	case spec.Part == rollup.PartDay && (strings.ContainsRune(spec.Kinds, rune(rollup.KindRefund)) || strings.ContainsRune(spec.Kinds, rune(rollup.KindProductRefund))):
		err = d.byRefunds(ctx, cur)
	case spec.Part == rollup.PartDay:
		from, to := v.cal.Start(rollup.Date(spec.From)), v.cal.Start(rollup.Date(spec.To+1))
		err = d.byOrders(ctx, from, to, cur)
	case spec.Part == rollup.PartCohort && spec.Measure != rollup.MLeads:
		from, to := d.cohortOrderRange()
		err = d.byOrders(ctx, from, to, cur)
	default:
		err = d.byContacts(ctx, cur)
	}
	if err != nil {
		return nil, err
	}
	return d.page, nil
}

type loaded struct {
	c      *history.ContactState // the contact (its root partition)
	orders map[string]domain.Order
	subs   map[string]domain.Subscription
	units  map[string][]contribution // by unit
}

type contribution struct {
	k rollup.ItemKey
	c rollup.Cell
	m string
	v int64
}

type unitCollector map[string][]contribution

func (u unitCollector) AddUnit(unit string, k rollup.ItemKey, c rollup.Cell, m string, v int64) {
	u[unit] = append(u[unit], contribution{k, c, m, v})
}

type driller struct {
	e        *Engine
	v        *view
	spec     DrillSpec
	repo     *history.Repo
	contacts map[string]*loaded
	limit    int
	page     *DrillPage
	listed   map[string]bool
}

func (d *driller) contact(ctx context.Context, email string) (*loaded, error) {
	if l, ok := d.contacts[email]; ok {
		return l, nil
	}
	root, rc, err := LoadGroup(ctx, d.repo, d.v.account, email)
	if err != nil {
		return nil, err
	}
	if l, ok := d.contacts[root.Email]; ok {
		d.contacts[email] = l
		return l, nil
	}
	l := &loaded{c: root, orders: map[string]domain.Order{}, subs: map[string]domain.Subscription{}, units: unitCollector{}}
	for _, o := range rc.Orders {
		l.orders[o.Key] = o
	}
	for _, s := range rc.Subs {
		l.subs[s.Key] = s
	}
	rollup.ContributeUnits(d.v.cal, rc, unitCollector(l.units))
	d.contacts[email], d.contacts[root.Email] = l, l
	return l, nil
}

// adds is what unit adds to the handle's number (0 when nothing), and whether it adds at all.
func (d *driller) adds(l *loaded, unit string) (int64, bool) {
	s := d.spec
	var sum, without int64
	hit := false
	for _, x := range l.units[unit] {
		if x.k.Part != s.Part || !strings.ContainsRune(s.Kinds, rune(x.c.Kind())) || !d.cellMatches(x.k, x.c) {
			continue
		}
		if s.AsOf != 0 {
			// A stock (subscriptions active, or paused, on a date): the flows up to that date.
			if x.k.Period <= s.AsOf && x.m == s.Measure {
				sum += x.v
			}
			continue
		}
		if x.k.Period < s.From || x.k.Period > s.To {
			continue
		}
		if x.m == s.Without {
			without += x.v
		}
		if x.m == s.Measure {
			sum += x.v
			hit = true
		}
	}
	if s.AsOf != 0 {
		return sum, sum > 0
	}
	return sum, hit && sum != 0 && without == 0
}

// cellMatches applies the handle's filter and row dimensions to a cell of item k.
func (d *driller) cellMatches(k rollup.ItemKey, c rollup.Cell) bool {
	f, dims := d.spec.Filter, c.Dims()
	switch c.Kind() {
	case rollup.KindCohort, rollup.KindLead, rollup.KindAcquisition:
		ck := rollup.CohortKeyOf(dims)
		if !f.cohort(ck, c.Kind() != rollup.KindLead || d.spec.Measure != rollup.MLeads) {
			return false
		}
		if c.Kind() == rollup.KindAcquisition && len(dims) > 5 && (d.spec.Dims["from"] != "" || d.spec.Dims["to"] != "") {
			// The day of the first order: the cohort month's day of month.
			dom, _ := strconv.Atoi(dims[5])
			day := rollup.Month(k.Period).First() + rollup.Date(dom-1)
			from, _ := rollup.ParseDate(d.spec.Dims["from"])
			to, _ := rollup.ParseDate(d.spec.Dims["to"])
			if (from != 0 && day < from) || (to != 0 && day > to) {
				return false
			}
		}
		return touchMatches(d.spec.Dims, rollup.Segment{First: ck.First, Last: ck.First})
	case rollup.KindPageView:
		return true
	}
	seg := rollup.SegmentOf(dims)
	if !f.segment(seg) {
		return false
	}
	extra := ""
	if len(dims) > 8 {
		extra = dims[8]
	}
	switch c.Kind() {
	case rollup.KindProduct, rollup.KindProductRefund, rollup.KindSubProduct:
		if f.Product != "" && extra != f.Product {
			return false
		}
	case rollup.KindExcluded:
		if r := d.spec.Dims["reason"]; r != "" && extra != r {
			return false
		}
	case rollup.KindConversion:
		if src := d.spec.Dims["view"]; src != "" && extra != src {
			return false
		}
	}
	return touchMatches(d.spec.Dims, seg)
}

// touchMatches applies an attribution row: the touch fields it names, under its model.
func touchMatches(dims map[string]string, seg rollup.Segment) bool {
	model := dims["model"]
	if model == "" {
		return true
	}
	t := rollup.Touch{Source: dims["ts"], Medium: dims["tm"], Campaign: dims["tc"]}
	match := func(x rollup.Touch) bool {
		return eq(t.Source, x.Source) && eq(t.Medium, x.Medium) && eq(t.Campaign, x.Campaign)
	}
	switch Model(model) {
	case FirstTouch:
		return match(seg.First)
	case LastTouch:
		return match(seg.Last)
	}
	return match(seg.First) || match(seg.Last)
}

// cohortOrderRange is the span of order times a cohort number can come from.
func (d *driller) cohortOrderRange() (time.Time, time.Time) {
	s := d.spec
	lo, hi := rollup.Month(s.From), rollup.Month(s.To)
	if k, ok := rollup.ParseNetAfter(s.Measure); ok {
		lo, hi = lo+rollup.Month(k), hi+rollup.Month(k)
	}
	if s.Measure == rollup.MAcqToDate {
		// Revenue to date: any order after the cohort's month.
		return d.v.cal.Start(lo.First()), d.e.now().Add(24 * time.Hour)
	}
	return d.v.cal.Start(lo.First()), d.v.cal.Start(hi.Last() + 1)
}

// byOrders scans the order index over [from, to) and lists what matches.
func (d *driller) byOrders(ctx context.Context, from, to time.Time, cur drillCursor) error {
	// A day's orders may be filed under a neighbouring UTC month; the margin covers any zone.
	from, to = from.Add(-15*time.Hour), to.Add(15*time.Hour)
	last := ""
	err := d.repo.OrdersBetween(ctx, d.v.account, from, to, cur.Pos, func(ref history.OrderRef) (bool, error) {
		if d.full() {
			return false, nil
		}
		l, err := d.contact(ctx, ref.Email)
		if err != nil {
			return false, err
		}
		d.consider(l, ref.Order.Key, ref.Position)
		last = ref.Position
		return true, nil
	})
	if err != nil {
		return err
	}
	if d.full() && last != "" {
		d.page.Next = encodeCursor(drillCursor{Pos: last})
	}
	return nil
}

// byRefunds walks the refund index over the handle's days.
func (d *driller) byRefunds(ctx context.Context, cur drillCursor) error {
	from := d.v.cal.Start(rollup.Date(d.spec.From)).Add(-15 * time.Hour).UTC()
	to := d.v.cal.Start(rollup.Date(d.spec.To + 1)).Add(15 * time.Hour).UTC()
	lastKey := ""
	for m := time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC); !m.After(to) && !d.full(); m = m.AddDate(0, 1, 0) {
		q := store.Query{PK: refundIndexPK(d.v.account, m.Format("2006-01")), SKFrom: from.Format(time.DateOnly), SKTo: to.Format(time.DateOnly) + "~"}
		items, err := store.QueryAll(ctx, d.e.Store, q)
		if err != nil {
			return err
		}
		for _, it := range items {
			pos := it.PK + "|" + it.SK
			if cur.After != "" && pos <= cur.After {
				continue
			}
			if d.full() {
				break
			}
			var ref refundRef
			if json.Unmarshal(it.Data, &ref) != nil {
				continue
			}
			_, key, _ := strings.Cut(it.SK, "#")
			l, err := d.contact(ctx, ref.Email)
			if err != nil {
				return err
			}
			d.consider(l, key, pos)
			lastKey = pos
		}
	}
	if d.full() && lastKey != "" {
		d.page.Next = encodeCursor(drillCursor{After: lastKey})
	}
	return nil
}

// byContacts walks every contact (lead cohorts, subscriptions).
func (d *driller) byContacts(ctx context.Context, cur drillCursor) error {
	lastEmail, lastShard := "", 0
	for n := cur.Shard; n < history.ContactIndexShards && !d.full(); n++ {
		q := store.Query{Index: store.GSI2, PK: history.ContactIndexPK(d.v.account, n)}
		if n == cur.Shard && cur.After != "" {
			q.SKFrom = cur.After + "\x00"
		}
		for !d.full() {
			p, err := d.e.Store.Query(ctx, q)
			if err != nil {
				return err
			}
			for _, it := range p.Items {
				if d.full() {
					break
				}
				l, err := d.contact(ctx, it.GSI2SK)
				if err != nil {
					return err
				}
				units := make([]string, 0, len(l.units))
				for u := range l.units {
					units = append(units, u)
				}
				slices.Sort(units)
				for _, u := range units {
					d.consider(l, u, "")
				}
				lastEmail, lastShard = it.GSI2SK, n
			}
			if p.Next == "" {
				break
			}
			q.Cursor = p.Next
		}
	}
	if d.full() && lastEmail != "" {
		d.page.Next = encodeCursor(drillCursor{Shard: lastShard, After: lastEmail})
	}
	return nil
}

func (d *driller) full() bool {
	p := d.page
	return len(p.Orders)+len(p.Contacts)+len(p.Subscriptions)+len(p.PageViews) >= d.limit
}

// consider lists unit (an order, a subscription or the contact itself) if it adds to the number.
// A contact is listed once, at the first of its orders that adds (in the index's order).
func (d *driller) consider(l *loaded, unit, pos string) {
	n, ok := d.adds(l, unit)
	if !ok {
		return
	}
	c := l.c
	switch d.spec.List {
	case ListOrders:
		o, found := l.orders[unit]
		if !found {
			return
		}
		row := DrillOrder{Key: o.Key, Source: string(o.Source), OrderID: o.OrderID, Email: c.Email, Status: o.Status,
			At: rollup.PurchaseTime(&o), Total: o.Total, Refunded: o.Refunded, Adds: n}
		if isMoney(d.spec.Measure) {
			m := domain.Money{Minor: n, Currency: rollup.Currency(&o)}
			row.Value = &m
		}
		d.page.Orders = append(d.page.Orders, row)
	case ListContacts:
		if d.listed == nil {
			d.listed = map[string]bool{}
		}
		if d.listed[c.Email] || (pos != "" && d.earlierMatch(l, unit, pos)) {
			return
		}
		d.listed[c.Email] = true
		d.page.Contacts = append(d.page.Contacts, DrillContact{Email: c.Email, FirstPurchaseAt: c.Profile.FirstPurchaseAt,
			PurchaseCount: c.Profile.PurchaseCount, LTV: c.Profile.LTV, Adds: n})
	case ListSubscriptions:
		s, found := l.subs[unit]
		if !found {
			return
		}
		d.page.Subscriptions = append(d.page.Subscriptions, DrillSub{Key: s.Key, Email: c.Email, Status: s.Status, StatusAt: s.StatusAt,
			Amount: s.Amount, Frequency: s.Frequency, Products: s.Products})
	}
}

// earlierMatch reports whether another order of the contact, earlier in the order index than
// pos, adds to the number too: the contact was listed there (on this page or an earlier one).
func (d *driller) earlierMatch(l *loaded, unit, pos string) bool {
	for key, o := range l.orders {
		if key == unit {
			continue
		}
		if _, ok := d.adds(l, key); !ok {
			continue
		}
		p := history.OrderPosition(o)
		if p != "" && p < pos {
			return true
		}
	}
	return false
}

func isMoney(m string) bool {
	switch m {
	case rollup.MGross, rollup.MRefunds, rollup.MNewGross, rollup.MRebillGross, rollup.MGrossFirstHalf, rollup.MAcqToDate:
		return true
	}
	_, ok := rollup.ParseNetAfter(m)
	return ok && m != rollup.MNew
}
