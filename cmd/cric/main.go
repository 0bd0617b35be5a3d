// Command cric is a client for any OCI registry: log in, pull, push, copy between
// registries, save and load air-gap bundles, list and inspect. The logic lives in
// internal/cric; this package is only the command line.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/berth-registry/berth/internal/cric"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := rootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cric:", cric.Classify(err).Error())
		os.Exit(cric.ExitCode(err))
	}
}
