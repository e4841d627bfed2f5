package thrivecart

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// formAppends is a form body of n appended fields ("a[]=1"), the shape that made PHP-style
// appends quadratic when each one scanned its level's keys.
func formAppends(n int) []byte {
	return []byte("event=order.success&thrivecart_secret=w&" + strings.Repeat("a[]=1&", n))
}

// jsonArray is a JSON body of about size bytes, most of it one array of numbers.
func jsonArray(size int) []byte {
	return []byte(`{"event":"order.success","thrivecart_secret":"w","a":[` + strings.Repeat("1,", size/2) + `1]}`)
}

// BenchmarkDecodeFormAppends decodes form bodies of growing numbers of appended fields: the
// time per field (ns/field) stays flat as the count doubles, so decoding is linear.
func BenchmarkDecodeFormAppends(b *testing.B) {
	for _, n := range []int{1000, 2000, 4000, 8000} {
		body := formAppends(n)
		b.Run(fmt.Sprintf("fields=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode("application/x-www-form-urlencoded", body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/field")
		})
	}
}

// BenchmarkDecodeJSONArrayOverLimit decodes a 4 MB JSON body whose array holds two million
// numbers: it is refused at maxFields values, so it costs what the first of them cost.
func BenchmarkDecodeJSONArrayOverLimit(b *testing.B) {
	body := jsonArray(4 << 20)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode("application/json", body); err == nil {
			b.Fatal("decoded a body over the field limit")
		}
	}
}

// BenchmarkScanSecret reads the secret word of bodies of growing size, as the webhook does
// before it authenticates: the time per byte stays flat, and nothing of the body is kept.
func BenchmarkScanSecret(b *testing.B) {
	for _, size := range []int{64 << 10, 256 << 10, 1 << 20, 4 << 20} {
		for name, tc := range map[string]struct {
			ct   string
			body []byte
		}{
			"form": {"application/x-www-form-urlencoded", formAppends(size / 6)},
			"json": {"application/json", jsonArray(size)},
		} {
			b.Run(fmt.Sprintf("%s/bytes=%d", name, size), func(b *testing.B) {
				b.SetBytes(int64(len(tc.body)))
				b.ReportAllocs()
				for b.Loop() {
					if s, err := ScanSecret(tc.ct, tc.body); err != nil || s != "w" {
						b.Fatalf("%q %v", s, err)
					}
				}
			})
		}
	}
}
