package thrivecart

import (
	"os"
	"path/filepath"
	"testing"
)

func benchDecodeNormalize(b *testing.B, file string) {
	body, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		b.Fatal(err)
	}
	ct := contentTypes[filepath.Ext(file)]
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		d, err := Decode(ct, body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := normalizeFull(d, receivedAt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkDecodeNormalizeOrderSuccessForm(b *testing.B) {
	benchDecodeNormalize(b, "order_success.form")
}

func BenchmarkDecodeNormalizeOrderSuccessJSON(b *testing.B) {
	benchDecodeNormalize(b, "order_success.json")
}
