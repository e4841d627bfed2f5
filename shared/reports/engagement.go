package reports

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/rollup"
	"github.com/cartrelay/cartrelay/shared/store"
)

// Page views are kept for the engagement report: every view in a log by UTC day (the drill-down
// behind the counts), its count in a rollup item of the UTC day by quarter hour and source (no
// time zone is needed to keep it, so a change of zone rebuilds nothing), a record per browser
// (when it was first seen, from where, and who it turned out to be), and, once the browser is
// identified, the contact's first page view, which is what tells a viewer who became a customer.

// PageView is one view posted by the tracking snippet.
type PageView struct {
	Visitor  string
	URL      string
	Referrer string
	Title    string
	Email    string // the shopper, when the page said who they are
	At       time.Time
}

// ViewSource is where a view came from: its utm_source, else the referring site (without
// "www."), "(internal)" when the referrer is the site itself, and "(direct)" without a referrer.
func ViewSource(pageURL, referrer string) string {
	u, err := url.Parse(pageURL)
	if err == nil {
		if s := strings.ToLower(strings.TrimSpace(u.Query().Get("utm_source"))); s != "" {
			return s
		}
	}
	r, rerr := url.Parse(referrer)
	if referrer == "" || rerr != nil || r.Host == "" {
		return "(direct)"
	}
	host := strings.TrimPrefix(strings.ToLower(r.Hostname()), "www.")
	if host == "" {
		return "(direct)"
	}
	if err == nil && strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.") == host {
		return "(internal)"
	}
	return host
}

type visitorDoc struct {
	First       time.Time `json:"first"`
	FirstSource string    `json:"first_source"`
	Email       string    `json:"email,omitempty"`
}

func visitorKey(account, visitor string) store.Key {
	return store.Key{PK: "A#" + account + "#VIS#" + visitor, SK: "-"}
}

func viewLogPK(account string, day time.Time) string {
	return "A#" + account + "#PVL#" + day.UTC().Format(time.DateOnly)
}

type viewLog struct {
	Visitor  string    `json:"visitor"`
	URL      string    `json:"url"`
	Referrer string    `json:"referrer,omitempty"`
	Title    string    `json:"title,omitempty"`
	Source   string    `json:"source"`
	Email    string    `json:"email,omitempty"`
	At       time.Time `json:"at"`
}

// RecordPageView keeps one page view for the engagement report. It is called for every view of
// an existing account, whether or not the account forwards page views to Iterable.
func RecordPageView(ctx context.Context, st store.Store, acct accounts.Account, pv PageView, now time.Time) error {
	src := ViewSource(pv.URL, pv.Referrer)
	at := pv.At.UTC()
	vk := visitorKey(acct.ID, pv.Visitor)
	var doc visitorDoc
	for attempt := 0; ; attempt++ {
		it, err := st.Get(ctx, vk.PK, vk.SK)
		fresh := errors.Is(err, store.ErrNotFound)
		if err != nil && !fresh {
			return fmt.Errorf("read visitor %s of %s: %w", pv.Visitor, acct.ID, err)
		}
		doc = visitorDoc{}
		if !fresh {
			_ = json.Unmarshal(it.Data, &doc)
		}
		next := doc
		if fresh || at.Before(next.First) {
			next.First, next.FirstSource = at, src
		}
		if pv.Email != "" {
			next.Email = pv.Email
		}
		var ws []store.Write
		vi := mentioning(store.Item{PK: vk.PK, SK: vk.SK, Version: 1, Data: mustJSON(next)}, acct.ID, next.Email)
		if fresh {
			ws = append(ws, store.PutItem(vi, store.NotExists))
		} else if next != doc {
			vi.Version = it.Version + 1
			ws = append(ws, store.PutIfVersion(vi, it.Version))
		}
		entry := viewLog{Visitor: pv.Visitor, URL: pv.URL, Referrer: pv.Referrer, Title: pv.Title, Source: src, Email: next.Email, At: at}
		data := mustJSON(entry)
		// The entry's key is the view as posted, so a redelivery has the same one.
		sum := sha256.Sum256(mustJSON(pv))
		// The same view kept twice (a redelivered request) is recognised by its log entry.
		logAt := len(ws)
		ws = append(ws, store.PutItem(mentioning(store.Item{PK: viewLogPK(acct.ID, at), SK: at.Format("15:04:05.000000000") + "#" + pv.Visitor + "#" + hex.EncodeToString(sum[:4]),
			Data: data}, acct.ID, next.Email), store.NotExists))
		// The view counts; a browser is new on its earliest view, whichever arrived first.
		adds := viewAdds{}
		adds.add(acct.ID, pv.Visitor, at, src, rollup.MViews, 1)
		if fresh || at.Before(doc.First) {
			adds.add(acct.ID, pv.Visitor, at, src, rollup.MNewVisitors, 1)
		}
		if !fresh && at.Before(doc.First) {
			adds.add(acct.ID, pv.Visitor, doc.First, doc.FirstSource, rollup.MNewVisitors, -1)
		}
		ws = append(ws, adds.writes()...)
		err = st.Transact(ctx, ws)
		if err == nil {
			doc = next
			break
		}
		var te *store.TransactionError
		if errors.As(err, &te) && slices.ContainsFunc(te.Failed, func(f store.FailedWrite) bool { return f.Index == logAt }) {
			return nil // kept already
		}
		if !(errors.Is(err, store.ErrConditionFailed) || errors.Is(err, store.ErrConflict)) || attempt >= 8 {
			return fmt.Errorf("keep a page view of %s: %w", acct.ID, err)
		}
	}
	if doc.Email == "" {
		return nil
	}
	// An identified browser: its first view may be the contact's first.
	return setFirstView(ctx, st, acct, doc.Email, history.FirstView{At: doc.First, Source: doc.FirstSource}, now)
}

