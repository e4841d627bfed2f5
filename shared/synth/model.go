// Package synth makes realistic synthetic merchant histories: customers acquired over several
// years through marketing touches, repeat orders, subscriptions with renewals, pauses and
// cancellations, refunds that arrive late, chargebacks, test and rejected orders, and email
// changes. The same history comes out as the UltraCart webhook events that would have told it
// (for `cartrelay demo` and for tests that go through ingest) and as the stored records ingest
// would have made of them (for writing a large account directly, for benchmarks).
//
// Everything is drawn from a seeded generator, so a seed and options give the same history.
package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Version names what the generator makes of a seed and options. Bump it whenever they would
// give another history, so that histories cached on disk (the console benchmark's) are made
// again instead of read back.
const Version = 1

// Options shape a history.
type Options struct {
	// Orders is about how many orders (renewals included) the history holds.
	Orders int
	// Start and End bound it (default: five years up to End; End defaults to 2026-11-01).
	Start, End time.Time
	Seed       uint64
	// Edges puts a share of the purchases and refunds on instants that trip up local-date
	// bucketing in America/New_York: around its daylight saving changes of 2025 (2025-03-09 and
	// 2025-11-02), and the last and first minutes of local months, which UTC files under the next
	// and the previous month.
	Edges bool
	// EmailPrefix makes emails distinct between histories (default "shopper").
	EmailPrefix string
}

// Touch is a marketing click.
type Touch struct {
	Source, Medium, Campaign string
	At                       time.Time
}

// Product is a catalogue product.
type Product struct {
	SKU   string
	Name  string
	Price int64 // cents
}

// Catalog is what the synthetic shop sells.
var Catalog = []Product{
	{"TEA-SAMPLER", "Tea sampler", 1999},
	{"TEA-EARLGREY", "Earl Grey, 250 g", 1250},
	{"TEA-SENCHA", "Sencha, 100 g", 1600},
	{"TEA-MATCHA", "Ceremonial matcha, 30 g", 2900},
	{"INFUSER", "Steel infuser", 1200},
	{"TEAPOT-CAST", "Cast iron teapot", 6400},
	{"CUPS-4", "Four porcelain cups", 3800},
	{"KETTLE-GOOSE", "Gooseneck kettle", 8900},
	{"GIFT-CARD-50", "Gift card", 5000},
}

// Plan is a subscription product.
type Plan struct {
	SKU       string
	Name      string
	Price     int64
	Frequency string // UltraCart's words
	Every     time.Duration
}

// Plans are the subscriptions the shop sells.
var Plans = []Plan{
	{"SUB-TEA-MONTHLY", "Tea of the month", 2400, "Monthly", 30 * 24 * time.Hour},
	{"SUB-TEA-QUARTERLY", "Quarterly tea box", 6000, "Quarterly", 91 * 24 * time.Hour},
}

// Line is one line of an order.
type Line struct {
	SKU, Name string
	Qty       int64
	Unit      int64
}

// Order is one synthetic order.
type Order struct {
	ID       string
	Email    string // the billing email when it was placed
	Created  time.Time
	Paid     time.Time
	Lines    []Line
	Shipping int64
	Tax      int64
	Touches  []Touch // click order: first touch first
	// Refunded is the cumulative refund, RefundedAt when the last part of it happened; Refunds
	// are its steps (UltraCart reports only the running total and the last date).
	Refunds  []Refund
	Test     bool
	Rejected bool
	Deleted  bool
	Sub      string // the auto order it starts or renews
	Original string // for a renewal, the order that started the subscription
	Customer int    // UltraCart customer profile oid
	// Dispute is a chargeback against the order.
	Dispute *Dispute
}

// Dispute is a card chargeback: raised At for Amount; Outcome "" while pending, "Won" or "Lost"
// once decided, at Decided.
type Dispute struct {
	ID      int
	At      time.Time
	Amount  int64
	Outcome string
	Decided time.Time
}

// Refund is one refund step.
type Refund struct {
	At     time.Time
	Amount int64
}

// Total is what the order charged.
func (o *Order) Total() int64 {
	t := o.Shipping + o.Tax
	for _, l := range o.Lines {
		t += l.Qty * l.Unit
	}
	return t
}

