package rollup

import (
	"encoding/base64"
	"hash/fnv"
	"math/rand/v2"
	"testing"
)

// A cell's id is FNV-128a of its label as hash/fnv computes it: ids are stored in every rollup
// item, so a different hash would orphan the counters already written.
func TestCellIDIsFNV128a(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	labels := []Cell{"", "o", OrderCell(Segment{Source: "ultracart", Currency: "USD", First: NoTouch, Last: Touch{"google", "cpc", "spring"}})}
	for range 500 {
		b := make([]byte, rng.IntN(300))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		labels = append(labels, Cell(b))
	}
	for _, c := range labels {
		h := fnv.New128a()
		h.Write([]byte(c))
		want := base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
		if got := c.ID(); got != want {
			t.Fatalf("ID(%q) = %s, hash/fnv gives %s", c, got, want)
		}
	}
}
