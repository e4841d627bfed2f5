package loadgen

import (
	"path/filepath"
	"slices"
	"testing"
)

// The totals are read from the last line serve logged them on (a restarted serve logs them
// again) and worded per order.
func TestServeCountsPerOrder(t *testing.T) {
	counts, err := ServeCounts(filepath.Join("testdata", "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	if counts["db.writes"] != 300 || counts["store.write.E/DL"] != 80 {
		t.Fatalf("ServeCounts = %v; want the last totals (300 writes, 80 delivery log items)", counts)
	}
	got := perOrder(counts, 20)
	want := []string{
		"database: 15.00 writes in 2.00 commits (WAL restarted 3 times)",
		"table: 35.00 gets, 0.50 reads of many (4.50 keys), 6.00 queries, 21.00 items written",
		"items written by kind: E/DL 4.00, R/- 2.00",
		"gets by kind: A/- 6.00",
		"keys read many at once by kind: F/- 4.00, E/- 0.50",
		"queue ingest: 1.00 sent, 0.20 receives (0.45 looks), 1.00 received, 0.00 deletes, 0.10 batch deletes",
	}
	if !slices.Equal(got, want) {
		t.Errorf("perOrder =\n%q\nwant\n%q", got, want)
	}
	if got := perOrder(nil, 20); got != nil {
		t.Errorf("perOrder without counts = %q, want nothing", got)
	}
}

func TestServeCountsOfALogWithoutThem(t *testing.T) {
	// The delivery the load posts is a file of JSON without serve's totals.
	counts, err := ServeCounts("order.json")
	if err != nil || counts != nil {
		t.Errorf("ServeCounts of a file without totals = %v, %v; want none and no error", counts, err)
	}
	if _, err := ServeCounts(filepath.Join("testdata", "missing.log")); err == nil {
		t.Error("ServeCounts of a missing log gave no error")
	}
}
