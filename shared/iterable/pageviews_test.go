package iterable_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/visitortoken"
)

func trackReq(method, path, ip, body string) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{RawPath: path, Body: body, RequestContext: events.APIGatewayV2HTTPRequestContext{
		HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, SourceIP: ip}}}
}

// view is a page view body as the snippet posts it; extra is more JSON members.
func view(visitor, page, extra string) string {
	return `{"visitor":"` + visitor + `","url":"https://shop.example.com` + page + `","title":"Page ` + page + `"` + extra + `}`
}

const (
	visitorA = "b7f3c2a1d4e5f60718293a4b5c6d7e8f"
	visitorB = "0f9e8d7c6b5a49382716059483726150"
)

// tracking is a pipeline with a tracker over it and the account's tracking secret.
type tracking struct {
	*pipeline
	tr     *iterable.Tracker
	secret string
}

func newTracking(t *testing.T, perIP int) *tracking {
	p := newPipeline(t, "")
	tr, err := iterable.NewTracker(iterable.TrackerDeps{Store: p.rt.Store, Queue: p.rt.Queue, Accounts: p.rt.Accounts, Keys: p.rt.Keys,
		Clock: p.clk, PerIP: ratelimit.Limit{Requests: perIP, Window: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	k, err := p.rt.Keys.Ensure(context.Background(), "acme", accountkeys.Tracking)
	if err != nil {
		t.Fatal(err)
	}
	return &tracking{pipeline: p, tr: tr, secret: k.Value}
}

func (tk *tracking) post(path, ip, body string, headers map[string]string) events.APIGatewayV2HTTPResponse {
	req := trackReq("POST", path, ip, body)
	req.Headers = headers
	resp := tk.tr.Handle(context.Background(), req)
	if resp.Headers["access-control-allow-origin"] != "*" {
		tk.t.Fatalf("no CORS header on %d %s", resp.StatusCode, resp.Body)
	}
	tk.pump()
	return resp
}

// token is an identity token as the merchant's server makes it.
func (tk *tracking) token(email string, ttl time.Duration) string {
	tok, err := visitortoken.Sign(tk.secret, email, tk.clk.Now().Add(ttl))
	if err != nil {
		tk.t.Fatal(err)
	}
	return tok
}

func (tk *tracking) counts(visitor, email string) (pending, waiting, events int) {
	ctx := context.Background()
	p, _ := store.QueryAll(ctx, tk.rt.Store, store.Query{PK: "A#acme#PVV#" + visitor})
	w, _ := store.QueryAll(ctx, tk.rt.Store, store.Query{PK: iterable.PageViewsPK("acme", email)})
	n := 0
	for _, e := range tk.fake.Events(iterable.EventPageView) {
		if e.Email == email {
			n++
		}
	}
	return len(p), len(w), n
}

// TestPageViews: the tracking endpoint's checks, and a browser's views from unknown to
// identified by a token the merchant's server signed, to pageView events.
func TestPageViews(t *testing.T) {
	tk := newTracking(t, 4)
	ctx := context.Background()
	if _, err := tk.rt.Accounts.Put(ctx, "quiet", []byte(`{"allowed_domains":"shop.example.com","iterable":{"enabled":false}}`)); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name                string
		method, path, ip    string
		body                string
		status              int
		wantPending, wantPV int // stored items afterwards
		wantEvents          int // pageView events at Iterable after pumping
	}{
		{"preflight", "OPTIONS", "/track/acme", "10.0.0.1", "", 204, 0, 0, 0},
		{"GET refused", "GET", "/track/acme", "10.0.0.1", "", 405, 0, 0, 0},
		{"no account", "POST", "/track/", "10.0.0.1", view(visitorA, "/a", ""), 404, 0, 0, 0},
		{"too large", "POST", "/track/acme", "10.0.0.1", strings.Repeat("x", 9000), 413, 0, 0, 0},
		{"not JSON", "POST", "/track/acme", "10.0.0.1", "hello", 400, 0, 0, 0},
		{"bad visitor", "POST", "/track/acme", "10.0.0.1", view("x y", "/a", ""), 400, 0, 0, 0},
		{"guessable visitor", "POST", "/track/acme", "10.0.0.1", view("abcdefgh", "/a", ""), 400, 0, 0, 0},
		{"script URL", "POST", "/track/acme", "10.0.0.1", `{"visitor":"` + visitorA + `","url":"javascript:alert(1)"}`, 403, 0, 0, 0},
		{"unknown browser is kept", "POST", "/track/acme", "10.0.0.2", view(visitorA, "/mugs", ""), 204, 1, 0, 0},
		{"second unknown view", "POST", "/track/acme", "10.0.0.2", view(visitorA, "/mugs/blue", ""), 204, 2, 0, 0},
		{"identified by token: all three go", "POST", "/track/acme", "10.0.0.2",
			view(visitorA, "/account", `,"identity":"`+tk.token("Ann@Example.com", time.Hour)+`"`), 204, 0, 0, 3},
		{"known browser", "POST", "/track/acme", "10.0.0.2", view(visitorA, "/tea", ""), 204, 0, 0, 4},
		{"rate limited per IP", "POST", "/track/acme", "10.0.0.2", view(visitorA, "/tea", ""), 429, 0, 0, 4},
		{"another IP is not", "POST", "/track/acme", "10.0.0.3", view(visitorA, "/spoons", ""), 204, 0, 0, 5},
		{"account not forwarding to Iterable", "POST", "/track/quiet", "10.0.0.3", view(visitorA, "/x", ""), 204, 0, 0, 5},
	}
	for _, st := range steps {
		resp := tk.tr.Handle(ctx, trackReq(st.method, st.path, st.ip, st.body))
		if resp.StatusCode != st.status {
			t.Fatalf("%s: %d %s, want %d", st.name, resp.StatusCode, resp.Body, st.status)
		}
		if resp.Headers["access-control-allow-origin"] != "*" {
			t.Fatalf("%s: no CORS header", st.name)
		}
		tk.pump()
		pending, waiting, evs := tk.counts(visitorA, "ann@example.com")
		if pending != st.wantPending || waiting != st.wantPV || evs != st.wantEvents {
			t.Fatalf("%s: %d pending, %d waiting to send, %d events; want %d, %d, %d", st.name, pending, waiting, evs,
				st.wantPending, st.wantPV, st.wantEvents)
		}
	}
	evs := tk.fake.Events(iterable.EventPageView)
	if evs[0].Email != "ann@example.com" || evs[0].Fields["path"] != "/mugs" || evs[0].Fields["title"] != "Page /mugs" {
		t.Fatalf("first pageView: %+v", evs[0])
	}
	if st, _ := tk.rt.Queue.Stats(ctx, iterable.Registration().Queue.Name); st.Visible+st.InFlight != 0 {
		t.Fatalf("queue not drained: %+v", st)
	}
	if errs := tk.fake.SpecErrors(); len(errs) > 0 {
		t.Fatal(errs)
	}
}

// TestTrackRefusesToNameAShopper: the attack the endpoint allowed, posting views for any
// address so that the merchant's browse-abandonment emails go to strangers, fails every way.
func TestTrackRefusesToNameAShopper(t *testing.T) {
	tk := newTracking(t, 1000)
	forged, _ := visitortoken.Sign(strings.Repeat("0", 64), "victim@example.com", tk.clk.Now().Add(time.Hour))
	longLived := tk.token("victim@example.com", 30*24*time.Hour)
	expired := tk.token("victim@example.com", time.Minute)
	tk.clk.Advance(2 * time.Minute)
	for _, tc := range []struct {
		name, body string
		status     int
		says       string
	}{
		{"an address in the body", view(visitorB, "/p", `,"email":"victim@example.com"`), 400, "cannot name the shopper"},
		{"a token signed with another secret", view(visitorB, "/p", `,"identity":"`+forged+`"`), 403, "signature does not match"},
		{"an expired token", view(visitorB, "/p", `,"identity":"`+expired+`"`), 403, "expired"},
		{"a token that lives for a month", view(visitorB, "/p", `,"identity":"`+longLived+`"`), 403, "lives too long"},
		{"an address as the token", view(visitorB, "/p", `,"identity":"victim@example.com"`), 403, "malformed"},
	} {
		resp := tk.post("/track/acme", "10.0.0.9", tc.body, nil)
		if resp.StatusCode != tc.status || !strings.Contains(resp.Body, tc.says) {
			t.Errorf("%s: %d %s, want %d saying %q", tc.name, resp.StatusCode, resp.Body, tc.status, tc.says)
		}
	}
	if _, waiting, evs := tk.counts(visitorB, "victim@example.com"); waiting != 0 || evs != 0 {
		t.Fatalf("views reached the victim: %d waiting, %d events", waiting, evs)
	}
	if it, err := tk.rt.Store.Get(context.Background(), "A#acme#V#"+visitorB, "-"); err == nil {
		t.Fatalf("the browser was tied to someone: %s", it.Data)
	}
}

// TestTrackOnlyTheStoresPages: pages off the account's allowed_domains are refused, and an
// account that lists none accepts no page views.
func TestTrackOnlyTheStoresPages(t *testing.T) {
	tk := newTracking(t, 1000)
	if _, err := tk.rt.Accounts.Put(context.Background(), "nodomains", []byte(`{"iterable":{"enabled":true}}`)); err != nil {
		t.Fatal(err)
	}
	other := `{"visitor":"` + visitorB + `","url":"https://evil.example.net/p","title":"Win a prize"}`
	for _, tc := range []struct {
		name, path, body string
		headers          map[string]string
		status           int
		says             string
	}{
		{"a page on another site", "/track/acme", other, nil, 403, "not on this store's domains"},
		{"a look-alike host", "/track/acme", strings.Replace(other, "evil.example.net", "shop.example.com.evil.net", 1), nil, 403, "not on this store's domains"},
		{"posted from another site", "/track/acme", view(visitorB, "/p", ""), map[string]string{"origin": "https://evil.example.net"}, 403, "page posting"},
		{"an account without allowed_domains", "/track/nodomains", view(visitorB, "/p", ""), nil, 403, "allowed_domains"},
		{"the store's page, from the store", "/track/acme", view(visitorB, "/p", ""), map[string]string{"origin": "https://shop.example.com"}, 204, ""},
	} {
		resp := tk.post(tc.path, "10.0.0.9", tc.body, tc.headers)
		if resp.StatusCode != tc.status || !strings.Contains(resp.Body, tc.says) {
			t.Errorf("%s: %d %s, want %d saying %q", tc.name, resp.StatusCode, resp.Body, tc.status, tc.says)
		}
	}
	if pending, _, _ := tk.counts(visitorB, ""); pending != 1 {
		t.Fatalf("%d views kept, want only the store's own page", pending)
	}
}

// writeLog is a store that remembers the key of every write.
type writeLog struct {
	store.Store
	mu  sync.Mutex
	pks []string
}

func (w *writeLog) Write(ctx context.Context, x store.Write) error {
	w.mu.Lock()
	w.pks = append(w.pks, x.Target().PK)
	w.mu.Unlock()
	return w.Store.Write(ctx, x)
}

func (w *writeLog) Transact(ctx context.Context, ws []store.Write) error {
	w.mu.Lock()
	for _, x := range ws {
		w.pks = append(w.pks, x.Target().PK)
	}
	w.mu.Unlock()
	return w.Store.Transact(ctx, ws)
}

// TestTrackWritesNothingForUnknownAccounts: requests for accounts that do not exist, or do not
// forward to Iterable, write nothing at all, rate-limit windows included, so a flood of made-up
// account names cannot fill the table.
func TestTrackWritesNothingForUnknownAccounts(t *testing.T) {
	p := newPipeline(t, "")
	ctx := context.Background()
	if _, err := p.rt.Accounts.Put(ctx, "quiet", []byte(`{"allowed_domains":"shop.example.com","iterable":{"enabled":false}}`)); err != nil {
		t.Fatal(err)
	}
	logged := &writeLog{Store: p.rt.Store}
	tr, err := iterable.NewTracker(iterable.TrackerDeps{Store: logged, Queue: p.rt.Queue, Accounts: p.rt.Accounts, Keys: p.rt.Keys, Clock: p.clk})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		for _, account := range []string{fmt.Sprintf("ghost-%d", i), "quiet"} {
			resp := tr.Handle(ctx, trackReq("POST", "/track/"+account, fmt.Sprintf("10.1.0.%d", i), view(visitorA, "/p", "")))
			if resp.StatusCode != 204 {
				t.Fatalf("%s: %d %s", account, resp.StatusCode, resp.Body)
			}
		}
	}
	if len(logged.pks) != 0 {
		t.Fatalf("writes for unknown or quiet accounts: %v", logged.pks)
	}
	// The same request for the real account writes (the check above could not pass vacuously).
	if resp := tr.Handle(ctx, trackReq("POST", "/track/acme", "10.1.0.1", view(visitorA, "/p", ""))); resp.StatusCode != 204 || len(logged.pks) == 0 {
		t.Fatalf("acme: %d %s, %d writes", resp.StatusCode, resp.Body, len(logged.pks))
	}
}

// TestAnonymousViewsAreCapped: a browser nobody identified keeps at most MaxAnonymousViews
// views, and the title of each is cut to a sane length.
func TestAnonymousViewsAreCapped(t *testing.T) {
	tk := newTracking(t, 1000)
	for i := range iterable.MaxAnonymousViews + 10 {
		body := view(visitorB, fmt.Sprintf("/p/%d", i), `,"title":"`+strings.Repeat("é", 400)+`"`)
		if resp := tk.post("/track/acme", "10.0.0.7", body, nil); resp.StatusCode != 204 {
			t.Fatalf("view %d: %d %s", i, resp.StatusCode, resp.Body)
		}
		tk.clk.Advance(time.Second)
	}
	items, _ := store.QueryAll(context.Background(), tk.rt.Store, store.Query{PK: "A#acme#PVV#" + visitorB})
	if len(items) != iterable.MaxAnonymousViews {
		t.Fatalf("%d views kept for an unidentified browser, want %d", len(items), iterable.MaxAnonymousViews)
	}
	var pv struct{ Title string }
	if err := json.Unmarshal(items[0].Data, &pv); err != nil || len(pv.Title) > 300 || !strings.HasPrefix(pv.Title, "éé") {
		t.Fatalf("title kept: %d bytes %v", len(pv.Title), err)
	}
}

// TestOrderClaim: the order confirmation page ties its browser to the buyer, once cartrelay
// holds the order, only for the buyer's address, only for a fresh order and only for the
// first browser to claim it.
func TestOrderClaim(t *testing.T) {
	tk := newTracking(t, 1000)
	paid := tk.clk.Now()
	order := func(id, email string, at time.Time) domain.Order {
		return domain.Order{Key: domain.OrderKey(domain.UltraCart, id, ""), Source: domain.UltraCart, OrderID: id,
			Email: email, PaidAt: at, CreatedAt: at}
	}
	claim := func(visitor, page, id, email string) {
		t.Helper()
		body := view(visitor, page, `,"order":{"id":"`+id+`","email":"`+email+`"}`)
		if resp := tk.post("/track/acme", "10.0.0.5", body, nil); resp.StatusCode != 204 {
			t.Fatalf("claim: %d %s", resp.StatusCode, resp.Body)
		}
	}
	identified := func(visitor string) string {
		it, err := tk.rt.Store.Get(context.Background(), "A#acme#V#"+visitor, "-")
		if err != nil {
			return ""
		}
		var d struct{ Email string }
		_ = json.Unmarshal(it.Data, &d)
		return d.Email
	}

	// The page is faster than the order's webhook: the claim waits for it.
	claim(visitorA, "/thank-you", "DEMO-100", "Ann@Example.com")
	if got := identified(visitorA); got != "" {
		t.Fatalf("identified before the order exists: %s", got)
	}
	tk.storeOrder("ann@example.com", order("DEMO-100", "ann@example.com", paid))
	// The snippet's second claim, without a view, finds it.
	if resp := tk.post("/track/acme", "10.0.0.5", `{"visitor":"`+visitorA+`","order":{"id":"DEMO-100","email":"ann@example.com"}}`, nil); resp.StatusCode != 204 {
		t.Fatalf("claim alone: %d %s", resp.StatusCode, resp.Body)
	}
	if got := identified(visitorA); got != "ann@example.com" {
		t.Fatalf("after the order arrived: identified as %q", got)
	}
	if _, _, evs := tk.counts(visitorA, "ann@example.com"); evs != 1 {
		t.Fatalf("%d pageView events for the confirmation page, want 1", evs)
	}

	// A browser whose page claimed too early is identified by its next page view.
	const visitorC = "c0ffee00c0ffee00c0ffee00c0ffee00"
	claim(visitorC, "/thank-you", "DEMO-102", "cy@example.com")
	tk.storeOrder("cy@example.com", order("DEMO-102", "cy@example.com", paid))
	if resp := tk.post("/track/acme", "10.0.0.5", view(visitorC, "/shop", ""), nil); resp.StatusCode != 204 || identified(visitorC) != "cy@example.com" {
		t.Fatalf("the next view after the order arrived: %d, identified as %q", resp.StatusCode, identified(visitorC))
	}
	if _, _, evs := tk.counts(visitorC, "cy@example.com"); evs != 2 {
		t.Fatalf("%d pageView events for cy, want 2", evs)
	}
	if _, err := tk.rt.Store.Get(context.Background(), "A#acme#VC#"+visitorC, "-"); err == nil {
		t.Fatal("the answered claim is still waiting")
	}

	// Attacks: another browser claims the same order; a claim names another address; an old
	// order is claimed.
	claim(visitorB, "/thank-you", "DEMO-100", "ann@example.com")
	tk.storeOrder("bob@example.com", order("DEMO-101", "bob@example.com", paid))
	claim(visitorB, "/thank-you", "DEMO-101", "victim@example.com")
	tk.storeOrder("old@example.com", order("DEMO-050", "old@example.com", paid.Add(-2*iterable.ClaimWindow)))
	claim(visitorB, "/thank-you", "DEMO-050", "old@example.com")
	if got := identified(visitorB); got != "" {
		t.Fatalf("an attacker's browser was identified as %s", got)
	}
	for _, email := range []string{"ann@example.com", "bob@example.com", "victim@example.com", "old@example.com"} {
		if _, _, evs := tk.counts(visitorB, email); email != "ann@example.com" && evs != 0 {
			t.Fatalf("the attacker's views reached %s", email)
		}
	}
	if _, _, evs := tk.counts(visitorA, "ann@example.com"); evs != 1 {
		t.Fatalf("ann has %d pageView events, want 1 (none of the attacker's)", evs)
	}
}

// TestSnippetIsServed: the snippet is served from the tracking route, with the order claim and
// token identification it documents, and without the old identify-by-address.
func TestSnippetIsServed(t *testing.T) {
	tk := newTracking(t, 10)
	resp := tk.tr.Handle(context.Background(), trackReq("GET", iterable.ScriptPath, "10.0.0.1", ""))
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Headers["content-type"], "text/javascript") {
		t.Fatalf("GET %s: %d %v", iterable.ScriptPath, resp.StatusCode, resp.Headers)
	}
	for _, want := range []string{`identity: identity`, `cmd[0] === "order"`, `data-account`} {
		if !strings.Contains(resp.Body, want) {
			t.Errorf("the snippet lacks %s", want)
		}
	}
	if strings.Contains(resp.Body, "email: email") {
		t.Error("the snippet still sends an address")
	}
}

