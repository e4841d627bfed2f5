package sourcetest

import (
	"context"
	"fmt"
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

// Stores are the two backends the contract runs on: the embedded store (SQLite) and DynamoDB
// (DynamoDB Local, started on first use; the test skips where it cannot run, and fails under
// CI). Declare one in the test package and Stop it from TestMain.
type Stores struct {
	ddb    testenv.SharedDynamoDBLocal
	tables atomic.Int64
}

// Run runs the contract on both backends.
func (s *Stores) Run(t *testing.T, e Env) {
	t.Run("embedded", func(t *testing.T) {
		Run(t, func(t *testing.T, clk clock.Clock) store.Store { return testenv.EmbeddedStore(t, clk) }, e)
	})
	t.Run("dynamodb", func(t *testing.T) {
		c := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.ddb.Endpoint(t)),
			Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
		Run(t, func(t *testing.T, clk clock.Clock) store.Store {
			// A table per check keeps the checks apart.
			name := fmt.Sprintf("sourcetest-%d", s.tables.Add(1))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := dynamo.CreateTable(ctx, c, name); err != nil {
				t.Fatalf("create table %s: %v", name, err)
			}
			return dynamo.New(c, name, clk)
		}, e)
	})
}

// Stop ends DynamoDB Local if a test started it.
func (s *Stores) Stop() { s.ddb.Stop() }
