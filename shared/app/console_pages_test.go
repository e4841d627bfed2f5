package app_test

import (
	"context"
	"encoding/json"
	"github.com/cartrelay/cartrelay/shared/destinations"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/audit"
	"github.com/cartrelay/cartrelay/shared/console"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

// pagesEnv is the embedded runtime with the console on, two accounts with a history each (an
// order, a parked delivery to ONTRAPORT, a quarantined event, a dead letter), and a signed-in
// session per account.
type pagesEnv struct {
	*harness
	dest     *flaky
	sessions *console.Sessions
	sess     map[string]console.Session
}

// Each account's things, by name, for the tests to address.
type accountData struct {
	email, orderKey, factID, quarantineID, deadLetterID string
}

func newPagesEnv(t *testing.T) (*pagesEnv, map[string]accountData) {
	t.Helper()
	h := newHarnessWith(t, wiring.Options{Config: app.Config{PublicBaseURL: hubURL, ConsoleSessionKey: consoleKey}})
	e := &pagesEnv{harness: h, dest: &flaky{broken: true, permanent: true, delivered: map[string]int{}}, sess: map[string]console.Session{}}
	s, err := console.NewSessions(consoleKey, hubURL)
	if err != nil {
		t.Fatal(err)
	}
	e.sessions = s
	ctx := context.Background()
	data := map[string]accountData{}
	for _, acct := range []string{"acme", "bravo"} {
		h.account(acct, `,"iterable":{"enabled":false},"timezone":"America/New_York"`)
		order := string(fixture(t, "ultracart", "order_create.json"))
		email := "marcus.reyes@example.com"
		if acct == "bravo" {
			// B's contact and order have names of their own, so a page of A's that showed
			// them would give itself away.
			order = strings.NewReplacer("DEMO-0002001", "BRAVO-777", "marcus.reyes@example.com", "bea.bravo@example.com", "Marcus", "Bea", "Reyes", "Bravo").Replace(order)
			email = "bea.bravo@example.com"
		}
		h.postUC(acct, []byte(order))
		h.postUC(acct, []byte(strings.ReplaceAll(strings.ReplaceAll(order, `"USD"`, `"XYZ"`), "-0002001", "-0002099")))
		h.ingestOnly()
		h.forwardAll(e.dest)
		d := accountData{email: email}
		failed, err := history.New(h.env.Store).Deliveries(ctx, acct, true, 0)
		if err != nil || len(failed) == 0 {
			t.Fatalf("%s: no parked delivery: %v", acct, err)
		}
		for _, f := range failed {
			if f.FactKind == string(domain.FactOrderPlaced) {
				d.factID = f.FactID
			}
		}
		v := h.contact(acct, email)
		if len(v.Orders) != 1 {
			t.Fatalf("%s: orders %+v", acct, v.Orders)
		}
		d.orderKey = v.Orders[0].Key
		q := h.quarantined(acct)
		if len(q) != 1 {
			t.Fatalf("%s: quarantined %+v", acct, q)
		}
		d.quarantineID = q[0].ID
		if err := h.env.Queue.Send(ctx, queue.Ingest+queue.DLQSuffix, []queue.Message{{Body: `{"v":2}` + "\n" + `{"events":[]}`,
			Attributes: map[string]string{"account": acct, "source": "ultracart"}}}); err != nil {
			t.Fatal(err)
		}
		dl, err := queue.Peek(ctx, h.env.Queue, destinations.Queues(), queue.Ingest+queue.DLQSuffix, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range dl {
			if r.Attributes["account"] == acct {
				d.deadLetterID = r.MessageID
			}
		}
		sess, err := s.IssueVia(acct, console.ViaLink, h.clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		e.sess[acct] = sess
		data[acct] = d
	}
	return e, data
}

func (e *pagesEnv) cookie(account string) string {
	return cookieValue(e.t, []string{e.sessions.SetCookie(e.sess[account], e.clk.Now())})
}

func (e *pagesEnv) get(account, path string, q url.Values) events.APIGatewayV2HTTPResponse {
	e.t.Helper()
	req := httpReq(http.MethodGet, path, "", nil, nil)
	req.RawQueryString = q.Encode()
	req.Cookies = []string{e.cookie(account)}
	resp, err := e.env.App.Connect(context.Background(), req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// post submits a console form with the session's CSRF token.
func (e *pagesEnv) post(account, path string, form url.Values) events.APIGatewayV2HTTPResponse {
	e.t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	f.Set("csrf", e.sessions.CSRFToken(e.sess[account]))
	req := httpReq(http.MethodPost, path, "application/x-www-form-urlencoded", []byte(f.Encode()), nil)
	req.Cookies = []string{e.cookie(account)}
	req.RequestContext.HTTP.SourceIP = "203.0.113.7"
	resp, err := e.env.App.Connect(context.Background(), req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

func wantPage(t *testing.T, what string, resp events.APIGatewayV2HTTPResponse, status int, wants ...string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s: status %d, want %d: %s", what, resp.StatusCode, status, resp.Body)
		return
	}
	for _, w := range wants {
		if !strings.Contains(resp.Body, w) {
			t.Errorf("%s lacks %q", what, w)
			if os.Getenv("SHOWPAGE") != "" {
				t.Log(resp.Body)
			}
		}
	}
}

func (e *pagesEnv) auditLog(account string) []audit.Entry {
	e.t.Helper()
	p, err := audit.List(context.Background(), e.env.Store, account, "", 50)
	if err != nil {
		e.t.Fatal(err)
	}
	return p.Entries
}

// TestConsolePagesShowTheAccount reads every page of the console for an account with an order, a
// parked delivery, a quarantined event and a dead letter.
func TestConsolePagesShowTheAccount(t *testing.T) {
	e, data := newPagesEnv(t)
	d := data["acme"]
	esc := func(s string) string { return strings.ReplaceAll(s, "'", "&#39;") }

	parked := map[string]bool{}
	failed, _ := history.New(e.env.Store).Deliveries(context.Background(), "acme", true, 0)
	for _, f := range failed {
		parked[f.FactID] = true
	}
	home := e.get("acme", "/console/home", nil)
	wantPage(t, "home", home, http.StatusOK, "Needs attention", `<span class="n">`+strconv.Itoa(len(parked))+`</span>failed deliveries waiting for a replay`,
		`<span class="n">1</span>quarantined events not replayed`, `<span class="n">1</span>dead letters`, "2 in all accounts",
		"ONTRAPORT", "failing", "What to do:", "Queues", "ingest-dlq", "Recent activity", "/webhooks/ultracart/acme")
	if home.Headers["content-security-policy"] == "" || !strings.Contains(home.Headers["content-security-policy"], "default-src 'none'") {
		t.Errorf("home CSP %q", home.Headers["content-security-policy"])
	}

	wantPage(t, "contacts", e.get("acme", "/console/contacts", nil), http.StatusOK, "Type an email address")
	prefix := e.get("acme", "/console/contacts", url.Values{"q": {"MARCUS"}})
	wantPage(t, "search by email prefix", prefix, http.StatusOK, d.email, "59.98 USD")
	exact := e.get("acme", "/console/contacts", url.Values{"q": {d.email}})
	if exact.StatusCode != http.StatusFound || !strings.Contains(exact.Headers["location"], "/console/contact?email=marcus.reyes%40example.com") {
		t.Errorf("an exact address: %d %v", exact.StatusCode, exact.Headers)
	}
	wantPage(t, "search by last name", e.get("acme", "/console/contacts", url.Values{"q": {"reyes"}, "by": {"name"}}), http.StatusOK, d.email, "Marcus Reyes")
	wantPage(t, "search without a match", e.get("acme", "/console/contacts", url.Values{"q": {"zed"}, "by": {"name"}}), http.StatusOK,
		"No contact", "Search by email instead")

	wantPage(t, "contact", e.get("acme", "/console/contact", url.Values{"email": {d.email}}), http.StatusOK,
		"Marcus Reyes", "Lifetime value", "DEMO-0002001", "Timeline", "OrderPlaced", "Deliveries", "failed, waiting for a replay")

	orders := e.get("acme", "/console/orders", url.Values{"from": {"2024-04-01"}, "to": {"2024-06-30"}})
	wantPage(t, "orders", orders, http.StatusOK, "DEMO-0002001", d.email, "Totals from the reports", "59.98 USD</span>net of 1 paid orders")
	wantPage(t, "orders over years: the totals are a link away", e.get("acme", "/console/orders", url.Values{"from": {"2000-01-01"}}), http.StatusOK,
		"DEMO-0002001", "Totals are shown for ranges up to 92 days", "/console/report?by=month&amp;from=2000-01-01")
	wantPage(t, "orders, test only", e.get("acme", "/console/orders", url.Values{"from": {"2000-01-01"}, "test": {"only"}}), http.StatusOK, "No orders match")
	wantPage(t, "orders, bad date", e.get("acme", "/console/orders", url.Values{"from": {"yesterday"}}), http.StatusBadRequest, "is not a date")
	wantPage(t, "orders from a source that is not registered", e.get("acme", "/console/orders", url.Values{"from": {"2000-01-01"}, "source": {"shopify"}}),
		http.StatusBadRequest, "There are no orders from “shopify”", "the sources are ultracart, thrivecart")
	wantPage(t, "orders from one source", e.get("acme", "/console/orders", url.Values{"from": {"2000-01-01"}, "source": {"ultracart"}}), http.StatusOK,
		"DEMO-0002001", `<option value="ultracart" selected>UltraCart</option>`, `<option value="thrivecart">ThriveCart</option>`)
	wantPage(t, "order", e.get("acme", "/console/order", url.Values{"key": {d.orderKey}}), http.StatusOK,
		"Order DEMO-0002001", "Items", "Amounts", "What the destinations did", "OrderPlaced")

	deliveries := e.get("acme", "/console/deliveries", url.Values{"status": {"parked"}, "from": {"2000-01-01"}})
	wantPage(t, "failed deliveries", deliveries, http.StatusOK, "OrderPlaced", "Replay every failed delivery to ONTRAPORT")
	delivery := e.get("acme", "/console/delivery", url.Values{"email": {d.email}, "dest": {"ontraport"}, "fact": {d.factID}})
	wantPage(t, "delivery", delivery, http.StatusOK, "https://api.example.test/x", esc("400 Bad Request: field lreferrer is read-only"), ">Replay</button>", "What to do:")

	wantPage(t, "quarantine", e.get("acme", "/console/quarantine", nil), http.StatusOK, d.quarantineID, "invalid")
	wantPage(t, "quarantined event", e.get("acme", "/console/quarantine/event", url.Values{"id": {d.quarantineID}}), http.StatusOK,
		"XYZ", "not an ISO 4217 currency code", ">Discard</button>", `&#34;name&#34;: &#34;order_create&#34;`)
	wantPage(t, "dead letters", e.get("acme", "/console/dead-letters", nil), http.StatusOK, "ingest-dlq", d.deadLetterID)
	wantPage(t, "dead letter", e.get("acme", "/console/dead-letter", url.Values{"queue": {"ingest-dlq"}, "id": {d.deadLetterID}}), http.StatusOK,
		"Why it is here", "The ingest function was handed it 5 times", "account: acme")
	wantPage(t, "activity", e.get("acme", "/console/audit", nil), http.StatusOK, "Nothing has been done")
	wantPage(t, "unknown page", e.get("acme", "/console/nowhere", nil), http.StatusNotFound, "There is no console page here")
	// A page that only reads refuses a post; a form address refuses a GET.
	wantPage(t, "post to a read-only page", e.post("acme", "/console/orders", nil), http.StatusMethodNotAllowed)
	wantPage(t, "get of a form address", e.get("acme", "/console/delivery/replay", nil), http.StatusMethodNotAllowed)
}

// TestConsoleReplaysAndDiscards: every action asks first and does nothing until confirmed, then
// does exactly what it said, and is in the activity log, a discard with what it removed.
func TestConsoleReplaysAndDiscards(t *testing.T) {
	e, data := newPagesEnv(t)
	ctx := context.Background()
	d := data["acme"]
	target := url.Values{"email": {d.email}, "dest": {"ontraport"}, "fact": {d.factID}}

	ask := e.post("acme", "/console/delivery/replay", target)
	wantPage(t, "replay, unconfirmed", ask, http.StatusOK, "Replay this delivery?", "Replay now", `name="confirm" value="yes"`)
	if n := e.queued(ontraportQueue); n != 0 {
		t.Fatalf("an unconfirmed replay queued %d", n)
	}
	target.Set("confirm", "yes")
	wantPage(t, "replay", e.post("acme", "/console/delivery/replay", target), http.StatusOK, "Replay queued")
	if n := e.queued(ontraportQueue); n != 1 {
		t.Fatalf("the replay queued %d messages, want 1", n)
	}
	// The cause is fixed: the replayed fact goes through, and its page says so.
	e.dest.broken = false
	e.forwardAll(e.dest)
	if e.dest.delivered[d.factID] != 1 {
		t.Fatalf("delivered %v, want the replayed fact once", e.dest.delivered)
	}
	wantPage(t, "delivery after the replay", e.get("acme", "/console/delivery", url.Values{"email": {d.email}, "dest": {"ontraport"}, "fact": {d.factID}}),
		http.StatusOK, ">delivered</span>")
	if strings.Contains(e.get("acme", "/console/delivery", url.Values{"email": {d.email}, "dest": {"ontraport"}, "fact": {d.factID}}).Body, ">Replay</button>") {
		t.Error("a delivered fact still offers a replay")
	}

	// Quarantine: a discard removes the event and keeps it in the activity log.
	qid := url.Values{"id": {d.quarantineID}}
	wantPage(t, "discard, unconfirmed", e.post("acme", "/console/quarantine/discard", qid), http.StatusOK, "Discard this event?", "never be ingested")
	if len(e.quarantined("acme")) != 1 {
		t.Fatal("an unconfirmed discard removed the event")
	}
	qid.Set("confirm", "yes")
	wantPage(t, "discard", e.post("acme", "/console/quarantine/discard", qid), http.StatusOK, "Event discarded")
	if q := e.quarantined("acme"); len(q) != 0 {
		t.Fatalf("still quarantined: %+v", q)
	}
	wantPage(t, "discard again", e.post("acme", "/console/quarantine/discard", qid), http.StatusNotFound)

	// Dead letters: a replay moves the message back to its queue; bravo's stays.
	dl := url.Values{"queue": {"ingest-dlq"}, "id": {d.deadLetterID}}
	wantPage(t, "dead letter replay, unconfirmed", e.post("acme", "/console/dead-letter/replay", dl), http.StatusOK, "Replay this dead letter?")
	before := e.queued(queue.Ingest)
	dl.Set("confirm", "yes")
	wantPage(t, "dead letter replay", e.post("acme", "/console/dead-letter/replay", dl), http.StatusOK, "back in the ingest queue")
	if got := e.queued(queue.Ingest); got != before+1 {
		t.Errorf("ingest queue holds %d, want %d", got, before+1)
	}
	if left, _ := queue.Peek(ctx, e.env.Queue, destinations.Queues(), "ingest-dlq", 10); len(left) != 1 || left[0].Attributes["account"] != "bravo" {
		t.Errorf("left in ingest-dlq: %+v, want bravo's only", left)
	}
	// bravo discards its own.
	bdl := url.Values{"queue": {"ingest-dlq"}, "id": {data["bravo"].deadLetterID}, "confirm": {"yes"}}
	wantPage(t, "dead letter discard", e.post("bravo", "/console/dead-letter/discard", bdl), http.StatusOK, "Dead letter discarded")
	if left, _ := queue.Peek(ctx, e.env.Queue, destinations.Queues(), "ingest-dlq", 10); len(left) != 0 {
		t.Errorf("left in ingest-dlq after the discard: %+v", left)
	}

	log := e.auditLog("acme")
	actions := map[string]audit.Entry{}
	for _, en := range log {
		actions[en.Action] = en
	}
	for _, a := range []string{audit.ReplayDelivery, audit.DiscardQuarantine, audit.ReplayDeadLetter} {
		en, ok := actions[a]
		if !ok {
			t.Errorf("no %s in the activity log: %+v", a, log)
			continue
		}
		if en.Outcome != audit.Done || !strings.Contains(en.Actor, "signed in with a link") || !strings.Contains(en.Actor, "203.0.113.7") {
			t.Errorf("%s entry %+v", a, en)
		}
	}
	var kept history.Quarantined
	if err := json.Unmarshal(actions[audit.DiscardQuarantine].Kept, &kept); err != nil || kept.ID != d.quarantineID || !strings.Contains(kept.Message, "XYZ") {
		t.Errorf("the discard keeps %s, want the quarantined event with its message", actions[audit.DiscardQuarantine].Kept)
	}
	blog := e.auditLog("bravo")
	if len(blog) != 1 || blog[0].Action != audit.DiscardDeadLetter || !strings.Contains(string(blog[0].Kept), `{\"events\":[]}`) {
		t.Errorf("bravo's log %+v, want the discard with the message", blog)
	}
	home := e.get("acme", "/console/home", nil)
	wantPage(t, "home after the actions", home, http.StatusOK, "Replayed the OrderPlaced of "+d.email, "Discarded the quarantined")
}

// TestConsoleBulkReplay: every failed delivery to a destination, in one go, once confirmed.
func TestConsoleBulkReplay(t *testing.T) {
	e, _ := newPagesEnv(t)
	form := url.Values{"dest": {"ontraport"}}
	wantPage(t, "bulk, unconfirmed", e.post("acme", "/console/deliveries/replay", form), http.StatusOK, "Replay every failed delivery to ONTRAPORT?")
	if n := e.queued(ontraportQueue); n != 0 {
		t.Fatalf("unconfirmed bulk replay queued %d", n)
	}
	form.Set("confirm", "yes")
	resp := e.post("acme", "/console/deliveries/replay", form)
	wantPage(t, "bulk", resp, http.StatusOK, "are queued for ONTRAPORT again")
	n := e.queued(ontraportQueue)
	failed, _ := history.New(e.env.Store).Deliveries(context.Background(), "acme", true, 0)
	if n == 0 || n != len(failed) {
		t.Errorf("bulk replay queued %d, want the %d failed facts of acme (bravo's stay)", n, len(failed))
	}
	if log := e.auditLog("acme"); len(log) != 1 || log[0].Action != audit.ReplayDeliveries {
		t.Errorf("activity %+v", log)
	}
	wantPage(t, "unknown destination", e.post("acme", "/console/deliveries/replay", url.Values{"dest": {"mailchimp"}, "confirm": {"yes"}}), http.StatusNotFound)
}

// TestConsoleAccountIsolation: a session for acme gets 404 for every address that names one of
// bravo's things, whether it reads or acts, and bravo's things are untouched.
func TestConsoleAccountIsolation(t *testing.T) {
	e, data := newPagesEnv(t)
	b := data["bravo"]
	routes := []struct {
		method, path string
		values       url.Values
	}{
		{"GET", "/console/contact", url.Values{"email": {b.email}}},
		{"GET", "/console/order", url.Values{"key": {b.orderKey}}},
		{"GET", "/console/delivery", url.Values{"email": {b.email}, "dest": {"ontraport"}, "fact": {b.factID}}},
		{"POST", "/console/delivery/replay", url.Values{"email": {b.email}, "dest": {"ontraport"}, "fact": {b.factID}, "confirm": {"yes"}}},
		{"GET", "/console/quarantine/event", url.Values{"id": {b.quarantineID}}},
		{"POST", "/console/quarantine/replay", url.Values{"id": {b.quarantineID}, "confirm": {"yes"}}},
		{"POST", "/console/quarantine/discard", url.Values{"id": {b.quarantineID}, "confirm": {"yes"}}},
		{"GET", "/console/dead-letter", url.Values{"queue": {"ingest-dlq"}, "id": {b.deadLetterID}}},
		{"POST", "/console/dead-letter/replay", url.Values{"queue": {"ingest-dlq"}, "id": {b.deadLetterID}, "confirm": {"yes"}}},
		{"POST", "/console/dead-letter/discard", url.Values{"queue": {"ingest-dlq"}, "id": {b.deadLetterID}, "confirm": {"yes"}}},
	}
	for _, r := range routes {
		var resp events.APIGatewayV2HTTPResponse
		if r.method == "GET" {
			resp = e.get("acme", r.path, r.values)
		} else {
			resp = e.post("acme", r.path, r.values)
		}
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s with bravo's %v: %d, want 404", r.method, r.path, r.values, resp.StatusCode)
		}
		for _, leak := range []string{"bea.bravo", "BRAVO-777", "Bravo"} {
			if strings.Contains(resp.Body, leak) && !strings.Contains(resp.Body, "no contact "+b.email) && !strings.Contains(resp.Body, "no order") {
				t.Errorf("%s %s shows %q of bravo", r.method, r.path, leak)
			}
		}
	}
	// Lists and searches never show bravo's.
	for _, r := range []struct {
		path string
		q    url.Values
	}{
		{"/console/home", nil}, {"/console/contacts", url.Values{"q": {"bea"}}}, {"/console/contacts", url.Values{"q": {"bravo"}, "by": {"name"}}},
		{"/console/orders", url.Values{"from": {"2000-01-01"}}}, {"/console/deliveries", url.Values{"from": {"2000-01-01"}}},
		{"/console/quarantine", nil}, {"/console/dead-letters", nil}, {"/console/audit", nil},
	} {
		resp := e.get("acme", r.path, r.q)
		if resp.StatusCode != http.StatusOK || strings.Contains(resp.Body, "bea.bravo") || strings.Contains(resp.Body, "BRAVO-777") ||
			strings.Contains(resp.Body, b.deadLetterID) || strings.Contains(resp.Body, b.quarantineID) {
			t.Errorf("%s %v under acme's session: %d, or it shows bravo's", r.path, r.q, resp.StatusCode)
		}
	}
	if len(e.quarantined("bravo")) != 1 || e.queued(ontraportQueue) != 0 {
		t.Error("bravo's quarantine or deliveries changed through acme's session")
	}
	if left, _ := queue.Peek(context.Background(), e.env.Queue, destinations.Queues(), "ingest-dlq", 10); len(left) != 2 {
		t.Errorf("dead letters after acme's attempts: %d, want both", len(left))
	}
	if log := e.auditLog("bravo"); len(log) != 0 {
		t.Errorf("bravo's activity log holds %+v", log)
	}
}