// Refunded is the cumulative refund.
func (o *Order) Refunded() int64 {
	var r int64
	for _, x := range o.Refunds {
		r += x.Amount
	}
	return r
}

// Subscription is one synthetic auto order.
type Subscription struct {
	Code     string
	Email    string
	Plan     Plan
	Original string // the order that started it
	Start    time.Time
	// Pauses are [from, to) spans without renewals.
	Pauses   [][2]time.Time
	Cancel   time.Time // zero while it runs
	Upgraded bool      // ended by an upgrade (merged)
}

// Customer is one synthetic customer.
type Customer struct {
	Email     string
	NewEmail  string    // after an email change
	ChangedAt time.Time // when it changed
	Profile   int
	First     Touch
	Orders    []*Order
	Subs      []*Subscription
}

// EmailAt is the customer's email at t.
func (c *Customer) EmailAt(t time.Time) string {
	if c.NewEmail != "" && !t.Before(c.ChangedAt) {
		return c.NewEmail
	}
	return c.Email
}

// History is a synthetic merchant history.
type History struct {
	Customers []*Customer
	Start     time.Time
	End       time.Time
}

// Orders counts the orders.
func (h *History) Orders() int {
	n := 0
	for _, c := range h.Customers {
		n += len(c.Orders)
	}
	return n
}

type channel struct {
	source, medium string
	campaigns      []string
	weight         float64
}

var firstChannels = []channel{
	{"google", "cpc", []string{"brand", "generic-tea", "gifts"}, 0.24},
	{"facebook", "paid_social", []string{"spring_sale", "retarget", "lookalike"}, 0.18},
	{"newsletter", "email", []string{"weekly", "launch"}, 0.10},
	{"instagram", "social", []string{"influencer", "reels"}, 0.10},
	{"bing", "cpc", []string{"brand"}, 0.03},
	{"", "", nil, 0.35}, // no touch recorded
}

var laterChannels = []channel{
	{"newsletter", "email", []string{"weekly", "winback", "launch"}, 0.35},
	{"google", "cpc", []string{"brand"}, 0.15},
	{"facebook", "paid_social", []string{"retarget"}, 0.10},
	{"", "", nil, 0.40},
}

func pick(rng *rand.Rand, cs []channel) channel {
	x := rng.Float64()
	for _, c := range cs {
		if x < c.weight {
			return c
		}
		x -= c.weight
	}
	return cs[len(cs)-1]
}

var firstNames = []string{"Ann", "Ben", "Cleo", "Dev", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jon", "Kai", "Lena", "Mia", "Noah", "Omar", "Priya"}
var lastNames = []string{"Reyes", "Nair", "Smith", "Okafor", "Kowalski", "Tanaka", "Grant", "Moreau", "Silva", "Berg"}

// Generate draws a history.
func Generate(opt Options) *History {
	if opt.End.IsZero() {
		opt.End = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	}
	if opt.Start.IsZero() {
		opt.Start = opt.End.AddDate(-5, 0, 0)
	}
	if opt.Orders <= 0 {
		opt.Orders = 100
	}
	if opt.EmailPrefix == "" {
		opt.EmailPrefix = "shopper"
	}
	rng := rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15))
	g := &gen{opt: opt, rng: rng, span: opt.End.Sub(opt.Start)}
	if opt.Edges {
		g.edges = edgeInstants(opt.Start, opt.End)
	}
	h := &History{Start: opt.Start, End: opt.End}
	for n := 0; g.orders < opt.Orders; n++ {
		h.Customers = append(h.Customers, g.customer(n))
	}
	return h
}

type gen struct {
	opt      Options
	rng      *rand.Rand
	span     time.Duration
	orders   int
	subs     int
	disputes int
	edges    []time.Time
}

func (g *gen) id() string {
	g.orders++
	return fmt.Sprintf("SYN-%08d", g.orders)
}

// when draws a purchase time: acquisitions grow over the years (more recent is likelier).
func (g *gen) acquisition() time.Time {
	u := math.Sqrt(g.rng.Float64())
	return g.opt.Start.Add(time.Duration(u * float64(g.span))).Truncate(time.Second)
}

