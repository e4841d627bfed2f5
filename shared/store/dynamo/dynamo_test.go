//go:build unix

package dynamo_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cartrelay/cartrelay/shared/clock"
	"github.com/cartrelay/cartrelay/shared/store"
	"github.com/cartrelay/cartrelay/shared/store/dynamo"
	"github.com/cartrelay/cartrelay/shared/store/storetest"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

// local is the test binary's one DynamoDB Local, started by the first test that needs it.
var local testenv.SharedDynamoDBLocal

func TestMain(m *testing.M) {
	code := m.Run()
	local.Stop()
	os.Exit(code)
}

// localConfig is the configuration for the shared DynamoDB Local, which accepts any
// credentials.
func localConfig(t testing.TB) aws.Config {
	t.Helper()
	return aws.Config{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(local.Endpoint(t)),
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	}
}

// client is the adapter's client of the shared DynamoDB Local.
func client(t testing.TB) *dynamo.Client {
	t.Helper()
	return dynamo.NewClient(localConfig(t))
}

// sdkClient is the SDK's DynamoDB client, which the tests use to see what the adapter did
// through a reading of DynamoDB's answers other than its own.
func sdkClient(t testing.TB) *dynamodb.Client {
	t.Helper()
	return dynamodb.NewFromConfig(localConfig(t))
}

// table creates one table per name for the whole test binary; the contract suite keeps its
// tests apart by key, so they share it.
type tables struct {
	mu      sync.Mutex
	created map[string]error
}

func (tb *tables) get(t testing.TB, c *dynamo.Client, name string) string {
	t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	err, done := tb.created[name]
	if !done {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err = dynamo.CreateTable(ctx, c, name)
		tb.created[name] = err
	}
	if err != nil {
		t.Fatalf("create table %s: %v", name, err)
	}
	return name
}

func TestContract(t *testing.T) {
	c := client(t)
	tb := &tables{created: map[string]error{}}
	storetest.Run(t, func(t *testing.T, clk *clock.Fake) store.Store {
		return dynamo.New(c, tb.get(t, c, dynamo.TableName), clk)
	})
}

func TestCreateTableIsIdempotent(t *testing.T) {
	c := client(t)
	name := fmt.Sprintf("create-%d", time.Now().UnixNano())
	for i := range 2 {
		if err := dynamo.CreateTable(t.Context(), c, name); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	sdk := sdkClient(t)
	ttl, err := sdk.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != dynamo.AttrTTL || d.TimeToLiveStatus != "ENABLED" {
		t.Fatalf("TTL not enabled on %s: %+v", dynamo.AttrTTL, d)
	}
	desc, err := sdk.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if bm := desc.Table.BillingModeSummary; bm == nil || bm.BillingMode != "PAY_PER_REQUEST" {
		t.Fatalf("billing mode %+v, want PAY_PER_REQUEST", bm)
	}
	for _, g := range desc.Table.GlobalSecondaryIndexes {
		if g.Projection == nil || g.Projection.ProjectionType != "ALL" {
			t.Fatalf("index %s projects %+v, want ALL", aws.ToString(g.IndexName), g.Projection)
		}
	}
}

func TestCreateTableRefusesForeignTable(t *testing.T) {
	name := fmt.Sprintf("foreign-%d", time.Now().UnixNano())
	_, err := sdkClient(t).CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          "PAY_PER_REQUEST",
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: "S"}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: "HASH"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := dynamo.CreateTable(t.Context(), client(t), name); err == nil {
		t.Fatal("CreateTable accepted an existing table without cartrelay's indexes")
	}
}
