// Command cartrelay-load posts UltraCart order deliveries to a `cartrelay serve` it starts, at a
// fixed rate, and reports the accepted rate, answer times, the lag to ingest and to delivery,
// and serve's peak memory (`make bench-load`; see shared/loadgen).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cartrelay/cartrelay/shared/loadgen"
)

func main() {
	var o loadgen.Options
	var serveArgs string
	var asJSON bool
	flag.StringVar(&o.Binary, "bin", "bin/cartrelay", "the cartrelay executable to run serve from (make cli builds it)")
	flag.StringVar(&o.Data, "data", "", "serve's data directory (default: a new temporary one, removed afterwards)")
	flag.IntVar(&o.Rate, "rate", 500, "deliveries a second; 0 sends as fast as -workers senders can")
	flag.IntVar(&o.Workers, "workers", 32, "senders for -rate 0 (at a fixed rate, as many as it takes)")
	flag.DurationVar(&o.Duration, "duration", 60*time.Second, "how long to post")
	flag.StringVar(&o.Destinations, "destinations", loadgen.DryRun, "dry (no API keys: forwarders record what they would send) or fake (in-process ONTRAPORT and Iterable stand-ins, limits lifted)")
	flag.IntVar(&o.SampleEvery, "sample", 10, "follow one accepted order in N to ingest and delivery")
	flag.DurationVar(&o.Drain, "drain", 2*time.Minute, "after posting, how long to wait for the followed orders to be delivered")
	flag.StringVar(&serveArgs, "serve-args", "", "more arguments for serve, space-separated (for example --cpuprofile serve.pprof)")
	flag.BoolVar(&asJSON, "json", false, "print the report as JSON")
	flag.Parse()
	if serveArgs != "" {
		o.ServeArgs = strings.Fields(serveArgs)
	}
	o.Progress = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := loadgen.Run(ctx, o)
	if asJSON {
		b, _ := json.Marshal(rep)
		fmt.Println(string(b))
	} else {
		fmt.Print(rep.Text())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cartrelay-load:", err)
		os.Exit(1)
	}
}
