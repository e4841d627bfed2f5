package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/iterable/iterablefake"
	"github.com/cartrelay/cartrelay/shared/queue"
)

// TestIterableCallsPerThousandProfileUpdates: a backlog of 1,000 profile refreshes (what a
// backfill leaves on Iterable's queue) reaches Iterable in one users/bulkUpdate call (README,
// Figures), although the queue hands the forwarder 10 messages at a time. Facts of other kinds
// waiting among them keep their contact's order: a purchase queued before a contact's profile
// refresh holds that refresh back, and goes out on its own.
func TestIterableCallsPerThousandProfileUpdates(t *testing.T) {
	h := newHarness(t)
	fake, err := iterablefake.New(iterablefake.Options{APIKey: "it-bulk-key", Clock: h.clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	h.account("acme", fmt.Sprintf(`,"ontraport":{"enabled":false},"iterable":{"enabled":true,"api_key":"it-bulk-key","base_url":%q}`, fake.URL))
	ctx := context.Background()

	// 1,001 contacts: 1,000 refreshes fill one call, and buyer0500's waits behind its purchase.
	const n = 1001
	profile := func(i int) queue.Message {
		email := fmt.Sprintf("buyer%04d@example.com", i)
		f := domain.Fact{ID: domain.ContactChangedID("acme", email, "h1"), Account: "acme", Kind: domain.FactContactChanged,
			Email: email, OccurredAt: h.clk.Now(), Contact: &domain.Contact{Email: email, FirstName: "Buyer"}}
		b, _ := json.Marshal(f)
		return queue.Message{ID: fmt.Sprintf("m%d", i), Body: string(b), GroupID: "acme|" + email, DedupID: f.ID}
	}
	// The purchase of buyer0500 comes first in its contact's line.
	purchaseEmail := "buyer0500@example.com"
	purchase := domain.Fact{ID: domain.OrderPlacedID("acme", "ultracart:P-1"), Account: "acme", Kind: domain.FactOrderPlaced,
		Email: purchaseEmail, OccurredAt: h.clk.Now(), Order: &domain.Order{Key: "ultracart:P-1", Source: domain.UltraCart,
			OrderID: "P-1", Email: purchaseEmail, Total: domain.Money{Currency: "USD", Minor: 1000}, PaidAt: h.clk.Now()}}
	pb, _ := json.Marshal(purchase)
	var msgs []queue.Message
	for i := range n {
		if i == 500 {
			msgs = append(msgs, queue.Message{ID: "purchase", Body: string(pb), GroupID: "acme|" + purchaseEmail, DedupID: purchase.ID})
		}
		msgs = append(msgs, profile(i))
	}
	for len(msgs) > 0 {
		k := min(len(msgs), queue.MaxBatch)
		for j := range msgs[:k] {
			msgs[j].ID = fmt.Sprintf("m%d", j)
		}
		if err := h.env.Queue.Send(ctx, iterableQueue, msgs[:k]); err != nil {
			t.Fatal(err)
		}
		msgs = msgs[k:]
	}

	dest, err := h.env.Destination(iterableName)
	if err != nil {
		t.Fatal(err)
	}
	h.forwardOnce(dest)
	bulk := fake.CallsTo("/api/users/bulkUpdate")
	if len(bulk) != 1 || len(fake.Calls()) != 1 {
		t.Fatalf("first invocation: %d calls, %d of them users/bulkUpdate; want the one bulk call", len(fake.Calls()), len(bulk))
	}
	var body struct {
		Users []struct{ Email string } `json:"users"`
	}
	if err := json.Unmarshal([]byte(bulk[0].Body), &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Users) != 1000 {
		t.Fatalf("the bulk call carried %d users, want 1,000 (every contact but the one whose purchase waits first)", len(body.Users))
	}
	for _, u := range body.Users {
		if u.Email == purchaseEmail {
			t.Fatalf("%s's profile refresh overtook its purchase", purchaseEmail)
		}
	}
	t.Logf("Iterable calls for %d profile refreshes from a backlog: %d (users/bulkUpdate)", len(body.Users), len(fake.Calls()))

	// The rest goes in order: the purchase, then that contact's refresh.
	h.forwardAll(dest)
	var rest []string
	for _, c := range fake.Calls()[1:] {
		rest = append(rest, c.Path)
	}
	if len(rest) != 2 || rest[0] != "/api/commerce/trackPurchase" || rest[1] != "/api/users/update" {
		t.Fatalf("after the backlog: calls %v, want the purchase, then the profile refresh", rest)
	}
	for _, q := range []string{iterableQueue, iterableQueue + "-dlq"} {
		if st, _ := h.env.Queue.Stats(ctx, q); st.Visible+st.InFlight+st.Delayed != 0 {
			t.Fatalf("queue %s still holds %+v", q, st)
		}
	}
	delivered, err := history.New(h.env.Store).Deliveries(ctx, "acme", false, 0)
	if err != nil || len(delivered) != n+1 {
		t.Fatalf("%d deliveries logged (%v), want %d", len(delivered), err, n+1)
	}
}
