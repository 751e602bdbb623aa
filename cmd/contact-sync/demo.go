package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/contact-sync/contact-sync/internal/demo"
)

// runDemo runs the whole path on this machine and prints the report.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("demo", flag.ContinueOnError)
	flags.SetOutput(stderr)
	input := flags.String("input", "testdata/atomic-crm/contacts.csv", "CRM export to import (CSV)")
	mapping := flags.String("mapping", "testdata/atomic-crm/mapping.yaml", "column mapping of the export")
	rateLimit := flags.Float64("rate", 100, "PUTs per second to the stand-in API")
	rateBurst := flags.Int("burst", 10, "PUTs allowed at once above the rate")
	concurrency := flags.Int("concurrency", 16, "most PUTs in flight at once")
	unknownEvery := flags.Int("unknown-every", 10, "make contacts whose CRM id is a multiple of this unknown to the stand-in")
	changeEvery := flags.Int("change-every", 4, "change rows whose CRM id is a multiple of this before the second import")
	timeout := flags.Duration("timeout", 2*time.Minute, "give up after this long")
	logLevel := flags.String("log-level", "error", "worker log level on standard error: debug, info, warn or error")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "Usage: contact-sync demo [flags]\n\nRuns embedded NATS, a stand-in contact API on 127.0.0.1 and the worker on a real CRM export.\n\nFlags:")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *unknownEvery < 1 || *changeEvery < 1 || *rateLimit < 0 || *rateBurst < 1 || *concurrency < 1 {
		fmt.Fprintln(stderr, "contact-sync demo: --unknown-every, --change-every, --burst and --concurrency must be at least 1, and --rate 0 or more")
		return 2
	}

	report, err := demo.Run(ctx, demo.Options{
		Input:        *input,
		Mapping:      *mapping,
		RateLimit:    *rateLimit,
		RateBurst:    *rateBurst,
		Concurrency:  *concurrency,
		UnknownEvery: *unknownEvery,
		ChangeEvery:  *changeEvery,
		Timeout:      *timeout,
		Logger:       newLogger(stderr, *logLevel, "console"),
		Progress:     stderr,
		Terminal:     isTerminal(stderr),
	})
	if err != nil {
		fmt.Fprintf(stderr, "contact-sync demo: %v\n", err)
		return 1
	}

	report.WriteText(stdout)
	if report.Lost != 0 || report.Mismatches != 0 {
		fmt.Fprintf(stderr, "contact-sync demo: FAILED: %d events lost, %d contacts differ from the stream-order fold\n", report.Lost, report.Mismatches)
		return 1
	}
	return 0
}

func isTerminal(out io.Writer) bool {
	file, ok := out.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}
