package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/history"
	"github.com/cartrelay/cartrelay/shared/synth"
)

func ucCustomer(oid int, email, modified string) synth.Event {
	p := fmt.Sprintf(`{"customer_profile_oid":%d,"merchant_id":"M","email":%q,"last_modified_dts":%q}`, oid, email, modified)
	t, _ := time.Parse(time.RFC3339, modified)
	return synth.Event{At: t, Name: "customer_update", Payload: json.RawMessage(p)}
}

func ucProfileOrder(id string, oid int, email, paid string) synth.Event {
	p := fmt.Sprintf(`{"order_id":%q,"merchant_id":"M","creation_dts":%q,"current_stage":"Completed Order","currency_code":"USD",
	 "billing":{"email":%q,"country_code":"US"},"items":[{"merchant_item_id":"A","quantity":1,"cost":{"value":10,"currency_code":"USD"}}],
	 "summary":{"total":{"value":10,"currency_code":"USD"}},"payment":{"payment_dts":%q,"payment_status":"Processed"},
	 "customer_profile":{"customer_profile_oid":%d}}`, id, paid, email, paid, oid)
	t, _ := time.Parse(time.RFC3339, paid)
	return synth.Event{At: t, Name: "order_create", Payload: json.RawMessage(p)}
}

// An email change lands the same whatever order its events arrive in: a profile's orders placed
// before the change join its new email even when the change arrived first, and a late report of
// an older email joins the newer one instead of taking the profile back.
func TestEmailChangeInAnyOrder(t *testing.T) {
	evs := []synth.Event{
		ucProfileOrder("O-1", 7, "old@example.com", "2025-01-10T10:00:00Z"),
		ucCustomer(7, "middle@example.com", "2025-03-01T10:00:00Z"),
		ucProfileOrder("O-2", 7, "middle@example.com", "2025-04-10T10:00:00Z"),
		ucCustomer(7, "new@example.com", "2025-06-01T10:00:00Z"),
		ucProfileOrder("O-3", 7, "new@example.com", "2025-07-10T10:00:00Z"),
	}
	cases := map[string][]int{
		"in order":               {0, 1, 2, 3, 4},
		"changes first":          {3, 1, 4, 2, 0},
		"newest change first":    {3, 0, 1, 2, 4},
		"orders first, reversed": {4, 2, 0, 3, 1},
		"old order last":         {1, 2, 3, 4, 0},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 10 {
		cases[fmt.Sprintf("random %d", i)] = rng.Perm(len(evs))
	}
	for name, order := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.account("acme", "")
			var list []synth.Event
			for _, i := range order {
				list = append(list, evs[i])
			}
			h.ingestEvents("acme", list)
			v := h.contact("acme", "new@example.com")
			if len(v.Orders) != 3 {
				t.Fatalf("new@example.com holds %d orders, want all 3", len(v.Orders))
			}
			for _, old := range []string{"old@example.com", "middle@example.com"} {
				now, err := history.New(h.env.Store).ResolveEmail(context.Background(), "acme", old)
				if o := h.contact("acme", old); len(o.Orders) != 0 || err != nil || now != "new@example.com" {
					t.Errorf("%s: %d orders, now %q (%v)", old, len(o.Orders), now, err)
				}
			}
			h.verifyClean("acme")
		})
	}
}