// mentioning indexes an item that names email (none when it is empty), so that an erasure of
// the address finds it (history.MentionGSI1).
func mentioning(it store.Item, account, email string) store.Item {
	if email != "" {
		it.GSI1PK, it.GSI1SK = history.MentionGSI1(account, email), it.PK+"|"+it.SK
	}
	return it
}

// ForgetViews takes an erased contact's addresses out of the page views kept for the reports:
// a browser identified as the contact is no longer tied to anyone, and the log entries of its
// views name the pseudonym instead (in the URL, referrer and title too, should an address be
// written there), so the engagement report and its drill-downs count the same. It returns how
// many items it changed.
func ForgetViews(ctx context.Context, st store.Store, account string, emails []string, pseudonym string) (int, error) {
	repo := history.New(st)
	n := 0
	for _, e := range emails {
		items, err := repo.Mentions(ctx, account, e)
		if err != nil {
			return n, err
		}
		for _, it := range items {
			var w store.Write
			switch {
			case strings.HasPrefix(it.PK, "A#"+account+"#VIS#"):
				var doc visitorDoc
				if err := json.Unmarshal(it.Data, &doc); err != nil {
					return n, fmt.Errorf("visitor %s is unreadable: %w", it.PK, err)
				}
				doc.Email = ""
				w = store.PutIfVersion(store.Item{PK: it.PK, SK: it.SK, Version: it.Version + 1, Data: mustJSON(doc)}, it.Version)
			case strings.HasPrefix(it.PK, "A#"+account+"#PVL#"):
				var entry viewLog
				if err := json.Unmarshal(it.Data, &entry); err != nil {
					return n, fmt.Errorf("page view %s / %s is unreadable: %w", it.PK, it.SK, err)
				}
				entry.Email = pseudonym
				entry.URL = history.ScrubText(entry.URL, emails, pseudonym)
				entry.Referrer = history.ScrubText(entry.Referrer, emails, pseudonym)
				entry.Title = history.ScrubText(entry.Title, emails, pseudonym)
				w = store.PutItem(store.Item{PK: it.PK, SK: it.SK, Data: mustJSON(entry)}, store.Always)
			default:
				continue // another package's item
			}
			if err := st.Write(ctx, w); err != nil {
				// A visitor's concurrent view leaves it for the erasure's next pass.
				return n, fmt.Errorf("take an erased address out of page view %s: %w", it.PK, err)
			}
			n++
		}
	}
	return n, nil
}

// viewAdds collects the page view counters a view changes, by item.
type viewAdds map[store.Key]*store.Write

func (v viewAdds) add(account, visitor string, at time.Time, src, measure string, n int64) {
	at = at.UTC()
	cell := rollup.PageViewCell(at.Hour()*4+at.Minute()/15, src)
	h := fnv.New32a()
	h.Write([]byte(visitor))
	k := rollup.ItemKey{Part: rollup.PartView, Period: int32(rollup.DateOf(at.Date())), Shard: uint16(h.Sum32() % rollup.Shards)}
	key := store.Key{PK: rollup.PartitionKey(account, 0, rollup.PartView, k.PeriodString()), SK: k.SortKey()}
	w := v[key]
	if w == nil {
		x := store.AddTo(key, map[string]int64{}, map[string]string{})
		w = &x
		v[key] = w
	}
	w.Add[rollup.CounterName(cell.ID(), measure)] += n
	w.Set[cell.ID()] = string(cell)
}

