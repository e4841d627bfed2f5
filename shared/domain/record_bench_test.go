package domain

import (
	"encoding/json"
	"os"
	"testing"
)

// BenchmarkUnmarshalRecord reads the stored kitchen-sink order (20 items) with the generated
// decoder and with encoding/json.
func BenchmarkUnmarshalRecord(b *testing.B) {
	data, err := os.ReadFile("testdata/records/order_kitchen_sink_indented.json")
	if err != nil {
		b.Fatal(err)
	}
	var o Order
	if err := json.Unmarshal(data, &o); err != nil {
		b.Fatal(err)
	}
	if data, err = json.Marshal(o); err != nil { // compact, as stored
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		read func([]byte, *Order) error
	}{
		{"generated", UnmarshalRecord[Order]},
		{"encoding-json", func(b []byte, o *Order) error { return json.Unmarshal(b, o) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				var o Order
				if err := tc.read(data, &o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
