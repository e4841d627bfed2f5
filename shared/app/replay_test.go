package app_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cartrelay/cartrelay/shared/accountkeys"
	"github.com/cartrelay/cartrelay/shared/app"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/iterable/iterablefake"
	"github.com/cartrelay/cartrelay/shared/visitortoken"
)

// TestReplayOfParkedFollowUps parks, through the real Iterable destination, a cart reminder, a
// review request and a page-view batch (follow-up facts, which are not in the contact's fact
// log) beside an ordinary purchase, and replays them all at once. A delivery whose fact is
// nowhere to be found (parked before copies were kept) fails alone, with its reason; the others
// are queued again and reach Iterable once it takes them.
func TestReplayOfParkedFollowUps(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	refused := map[string]bool{}
	fake, err := iterablefake.New(iterablefake.Options{APIKey: "it-replay-key", Clock: h.clk, Chaos: func(path string) *iterablefake.Fault {
		if refused[path] {
			return &iterablefake.Fault{Status: 400}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	h.account("acme", fmt.Sprintf(`,"allowed_domains":"shop.example.com","ontraport":{"enabled":false},"iterable":{"enabled":true,"api_key":"it-replay-key","base_url":%q,`+
		`"review_url_template":"https://shop.example.com/reviews/new?sku={sku}","review_wait":"1h"}`, fake.URL))
	dest, err := iterable.New(iterable.Deps{Store: h.env.Store, Clock: h.clk, HTTP: fake.Client(), PublicBaseURL: "https://hooks.example.com",
		Keys: h.env.Keys, Sleep: func(_ context.Context, d time.Duration) error { h.clk.Advance(d); return nil }})
	if err != nil {
		t.Fatal(err)
	}

	// An order that ships (its review request waits an hour) and another buyer's abandoned cart
	// (its reminder waits too), delivered while Iterable answers.
	h.postUC("acme", fixture(t, "ultracart", "order_create.json"))
	h.postUC("acme", fixture(t, "ultracart", "order_ship.json"))
	h.postUC("acme", fixture(t, "ultracart", "checkout_cart_abandon.json"))
	h.ingestOnly()
	if n := h.forwardAll(dest); n != 0 {
		t.Fatalf("%d failures while Iterable answered", n)
	}

	// Iterable now refuses events and purchases: a page view, a second order and the two
	// waits that come due are all parked.
	refused[iterable.PathEventsTrack], refused[iterable.PathTrackPurchase] = true, true
	secret, err := h.env.Keys.Ensure(ctx, "acme", accountkeys.Tracking)
	if err != nil {
		t.Fatal(err)
	}
	identity, err := visitortoken.Sign(secret.Value, "marcus.reyes@example.com", h.clk.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	view := `{"visitor":"b7f3c2a1d4e5f60718293a4b5c6d7e8f","url":"https://shop.example.com/mugs","title":"Mugs","identity":"` + identity + `"}`
	if r, err := h.env.App.Webhook(ctx, events.APIGatewayV2HTTPRequest{RawPath: "/track/acme", Body: view,
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
			Method: "POST", Path: "/track/acme", SourceIP: "10.0.0.9"}}}); err != nil || r.StatusCode != 204 {
		t.Fatalf("page view: %d %v", r.StatusCode, err)
	}
	second := strings.ReplaceAll(string(fixture(t, "ultracart", "order_create.json")), "DEMO-0002001", "DEMO-0002002")
	h.postUC("acme", []byte(second))
	h.ingestOnly()
	h.clk.Advance(2 * time.Hour)
	if err := h.env.App.Schedule(ctx, events.EventBridgeEvent{Time: h.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	h.forwardAll(dest)
	parked := map[string]bool{}
	failed, err := history.New(h.env.Store).Deliveries(ctx, "acme", true, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range failed {
		if d.Status == history.DeliveryParked {
			parked[d.FactKind] = true
		}
	}
	for _, k := range []domain.FactKind{iterable.KindCartReminder, iterable.KindReviewRequest, iterable.KindPageViews, domain.FactOrderPlaced} {
		if !parked[string(k)] {
			t.Fatalf("no parked %s; parked: %v", k, parked)
		}
	}
	// A delivery parked before copies were kept, newest of all, so that the replay meets it first.
	lost := history.Delivery{Account: "acme", Email: "ava.chen@example.com", Dest: "iterable", FactID: "acme:IterableCartReminder:lost",
		FactKind: string(iterable.KindCartReminder), At: h.clk.Now().Add(time.Minute), Attempt: 1, Status: history.DeliveryParked, Error: "400"}
	if err := history.New(h.env.Store).RecordDelivery(ctx, lost, app.DeliveryLogTTL); err != nil {
		t.Fatal(err)
	}

	refused[iterable.PathEventsTrack], refused[iterable.PathTrackPurchase] = false, false
	outcomes, err := h.env.App.ReplayDeliveries(ctx, "acme", "")
	var partial *app.ReplayError
	if !errors.As(err, &partial) || partial.Failed != 1 {
		t.Fatalf("replay error %v, want one delivery that could not be replayed", err)
	}
	var replayed []string
	for _, o := range outcomes {
		switch {
		case o.FactID == lost.FactID:
			if !strings.Contains(o.Error, "cannot be sent again") {
				t.Errorf("the lost fact's outcome says %q; want why it cannot be replayed", o.Error)
			}
		case o.Error != "":
			t.Errorf("%s (%s) was not replayed: %s", o.FactID, o.FactKind, o.Error)
		default:
			replayed = append(replayed, o.FactKind)
		}
	}
	slices.Sort(replayed)
	if want := []string{string(iterable.KindCartReminder), string(iterable.KindPageViews), string(iterable.KindReviewRequest), string(domain.FactOrderPlaced)}; !slices.Equal(replayed, want) {
		t.Fatalf("replayed %v, want %v", replayed, want)
	}

	if n := h.forwardAll(dest); n != 0 {
		t.Fatalf("%d failures after the replay", n)
	}
	for _, ev := range []string{iterable.EventCartAbandoned, iterable.EventReviewRequest, iterable.EventPageView} {
		if len(fake.Events(ev)) == 0 {
			t.Errorf("no %s event reached Iterable after the replay", ev)
		}
	}
	var ids []string
	for _, p := range fake.Purchases() {
		ids = append(ids, p.ID)
	}
	if !slices.Contains(ids, domain.OrderKey(domain.UltraCart, "DEMO-0002002", "")) {
		t.Errorf("the second order's purchase did not reach Iterable after the replay: %v", ids)
	}
	// Nothing is left to replay but the lost one.
	again, err := h.env.App.ReplayDeliveries(ctx, "acme", "")
	if !errors.As(err, &partial) || len(again) != 1 || again[0].FactID != lost.FactID {
		t.Fatalf("second replay: %+v, %v; want only the lost delivery, failing again", again, err)
	}
}
