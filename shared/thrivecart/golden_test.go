package thrivecart

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cartrelay/cartrelay/shared/domain"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

var receivedAt = time.Date(2024, 7, 5, 12, 0, 0, 0, time.UTC)

// secret is the secret word every fixture carries.
const secret = "TESTSECRETWORD01"

// contentTypes maps fixture extensions to the Content-Type they are sent with.
var contentTypes = map[string]string{
	".json": "application/json",
	".form": "application/x-www-form-urlencoded",
}

type goldenResult struct {
	Event     string         `json:"event"`
	Mode      string         `json:"mode,omitempty"`
	SecretOK  bool           `json:"secret_ok"`
	Events    []domain.Event `json:"events,omitempty"`
	Error     string         `json:"error,omitempty"`
	ErrorKind string         `json:"error_kind,omitempty"`
}

type fixture struct {
	name, path, contentType string
}

func fixtures(t testing.TB) []fixture {
	t.Helper()
	var out []fixture
	for ext, ct := range contentTypes {
		files, err := filepath.Glob(filepath.Join("testdata", "*"+ext))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			out = append(out, fixture{name: filepath.Base(f), path: f, contentType: ct})
		}
	}
	if len(out) == 0 {
		t.Fatal("no fixtures")
	}
	return out
}

func load(t testing.TB, f fixture) Delivery {
	t.Helper()
	body, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(f.contentType, body)
	if err != nil {
		t.Fatalf("Decode %s: %v", f.name, err)
	}
	return d
}

func loadNamed(t testing.TB, name string) Delivery {
	t.Helper()
	return load(t, fixture{name: name, path: filepath.Join("testdata", name), contentType: contentTypes[filepath.Ext(name)]})
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

func result(d Delivery) goldenResult {
	r := goldenResult{Event: d.Event, Mode: d.Mode, SecretOK: CheckSecret(d, secret)}
	evs, err := normalizeFull(d, receivedAt)
	if err != nil {
		r.Error, r.ErrorKind = err.Error(), errorKind(err)
	}
	r.Events = evs
	return r
}

func TestGolden(t *testing.T) {
	for _, f := range fixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			got, err := json.MarshalIndent(result(load(t, f)), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "golden", f.name+".golden.json")
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

// TestFormAndJSONAgree checks that the two encodings of the same webhook normalize alike.
func TestFormAndJSONAgree(t *testing.T) {
	forms, _ := filepath.Glob(filepath.Join("testdata", "*.form"))
	pairs := 0
	for _, form := range forms {
		js := strings.TrimSuffix(form, ".form") + ".json"
		if _, err := os.Stat(js); err != nil {
			continue
		}
		pairs++
		a := result(loadNamed(t, filepath.Base(form)))
		b := result(loadNamed(t, filepath.Base(js)))
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if !bytes.Equal(ja, jb) {
			t.Errorf("%s and its JSON twin normalize differently:\n%s", form, firstDiff(string(jb), string(ja)))
		}
	}
	if pairs < 5 {
		t.Errorf("only %d form/JSON pairs", pairs)
	}
}

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
			return fmt.Sprintf("line %d:\n  want: %s\n  got:  %s", i+1, clip(wl), clip(gl))
		}
	}
	return "(no line differs)"
}
