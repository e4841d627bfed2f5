// Command ingest is cartrelay's ingest Lambda function: it turns queued source events into stored history and facts.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/cartrelay/cartrelay/shared/phone"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

func main() {
	env, err := wiring.Lambda(context.Background(), "ingest", wiring.Options{Phone: phone.CachedE164()})
	if err != nil {
		wiring.Fatal("ingest", err)
	}
	lambda.Start(env.App.Ingest)
}
