package ultracart

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

// receivedAt is the fixed receipt time the golden outputs are computed with.
var receivedAt = time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC)

// goldenResult is what one event of a fixture normalizes to.
type goldenResult struct {
	Index  int            `json:"index"`
	Name   string         `json:"name"`
	Events []domain.Event `json:"events,omitempty"`
	// Error and ErrorKind are set when the event does not normalize.
	Error     string `json:"error,omitempty"`
	ErrorKind string `json:"error_kind,omitempty"`
}

func fixtures(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	return files
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func errorKind(err error) string {
	switch {
	case errors.Is(err, ErrUnknownEvent):
		return "unknown"
	case errors.Is(err, ErrInvalidEvent):
		return "invalid"
	}
	return "untyped"
}

func normalizeDelivery(t testing.TB, body []byte) []goldenResult {
	t.Helper()
	raws, err := DecodeDelivery(body)
	if err != nil {
		t.Fatalf("DecodeDelivery: %v", err)
	}
	out := make([]goldenResult, 0, len(raws))
	for _, r := range raws {
		res := goldenResult{Index: r.Index, Name: r.Name}
		evs, err := normalizeFull(r, receivedAt)
		if err != nil {
			res.Error, res.ErrorKind = err.Error(), errorKind(err)
		}
		res.Events = evs
		out = append(out, res)
	}
	return out
}

func TestGolden(t *testing.T) {
	for _, f := range fixtures(t) {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(normalizeDelivery(t, body), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "golden", name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run with -update to accept):\n%s", path, firstDiff(string(want), string(got)))
			}
		})
	}
}

// firstDiff shows the first differing line with a little context.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl
		}
	}
	return "(no line differs)"
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }
