// Command cartrelay is the operator CLI and local runtime of cartrelay (`cartrelay help`).
package main

import (
	"context"
	"os"

	"github.com/cartrelay/cartrelay/shared/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], cli.IO{Out: os.Stdout, Err: os.Stderr}))
}
