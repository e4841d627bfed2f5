package iterable_test

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

	"github.com/cartrelay/cartrelay/shared/accounts"
	"github.com/cartrelay/cartrelay/shared/deliver/delivertest"
	"github.com/cartrelay/cartrelay/shared/domain"
	"github.com/cartrelay/cartrelay/shared/iterable"
	"github.com/cartrelay/cartrelay/shared/store/dynamo"
	"github.com/cartrelay/cartrelay/shared/testenv"
)

// local is the test binary's DynamoDB Local, started by the first test that needs it.
var local testenv.SharedDynamoDBLocal

func TestMain(m *testing.M) {
	code := m.Run()
	local.Stop()
	os.Exit(code)
}

var dynamoTable struct {
	once sync.Once
	err  error
}

// TestContractOnDynamoDB holds Iterable to the destination contract with its rate windows,
// catalogue and review keys in DynamoDB (DynamoDB Local) rather than SQLite.
func TestContractOnDynamoDB(t *testing.T) {
	c := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(local.Endpoint(t)),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")})
	dynamoTable.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		dynamoTable.err = dynamo.CreateTable(ctx, c, dynamo.TableName)
	})
	if dynamoTable.err != nil {
		t.Fatalf("create table: %v", dynamoTable.err)
	}
	n := 0
	delivertest.Run(t, func(t *testing.T) delivertest.Env {
		n++
		e := newEnv(t, envOpts{})
		st := dynamo.New(c, dynamo.TableName, e.clk)
		dest, err := iterable.New(iterable.Deps{Store: st, Clock: e.clk, HTTP: e.fake.Client(), PublicBaseURL: "https://hooks.example.com",
			Keys: testKeys(t, st, e.clk), Sleep: func(_ context.Context, d time.Duration) error { e.clk.Advance(d); return nil }})
		if err != nil {
			t.Fatal(err)
		}
		// A fresh account per check: the table is shared.
		acct := e.acct
		acct.ID = fmt.Sprintf("dyn-%d-%d", time.Now().UnixNano(), n)
		placed := loadFact(t, "order_placed")
		placed.Account = acct.ID
		return delivertest.Env{
			Dest: dest, Account: acct, API: e.fake.URL, Transport: e.fake.Client().Transport,
			At: func(a accounts.Account, base string) accounts.Account { a.Iterable.BaseURL = base; return a },
			WithoutKey: func(a accounts.Account) accounts.Account {
				a.Iterable.APIKey = accounts.Secret{}
				return a
			},
			Placed: placed,
			Held: func(f domain.Fact) int {
				n := 0
				for _, p := range e.fake.Purchases() {
					if p.ID == f.Order.Key {
						n++
					}
				}
				return n
			},
		}
	})
}