// edge moves t to a hard instant now and then.
func (g *gen) edge(t time.Time) time.Time {
	if len(g.edges) > 0 && g.rng.IntN(4) == 0 {
		return g.edges[g.rng.IntN(len(g.edges))].Add(time.Duration(g.rng.IntN(3)) * time.Second)
	}
	return t
}

func (g *gen) customer(n int) *Customer {
	rng := g.rng
	c := &Customer{Email: fmt.Sprintf("%s%d@example.com", g.opt.EmailPrefix, n), Profile: 500000 + n}
	at := g.edge(g.acquisition())
	ch := pick(rng, firstChannels)
	if ch.source != "" {
		c.First = Touch{Source: ch.source, Medium: ch.medium, Campaign: ch.campaigns[rng.IntN(len(ch.campaigns))],
			At: at.Add(-time.Duration(rng.IntN(30*24*3600)) * time.Second)}
	}
	if rng.IntN(30) == 0 {
		c.NewEmail = fmt.Sprintf("%s%d.new@example.net", g.opt.EmailPrefix, n)
		c.ChangedAt = at.Add(time.Duration(1+rng.IntN(400)) * 24 * time.Hour)
	}
	repeats := 0
	for rng.Float64() < 0.55 && repeats < 40 {
		repeats++
	}
	t := at
	for i := 0; i <= repeats; i++ {
		if t.After(g.opt.End) {
			break
		}
		o := g.order(c, t, i == 0)
		if i == 0 && rng.IntN(6) == 0 {
			g.subscribe(c, o)
		}
		t = g.edge(t.Add(time.Duration(rng.ExpFloat64()*100*24*3600) * time.Second))
	}
	return c
}

func (g *gen) order(c *Customer, at time.Time, first bool) *Order {
	rng := g.rng
	o := &Order{ID: g.id(), Email: c.EmailAt(at), Created: at, Customer: c.Profile}
	o.Paid = at.Add(time.Duration(rng.IntN(300)) * time.Second)
	if g.nearEdge(at) {
		o.Paid = at // keep an edge instant as the paid time
	}
	for range 1 + rng.IntN(3) {
		p := Catalog[rng.IntN(len(Catalog))]
		o.Lines = append(o.Lines, Line{SKU: p.SKU, Name: p.Name, Qty: int64(1 + rng.IntN(2)), Unit: p.Price})
	}
	o.Shipping = []int64{0, 595, 895}[rng.IntN(3)]
	o.Tax = o.Total() * 8 / 100
	if first && c.First.Source != "" {
		o.Touches = append(o.Touches, c.First)
	}
	if ch := pick(rng, laterChannels); ch.source != "" && (!first || rng.IntN(3) == 0) {
		o.Touches = append(o.Touches, Touch{Source: ch.source, Medium: ch.medium,
			Campaign: ch.campaigns[rng.IntN(len(ch.campaigns))], At: at.Add(-time.Duration(rng.IntN(3*24*3600)) * time.Second)})
	}
	switch x := rng.IntN(1000); {
	case x < 5:
		o.Test = true
	case x < 15:
		o.Rejected = true
	case x < 17:
		o.Deleted = true
	}
	g.refunds(o)
	c.Orders = append(c.Orders, o)
	return o
}

func (g *gen) refunds(o *Order) {
	rng := g.rng
	if o.Test || o.Rejected || rng.IntN(100) >= 8 {
		return
	}
	total := o.Total()
	t := o.Paid.Add(time.Duration(1+rng.IntN(45*24)) * time.Hour)
	if rng.IntN(5) == 0 {
		t = t.Add(120 * 24 * time.Hour) // a late one
	}
	t = g.edge(t)
	if t.Before(o.Paid) {
		t = o.Paid.Add(time.Hour)
	}
	if rng.IntN(8) == 0 {
		g.disputes++
		d := &Dispute{ID: 90000 + g.disputes, At: t, Amount: total}
		switch rng.IntN(3) {
		case 0:
			d.Outcome, d.Decided = "Won", t.Add(time.Duration(20+rng.IntN(40))*24*time.Hour)
		case 1:
			d.Outcome, d.Decided = "Lost", t.Add(time.Duration(20+rng.IntN(40))*24*time.Hour)
		}
		o.Dispute = d
		return
	}
	if rng.IntN(2) == 0 {
		o.Refunds = append(o.Refunds, Refund{At: t, Amount: total})
		return
	}
	part := 1 + rng.Int64N(total/2+1)
	o.Refunds = append(o.Refunds, Refund{At: t, Amount: part})
	if rng.IntN(3) == 0 {
		o.Refunds = append(o.Refunds, Refund{At: t.Add(time.Duration(1+rng.IntN(20)) * 24 * time.Hour), Amount: 1 + rng.Int64N(total-part)})
	}
}

