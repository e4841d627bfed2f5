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
