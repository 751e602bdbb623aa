package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/contact-sync/contact-sync/internal/bench"
)

// runBench runs the benchmark scenarios with this binary's `run`
// subcommand as the worker, prints the table, and appends it to the
// results file. It returns 1 when a scenario failed.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("bench", flag.ContinueOnError)
	flags.SetOutput(stderr)
	quick := flags.Bool("quick", false, "run every scenario at a tenth of its size; scenario 5 runs 3s instead of 30s")
	out := flags.String("out", "BENCHMARKS.md", "file to append the results to; empty appends nowhere")
	command := flags.String("command", "", "command line to record in the results, such as 'make bench'; default: this process's arguments")
	scenarios := flags.String("scenarios", "", "comma-separated scenarios to run, from 1 to 5; default all")
	timeout := flags.Duration("scenario-timeout", bench.DefaultScenarioTimeout, "give up on a scenario after this long")
	var overrides bench.Overrides
	flags.Func("concurrency", "override CONTACT_SYNC_CONCURRENCY in every scenario", intOverride(&overrides.Concurrency))
	flags.Func("max-ack-pending", "override CONTACT_SYNC_MAX_ACK_PENDING in every scenario", intOverride(&overrides.MaxAckPending))
	flags.Func("rate-burst", "override CONTACT_SYNC_RATE_BURST in every scenario", intOverride(&overrides.RateBurst))
	flags.Func("merge-window", "override CONTACT_SYNC_MERGE_WINDOW in every scenario, a Go duration", durationOverride(&overrides.MergeWindow))
	flags.Usage = func() {
		fmt.Fprintln(stderr, "Usage: contact-sync bench [flags]\n\nMeasures the worker (this binary's run subcommand, as a separate process)\nagainst embedded NATS and a stand-in contact API on 127.0.0.1.\n\nFlags:")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}

	selected, err := parseScenarios(*scenarios)
	if err != nil {
		fmt.Fprintf(stderr, "contact-sync bench: %v\n", err)
		return 2
	}
	executable, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "contact-sync bench: find this executable to run the worker: %v\n", err)
		return 1
	}

	opts := bench.Options{
		WorkerCommand:   []string{executable, "run"},
		Scenarios:       selected,
		Overrides:       overrides,
		Output:          stdout,
		Progress:        stderr,
		ScenarioTimeout: *timeout,
	}
	if *quick {
		opts.Size = bench.Quick
	}
	report, err := bench.Run(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "contact-sync bench: %v\n", err)
		return 2
	}

	if *command == "" {
		*command = strings.Join(append([]string{"contact-sync"}, os.Args[1:]...), " ")
	}
	if err := appendReport(*out, report, *command); err != nil {
		fmt.Fprintf(stderr, "contact-sync bench: %v\n", err)
		return 1
	}
	if len(report.Failures) > 0 {
		fmt.Fprintf(stderr, "contact-sync bench: %d scenarios failed\n", len(report.Failures))
		return 1
	}
	return 0
}

// benchmarksIntro starts a results file that does not exist yet.
const benchmarksIntro = `# Benchmarks

Results of ` + "`make bench`" + `, appended by ` + "`contact-sync bench`" + `. A full run is
the reference. A quick run (` + "`make bench-quick`" + `) is a smoke test at a tenth
of the size, too short for precise rates. docs/tuning.md explains how each
figure is measured and what each setting changes.
`

// appendReport appends the report to path, starting the file with
// benchmarksIntro when it is new. An empty path appends nowhere.
func appendReport(path string, report *bench.Report, command string) error {
	if path == "" {
		return nil
	}
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open results file: %w", err)
	}
	info, err := file.Stat()
	if err == nil && info.Size() == 0 {
		_, err = io.WriteString(file, benchmarksIntro)
	}
	if err == nil {
		err = report.WriteMarkdown(file, command)
	}
	if closeErr := file.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("append results to %s: %w", path, err)
	}
	return nil
}

func parseScenarios(list string) ([]int, error) {
	if list == "" {
		return nil, nil
	}
	var selected []int
	for _, field := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 || n > 5 {
			return nil, fmt.Errorf("-scenarios %q: %q is not a scenario number from 1 to 5", list, field)
		}
		selected = append(selected, n)
	}
	return selected, nil
}

func intOverride(target **int) func(string) error {
	return func(value string) error {
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not an integer of at least 1", value)
		}
		*target = &n
		return nil
	}
}

func durationOverride(target **time.Duration) func(string) error {
	return func(value string) error {
		d, err := time.ParseDuration(value)
		if err != nil || d < 0 {
			return fmt.Errorf("%q is not a duration of 0 or more, such as 100ms", value)
		}
		*target = &d
		return nil
	}
}
