package app_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/audit"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/erasure"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/iterable/iterablefake"
	"github.com/cartrelay/cartrelay/shared/ontraport"
	"github.com/cartrelay/cartrelay/shared/ontraport/ontraportfake"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/rollup"
	"github.com/cartrelay/cartrelay/shared/sqlitedb"
	"github.com/cartrelay/cartrelay/shared/store/embedded"
	"github.com/cartrelay/cartrelay/shared/visitortoken"
)

// erasureRig is an account forwarding to fake ONTRAPORT and Iterable, with the destinations the
// forwarder runs.
type erasureRig struct {
	h        *harness
	op       *ontraportfake.Server
	it       *iterablefake.Server
	opDest   *ontraport.Destination
	itDest   *iterable.Destination
	identity func(email string) string
}

func newErasureRig(t *testing.T, extra string) *erasureRig {
	h := newHarness(t)
	op := ontraportfake.New(ontraportfake.Options{AppID: "2_1_Erase", APIKey: "op-erase-key", Clock: h.clk})
	t.Cleanup(op.Close)
	it, err := iterablefake.New(iterablefake.Options{APIKey: "it-erase-key", Clock: h.clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(it.Close)
	h.account("acme", fmt.Sprintf(`,"allowed_domains":"shop.example.com",`+
		`"ontraport":{"enabled":true,"app_id":"2_1_Erase","api_key":"op-erase-key","base_url":%q},`+
		`"iterable":{"enabled":true,"api_key":"it-erase-key","base_url":%q,"review_url_template":"https://shop.example.com/reviews/new?sku={sku}","review_wait":"1h"}%s`,
		op.URL, it.URL, extra))
	sleep := func(_ context.Context, d time.Duration) error { h.clk.Advance(d); return nil }
	opDest := ontraport.New(ontraport.Options{Store: h.env.Store, Clock: h.clk, Sleep: sleep})
	itDest, err := iterable.New(iterable.Deps{Store: h.env.Store, Clock: h.clk, HTTP: it.Client(), PublicBaseURL: "https://hooks.example.com",
		Keys: h.env.Keys, Sleep: sleep})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := h.env.Keys.Ensure(context.Background(), "acme", accountkeys.Tracking)
	if err != nil {
		t.Fatal(err)
	}
	identity := func(email string) string {
		tok, err := visitortoken.Sign(secret.Value, email, h.clk.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	return &erasureRig{h: h, op: op, it: it, opDest: opDest, itDest: itDest, identity: identity}
}

// view posts one page view of an identified browser.
func (r *erasureRig) view(visitor, email, page string) {
	r.h.t.Helper()
	body := fmt.Sprintf(`{"visitor":%q,"url":%q,"title":"Mugs","identity":%q}`, visitor, page, r.identity(email))
	resp, err := r.h.env.App.Webhook(context.Background(), events.APIGatewayV2HTTPRequest{RawPath: "/track/acme", Body: body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
			Method: "POST", Path: "/track/acme", SourceIP: "10.0.0.9"}}})
	if err != nil || resp.StatusCode != 204 {
		r.h.t.Fatalf("page view: %d %v %s", resp.StatusCode, err, resp.Body)
	}
}

// forward runs both forwarders until their queues are empty.
func (r *erasureRig) forward() {
	r.h.t.Helper()
	if n := r.h.forwardAll(r.opDest); n != 0 {
		r.h.t.Fatalf("%d ONTRAPORT deliveries failed", n)
	}
	if n := r.h.forwardAll(r.itDest); n != 0 {
		r.h.t.Fatalf("%d Iterable deliveries failed", n)
	}
}

// tick runs the schedule once.
func (r *erasureRig) tick() {
	r.h.t.Helper()
	if err := r.h.env.App.Schedule(context.Background(), events.EventBridgeEvent{Time: r.h.clk.Now()}); err != nil {
		r.h.t.Fatal(err)
	}
}

// traces lists every stored item (keys, index keys and content) in which one of needles
// appears, as written whatever its case, URL-encoded, or with its @ escaped in JSON.
func traces(t *testing.T, dir string, needles ...string) []string {
	t.Helper()
	db, err := sqlitedb.InDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.DB.Query(`SELECT pk, sk, coalesce(gsi1pk,''), coalesce(gsi1sk,''), coalesce(gsi2pk,''), coalesce(gsi2sk,''),
		coalesce(data, x''), coalesce(attrs, x'') FROM ` + embedded.TableName)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var forms []string
	for _, n := range needles {
		n = strings.ToLower(n)
		forms = append(forms, n, strings.ToLower(url.QueryEscape(n)), strings.ReplaceAll(n, "@", `\u0040`), domain.KeyPart(n))
	}
	var out []string
	items := 0
	for rows.Next() {
		var pk, sk, g1p, g1s, g2p, g2s string
		var data, attrs []byte
		if err := rows.Scan(&pk, &sk, &g1p, &g1s, &g2p, &g2s, &data, &attrs); err != nil {
			t.Fatal(err)
		}
		items++
		all := strings.ToLower(strings.Join([]string{pk, sk, g1p, g1s, g2p, g2s, string(data), string(attrs)}, "\n"))
		for _, f := range forms {
			if strings.Contains(all, f) {
				out = append(out, pk+" / "+sk+": "+f)
				break
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if items == 0 {
		t.Fatal("the table is empty: the scan reads the wrong database")
	}
	return out
}

// TestErasureLeavesNoTrace erases a contact with a full history (orders, a partial refund, a
// shipment with a review request waiting, an email change, page views, a quarantined event that
// names it, deliveries to both destinations) and finds no trace of its addresses or its name
// in any stored item; the reports are the same to the cent and verify clean; Iterable forgot
// both addresses and ONTRAPORT's contact is anonymized with its transactions kept; the audit log
// says who and when; and a later order from the same address starts a new contact.
func TestErasureLeavesNoTrace(t *testing.T) {
	r := newErasureRig(t, "")
	h := r.h
	ctx := context.Background()
	const first, second = "marcus.reyes@example.com", "marcus@reyes-design.example.com"
	for _, f := range []string{"order_create.json", "order_ship.json", "order_refund_partial.json", "checkout_cart_abandon.json"} {
		if resp := h.postUC("acme", fixture(t, "ultracart", f)); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", f, resp.StatusCode, resp.Body)
		}
	}
	// An event cartrelay cannot use, naming the contact, and one naming somebody else.
	h.postUC("acme", []byte(`{"events":[{"mystery_event":{"email":"Marcus.Reyes@example.com","first_name":"Marcus","last_name":"Reyes"}}]}`))
	h.postUC("acme", []byte(`{"events":[{"mystery_event":{"email":"ava.chen@example.com"}}]}`))
	h.ingestOnly()
	r.view("b7f3c2a1d4e5f60718293a4b5c6d7e8f", first, "https://shop.example.com/mugs?ref=marcus.reyes%40example.com")
	r.forward()
	h.postUC("acme", fixture(t, "ultracart", "customer_update.json"))
	h.ingestOnly()
	r.view("b7f3c2a1d4e5f60718293a4b5c6d7e8f", second, "https://shop.example.com/cups")
	r.forward()
	if c, ok := r.op.ContactByEmail(second); !ok || c.Fields["firstname"] != "Marcus" {
		t.Fatalf("ONTRAPORT before the erasure: %+v %v", c, ok)
	}
	if r.it.User(second) == nil {
		t.Fatal("Iterable has no profile before the erasure")
	}
	transactions := len(r.op.Transactions())
	if len(traces(t, h.dir, first, second, "Marcus", "Reyes")) == 0 {
		t.Fatal("no trace of the contact before the erasure: the scan finds nothing")
	}
	if n := len(h.quarantined("acme")); n != 2 {
		t.Fatalf("%d quarantined events, want 2", n)
	}
	before := h.reportsJSON("acme", rollup.DateOf(2020, 1, 1), rollup.DateOf(2027, 12, 31))
	h.verifyClean("acme")

	acct, err := h.env.Accounts.Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	eraser := h.env.App.Eraser()
	plan, err := eraser.Plan(ctx, acct, first)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Current != second || len(plan.Addresses) != 2 || plan.Orders != 1 || plan.Ontraport != "anonymize" {
		t.Fatalf("plan %+v", plan)
	}
	res, err := eraser.Erase(ctx, acct, first, "cli:operator")
	if err != nil {
		t.Fatal(err)
	}
	if res.Done || res.Orders != 1 || res.Addresses != 2 || !domain.IsPseudonym(res.Pseudonym) {
		t.Fatalf("erase: %+v", res)
	}
	// While it runs, a new event for the contact waits.
	again, err := eraser.Erase(ctx, acct, second, "cli:operator")
	if err != nil || !again.Already || again.Pseudonym != res.Pseudonym {
		t.Fatalf("second erase while the first runs: %+v %v", again, err)
	}
	r.forward()
	if !r.it.Forgotten(first) || !r.it.Forgotten(second) || r.it.Knows(first) || r.it.Knows(second) {
		t.Fatal("Iterable did not forget both addresses")
	}
	if _, ok := r.op.ContactByEmail(second); ok {
		t.Fatal("ONTRAPORT still has the contact under its address")
	}
	anon, ok := r.op.ContactByEmail(res.Pseudonym)
	if !ok || anon.Fields["firstname"] != "" || anon.Fields["lastname"] != "" {
		t.Fatalf("ONTRAPORT contact not anonymized: %+v %v", anon, ok)
	}
	if n := len(r.op.Transactions()); n != transactions || n == 0 {
		t.Fatalf("ONTRAPORT holds %d transactions after the erasure, %d before", n, transactions)
	}
	// The erasure ends once it has outlasted anything that read the contact before it began.
	r.tick()
	if st, err := eraser.Status(ctx, "acme", res.Pseudonym); err != nil || st == nil {
		t.Fatalf("the erasure ended before SettleAfter: %+v %v", st, err)
	}
	h.clk.Advance(erasure.SettleAfter)
	r.tick()
	if st, err := eraser.Status(ctx, "acme", res.Pseudonym); err != nil || st != nil {
		t.Fatalf("the erasure is still pending: %+v %v", st, err)
	}

	if left := traces(t, h.dir, first, second, "Marcus", "Reyes"); len(left) > 0 {
		t.Fatalf("%d item(s) still name the erased contact:\n%s", len(left), strings.Join(left, "\n"))
	}
	if n := len(h.quarantined("acme")); n != 1 {
		t.Fatalf("%d quarantined events after the erasure, want the other person's 1", n)
	}
	if after := h.reportsJSON("acme", rollup.DateOf(2020, 1, 1), rollup.DateOf(2027, 12, 31)); after != before {
		t.Fatalf("the reports changed with the erasure\nbefore %s\nafter  %s", before, after)
	}
	h.verifyClean("acme")
	pv, err := history.New(h.env.Store).View(ctx, "acme", res.Pseudonym)
	if err != nil || pv.Profile == nil || len(pv.Orders) != 1 || pv.Profile.LTV.IsZero() {
		t.Fatalf("the pseudonym's contact: %+v %v", pv, err)
	}
	page, err := audit.List(ctx, h.env.Store, "acme", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	entries := page.Entries
	if len(entries) != 2 || entries[0].Outcome != audit.Done || entries[1].Outcome != "started" {
		t.Fatalf("audit log: %+v", entries)
	}
	for _, e := range entries {
		if e.Actor != "cli:operator" || e.Action != audit.EraseContact || e.Target != res.Pseudonym {
			t.Fatalf("audit entry: %+v", e)
		}
	}
	if !entries[0].At.After(entries[1].At) {
		t.Fatalf("the end is not recorded after the start: %+v", entries)
	}

	// The same address buys again: a new contact, with nothing of the erased one.
	again2 := strings.ReplaceAll(string(fixture(t, "ultracart", "order_create.json")), "DEMO-0002001", "DEMO-0002777")
	h.postUC("acme", []byte(again2))
	h.ingestOnly()
	v := h.contact("acme", first)
	if v.Profile == nil || len(v.Orders) != 1 || v.Orders[0].OrderID != "DEMO-0002777" || len(v.Profile.PreviousEmails) != 0 {
		t.Fatalf("the new contact: %+v", v)
	}
	h.verifyClean("acme")
}

// TestCustomerDeleteErases: with ultracart.erase_on_customer_delete, UltraCart's customer_delete
// erases the contact the deleted profile had (reached by its email now, after an email change),
// and ONTRAPORT deletes its contact when ontraport.erasure says so. Without the setting, the
// same event leaves the contact as it is.
func TestCustomerDeleteErases(t *testing.T) {
	for _, optIn := range []bool{true, false} {
		t.Run(fmt.Sprintf("opt_in=%v", optIn), func(t *testing.T) {
			r := newErasureRig(t, "")
			h := r.h
			ctx := context.Background()
			patch := fmt.Sprintf(`{"ontraport":{"erasure":"delete"},"ultracart":{"erase_on_customer_delete":%v}}`, optIn)
			if _, err := h.env.Accounts.Put(ctx, "acme", []byte(patch)); err != nil {
				t.Fatal(err)
			}
			const first, second = "marcus.reyes@example.com", "marcus@reyes-design.example.com"
			for _, f := range []string{"order_create.json", "customer_update.json"} {
				h.postUC("acme", fixture(t, "ultracart", f))
				h.ingestOnly()
			}
			r.forward()
			if _, ok := r.op.ContactByEmail(second); !ok {
				t.Fatal("ONTRAPORT has no contact before the deletion")
			}
			contacts := len(r.op.Contacts())
			h.postUC("acme", fixture(t, "ultracart", "customer_delete.json"))
			h.ingestOnly()
			if n := len(h.quarantined("acme")); n != 0 {
				t.Fatalf("%d events quarantined", n)
			}
			r.forward()
			h.clk.Advance(erasure.SettleAfter)
			r.tick()
			left := traces(t, h.dir, first, second, "Marcus", "Reyes")
			if !optIn {
				if len(left) == 0 || h.contact("acme", second).Profile == nil || r.it.Forgotten(second) {
					t.Fatal("customer_delete erased the contact without the account's opt-in")
				}
				return
			}
			if len(left) > 0 {
				t.Fatalf("%d item(s) still name the erased contact:\n%s", len(left), strings.Join(left, "\n"))
			}
			if !r.it.Forgotten(first) || !r.it.Forgotten(second) {
				t.Fatal("Iterable did not forget both addresses")
			}
			if n := len(r.op.Contacts()); n != contacts-1 {
				t.Fatalf("ONTRAPORT holds %d contacts, %d before: the erased one was not deleted", n, contacts)
			}
			for _, c := range r.op.Contacts() {
				if strings.Contains(strings.ToLower(fmt.Sprint(c.Fields)), "reyes") {
					t.Fatalf("ONTRAPORT still has the contact: %+v", c)
				}
			}
			page, err := audit.List(ctx, h.env.Store, "acme", "", 10)
			if err != nil || len(page.Entries) != 2 || page.Entries[0].Actor != "ultracart customer_delete" {
				t.Fatalf("audit log: %+v %v", page.Entries, err)
			}
			h.verifyClean("acme")
		})
	}
}

// TestEventsWaitForAnErasure: events of a contact that arrive while it is being erased (a new
// order from the same address, the shipment of an order it placed before) wait on the ingest
// queue, while another customer's order goes through at once. Once the erasure is complete, the
// new order starts a new contact, and the shipment lands on the erased order under the
// pseudonym, naming nobody; all within ten minutes of simulated time.
func TestEventsWaitForAnErasure(t *testing.T) {
	r := newErasureRig(t, "")
	h := r.h
	ctx := context.Background()
	const email = "marcus.reyes@example.com"
	h.postUC("acme", fixture(t, "ultracart", "order_create.json"))
	h.ingestOnly()
	r.forward()
	acct, err := h.env.Accounts.Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.env.App.Eraser().Erase(ctx, acct, email, "cli:operator")
	if err != nil || res.Done {
		t.Fatalf("erase: %+v %v", res, err)
	}
	start := h.clk.Now()
	h.postUC("acme", []byte(strings.ReplaceAll(string(fixture(t, "ultracart", "order_create.json")), "DEMO-0002001", "DEMO-0002002")))
	h.postUC("acme", fixture(t, "ultracart", "order_ship.json"))
	other := strings.NewReplacer("DEMO-0002001", "DEMO-0003001", email, "ava.chen@example.com", "600134", "700134").
		Replace(string(fixture(t, "ultracart", "order_create.json")))
	h.postUC("acme", []byte(other))

	waited := 0
	for minute := 0; ; minute++ {
		if minute > 30 {
			t.Fatalf("events still waiting after %d simulated minutes", minute)
		}
		rs, err := h.env.Queue.Receive(ctx, queue.Ingest, queue.ReceiveOptions{Max: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) > 0 {
			resp, err := h.env.App.Ingest(ctx, toSQSEvent(queue.Ingest, rs))
			if err != nil {
				t.Fatal(err)
			}
			failed := map[string]bool{}
			for _, f := range resp.BatchItemFailures {
				failed[f.ItemIdentifier] = true
			}
			waited += len(failed)
			for _, m := range rs {
				if !failed[m.MessageID] {
					if err := h.env.Queue.Delete(ctx, queue.Ingest, m.ReceiptHandle); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if minute == 0 {
			if v := h.contact("acme", "ava.chen@example.com"); v.Profile == nil {
				t.Fatal("another customer's order waited for the erasure")
			}
			if v := h.contact("acme", email); v.Profile != nil || len(v.Orders) != 0 {
				t.Fatal("an event of the contact being erased was applied during the erasure")
			}
		}
		r.forward()
		r.tick()
		st, err := h.env.Queue.Stats(ctx, queue.Ingest)
		if err != nil {
			t.Fatal(err)
		}
		pending, err := h.env.App.Eraser().Status(ctx, "acme", res.Pseudonym)
		if err != nil {
			t.Fatal(err)
		}
		if st.Visible+st.InFlight+st.Delayed == 0 && pending == nil {
			break
		}
		h.clk.Advance(time.Minute)
	}
	if waited < 2 {
		t.Fatalf("%d receives waited; the contact's two events should have", waited)
	}
	t.Logf("%d receives waited; everything applied after %s of simulated time", waited, h.clk.Now().Sub(start))
	if took := h.clk.Now().Sub(start); took > 10*time.Minute {
		t.Errorf("the waiting events were applied after %s of simulated time", took)
	}
	v := h.contact("acme", email)
	if v.Profile == nil || len(v.Orders) != 1 || v.Orders[0].OrderID != "DEMO-0002002" || v.Profile.FirstName != "Marcus" {
		t.Fatalf("the new contact: %+v", v)
	}
	p := h.contact("acme", res.Pseudonym)
	if len(p.Orders) != 1 || p.Orders[0].OrderID != "DEMO-0002001" || len(p.Orders[0].Tracking) != 0 ||
		p.Orders[0].Billing.FirstName != "" || p.Orders[0].ShippedAt.IsZero() {
		t.Fatalf("the erased order after its shipment: %+v", p.Orders)
	}
	h.verifyClean("acme")
}
