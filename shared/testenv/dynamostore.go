package testenv

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/store/dynamo"
)

// DynamoDBTables starts DynamoDB Local for t (DynamoDBLocal: it skips where it cannot run, and
// fails under CI) and returns a function that opens a fresh table on it named prefix-N, so
// the checks of a contract suite that share it stay apart.
func DynamoDBTables(t testing.TB, prefix string) func(t testing.TB, clk clock.Clock) *dynamo.Store {
	t.Helper()
	c := dynamo.NewClient(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(DynamoDBLocal(t)),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
	var tables atomic.Int64
	return func(t testing.TB, clk clock.Clock) *dynamo.Store {
		t.Helper()
		name := fmt.Sprintf("%s-%d", prefix, tables.Add(1))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := dynamo.CreateTable(ctx, c, name); err != nil {
			t.Fatalf("create table %s: %v", name, err)
		}
		return dynamo.New(c, name, clk)
	}
}
