package iterable_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/cartrelay/cartrelay/shared/iterable"
)

// BenchmarkPurchaseBody measures mapping an order to its trackPurchase body and encoding it.
func BenchmarkPurchaseBody(b *testing.B) {
	f := loadFact(b, "order_placed")
	s := iterable.Settings{ThumbWidth: 200, ThumbHeight: 200}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(iterable.Purchase(f.Email, *f.Order, s, f.OccurredAt)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeliverLive measures one OrderPlaced delivered to the fake: mapping, the shared rate
// window in SQLite, the HTTP round trip and recording the exchange.
func BenchmarkDeliverLive(b *testing.B) {
	e := newEnv(b, envOpts{noSpec: true})
	f := loadFact(b, "order_placed")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.dest.Deliver(ctx, e.acct, f); err != nil {
			b.Fatal(err)
		}
	}
}
