// Command contact-sync applies contact-change events from NATS JetStream to
// the contact API. Subcommands: run (the worker), import (publish a CSV or
// JSONL batch as events) and demo (the whole path on one machine).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `contact-sync applies contact-change events from NATS JetStream to the contact API.

Usage:
  contact-sync run              run the worker; settings come from CONTACT_SYNC_* variables
                                (contact-sync run -h lists them)
  contact-sync import [flags] FILE
                                publish a CSV or JSONL batch import as events
  contact-sync demo [flags]     run the whole path on this machine: embedded NATS,
                                a stand-in contact API and the shipped CRM export
  contact-sync bench [--quick]  measure the worker against this machine's ceilings
                                (make bench); appends the results to BENCHMARKS.md
  contact-sync help             show this text
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and returns the exit code: 0 on success,
// 1 on failure, 2 on a usage or configuration error. SIGINT and SIGTERM
// cancel the subcommand's context; signals stay here so that the
// subcommands can be called from tests.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch args[0] {
	case "run":
		return runWorker(ctx, args[1:], stdout, stderr)
	case "import":
		return runImport(ctx, args[1:], stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "contact-sync: unknown subcommand %q\n\n%s", args[0], usage)
		return 2
	}
}