func (v viewAdds) writes() []store.Write {
	var out []store.Write
	for _, k := range slices.SortedFunc(maps.Keys(v), func(a, b store.Key) int { return strings.Compare(a.PK+"|"+a.SK, b.PK+"|"+b.SK) }) {
		out = append(out, *v[k])
	}
	return out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("reports: encode %T: %v", v, err))
	}
	return b
}

// setFirstView makes v the contact's first page view if it is earlier than the one known, and
// changes the rollups with it, in one transaction under the contact's versions.
func setFirstView(ctx context.Context, st store.Store, acct accounts.Account, email string, v history.FirstView, now time.Time) error {
	repo := history.New(st)
	for attempt := 0; ; attempt++ {
		root, err := repo.ResolveEmail(ctx, acct.ID, email)
		if err != nil {
			return err
		}
		cache := map[string]*history.ContactState{}
		load := func(ctx context.Context, e string) (*history.ContactState, error) {
			if c, ok := cache[e]; ok {
				return c, nil
			}
			c, err := repo.LoadContact(ctx, acct.ID, e)
			if err == nil {
				cache[e] = c
			}
			return c, err
		}
		c, err := load(ctx, root)
		if err != nil {
			return err
		}
		if c.FirstView != nil && !v.At.Before(c.FirstView.At) {
			return nil
		}
		w := &history.Writes{}
		c.FirstView = &v
		w.PutFirstView(c, v)
		staged, err := Stage(ctx, st, acct.ID, acct.Timezone, w, load, nil, 0, now)
		if err != nil {
			return err
		}
		err = repo.Commit(ctx, w)
		if err == nil {
			return Finish(ctx, st, staged)
		}
		if !(errors.Is(err, store.ErrConditionFailed) || errors.Is(err, store.ErrConflict)) || attempt >= 8 {
			return fmt.Errorf("record the first page view of %s: %w", email, err)
		}
	}
}

// Engagement is the engagement report: page views and browsers seen for the first time, per
// day and source, and the viewers who became customers: identified viewers whose first order
// came after their first page view, counted on the day of that order, by the source of that view.
type Engagement struct {
	Meta    Meta            `json:"meta"`
	Periods []EngagementRow `json:"periods"`
	Sources []EngagementRow `json:"sources"`
	Total   EngagementRow   `json:"total"`
	// Customers is per currency: who became customers and what their first orders brought.
	Customers []EngagementCustomers `json:"customers"`
}

// EngagementRow is a period, or a source, of page views.
type EngagementRow struct {
	Label       string `json:"label"`
	Views       Num    `json:"views"`
	NewVisitors Num    `json:"new_visitors"`
}

// EngagementCustomers are the viewers who became customers, in the currency of their first order.
type EngagementCustomers struct {
	Currency string               `json:"currency"`
	Periods  []EngagementCustomer `json:"periods"`
	Sources  []EngagementCustomer `json:"sources"`
	Total    EngagementCustomer   `json:"total"`
}

// EngagementCustomer is one period or source of converted viewers.
type EngagementCustomer struct {
	Label       string `json:"label"`
	Customers   Num    `json:"customers"`
	FirstOrders Amount `json:"first_order_revenue"`
}

