package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// run dispatches on the first argument: a server mode, or the comparison.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	mode := "compare"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		mode, args = args[0], args[1:]
	}
	switch mode {
	case "compare":
		return cmdCompare(ctx, args, stdout, stderr)
	case "upstream":
		return cmdUpstream(ctx, args, stdout, stderr)
	case "bare":
		return cmdBare(ctx, args, stdout, stderr)
	default:
		return fmt.Errorf("unknown mode %q (want compare, upstream or bare)", mode)
	}
}
