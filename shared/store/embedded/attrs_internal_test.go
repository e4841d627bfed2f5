package embedded

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// referenceAttrs is the encoding as its format describes it, names sorted as strings.
func referenceAttrs(counters map[string]int64, labels map[string]string) []byte {
	var names []string
	for name, v := range counters {
		if v != 0 {
			names = append(names, name)
		}
	}
	if len(names) == 0 && len(labels) == 0 {
		return nil
	}
	slices.Sort(names)
	b := []byte{attrsVersion}
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, name := range names {
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = binary.AppendVarint(b, counters[name])
	}
	b = binary.AppendUvarint(b, uint64(len(labels)))
	for _, name := range slices.Sorted(maps.Keys(labels)) {
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = binary.AppendUvarint(b, uint64(len(labels[name])))
		b = append(b, labels[name]...)
	}
	return b
}

// randomName draws from few bytes, zero among them, so names often share prefixes, are
// prefixes of one another, or differ only past their eighth byte.
func randomName(r *rand.Rand) string {
	const alphabet = "\x00\x01a:b\xff"
	n := r.IntN(20)
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	if r.IntN(2) == 0 {
		return "AbCdEfGhIjKlMnOp:" + string(b) // a cell id and a measure, as rollups name them
	}
	return string(b)
}

func TestEncodeAttrsSortsNames(t *testing.T) {
	for seed := range uint64(2000) {
		r := rand.New(rand.NewPCG(seed, 1))
		var counters map[string]int64
		var labels map[string]string
		if n := r.IntN(200); n > 0 {
			counters = make(map[string]int64, n)
			for range n {
				counters[randomName(r)] = r.Int64N(7) - 3 // zeros among them
			}
		}
		if n := r.IntN(50); n > 0 {
			labels = make(map[string]string, n)
			for range n {
				labels[randomName(r)] = randomName(r)
			}
		}
		got, want := encodeAttrs(counters, labels), referenceAttrs(counters, labels)
		if !bytes.Equal(got, want) {
			t.Fatalf("seed %d: encodeAttrs(%v, %q)\n= %q\nwant %q", seed, counters, labels, got, want)
		}
		dc, dl, err := decodeAttrs(got)
		if err != nil {
			t.Fatalf("seed %d: decode: %v", seed, err)
		}
		for name, v := range counters {
			if dc[name] != v {
				t.Fatalf("seed %d: counter %q decoded as %d, want %d", seed, name, dc[name], v)
			}
		}
		if !maps.Equal(dl, labels) {
			t.Fatalf("seed %d: labels decoded as %q, want %q", seed, dl, labels)
		}
	}
}

// BenchmarkEncodeAttrs encodes an item as a rebuild writes it: 60 cells of 8 measures each.
func BenchmarkEncodeAttrs(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	counters, labels := map[string]int64{}, map[string]string{}
	for c := range 60 {
		id := fmt.Sprintf("%016x", r.Uint64())
		labels[id] = fmt.Sprintf("order|ultracart|USD|google|cpc|campaign-%d", c)
		for m := range 8 {
			counters[fmt.Sprintf("%s:measure_%d", id, m)] = int64(m + 1)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		encodeAttrs(counters, labels)
	}
}
