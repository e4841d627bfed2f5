// Command poll is cartrelay's poll Lambda function: it walks source APIs for one connection and stream.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/cartrelay/cartrelay/shared/ssmparams"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

func main() {
	env, err := wiring.Lambda(context.Background(), "poll", wiring.Options{Parameters: ssmparams.Open})
	if err != nil {
		wiring.Fatal("poll", err)
	}
	lambda.Start(env.App.Poll)
}
