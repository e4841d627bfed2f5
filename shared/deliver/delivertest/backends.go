package delivertest

import (
	"testing"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

// OpenStore opens the table a destination keeps its state in (caches, rate windows, markers).
type OpenStore func(t *testing.T, clk clock.Clock) store.Store

// RunOnBothBackends runs the contract with the destination's state in the embedded store
// (SQLite) and in DynamoDB (DynamoDB Local, started for it; the test skips where it cannot run,
// and fails under CI). newEnv builds the destination over the store open gives.
func RunOnBothBackends(t *testing.T, newEnv func(t *testing.T, open OpenStore) Env) {
	t.Run("embedded", func(t *testing.T) {
		Run(t, func(t *testing.T) Env {
			return newEnv(t, func(t *testing.T, clk clock.Clock) store.Store { return testenv.EmbeddedStore(t, clk) })
		})
	})
	t.Run("dynamodb", func(t *testing.T) {
		table := testenv.DynamoDBTables(t, "delivertest")
		Run(t, func(t *testing.T) Env {
			return newEnv(t, func(t *testing.T, clk clock.Clock) store.Store { return table(t, clk) })
		})
	})
}
