package ontraport

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

// dynamoTable is one table for the test binary; each check keeps to its own account's keys.
var dynamoTable struct {
	once sync.Once
	err  error
}

// TestContractOnDynamoDB holds ONTRAPORT to the destination contract with its contact cache,
// rate window and done markers in DynamoDB (DynamoDB Local) rather than SQLite.
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
		e := newEnv(t)
		// A fresh account per check: the table is shared.
		acct := e.acct
		acct.ID = fmt.Sprintf("dyn-%d-%d", time.Now().UnixNano(), n)
		d := New(Options{Store: dynamo.New(c, dynamo.TableName, e.clk), Clock: e.clk, HTTPClient: e.dest.o.HTTPClient, Sleep: e.dest.o.Sleep})
		placed := orderFact("C-1", "ann@example.com", []domain.LineItem{lineItem("MUG", 1, "10.00")}, "0", "0", "0", "10.00")
		placed.Account = acct.ID
		return delivertest.Env{
			Dest: d, Account: acct, API: e.fake.URL,
			At: func(a accounts.Account, base string) accounts.Account { a.Ontraport.BaseURL = base; return a },
			WithoutKey: func(a accounts.Account) accounts.Account {
				a.Ontraport.APIKey = accounts.Secret{}
				return a
			},
			Placed: placed,
			Held:   func(f domain.Fact) int { return len(e.fake.TransactionsFor(f.Order.Key)) },
		}
	})
}