// TestKeptViewsAreTheAcceptedOnes: the reports' keeper gets only views the endpoint accepted,
// with the address the browser proved, for accounts that forward to Iterable or not.
func TestKeptViewsAreTheAcceptedOnes(t *testing.T) {
	tk := newTracking(t, 1000)
	ctx := context.Background()
	if _, err := tk.rt.Accounts.Put(ctx, "quiet", []byte(`{"allowed_domains":"shop.example.com","iterable":{"enabled":false}}`)); err != nil {
		t.Fatal(err)
	}
	var kept []iterable.KeptView
	tr, err := iterable.NewTracker(iterable.TrackerDeps{Store: tk.rt.Store, Queue: tk.rt.Queue, Accounts: tk.rt.Accounts, Keys: tk.rt.Keys, Clock: tk.clk,
		Keep: func(_ context.Context, _ accounts.Account, v iterable.KeptView) error {
			kept = append(kept, v)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	post := func(account, body string) int {
		return tr.Handle(ctx, trackReq("POST", "/track/"+account, "10.0.0.4", body)).StatusCode
	}
	for _, tc := range []struct {
		account, body string
		status        int
	}{
		{"acme", view(visitorA, "/a", `,"email":"victim@example.com"`), 400},
		{"acme", `{"visitor":"` + visitorA + `","url":"https://evil.example.net/"}`, 403},
		{"ghost", view(visitorA, "/a", ""), 204},
		{"acme", view(visitorA, "/b", ""), 204},
		{"acme", view(visitorA, "/c", `,"identity":"`+tk.token("ann@example.com", time.Hour)+`"`), 204},
		{"acme", view(visitorA, "/d", ""), 204},
		{"quiet", view(visitorB, "/e", ""), 204},
	} {
		if got := post(tc.account, tc.body); got != tc.status {
			t.Fatalf("%s %s: %d, want %d", tc.account, tc.body, got, tc.status)
		}
	}
	var got []string
	for _, v := range kept {
		got = append(got, v.URL[len("https://shop.example.com"):]+" "+v.Email)
	}
	if want := []string{"/b ", "/c ann@example.com", "/d ann@example.com", "/e "}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("kept %q, want %q", got, want)
	}
}
