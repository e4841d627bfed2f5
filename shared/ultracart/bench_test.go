package ultracart

import (
	"encoding/json"
	"testing"
)

func benchDecodeNormalize(b *testing.B, body []byte) {
	b.Helper()
	raws, err := DecodeDelivery(body)
	if err != nil {
		b.Fatal(err)
	}
	perDelivery := len(raws)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		raws, err := DecodeDelivery(body)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range raws {
			if _, err := normalizeFull(r, receivedAt); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(perDelivery*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecodeNormalizeKitchenSink measures one delivery holding the fully expanded order.
func BenchmarkDecodeNormalizeKitchenSink(b *testing.B) {
	benchDecodeNormalize(b, readFixture(b, "order_create_kitchen_sink.json"))
}

// BenchmarkDecodeNormalizeKitchenSinkBatch measures a delivery of 50 such events, compressed,
// the largest batch a webhook is likely to be configured for.
func BenchmarkDecodeNormalizeKitchenSinkBatch(b *testing.B) {
	var one []json.RawMessage
	if err := json.Unmarshal(readFixture(b, "order_create_kitchen_sink.json"), &one); err != nil {
		b.Fatal(err)
	}
	batch := make([]json.RawMessage, 50)
	for i := range batch {
		batch[i] = one[0]
	}
	array, _ := json.Marshal(batch)
	benchDecodeNormalize(b, []byte(`{"events":`+jsonString(b64gz(b, array))+`}`))
}

// BenchmarkDecodeDeliveryZipBomb measures what a compressed delivery costs the webhook when it
// inflates past MaxDecompressed: it is refused after reading at most the cap (B/op is the
// memory the webhook function spends on it).
func BenchmarkDecodeDeliveryZipBomb(b *testing.B) {
	body := []byte(`{"events":"` + b64gz(b, paddedArray(32<<20)) + `"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeDelivery(body); err == nil {
			b.Fatal("the bomb was decoded")
		}
	}
}

// BenchmarkDecodeOrderKitchenSink compares the two readings of decodePayload on the fully
// expanded order: the model decoder (what ingest uses) and encoding/json (its fallback).
func BenchmarkDecodeOrderKitchenSink(b *testing.B) {
	raws, err := DecodeDelivery(readFixture(b, "order_create_kitchen_sink.json"))
	if err != nil {
		b.Fatal(err)
	}
	payload := raws[0].Payload
	for _, r := range []struct {
		name string
		read func([]byte, *Order) error
	}{
		{"model-decoder", readFast[Order]},
		{"encoding-json", func(p []byte, o *Order) error { return json.Unmarshal(p, o) }},
	} {
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				var o Order
				if err := r.read(payload, &o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
