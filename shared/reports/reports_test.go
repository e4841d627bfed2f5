package reports_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/operator"
	"github.com/cartrelay/cartrelay/shared/phone"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/rollup"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// env is the embedded runtime with one account in America/New_York.
type env struct {
	t   *testing.T
	w   *wiring.Env
	clk *clock.Fake
	e   *reports.Engine
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clk := clock.NewFake(time.Date(2025, 12, 1, 12, 0, 0, 0, time.UTC))
	w, err := operator.Embedded(context.Background(), t.TempDir(), wiring.Options{Clock: clk, Phone: phone.E164})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if _, err := w.Accounts.Put(context.Background(), "acme", []byte(`{"timezone":"America/New_York","forward_since":"2000-01-01"}`)); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, w: w, clk: clk, e: &reports.Engine{Store: w.Store, Accounts: w.Accounts, Clock: clk}}
}

// order is a hand-written UltraCart order.
type order struct {
	id, email       string
	paid            string // RFC 3339
	total, refunded string
	refundedAt      string
	test            bool
	touch           []string // source, medium, campaign, click time
	sku             string
	stage           string
}

func (o order) payload() json.RawMessage {
	utms := ""
	if len(o.touch) > 0 {
		utms = fmt.Sprintf(`,"utms":[{"utm_source":%q,"utm_medium":%q,"utm_campaign":%q,"click_dts":%q}]`, o.touch[0], o.touch[1], o.touch[2], o.touch[3])
	}
	refund := ""
	if o.refundedAt != "" {
		refund = fmt.Sprintf(`,"refund_dts":%q`, o.refundedAt)
	}
	if o.refunded == "" {
		o.refunded = "0"
	}
	if o.sku == "" {
		o.sku = "TEA"
	}
	if o.stage == "" {
		o.stage = "Completed Order"
	}
	return json.RawMessage(fmt.Sprintf(`{"order_id":%q,"merchant_id":"M","creation_dts":%q,"current_stage":%q,"currency_code":"USD",
	 "billing":{"email":%q,"first_name":"A","country_code":"US"},
	 "items":[{"merchant_item_id":%q,"description":"x","quantity":1,"cost":{"value":%s,"currency_code":"USD"},"total_cost_with_discount":{"value":%s,"currency_code":"USD"}}],
	 "summary":{"total":{"value":%s,"currency_code":"USD"},"subtotal":{"value":%s,"currency_code":"USD"},"total_refunded":{"value":%s,"currency_code":"USD"}},
	 "payment":{"payment_dts":%q,"payment_status":"Processed","test_order":%t}%s%s}`,
		o.id, o.paid, o.stage, o.email, o.sku, o.total, o.total, o.total, o.total, o.refunded, o.paid, o.test, utms, refund))
}

