package iterable_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/queue"
	"github.com/cartrelay/cartrelay/shared/ratelimit"
	"github.com/cartrelay/cartrelay/shared/store"
)

func trackReq(method, path, ip, body string) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{RawPath: path, Body: body, RequestContext: events.APIGatewayV2HTTPRequestContext{
		HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, SourceIP: ip}}}
}

// TestPageViews: the tracking endpoint's checks, and a browser's views from unknown to
// identified to pageView events.
func TestPageViews(t *testing.T) {
	p := newPipeline(t, "")
	ctx := context.Background()
	tr, err := iterable.NewTracker(iterable.TrackerDeps{Store: p.rt.Store, Queue: p.rt.Queue, Accounts: p.rt.Accounts, Clock: p.clk,
		PerIP: ratelimit.Limit{Requests: 4, Window: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.rt.Accounts.Put(ctx, "quiet", []byte(`{"iterable":{"enabled":false}}`)); err != nil {
		t.Fatal(err)
	}
	view := func(visitor, page, email string) string {
		b := `{"visitor":"` + visitor + `","url":"https://shop.example.com` + page + `","title":"Page ` + page + `"`
		if email != "" {
			b += `,"email":"` + email + `"`
		}
		return b + `}`
	}
	const v = "b7f3c2a1d4e5f60718293a4b5c6d7e8f"
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
		{"no account", "POST", "/track/", "10.0.0.1", view(v, "/a", ""), 404, 0, 0, 0},
		{"too large", "POST", "/track/acme", "10.0.0.1", strings.Repeat("x", 9000), 413, 0, 0, 0},
		{"not JSON", "POST", "/track/acme", "10.0.0.1", "hello", 400, 0, 0, 0},
		{"bad visitor", "POST", "/track/acme", "10.0.0.1", view("x y", "/a", ""), 400, 0, 0, 0},
		{"script URL", "POST", "/track/acme", "10.0.0.1", `{"visitor":"` + v + `","url":"javascript:alert(1)"}`, 400, 0, 0, 0},
		{"unknown browser is kept", "POST", "/track/acme", "10.0.0.2", view(v, "/mugs", ""), 204, 1, 0, 0},
		{"second unknown view", "POST", "/track/acme", "10.0.0.2", view(v, "/mugs/blue", ""), 204, 2, 0, 0},
		{"identified: all three go", "POST", "/track/acme", "10.0.0.2", view(v, "/account", "Ann@Example.com"), 204, 0, 0, 3},
		{"known browser", "POST", "/track/acme", "10.0.0.2", view(v, "/tea", ""), 204, 0, 0, 4},
		{"rate limited per IP", "POST", "/track/acme", "10.0.0.2", view(v, "/tea", ""), 429, 0, 0, 4},
		{"another IP is not", "POST", "/track/acme", "10.0.0.3", view(v, "/spoons", ""), 204, 0, 0, 5},
		{"account not forwarding to Iterable", "POST", "/track/quiet", "10.0.0.3", view(v, "/x", "zed@example.com"), 204, 0, 0, 5},
	}
	for _, st := range steps {
		resp := tr.Handle(ctx, trackReq(st.method, st.path, st.ip, st.body))
		if resp.StatusCode != st.status {
			t.Fatalf("%s: %d %s, want %d", st.name, resp.StatusCode, resp.Body, st.status)
		}
		if resp.Headers["access-control-allow-origin"] != "*" {
			t.Fatalf("%s: no CORS header", st.name)
		}
		p.pump()
		pending, _ := store.QueryAll(ctx, p.rt.Store, store.Query{PK: "A#acme#PVV#" + v})
		sent, _ := store.QueryAll(ctx, p.rt.Store, store.Query{PK: iterable.PageViewsPK("acme", "ann@example.com")})
		evs := p.fake.Events(iterable.EventPageView)
		if len(pending) != st.wantPending || len(sent) != st.wantPV || len(evs) != st.wantEvents {
			t.Fatalf("%s: %d pending, %d waiting to send, %d events; want %d, %d, %d", st.name, len(pending), len(sent), len(evs),
				st.wantPending, st.wantPV, st.wantEvents)
		}
	}
	evs := p.fake.Events(iterable.EventPageView)
	if evs[0].Email != "ann@example.com" || evs[0].Fields["path"] != "/mugs" || evs[0].Fields["title"] != "Page /mugs" {
		t.Fatalf("first pageView: %+v", evs[0])
	}
	if st, _ := p.rt.Queue.Stats(ctx, queue.Iterable); st.Visible+st.InFlight != 0 {
		t.Fatalf("queue not drained: %+v", st)
	}
	if errs := p.fake.SpecErrors(); len(errs) > 0 {
		t.Fatal(errs)
	}
}
