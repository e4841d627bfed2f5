package testenv_test

import (
	"bytes"
	"log/slog"
	"slices"
	"testing"

	"github.com/cartrelay/cartrelay/shared/testenv"
)

func TestRepeatedKeys(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil)).With("account", "acme", "stream", "orders")
	log.Info("poll run", "stream", "orders", slog.Group("page", "n", 1, "n", 2))
	got, err := testenv.RepeatedKeys(buf.Bytes())
	if err != nil || !slices.Equal(got, []string{"stream", "page.n"}) {
		t.Fatalf("%s: %v %v", buf.String(), got, err)
	}
	for _, line := range []string{`{"a":1,"b":{"a":2},"c":[{"a":1},{"a":1}]}`, `{}`} {
		if got, err := testenv.RepeatedKeys([]byte(line)); err != nil || len(got) != 0 {
			t.Errorf("%s: %v %v", line, got, err)
		}
	}
	if _, err := testenv.RepeatedKeys([]byte(`not json`)); err == nil {
		t.Error("a line that is not JSON was read")
	}
}
