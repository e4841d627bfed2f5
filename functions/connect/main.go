// Command connect is cartrelay's connect Lambda function: it serves the merchant's browser.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/cartrelay/cartrelay/shared/ssmparams"
	"github.com/cartrelay/cartrelay/shared/wiring"
)

func main() {
	env, err := wiring.Lambda(context.Background(), "connect", wiring.Options{Parameters: ssmparams.Open})
	if err != nil {
		wiring.Fatal("connect", err)
	}
	lambda.Start(env.App.Connect)
}