func (g *gen) subscribe(c *Customer, first *Order) {
	rng := g.rng
	g.subs++
	p := Plans[rng.IntN(len(Plans))]
	s := &Subscription{Code: fmt.Sprintf("AO-%07d", g.subs), Email: first.Email, Plan: p, Original: first.ID, Start: first.Paid}
	first.Lines = append(first.Lines, Line{SKU: p.SKU, Name: p.Name, Qty: 1, Unit: p.Price})
	first.Tax = first.Total() * 8 / 100
	first.Sub = s.Code
	t := s.Start
	for n := 0; ; n++ {
		t = t.Add(p.Every)
		if !t.Before(g.opt.End) || g.orders >= g.opt.Orders*2 {
			break
		}
		if rng.IntN(100) < 6 {
			s.Cancel = t.Add(-time.Duration(rng.IntN(5*24)) * time.Hour)
			s.Upgraded = rng.IntN(10) == 0
			break
		}
		if rng.IntN(100) < 3 && len(s.Pauses) == 0 {
			s.Pauses = append(s.Pauses, [2]time.Time{t.Add(-24 * time.Hour), t.Add(2 * p.Every)})
			t = t.Add(2 * p.Every)
			continue
		}
		r := &Order{ID: g.id(), Email: c.EmailAt(t), Created: t, Paid: t.Add(time.Minute), Customer: c.Profile,
			Lines: []Line{{SKU: p.SKU, Name: p.Name, Qty: 1, Unit: p.Price}}, Sub: s.Code, Original: first.ID}
		r.Tax = r.Total() * 8 / 100
		g.refunds(r)
		c.Orders = append(c.Orders, r)
	}
	c.Subs = append(c.Subs, s)
}

func (g *gen) nearEdge(t time.Time) bool {
	for _, e := range g.edges {
		if d := t.Sub(e); d >= 0 && d < 3*time.Second {
			return true
		}
	}
	return false
}

// edgeInstants are instants where local dates are easy to get wrong in America/New_York: around
// the 2025 daylight saving changes and the last and first minutes of local months.
func edgeInstants(start, end time.Time) []time.Time {
	ny, _ := time.LoadLocation("America/New_York")
	var out []time.Time
	for _, s := range []string{
		"2025-03-09T01:59:58-05:00", "2025-03-09T03:00:00-04:00", "2025-03-09T23:59:59-04:00", "2025-03-08T23:59:59-05:00",
		"2025-11-02T01:30:00-04:00", "2025-11-02T01:30:00-05:00", "2025-11-02T23:59:58-05:00", "2025-11-02T00:00:00-04:00",
	} {
		t, _ := time.Parse(time.RFC3339, s)
		out = append(out, t)
	}
	for m := time.Date(start.Year(), start.Month(), 1, 0, 0, 0, 0, ny); m.Before(end); m = m.AddDate(0, 1, 0) {
		out = append(out, m.Add(-30*time.Minute), m.Add(10*time.Minute))
	}
	out = slices.DeleteFunc(out, func(t time.Time) bool { return t.Before(start) || !t.Before(end) })
	for i := range out {
		out[i] = out[i].UTC()
	}
	return out
}

// Features counts what a history holds that reports have to get right, so that a test can insist
// its history has each of them.
type Features struct {
	Customers, Orders, Renewals, Refunded, Disputes, DisputesDecided, Subscriptions, Pauses, Cancelled int
	Test, Rejected, Deleted                                                                            int
	EmailChanges                                                                                       int
	EmailChangeBetweenOrders                                                                           int // email changes with orders both before and after
	EdgeOrders                                                                                         int // orders paid at one of the hard instants
}

