// Command forward is cartrelay's forwarder Lambda function: it turns facts into API calls for
// one destination. The template deploys it twice, with DESTINATION=ontraport and iterable.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/cartrelay/cartrelay/shared/wiring"
)

func main() {
	env, err := wiring.Lambda(context.Background(), "forward", wiring.Options{})
	if err != nil {
		wiring.Fatal("forward", err)
	}
	dest, err := env.Destination(os.Getenv("DESTINATION"))
	if err != nil {
		wiring.Fatal("forward", err)
	}
	lambda.Start(env.App.Forward(dest))
}
