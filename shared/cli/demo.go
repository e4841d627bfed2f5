package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/outbound"
	"github.com/cartrelay/cartrelay/shared/reports"
	"github.com/cartrelay/cartrelay/shared/synth"
)

// Demo credentials: the demo account exists only in a local data directory.
const (
	demoUser   = "demo"
	demoPass   = "demo-webhook-password"
	demoSecret = "demo-secret-word"
)

func cmdDemo(ctx context.Context, c *ctx2, args []string) error {
	base, args, _, err := flagValue(args, "--url")
	if err != nil {
		return err
	}
	account, args, _, err := flagValue(args, "--account")
	if err != nil {
		return err
	}
	ordersFlag, args, _, err := flagValue(args, "--orders")
	if err != nil {
		return err
	}
	orders := defaultDemoOrders
	if ordersFlag != "" {
		if orders, err = strconv.Atoi(ordersFlag); err != nil || orders < 0 || orders > 5_000_000 {
			return usagef("--orders must be a whole number from 0 to 5000000, got %q", ordersFlag)
		}
	}
	if _, err := positional(args, 0, "no arguments"); err != nil {
		return err
	}
	if base == "" {
		base = "http://127.0.0.1:8080"
	}
	if account == "" {
		account = "demo"
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return usagef("--url takes the address serve listens on, like http://127.0.0.1:8080; got %q", base)
	}
	// The account is written through the same data directory the server uses (SQLite's WAL
	// lets this process write while `serve` runs), so it must be that serve's.
	if err := c.useDataOf(u); err != nil {
		return err
	}
	env, err := c.open(ctx, false)
	if err != nil {
		return err
	}
	defer env.Close()
	c.env = env
	_, err = env.Accounts.Get(ctx, account)
	fresh := errors.Is(err, accounts.ErrNotFound)
	if err != nil && !fresh {
		return err
	}
	zone := ""
	if fresh {
		zone = `,"timezone":"America/New_York"`
	}
	patch := fmt.Sprintf(`{"ultracart":{"webhook_username":%q,"webhook_password":%q},"thrivecart":{"secret":%q},
		"forward_since":"2020-01-01T00:00:00Z","ontraport":{"enabled":true},"iterable":{"enabled":true}%s}`, demoUser, demoPass, demoSecret, zone)
	acct, err := env.Accounts.Put(ctx, account, []byte(patch))
	if err != nil {
		return fmt.Errorf("prepare the demo account: %w", err)
	}
	if orders > 0 {
		if err := c.demoHistory(ctx, acct, orders, fresh); err != nil {
			return err
		}
	}
	// The demo's webhook credentials go in an Authorization header: same-host redirects only.
	hc := outbound.Client(30 * time.Second)
	now := c.io.Clock.Now().UTC()
	type step struct {
		what, path, ctype string
		body              []byte
		basic             bool
	}
	uc := func(events ...map[string]any) []byte {
		b, _ := json.Marshal(map[string]any{"events": events})
		return b
	}
	order := demoOrder(now.Add(-2*time.Hour), "DEMO-10001", "129.90", "0.00")
	refunded := demoOrder(now.Add(-2*time.Hour), "DEMO-10001", "129.90", "30.00")
	refunded["refund_dts"] = now.Add(-time.Hour).Format(time.RFC3339)
	second := demoOrder(now.Add(-30*time.Minute), "DEMO-10002", "49.00", "0.00")
	steps := []step{
		{what: "UltraCart order_create (paid, 129.90 USD)", path: "/webhooks/ultracart/" + account, ctype: "application/json",
			body: uc(map[string]any{"order_create": order}), basic: true},
		{what: "the same delivery again (a webhook retry)", path: "/webhooks/ultracart/" + account, ctype: "application/json",
			body: uc(map[string]any{"order_create": order}), basic: true},
		{what: "UltraCart order_refund (partial, 30.00 USD)", path: "/webhooks/ultracart/" + account, ctype: "application/json",
			body: uc(map[string]any{"order_refund": refunded}), basic: true},
		{what: "UltraCart order_payment_process (second order, 49.00 USD)", path: "/webhooks/ultracart/" + account, ctype: "application/json",
			body: uc(map[string]any{"order_payment_process": second}), basic: true},
		{what: "ThriveCart order.success (19.00 USD)", path: "/webhooks/thrivecart/" + account, ctype: "application/x-www-form-urlencoded",
			body: []byte(demoThriveCart(now.Add(-10 * time.Minute)))},
	}
	for _, s := range steps {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+s.path, bytes.NewReader(s.body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", s.ctype)
		if s.basic {
			req.SetBasicAuth(demoUser, demoPass)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("post %s to %s: %w (is 'cartrelay serve' running? start it with 'make run')", s.what, base, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if err := writeLine(c.io.Out, map[string]any{"posted": s.what, "status": resp.StatusCode, "response": json.RawMessage(jsonOrString(body))}); err != nil {
			return err
		}
		if resp.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("the server at %s refused the demo account's credentials, which demo wrote into the data directory %s: "+
				"that serve uses another one. Run demo with the same --data as serve", base, c.globals.Data)
		}
		if resp.StatusCode != http.StatusOK {
			return errors.New("the server refused a demo event; see its response above")
		}
	}
	fmt.Fprintf(c.io.Err, "\nIn a few seconds the contact is filled in:\n  cartrelay contacts get %s jane.doe@example.com\n  cartrelay orders list %s\n", account, account)
	if orders > 0 {
		fmt.Fprintf(c.io.Err, "\nReports on the account's synthetic history:\n  cartrelay reports revenue %s --by month --from %s --format table\n  cartrelay reports cohorts %s --format table\n  cartrelay reports verify %s\n",
			account, now.AddDate(-1, 0, 0).Format("2006-01-02"), account, account)
	}
	link, _, err := consoleLink(ctx, c, account, strings.TrimRight(base, "/"))
	if err != nil {
		return fmt.Errorf("the demo events were posted, but no console link could be made: %w", err)
	}
	fmt.Fprintf(c.io.Err, "\nOr see the account in the console (this link signs in once, within %s):\n  %s\n", app.ConsoleLinkTTL, link)
	return nil
}

// useDataOf makes demo write into the data directory of the serve at u: the one it noted
// when none was chosen, and a chosen one only if it is that serve's.
func (c *ctx2) useDataOf(u *url.URL) error {
	if c.globals.Backend != "embedded" {
		return nil
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	if !c.globals.DataChosen {
		data, err := c.dataOfRunningServe(addr)
		if err != nil {
			return err
		}
		if data != "" {
			c.globals.Data = data
		}
		c.globals.DataChosen = true
		return nil
	}
	serves, err := runningServes(c.io.Getenv)
	if err != nil {
		return nil
	}
	r, ok := serveAt(serves, addr)
	if !ok {
		return nil
	}
	if abs, _ := filepath.Abs(c.globals.Data); abs != r.Data {
		return fmt.Errorf("the serve on %s uses the data directory %s, not %s; run demo with --data %s (or without --data)", r.Addr, r.Data, c.globals.Data, r.Data)
	}
	return nil
}

func jsonOrString(b []byte) []byte {
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}

// demoOrder is an UltraCart order as its webhook sends it with the usual expansions.
func demoOrder(paid time.Time, id, total, refunded string) map[string]any {
	cur := func(v string) map[string]any { return map[string]any{"value": v, "currency_code": "USD"} }
	return map[string]any{
		"merchant_id":   "DEMO",
		"order_id":      id,
		"creation_dts":  paid.Add(-2 * time.Minute).Format(time.RFC3339),
		"current_stage": "Completed Order",
		"billing": map[string]any{"first_name": "Jane", "last_name": "Doe", "email": " Jane.Doe@Example.com ",
			"day_phone": "(415) 555-0132", "address1": "1 Market St", "city": "San Francisco", "state_region": "CA",
			"postal_code": "94105", "country_code": "US"},
		"shipping": map[string]any{"first_name": "Jane", "last_name": "Doe", "address1": "1 Market St", "city": "San Francisco",
			"state_region": "CA", "postal_code": "94105", "country_code": "US", "shipping_method": "UPS Ground"},
		"items": []map[string]any{{"merchant_item_id": "TEA-SAMPLER", "description": "Tea sampler", "quantity": 1,
			"cost": cur(total), "total_cost_with_discount": cur(total)}},
		"summary": map[string]any{"total": cur(total), "subtotal": cur(total), "tax": cur("0.00"),
			"shipping_handling_total": cur("0.00"), "total_refunded": cur(refunded)},
		"payment":   map[string]any{"payment_dts": paid.Format(time.RFC3339), "payment_status": "Processed", "payment_method": "Credit Card", "test_order": false},
		"marketing": map[string]any{"mailing_list": true, "cell_phone_opt_in": false},
		"utms": []map[string]any{{"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "spring",
			"click_dts": paid.Add(-time.Hour).Format(time.RFC3339)}},
	}
}

func demoThriveCart(at time.Time) string {
	v := url.Values{}
	v.Set("event", "order.success")
	v.Set("mode", "live")
	v.Set("thrivecart_secret", demoSecret)
	v.Set("order_id", "7001")
	v.Set("invoice_id", "000000701")
	v.Set("currency", "USD")
	v.Set("order_date", at.Format("2006-01-02 15:04:05"))
	v.Set("order_timestamp", fmt.Sprint(at.Unix()))
	v.Set("base_product", "12")
	v.Set("base_product_name", "Brewing course")
	v.Set("customer[email]", "jane.doe@example.com")
	v.Set("customer[first_name]", "Jane")
	v.Set("customer[last_name]", "Doe")
	v.Set("order[id]", "7001")
	v.Set("order[invoice_id]", "000000701")
	v.Set("order[total]", "1900")
	v.Set("order[tax]", "0")
	v.Set("order[date_unix]", fmt.Sprint(at.Unix()))
	v.Set("order[charges][0][name]", "Brewing course")
	v.Set("order[charges][0][reference]", "12")
	v.Set("order[charges][0][item_type]", "product")
	v.Set("order[charges][0][amount]", "1900")
	v.Set("order[charges][0][quantity]", "1")
	v.Set("order[charges][0][type]", "single")
	return v.Encode()
}

// defaultDemoOrders is the size of the synthetic history demo writes unless --orders says.
const defaultDemoOrders = 3000

// demoHistory writes a synthetic history of about n orders into the demo account, as ingest
// would have stored it (customers over several years with repeat orders, subscriptions, refunds,
// chargebacks, UTMs, email changes and page views), then builds the account's reports from it.
// An account that has it already keeps it.
func (c *ctx2) demoHistory(ctx context.Context, acct accounts.Account, n int, fresh bool) error {
	now := c.io.Clock.Now().UTC()
	end := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	years := min(10, max(3, n/100_000+3))
	hist := synth.Generate(synth.Options{Orders: n, Seed: 1, Start: end.AddDate(-years, 0, 0), End: end, EmailPrefix: "demo-shopper"})
	repo := history.New(c.env.Store)
	if first, err := repo.LoadRecords(ctx, acct.ID, hist.Customers[0].Email); err != nil {
		return err
	} else if len(first.Orders) > 0 || first.AliasOf != "" {
		fmt.Fprintf(c.io.Err, "%s has its synthetic history already; writing none\n", acct.ID)
		return nil
	}
	total := hist.Orders()
	bar := progressbar.NewOptions64(int64(total), progressbar.OptionSetWriter(c.io.Err),
		progressbar.OptionSetDescription(fmt.Sprintf("writing %d years of synthetic history", years)), progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("orders"), progressbar.OptionShowIts(), progressbar.OptionThrottle(200*time.Millisecond))
	if err := hist.Write(ctx, c.env.Store, acct.ID, func(done int) { _ = bar.Set64(int64(done)) }); err != nil {
		return err
	}
	_ = bar.Finish()
	fmt.Fprintln(c.io.Err)
	for _, v := range hist.Views(1) {
		if err := reports.RecordPageView(ctx, c.env.Store, acct, reports.PageView{Visitor: v.Visitor, URL: v.URL, Referrer: v.Referrer,
			Email: v.Email, At: v.At}, v.At); err != nil {
			return fmt.Errorf("record the synthetic page views: %w", err)
		}
	}
	if _, err := reports.RequestBuild(ctx, c.env.Store, acct.ID, acct.Timezone, reports.ReasonOperator, now); err != nil {
		return err
	}
	// A fresh account has had no events yet, so no ingest can be writing to it.
	b := &reports.Builder{Store: c.env.Store, Clock: c.io.Clock, SkipSettle: fresh || !c.ingestMayRun()}
	if !b.SkipSettle {
		fmt.Fprintf(c.io.Err, "waiting %s for ingests of %s already running, then building its reports\n", reports.Settle, acct.ID)
	}
	s, err := b.Run(ctx, acct.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.io.Err, "reports: %s\n\n", s.LastBuild)
	return nil
}
