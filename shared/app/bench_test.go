package app_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/ledger"
	"github.com/cartrelay/cartrelay/shared/phone"
	"github.com/cartrelay/cartrelay/shared/ultracart"
)

// benchIngestCPU is ingest's CPU work for one event, without I/O: decode the queue message,
// normalize the order, merge it into the stored order, derive the order facts, recompute the
// contact (which holds this order and nine others) and derive its facts. Phones are normalized
// as ingest does, through its cache (phone.CachedE164): the customer's number is parsed on the
// first event only.
func benchIngestCPU(b *testing.B, fixtureName string) {
	body := fixture(&testing.T{}, "ultracart", fixtureName)
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	cut := ledger.Cutover{ForwardSince: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
	opt := ultracart.Options{Phone: phone.CachedE164()}
	raws, err := ultracart.DecodeDelivery(body)
	if err != nil {
		b.Fatal(err)
	}
	msg, err := app.EncodeSourceEvent(context.Background(), nil, at, app.SourceEvent{Account: "acme", Source: domain.UltraCart, Name: raws[0].Name, Payload: raws[0].Payload, ReceivedAt: at})
	if err != nil {
		b.Fatal(err)
	}
	evs, err := ultracart.NormalizeWith(raws[0], at, opt)
	if err != nil {
		b.Fatal(err)
	}
	stored := *evs[0].Order
	orders := []domain.Order{stored}
	for i := range 9 {
		o := stored
		o.Key = stored.Key + "-" + string(rune('a'+i))
		orders = append(orders, o)
	}
	profile := ledger.Aggregate(domain.Contact{Account: "acme", Email: stored.Email}, orders, nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		se, err := app.DecodeSourceEvent(context.Background(), nil, msg)
		if err != nil {
			b.Fatal(err)
		}
		evs, err := ultracart.NormalizeWith(ultracart.RawEvent{Name: se.Name, Payload: se.Payload}, se.ReceivedAt, opt)
		if err != nil {
			b.Fatal(err)
		}
		merged := ledger.MergeOrder(&stored, *evs[0].Order)
		fs := ledger.OrderFacts("acme", &stored, merged, cut)
		orders[0] = merged
		after := ledger.Aggregate(profile, orders, nil)
		_ = append(fs, ledger.ContactFacts("acme", profile, after, at, cut)...)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIngestKitchenSink: the order with every expansion (17 KB of JSON).
func BenchmarkIngestKitchenSink(b *testing.B) { benchIngestCPU(b, "order_create_kitchen_sink.json") }

// BenchmarkIngestTypicalOrder: an order with the expansions a webhook usually carries.
func BenchmarkIngestTypicalOrder(b *testing.B) { benchIngestCPU(b, "order_create.json") }

// BenchmarkWebhook100 is the time the webhook takes to answer a delivery of 100 events: decode,
// and durably queue every event (the embedded queue commits each batch of 10 with an fsync).
func BenchmarkWebhook100(b *testing.B) {
	t := &testing.T{}
	h := newHarness(t)
	h.account("acme", "")
	var env struct{ Events []json.RawMessage }
	if err := json.Unmarshal(fixture(t, "ultracart", "order_create.json"), &env); err != nil {
		b.Fatal(err)
	}
	events := make([]json.RawMessage, 100)
	for i := range events {
		events[i] = env.Events[0]
	}
	body, _ := json.Marshal(map[string]any{"events": events})
	req := httpReq("POST", "/webhooks/ultracart/acme", "application/json", body, basic(ucUser, ucPass))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		resp, err := h.env.App.Webhook(context.Background(), req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("status %d %v: %s", resp.StatusCode, err, resp.Body)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/delivery")
}

// BenchmarkThriveCartUnauthenticated is what a junk ThriveCart request costs the webhook
// before it is refused: a 60 KB form of appended fields ("a[]=1&...") and a 4 MB JSON array,
// each for an account that does not exist and for one whose secret word it does not carry.
func BenchmarkThriveCartUnauthenticated(b *testing.B) {
	h := newHarness(&testing.T{})
	h.account("acme", "")
	bodies := map[string]struct{ ctype, body string }{
		"form-60KB": {"application/x-www-form-urlencoded", "event=x&thrivecart_secret=guess&" + strings.Repeat("a[]=1&", 10_000)},
		"json-4MB":  {"application/json", `{"event":"x","thrivecart_secret":"guess","a":[` + strings.Repeat("1,", 2<<20-32) + `1]}`},
	}
	for name, tc := range bodies {
		for _, account := range []string{"ghost", "acme"} {
			req := httpReq("POST", "/webhooks/thrivecart/"+account, tc.ctype, []byte(tc.body), nil)
			b.Run(name+"/"+account, func(b *testing.B) {
				b.SetBytes(int64(len(tc.body)))
				b.ReportAllocs()
				for b.Loop() {
					resp, err := h.env.App.Webhook(context.Background(), req)
					if err != nil || resp.StatusCode != 401 {
						b.Fatalf("%d %v", resp.StatusCode, err)
					}
				}
			})
		}
	}
}