// Features counts the history's features.
func (h *History) Features() Features {
	var f Features
	edges := map[time.Time]bool{}
	for _, e := range edgeInstants(h.Start, h.End) {
		for d := range 3 {
			edges[e.Add(time.Duration(d)*time.Second)] = true
		}
	}
	for _, c := range h.Customers {
		f.Customers++
		before, after := false, false
		for _, o := range c.Orders {
			f.Orders++
			if o.Original != "" {
				f.Renewals++
			}
			if len(o.Refunds) > 0 {
				f.Refunded++
			}
			if o.Dispute != nil {
				f.Disputes++
				if o.Dispute.Outcome != "" && o.Dispute.Decided.Before(h.End) {
					f.DisputesDecided++
				}
			}
			if o.Test {
				f.Test++
			}
			if o.Rejected {
				f.Rejected++
			}
			if o.Deleted {
				f.Deleted++
			}
			if edges[o.Paid.UTC()] {
				f.EdgeOrders++
			}
			if c.NewEmail != "" {
				if o.Created.Before(c.ChangedAt) {
					before = true
				} else {
					after = true
				}
			}
		}
		if c.NewEmail != "" && c.ChangedAt.Before(h.End) {
			f.EmailChanges++
			if before && after {
				f.EmailChangeBetweenOrders++
			}
		}
		for _, s := range c.Subs {
			f.Subscriptions++
			f.Pauses += len(s.Pauses)
			if !s.Cancel.IsZero() {
				f.Cancelled++
			}
		}
	}
	return f
}

// View is a synthetic page view, as the tracking snippet posts it.
type View struct {
	Visitor  string
	URL      string
	Referrer string
	Email    string // set when the page knew the shopper (a checkout or account page)
	At       time.Time
}

// Views are the history's page views: customers browse before and around their orders (the
// checkout identifies them), and anonymous visitors browse without buying. They come from the same
// seed as the history, in time order.
func (h *History) Views(seed uint64) []View {
	rng := rand.New(rand.NewPCG(seed^0xa5a5, seed))
	var out []View
	page := func(t Touch) (string, string) {
		p := []string{"/", "/tea", "/teaware", "/blog/brewing", "/gifts"}[rng.IntN(5)]
		u := "https://shop.example" + p
		if t.Source != "" && rng.IntN(2) == 0 {
			return u + "?utm_source=" + t.Source + "&utm_medium=" + t.Medium, ""
		}
		return u, []string{"", "https://www.google.com/", "https://shop.example/", "https://www.instagram.com/"}[rng.IntN(4)]
	}
	for i, c := range h.Customers {
		if len(c.Orders) == 0 || rng.IntN(10) < 4 {
			continue
		}
		visitor := fmt.Sprintf("v-%08d-%04d", i, rng.IntN(10000))
		first := c.Orders[0].Paid
		for n := rng.IntN(4); n >= 0; n-- {
			u, ref := page(c.First)
			out = append(out, View{Visitor: visitor, URL: u, Referrer: ref, At: first.Add(-time.Duration(1+rng.IntN(20*24*60)) * time.Minute)})
		}
		if rng.IntN(10) < 7 {
			// The checkout page tells the snippet who is buying.
			out = append(out, View{Visitor: visitor, URL: "https://shop.example/checkout", Referrer: "https://shop.example/cart",
				Email: c.Orders[0].Email, At: first.Add(-time.Minute)})
		}
	}
	for i := range len(h.Customers) {
		visitor := fmt.Sprintf("a-%08d", i)
		at := h.Start.Add(time.Duration(rng.Int64N(int64(h.End.Sub(h.Start)))))
		for range 1 + rng.IntN(3) {
			u, ref := page(Touch{})
			out = append(out, View{Visitor: visitor, URL: u, Referrer: ref, At: at})
			at = at.Add(time.Duration(1+rng.IntN(600)) * time.Second)
		}
	}
	slices.SortStableFunc(out, func(a, b View) int { return a.At.Compare(b.At) })
	return out
}
