package sourcetest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/store/dynamo"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

// RunOnBothBackends runs the contract on the embedded store (SQLite) and on DynamoDB (DynamoDB
// Local, started for it; the test skips where it cannot run, and fails under CI).
func RunOnBothBackends(t *testing.T, e Env) {
	t.Run("embedded", func(t *testing.T) {
		Run(t, func(t *testing.T, clk clock.Clock) store.Store { return testenv.EmbeddedStore(t, clk) }, e)
	})
	t.Run("dynamodb", func(t *testing.T) {
		c := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(testenv.DynamoDBLocal(t)),
			Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
		var tables atomic.Int64
		Run(t, func(t *testing.T, clk clock.Clock) store.Store {
			// A table per check keeps the checks apart.
			name := fmt.Sprintf("sourcetest-%d", tables.Add(1))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := dynamo.CreateTable(ctx, c, name); err != nil {
				t.Fatalf("create table %s: %v", name, err)
			}
			return dynamo.New(c, name, clk)
		}, e)
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