// Engagement answers the engagement report. Page views are kept per UTC quarter hour, so a local
// day (of 23, 24 or 25 hours, in any zone with whole or quarter hour offsets) is an exact sum of
// them; the report reads the UTC days its local days overlap.
func (e *Engine) Engagement(ctx context.Context, q Query) (*Engagement, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	q.Filter = q.Filter.normalized()
	if q.Grain == "" {
		q.Grain = Day
	}
	v, err := e.open(ctx, q.Account)
	if err != nil {
		return nil, err
	}
	start, end := v.cal.Start(q.From).UTC(), v.cal.Start(q.To+1).UTC()
	first, last := rollup.DateOf(start.Date()), rollup.DateOf(end.Date())
	vv := &view{account: v.account, gen: Generation{N: 0}, cal: v.cal}
	views, err := e.load(ctx, vv, rollup.PartView, int32(first), int32(last))
	if err != nil {
		return nil, err
	}
	v.items += vv.items
	days, err := e.load(ctx, v, rollup.PartDay, int32(q.From), int32(q.To))
	if err != nil {
		return nil, err
	}
	periods := Periods(q.From, q.To, q.Grain)
	perViews := make([][2]int64, len(periods))
	bySource := map[string][2]int64{}
	var total [2]int64
	srcFilter := q.Filter.FirstSource // a view's source is what a first-touch filter means here
	for d := first; d <= last; d++ {
		for c, ms := range views.Cells(rollup.ItemKey{Part: rollup.PartView, Period: int32(d)}) {
			dims := c.Dims()
			if len(dims) < 2 || (srcFilter != "" && dims[1] != srcFilter) {
				continue
			}
			var qh int
			fmt.Sscanf(dims[0], "%d", &qh)
			at := rollup.UTCCalendar().Start(d).Add(time.Duration(qh) * 15 * time.Minute)
			if at.Before(start) || !at.Before(end) {
				continue
			}
			i := periodOf(periods, v.cal.Day(at))
			if i < 0 {
				continue
			}
			x := [2]int64{ms[rollup.MViews], ms[rollup.MNewVisitors]}
			perViews[i][0] += x[0]
			perViews[i][1] += x[1]
			s := bySource[dims[1]]
			bySource[dims[1]] = [2]int64{s[0] + x[0], s[1] + x[1]}
			total[0] += x[0]
			total[1] += x[1]
		}
	}
	out := &Engagement{Customers: []EngagementCustomers{}}
	vs := DrillSpec{Report: "engagement", List: ListPageViews, Part: rollup.PartView, Kinds: string(rollup.KindPageView),
		From: int32(q.From), To: int32(q.To), Gen: v.gen.N}
	viewRow := func(label string, from, to rollup.Date, src string, x [2]int64) EngagementRow {
		s := vs
		s.From, s.To = int32(from), int32(to)
		if src != "" {
			s.Dims = map[string]string{"source": src}
		}
		n := s
		s.Measure, n.Measure = rollup.MViews, rollup.MNewVisitors
		return EngagementRow{Label: label, Views: Num{N: x[0], Drill: s.Encode()}, NewVisitors: Num{N: x[1], Drill: n.Encode()}}
	}
	for i, p := range periods {
		out.Periods = append(out.Periods, viewRow(p.Label, p.Start, p.End, srcFilter, perViews[i]))
	}
	for _, src := range sortedKeys(bySource) {
		out.Sources = append(out.Sources, viewRow(src, q.From, q.To, src, bySource[src]))
	}
	out.Total = viewRow("total", q.From, q.To, srcFilter, total)

	// Conversions: on the day of the first order, by the source of the first view.
	type conv struct{ n, g int64 }
	per := map[string][]conv{}
	srcs := map[string]map[string]conv{}
	f := q.Filter
	for d := q.From; d <= q.To; d++ {
		for c, ms := range days.Cells(rollup.ItemKey{Part: rollup.PartDay, Period: int32(d)}) {
			if c.Kind() != rollup.KindConversion {
				continue
			}
			dims := c.Dims()
			seg := rollup.SegmentOf(dims)
			ff := f
			ff.FirstSource = ""
			if !ff.segment(seg) || (srcFilter != "" && dims[8] != srcFilter) {
				continue
			}
			if per[seg.Currency] == nil {
				per[seg.Currency] = make([]conv, len(periods))
				srcs[seg.Currency] = map[string]conv{}
			}
			i := periodOf(periods, d)
			per[seg.Currency][i].n += ms[rollup.MConverted]
			per[seg.Currency][i].g += ms[rollup.MConvertedGross]
			s := srcs[seg.Currency][dims[8]]
			srcs[seg.Currency][dims[8]] = conv{s.n + ms[rollup.MConverted], s.g + ms[rollup.MConvertedGross]}
		}
	}
	for _, cur := range sortedKeys(per) {
		ec := EngagementCustomers{Currency: cur}
		spec := DrillSpec{Report: "engagement", List: ListContacts, Part: rollup.PartDay, Kinds: string(rollup.KindConversion),
			Measure: rollup.MConverted, Gen: v.gen.N, Filter: withCurrency(f, cur)}
		spec.Filter.FirstSource = ""
		var tot conv
		for i, p := range periods {
			c := per[cur][i]
			x := spec
			x.From, x.To = int32(p.Start), int32(p.End)
			if srcFilter != "" {
				x.Dims = map[string]string{"view": srcFilter}
			}
			ec.Periods = append(ec.Periods, EngagementCustomer{Label: p.Label, Customers: Num{N: c.n, Drill: x.Encode()}, FirstOrders: Amount{Minor: c.g, Currency: cur}})
			tot.n, tot.g = tot.n+c.n, tot.g+c.g
		}
		for _, src := range sortedKeys(srcs[cur]) {
			c := srcs[cur][src]
			x := spec
			x.From, x.To, x.Dims = int32(q.From), int32(q.To), map[string]string{"view": src}
			ec.Sources = append(ec.Sources, EngagementCustomer{Label: src, Customers: Num{N: c.n, Drill: x.Encode()}, FirstOrders: Amount{Minor: c.g, Currency: cur}})
		}
		x := spec
		x.From, x.To = int32(q.From), int32(q.To)
		ec.Total = EngagementCustomer{Label: "total", Customers: Num{N: tot.n, Drill: x.Encode()}, FirstOrders: Amount{Minor: tot.g, Currency: cur}}
		out.Customers = append(out.Customers, ec)
	}
	out.Meta = e.meta(v, "engagement", q)
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Tables is the report as tables: views by period and by source, then per currency the viewers
// who became customers.
func (r *Engagement) Tables() []Table {
	cols := []Column{{"label", "Period", TextColumn}, {"views", "Page views", CountColumn}, {"new_visitors", "New visitors", CountColumn}}
	pt := Table{Title: "Page views", Columns: cols, Chart: []string{"views", "new_visitors"}}
	for _, x := range append(slices.Clone(r.Periods), r.Total) {
		pt.Rows = append(pt.Rows, []Cell{text(x.Label), numCell(x.Views), numCell(x.NewVisitors)})
	}
	scols := slices.Clone(cols)
	scols[0].Label = "Source"
	st := Table{Title: "Page views by source", Columns: scols}
	for _, x := range r.Sources {
		st.Rows = append(st.Rows, []Cell{text(x.Label), numCell(x.Views), numCell(x.NewVisitors)})
	}
	out := []Table{pt, st}
	for _, c := range r.Customers {
		t := Table{Title: "Viewers who became customers", Currency: c.Currency, Chart: []string{"customers"},
			Columns: []Column{{"label", "Period or first view's source", TextColumn}, {"customers", "Customers", CountColumn},
				{"first_order_revenue", "First orders", MoneyColumn}}}
		for _, x := range append(append(slices.Clone(c.Periods), c.Sources...), c.Total) {
			t.Rows = append(t.Rows, []Cell{text(x.Label), numCell(x.Customers), amountCell(x.FirstOrders)})
		}
		out = append(out, t)
	}
	return out
}

// PageViewRow is a kept page view, as a drill-down lists it.
type PageViewRow struct {
	At      time.Time `json:"at"`
	Visitor string    `json:"visitor"`
	URL     string    `json:"url"`
	Source  string    `json:"source"`
	Email   string    `json:"email,omitempty"`
	New     bool      `json:"new_visitor,omitempty"`
}

// byViewLog walks the page view log over the handle's local days.
func (d *driller) byViewLog(ctx context.Context, cur drillCursor) error {
	start, end := d.v.cal.Start(rollup.Date(d.spec.From)).UTC(), d.v.cal.Start(rollup.Date(d.spec.To+1)).UTC()
	src := d.spec.Dims["source"]
	last := ""
	for day := time.Date(start.Year(), start.Month(), start.Day(), 0, 0, 0, 0, time.UTC); day.Before(end) && !d.full(); day = day.AddDate(0, 0, 1) {
		pk := viewLogPK(d.v.account, day)
		q := store.Query{PK: pk}
		if cur.After != "" && cur.After > pk {
			if p, sk, ok := strings.Cut(cur.After, "|"); ok && p == pk {
				q.SKFrom = sk + "\x00"
			} else if p > pk {
				continue
			}
		}
		items, err := store.QueryAll(ctx, d.e.Store, q)
		if err != nil {
			return err
		}
		for _, it := range items {
			if d.full() {
				break
			}
			var e viewLog
			if json.Unmarshal(it.Data, &e) != nil || e.At.Before(start) || !e.At.Before(end) || (src != "" && e.Source != src) {
				continue
			}
			isNew, err := d.firstOfVisitor(ctx, e)
			if err != nil {
				return err
			}
			if d.spec.Measure == rollup.MNewVisitors && !isNew {
				continue
			}
			d.page.PageViews = append(d.page.PageViews, PageViewRow{At: e.At, Visitor: e.Visitor, URL: e.URL, Source: e.Source, Email: e.Email, New: isNew})
			last = it.PK + "|" + it.SK
		}
	}
	if d.full() && last != "" {
		d.page.Next = encodeCursor(drillCursor{After: last})
	}
	return nil
}

// firstOfVisitor reports whether a logged view is its browser's earliest.
func (d *driller) firstOfVisitor(ctx context.Context, e viewLog) (bool, error) {
	k := visitorKey(d.v.account, e.Visitor)
	it, err := d.e.Store.Get(ctx, k.PK, k.SK)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var doc visitorDoc
	_ = json.Unmarshal(it.Data, &doc)
	return doc.First.Equal(e.At), nil
}
