// Command schedule is cartrelay's schedule Lambda function: it runs on the EventBridge schedule.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/cartrelay/cartrelay/shared/wiring"
)

func main() {
	env, err := wiring.Lambda(context.Background(), "schedule", wiring.Options{})
	if err != nil {
		wiring.Fatal("schedule", err)
	}
	lambda.Start(env.App.Schedule)
}