func (e *env) ingest(name string, payload json.RawMessage) {
	e.t.Helper()
	ctx := context.Background()
	now := e.clk.Now()
	msg, err := app.EncodeSourceEvent(ctx, e.w.Store, now, app.SourceEvent{Account: "acme", Source: domain.UltraCart, Name: name,
		Payload: payload, ReceivedAt: now, Delivery: "d", Index: 0})
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := e.w.App.Ingest(ctx, events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m", Body: msg}}})
	if err != nil || len(resp.BatchItemFailures) > 0 {
		e.t.Fatalf("ingest %s: %v %+v", name, err, resp)
	}
	e.clk.Advance(time.Second)
}

func date(s string) rollup.Date {
	d, err := rollup.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// scenario: Jane's first order is paid at 23:30 on 2025-03-09 in New York, the day that has 23
// hours, and partly refunded in April; her second is paid 2025-04-01 02:00 UTC, which is still
// March 31 in New York. Bob orders once, and his test order is left out.
func scenario(t *testing.T) *env {
	e := newEnv(t)
	e.ingest("order_create", order{id: "A", email: "jane@example.com", paid: "2025-03-10T03:30:00Z", total: "100.01",
		touch: []string{"Google", "cpc", "spring", "2025-03-01T10:00:00Z"}}.payload())
	e.ingest("order_create", order{id: "B", email: "jane@example.com", paid: "2025-04-01T02:00:00Z", total: "50.00", sku: "CUP",
		touch: []string{"newsletter", "email", "weekly", "2025-03-30T10:00:00Z"}}.payload())
	e.ingest("order_create", order{id: "D", email: "bob@example.com", paid: "2025-03-15T12:00:00Z", total: "30.00"}.payload())
	e.ingest("order_create", order{id: "C", email: "bob@example.com", paid: "2025-03-20T12:00:00Z", total: "20.00", test: true}.payload())
	e.ingest("order_refund", order{id: "A", email: "jane@example.com", paid: "2025-03-10T03:30:00Z", total: "100.01",
		refunded: "10.00", refundedAt: "2025-04-02T15:00:00Z", touch: []string{"Google", "cpc", "spring", "2025-03-01T10:00:00Z"}}.payload())
	return e
}

func TestRevenueReport(t *testing.T) {
	e := scenario(t)
	ctx := context.Background()
	r, err := e.e.Revenue(ctx, reports.Query{Account: "acme", From: date("2025-03-01"), To: date("2025-04-30"), Grain: reports.Month})
	if err != nil {
		t.Fatal(err)
	}
	if r.Meta.Zone != "America/New_York" || len(r.Currencies) != 1 || r.Currencies[0].Currency != "USD" {
		t.Fatalf("meta %+v currencies %+v", r.Meta, r.Currencies)
	}
	mar, apr := r.Currencies[0].Periods[0], r.Currencies[0].Periods[1]
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"March orders", mar.Orders.N, int64(3)},
		{"March gross", mar.Gross.Decimal(), "180.01"},
		{"March refunds, order view", mar.RefundsOrder.Decimal(), "10.00"},
		{"March refunds, cash view", mar.RefundsCash.Decimal(), "0.00"},
		{"March net, order view", mar.NetOrder.Decimal(), "170.01"},
		{"March AOV", mar.AOV.Decimal(), "60.00"},
		{"March new customers", mar.NewCustomers.N, int64(2)},
		{"March new revenue", mar.NewRevenue.Decimal(), "130.01"},
		{"March returning orders", mar.ReturningOrders.N, int64(1)},
		{"March customers", mar.Customers.N, int64(2)},
		{"March returning customers", mar.ReturningCustomers.N, int64(0)},
		{"April orders", apr.Orders.N, int64(0)},
		{"April refunds, cash view", apr.RefundsCash.Decimal(), "10.00"},
		{"April net, cash view", apr.NetCash.Decimal(), "-10.00"},
		{"total gross", r.Currencies[0].Total.Gross.Decimal(), "180.01"},
		{"total customers (more than one period)", r.Currencies[0].Total.Customers == nil, true},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if len(r.Excluded) != 1 || r.Excluded[0].Reason != "test" || r.Excluded[0].Orders.N != 1 || r.Excluded[0].Total.Decimal() != "20.00" {
		t.Errorf("excluded %+v", r.Excluded)
	}

	// The day grain puts the first order on the 23-hour day, and the second on March 31.
	days, err := e.e.Revenue(ctx, reports.Query{Account: "acme", From: date("2025-03-09"), To: date("2025-03-31"), Grain: reports.Day})
	if err != nil {
		t.Fatal(err)
	}
	byDay := map[string]string{}
	for _, p := range days.Currencies[0].Periods {
		if p.Orders.N > 0 {
			byDay[p.Period.Label] = p.Gross.Decimal()
		}
	}
	if fmt.Sprint(byDay) != "map[2025-03-09:100.01 2025-03-15:30.00 2025-03-31:50.00]" {
		t.Errorf("orders by local day: %v", byDay)
	}

	// Drill-downs list what each number counts.
	orders := func(handle string) string {
		t.Helper()
		p, err := e.e.Drill(ctx, "acme", handle, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, o := range p.Orders {
			ids = append(ids, o.OrderID)
		}
		for _, c := range p.Contacts {
			ids = append(ids, c.Email)
		}
		return strings.Join(ids, " ")
	}
	for _, c := range []struct {
		what, handle, want string
	}{
		{"March gross", mar.Gross.Drill, "A D B"},
		{"March refunds, order view", mar.RefundsOrder.Drill, "A"},
		{"April refunds, cash view", apr.RefundsCash.Drill, "A"},
		{"March new customers", mar.NewCustomers.Drill, "jane@example.com bob@example.com"},
		{"March returning orders", mar.ReturningOrders.Drill, "B"},
		{"March customers", mar.Customers.Drill, "jane@example.com bob@example.com"},
		{"test orders", r.Excluded[0].Orders.Drill, "C"},
	} {
		if got := orders(c.handle); got != c.want {
			t.Errorf("drill into %s: %q, want %q", c.what, got, c.want)
		}
	}

	// With a product filter the money is the product's lines.
	cups, err := e.e.Revenue(ctx, reports.Query{Account: "acme", From: date("2025-03-01"), To: date("2025-03-31"), Grain: reports.Month,
		Filter: reports.Filter{Product: "CUP"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := cups.Currencies[0].Periods[0]; p.Orders.N != 1 || p.Gross.Decimal() != "50.00" || p.NewCustomers != nil {
		t.Errorf("CUP: %+v", p)
	}
	// And a first-touch filter keeps Jane's orders only.
	g, err := e.e.Revenue(ctx, reports.Query{Account: "acme", From: date("2025-03-01"), To: date("2025-03-31"), Grain: reports.Month,
		Filter: reports.Filter{FirstSource: "GOOGLE "}})
	if err != nil {
		t.Fatal(err)
	}
	if p := g.Currencies[0].Periods[0]; p.Orders.N != 2 || p.Gross.Decimal() != "150.01" {
		t.Errorf("first touch google: %+v", p)
	}

	check, err := e.e.Verify(ctx, "acme", 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(check.Differences) != 0 || check.Orders != 4 || check.Contacts != 2 {
		t.Fatalf("verify: %+v", check)
	}
}

func autoOrder(code, orig string, o order, status, ended string) json.RawMessage {
	end := ""
	if ended != "" {
		end = fmt.Sprintf(`,"canceled_dts":%q`, ended)
	}
	return json.RawMessage(fmt.Sprintf(`{"merchant_id":"M","auto_order_code":%q,"original_order_id":%q,"status":%q,"enabled":%t,
	 "items":[{"original_item_id":"TEA","frequency":"Monthly","original_quantity":1}],"original_order":%s%s}`,
		code, orig, status, status == "active", o.payload(), end))
}

// fuller is the scenario plus Bob's subscription (started by his order, renewed once, cancelled)
// and Jane's page views: anonymous first, then identified.
func fuller(t *testing.T) *env {
	e := scenario(t)
	bobD := order{id: "D", email: "bob@example.com", paid: "2025-03-15T12:00:00Z", total: "30.00"}
	e.ingest("auto_order_create", autoOrder("AO-1", "D", bobD, "active", ""))
	renewal := order{id: "D2", email: "bob@example.com", paid: "2025-04-15T12:00:00Z", total: "30.00"}
	p := renewal.payload()
	p = json.RawMessage(strings.Replace(string(p), `"order_id":"D2"`, `"order_id":"D2","auto_order":{"auto_order_code":"AO-1","original_order_id":"D"}`, 1))
	e.ingest("order_create", p)
	e.ingest("auto_order_cancel", autoOrder("AO-1", "D", bobD, "canceled", "2025-04-20T12:00:00Z"))

	acct, err := e.w.Accounts.Get(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []reports.PageView{
		{Visitor: "visitor-jane-1", URL: "https://shop.example/tea?utm_source=Google", Referrer: "https://www.google.com/", At: time.Date(2025, 3, 5, 15, 0, 0, 0, time.UTC)},
		{Visitor: "visitor-jane-1", URL: "https://shop.example/cart", Referrer: "https://shop.example/tea", Email: "jane@example.com", At: time.Date(2025, 3, 6, 15, 0, 0, 0, time.UTC)},
		{Visitor: "visitor-anon-2", URL: "https://shop.example/", At: time.Date(2025, 3, 6, 3, 0, 0, 0, time.UTC)}, // March 5 in New York
	} {
		if err := reports.RecordPageView(context.Background(), e.w.Store, acct, v, v.At); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func TestOtherReports(t *testing.T) {
	e := fuller(t)
	ctx := context.Background()
	march := reports.Query{Account: "acme", From: date("2025-03-01"), To: date("2025-03-31"), Grain: reports.Month}
	drill := func(handle string) string {
		t.Helper()
		p, err := e.e.Drill(ctx, "acme", handle, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, o := range p.Orders {
			ids = append(ids, o.OrderID)
		}
		for _, c := range p.Contacts {
			ids = append(ids, c.Email)
		}
		for _, s := range p.Subscriptions {
			ids = append(ids, s.Key)
		}
		for _, v := range p.PageViews {
			ids = append(ids, v.Visitor)
		}
		return strings.Join(ids, " ")
	}
	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}

	t.Run("acquisition", func(t *testing.T) {
		a, err := e.e.Acquisition(ctx, march)
		if err != nil {
			t.Fatal(err)
		}
		rows := a.Currencies[0].Rows
		check("rows", len(rows), 2)
		g, none := rows[0], rows[1]
		check("google row", g.Touch.Label, "google / cpc / spring")
		check("google new customers", g.NewCustomers.N, 1)
		check("google first orders", g.FirstOrders.Decimal(), "100.01")
		check("google first orders net", g.FirstOrdersNet.Decimal(), "90.01")
		check("google revenue to date", g.ToDate.Decimal(), "140.01")
		check("google days to purchase", g.AvgDaysToPurchase, "8.0") // first click 2025-03-01, bought 2025-03-09
		check("google 8-30 days", g.Within30.N, 1)
		check("none row", none.Touch.Label, "(none)")
		check("none revenue to date", none.ToDate.Decimal(), "60.00") // the order and its renewal
		check("none same day", none.SameDay.N, 1)
		check("total", a.Currencies[0].Total.NewCustomers.N, 2)
		check("drill google", drill(g.NewCustomers.Drill), "jane@example.com")
		check("drill to date", drill(none.ToDate.Drill), "bob@example.com")
		if _, err := e.e.Acquisition(ctx, reports.Query{Account: "acme", From: march.From, To: march.To, Filter: reports.Filter{LastSource: "google"}}); err == nil ||
			!strings.Contains(err.Error(), "cannot be filtered by --last-source") {
			t.Errorf("a last-touch filter: %v", err)
		}
	})

	t.Run("attribution", func(t *testing.T) {
		for _, tc := range []struct {
			model reports.Model
			want  string
		}{
			{reports.FirstTouch, "google / cpc / spring 2.0 150.01 10.00|(none) 1.0 30.00 0.00|total 3.0 180.01 10.00 83.33"},
			{reports.LastTouch, "google / cpc / spring 1.0 100.01 10.00|newsletter / email / weekly 1.0 50.00 0.00|(none) 1.0 30.00 0.00|total 3.0 180.01 10.00 83.33"},
			{reports.Linear, "google / cpc / spring 1.5 125.01 10.00|newsletter / email / weekly 0.5 25.00 0.00|(none) 1.0 30.00 0.00|total 3.0 180.01 10.00 83.33"},
		} {
			q := march
			q.Model = tc.model
			a, err := e.e.Attribution(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			c := a.Currencies[0]
			var got []string
			for _, r := range c.Rows {
				got = append(got, fmt.Sprintf("%s %s %s %s", r.Touch.Label, r.Orders, r.Gross.Decimal(), r.Refunds.Decimal()))
			}
			got = append(got, fmt.Sprintf("total %s %s %s %s", c.Total.Orders, c.Total.Gross.Decimal(), c.Total.Refunds.Decimal(), c.Coverage))
			check(string(tc.model), strings.Join(got, "|"), tc.want)
		}
		q := march
		q.Model, q.TouchBy = reports.Linear, "source"
		a, err := e.e.Attribution(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		check("linear by source: newsletter orders", drill(a.Currencies[0].Rows[1].Drill), "B")
		check("linear by source: google orders", drill(a.Currencies[0].Rows[0].Drill), "A B")
	})

	t.Run("cohorts", func(t *testing.T) {
		c, err := e.e.Cohorts(ctx, reports.Query{Account: "acme", From: date("2025-03-01"), To: date("2025-04-30"), Horizon: 2}, reports.ByFirstOrder)
		if err != nil {
			t.Fatal(err)
		}
		m := c.Currencies[0].Cohorts[0]
		check("march size", m.Size.N, 2)
		check("march M0", m.Net[0].Decimal(), "170.01")
		check("march M1", m.Net[1].Decimal(), "30.00") // Bob's renewal
		check("march value M1", m.Value[1].Decimal(), "100.00")
		check("march young at a 2-month horizon", m.Young, false)
		check("april size", c.Currencies[0].Cohorts[1].Size.N, 0)
		year, err := e.e.Cohorts(ctx, reports.Query{Account: "acme", From: date("2025-03-01"), To: date("2025-03-31"), Horizon: 12}, reports.ByFirstOrder)
		if err != nil {
			t.Fatal(err)
		}
		y := year.Currencies[0].Cohorts[0]
		check("march young at 12 months (9 passed)", y.Young, true)
		check("months not passed yet", y.Net[10] == nil && y.Value[12] == nil && y.Net[9] != nil, true)
		check("drill march customers", drill(m.Size.Drill), "jane@example.com bob@example.com")
		check("drill march M1", drill(m.Net[1].Drill), "D2")
		leads, err := e.e.Cohorts(ctx, reports.Query{Account: "acme", From: date("2025-03-01"), To: date("2025-03-31"), Horizon: 1}, reports.ByFirstSeen)
		if err != nil {
			t.Fatal(err)
		}
		l := leads.Currencies[0].Cohorts[0]
		check("march leads", l.Size.N, 2)
		check("march lead customers", l.Customers.N, 2)
		check("drill march leads", drill(l.Size.Drill), "bob@example.com jane@example.com")
	})

	t.Run("subscriptions", func(t *testing.T) {
		s, err := e.e.Subscriptions(ctx, reports.Query{Account: "acme", From: date("2025-03-01"), To: date("2025-04-30"), Grain: reports.Month})
		if err != nil {
			t.Fatal(err)
		}
		mar, apr := s.Currencies[0].Periods[0], s.Currencies[0].Periods[1]
		check("march started", mar.Started.N, 1)
		check("march active", mar.Active.N, 1)
		check("march mrr", mar.MRR.Decimal(), "30.00")
		check("april cancelled", apr.Cancelled.N, 1)
		check("april active", apr.Active.N, 0)
		check("april churn", apr.Churn, "100.00")
		check("april renewals", apr.Renewals.N, 1)
		check("april renewal revenue", apr.RenewalRevenue.Decimal(), "30.00")
		check("drill march active", drill(mar.Active.Drill), "ultracart:AO-1")
		check("drill april active", drill(apr.Active.Drill), "")
		check("drill april cancelled", drill(apr.Cancelled.Drill), "ultracart:AO-1")
		check("drill april renewals", drill(apr.Renewals.Drill), "D2")
	})

	t.Run("products", func(t *testing.T) {
		p, err := e.e.Products(ctx, march)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range append(p.Currencies[0].Rows, p.Currencies[0].Total) {
			got = append(got, fmt.Sprintf("%s %s %s", r.SKU, r.Gross.Decimal(), r.RefundsOrder.Decimal()))
		}
		check("rows", strings.Join(got, "|"), "CUP 50.00 0.00|TEA 130.01 0.00|(order level) 0.00 10.00|total 180.01 10.00")
		check("drill TEA", drill(p.Currencies[0].Rows[1].Orders.Drill), "A D")
	})

	t.Run("engagement", func(t *testing.T) {
		q := march
		q.Grain = reports.Day
		g, err := e.e.Engagement(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		views := map[string]int64{}
		for _, p := range g.Periods {
			if p.Views.N > 0 {
				views[p.Label] = p.Views.N
			}
		}
		check("views by local day", views, map[string]int64{"2025-03-05": 2, "2025-03-06": 1})
		check("total", g.Total.Views.N, 3)
		check("new visitors", g.Total.NewVisitors.N, 2)
		var srcs []string
		for _, s := range g.Sources {
			srcs = append(srcs, fmt.Sprintf("%s %d", s.Label, s.Views.N))
		}
		check("sources", strings.Join(srcs, "|"), "(direct) 1|(internal) 1|google 1")
		check("converted", g.Customers[0].Total.Customers.N, 1)
		check("converted revenue", g.Customers[0].Total.FirstOrders.Decimal(), "100.01")
		check("converted by source", g.Customers[0].Sources[0].Label, "google")
		check("drill converted", drill(g.Customers[0].Total.Customers.Drill), "jane@example.com")
		check("drill new visitors", drill(g.Total.NewVisitors.Drill), "visitor-jane-1 visitor-anon-2")
	})

	v, err := e.e.Verify(ctx, "acme", 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Differences) != 0 {
		t.Fatalf("verify: %v", v.Differences)
	}
}

// A rollup item whose counter names no cell (a damaged item) makes a report fail saying which
// item, never count the number somewhere else.
func TestDamagedRollupItem(t *testing.T) {
	e := scenario(t)
	ctx := context.Background()
	s, err := reports.LoadState(ctx, e.w.Store, "acme", "America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	k := rollup.ItemKey{Part: rollup.PartDay, Period: int32(date("2025-03-15"))}
	key := store.Key{PK: rollup.PartitionKey("acme", s.Active.N, rollup.PartDay, k.PeriodString()), SK: k.SortKey()}
	if err := e.w.Store.Write(ctx, store.AddTo(key, map[string]int64{rollup.CounterName("AAAAAAAAAAAAAAAA", rollup.MOrders): 1}, nil)); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"revenue", "products"} {
		_, _, err := e.e.Run(ctx, "acme", reports.Params{Kind: kind, From: "2025-03-01", To: "2025-03-31"})
		if err == nil || !strings.Contains(err.Error(), "names no cell") || !strings.Contains(err.Error(), key.PK) {
			t.Errorf("%s over a damaged item: %v", kind, err)
		}
	}
}

// The revenue report by month reads a whole month's month items instead of its days, and the
// days only for the months the range cuts; the answer is the one the days give, to the cent.
func TestRevenueByMonthReadsMonthItems(t *testing.T) {
	e := scenario(t)
	ctx := context.Background()
	q := reports.Query{Account: "acme", From: date("2025-02-15"), To: date("2025-05-10"), Grain: reports.Month}
	s, err := reports.LoadState(ctx, e.w.Store, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Active.Layout != rollup.Layout {
		t.Fatalf("a new account's generation is in layout %d, want %d", s.Active.Layout, rollup.Layout)
	}
	revenue := func(q reports.Query) (string, *reports.Revenue) {
		t.Helper()
		r, err := e.e.Revenue(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(struct {
			C []reports.RevenueCurrency
			X []reports.ExcludedLine
		}{r.Currencies, r.Excluded})
		if err != nil {
			t.Fatal(err)
		}
		return string(b), r
	}
	fromMonths, r := revenue(q)
	if mar := r.Currencies[0].Periods[1]; mar.Gross.Decimal() != "180.01" || mar.Customers.N != 2 || r.Excluded[0].Orders.N != 1 {
		t.Fatalf("March from its month items: %+v, excluded %+v", mar, r.Excluded)
	}

	// Read as a generation without month items is read: every day of the range.
	old := s
	old.Active.Layout = 0
	if _, err := reports.SaveState(ctx, e.w.Store, "acme", old); err != nil {
		t.Fatal(err)
	}
	fromDays, _ := revenue(q)
	if fromDays != fromMonths {
		t.Fatalf("by month from month items:\n%s\nfrom days:\n%s", fromMonths, fromDays)
	}

	// And month items are what a whole month is read from: a counter added to March's month
	// item (and to no day) shows in March by month, and not by day.
	s, err = reports.LoadState(ctx, e.w.Store, "acme", "")
	if err != nil {
		t.Fatal(err)
	}
	s.Active.Layout = rollup.Layout
	if _, err := reports.SaveState(ctx, e.w.Store, "acme", s); err != nil {
		t.Fatal(err)
	}
	seg := rollup.Segment{Source: "ultracart", Currency: "USD", First: rollup.NoTouch, Last: rollup.NoTouch}
	c := rollup.OrderCell(seg)
	k := rollup.ItemKey{Part: rollup.PartMonth, Period: int32(rollup.MonthOf(2025, 3)), Shard: 3}
	key := store.Key{PK: rollup.PartitionKey("acme", s.Active.N, k.Part, k.PeriodString()), SK: k.SortKey()}
	if err := e.w.Store.Write(ctx, store.AddTo(key, map[string]int64{rollup.CounterName(c.ID(), rollup.MGross): 7}, map[string]string{c.ID(): string(c)})); err != nil {
		t.Fatal(err)
	}
	if _, r = revenue(q); r.Currencies[0].Periods[1].Gross.Decimal() != "180.08" {
		t.Fatalf("March by month after an add to its month item: %s", r.Currencies[0].Periods[1].Gross.Decimal())
	}
	byDay := q
	byDay.Grain = reports.Week
	if _, r = revenue(byDay); r.Currencies[0].Total.Gross.Decimal() != "180.01" {
		t.Fatalf("by week after an add to a month item: %s", r.Currencies[0].Total.Gross.Decimal())
	}
	// A product filter reads days: months do not hold product cells.
	byProduct := q
	byProduct.Filter.Product = "TEA"
	if _, r = revenue(byProduct); r.Currencies[0].Total.Gross.Decimal() != "130.01" {
		t.Fatalf("TEA by month: %s", r.Currencies[0].Total.Gross.Decimal())
	}
}
