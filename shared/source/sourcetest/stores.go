package sourcetest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

// RunOnBothBackends runs the contract on the embedded store (SQLite) and on DynamoDB (DynamoDB
// Local, started for it; the test skips where it cannot run, and fails under CI).
func RunOnBothBackends(t *testing.T, e Env) {
	t.Run("embedded", func(t *testing.T) {
		Run(t, func(t *testing.T, clk clock.Clock) store.Store { return testenv.EmbeddedStore(t, clk) }, e)
	})
	t.Run("dynamodb", func(t *testing.T) {
		table := testenv.DynamoDBTables(t, "sourcetest")
		Run(t, func(t *testing.T, clk clock.Clock) store.Store { return table(t, clk) }, e)
	})
}

// Testdata reads a file of the calling source's testdata, beside its registration package.
func Testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
