// Command webhook is cartrelay's webhook Lambda function: it authenticates source webhooks and queues their events.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/cartrelay/cartrelay/shared/wiring"
)

func main() {
	env, err := wiring.Lambda(context.Background(), "webhook", wiring.Options{})
	if err != nil {
		wiring.Fatal("webhook", err)
	}
	lambda.Start(env.App.Webhook)
}
