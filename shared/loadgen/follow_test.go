package loadgen

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// fakeRecords is a table in which ingest and delivery happened at given times.
type fakeRecords struct {
	ingested  map[string]time.Time            // by hash
	delivered map[string]map[string]time.Time // by fact id, then destination
}

func (r fakeRecords) ingestedAt(_ context.Context, hash string) (time.Time, bool, error) {
	at, ok := r.ingested[hash]
	return at, ok, nil
}

func (r fakeRecords) deliveredAt(_ context.Context, _, dest, factID string) (time.Time, bool, error) {
	at, ok := r.delivered[factID][dest]
	return at, ok, nil
}

// TestFollowerLagsAreStoredTimes: under a backlog (far more followed orders than one round
// reads, most ingested long ago but not yet delivered), each lag is the time serve recorded,
// not the time the follower happened to look, which here is an hour after the fact.
func TestFollowerLagsAreStoredTimes(t *testing.T) {
	const n = 5 * maxLooksPerRound
	accepted := time.Now().Add(-time.Hour)
	recs := fakeRecords{ingested: map[string]time.Time{}, delivered: map[string]map[string]time.Time{}}
	f := &follower{recs: recs, dests: []string{"a", "b"}}
	want := map[uint64]time.Duration{}
	for i := range uint64(n) {
		id, email := OrderID("t", i), Email("t", i)
		hash := fmt.Sprintf("h%d", i)
		f.add(i, id, email, hash, accepted)
		// Ingest took 10 ms plus 1 ms for each order before it.
		want[i] = 10*time.Millisecond + time.Duration(i)*time.Millisecond
		recs.ingested[hash] = accepted.Add(want[i])
	}
	// Only the last tenth is delivered, 2 s after acceptance to a and 3 s to b.
	for _, s := range f.pending[n*9/10:] {
		recs.delivered[s.factID] = map[string]time.Time{"a": accepted.Add(2 * time.Second), "b": accepted.Add(3 * time.Second)}
	}

	ctx := context.Background()
	for range 3 {
		f.look(ctx, maxLooksPerRound)
	}
	if ingest, _ := f.lags(); len(ingest) == n {
		t.Fatalf("three bounded rounds saw all %d orders ingested: the backlog of this test is too small", n)
	}
	f.look(ctx, 0)

	ingest, deliver := f.lags()
	if len(ingest) != n {
		t.Fatalf("%d orders seen ingested, want %d", len(ingest), n)
	}
	all := append(append([]*sample(nil), f.done...), f.pending...)
	for _, s := range all {
		if got := s.ingested.Sub(s.accepted); got != want[s.n] {
			t.Errorf("order %d: ingest lag %s, want %s (when ingest stored it)", s.n, got, want[s.n])
		}
	}
	if len(deliver) != n/10 {
		t.Fatalf("%d orders delivered, want %d", len(deliver), n/10)
	}
	for _, d := range deliver {
		if d != 3*time.Second {
			t.Fatalf("delivery lag %s, want 3s (when the later destination answered)", d)
		}
	}
	if all, done := f.counts(); all != n || done != n/10 {
		t.Errorf("counts %d followed, %d delivered; want %d, %d", all, done, n, n/10)
	}
}

// TestContentHashMatchesIngest: the hash the follower looks the ingest marker up by is the one
// of the delivery's single event, and tells orders apart.
func TestContentHashMatchesIngest(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := ContentHash(Delivery(OrderID("t", 1), Email("t", 1), at))
	if a == "" {
		t.Fatal("no hash for a delivery of one order")
	}
	if b := ContentHash(Delivery(OrderID("t", 1), Email("t", 1), at)); b != a {
		t.Errorf("the same delivery hashes to %s and %s", a, b)
	}
	if b := ContentHash(Delivery(OrderID("t", 2), Email("t", 2), at)); b == a {
		t.Errorf("two orders hash alike: %s", a)
	}
	if ContentHash([]byte("not json")) != "" {
		t.Error("a body that is not a delivery has a hash")
	}
}

// TestUnmarkedCountsOnlyAHashIngestDidNotFile: after the last look, serve goes on ingesting. An
// order stored since then has its marker (they commit together), so it is not counted; an order
// stored whose marker is under another hash than the follower's is; an order not stored is not.
func TestUnmarkedCountsOnlyAHashIngestDidNotFile(t *testing.T) {
	recs := fakeRecords{ingested: map[string]time.Time{}}
	f := &follower{recs: recs, dests: []string{"a"}}
	accepted := time.Now()
	for i := range uint64(3) {
		f.add(i, OrderID("u", i), Email("u", i), fmt.Sprintf("h%d", i), accepted)
	}
	f.look(t.Context(), 0) // nothing ingested yet
	// Then order 0 is ingested (marker under its hash) and order 1 is stored with its marker
	// under a hash the follower does not know; order 2 is not stored.
	recs.ingested["h0"] = accepted.Add(time.Second)
	recs.ingested["elsewhere"] = accepted.Add(time.Second)
	stored := map[string]bool{OrderKey(OrderID("u", 0)): true, OrderKey(OrderID("u", 1)): true}
	if n := f.unmarked(t.Context(), func(key string) bool { return stored[key] }); n != 1 {
		t.Fatalf("unmarked = %d, want 1 (order 1 only)", n)
	}
}
