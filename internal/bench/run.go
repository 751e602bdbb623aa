package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Size selects the size of every scenario's workload.
type Size int

const (
	// Full is the size BENCHMARKS.md records: 200,000 events in scenario 2
	// and a 30-second latency run.
	Full Size = iota

	// Quick is a tenth of Full, and a 3-second latency run: under two
	// minutes on a 2-core machine.
	Quick
)

// String returns "full" or "quick".
func (s Size) String() string {
	if s == Quick {
		return "quick"
	}
	return "full"
}

// DefaultScenarioTimeout bounds one scenario when Options.ScenarioTimeout
// is zero.
const DefaultScenarioTimeout = 10 * time.Minute

// Options configures Run. WorkerCommand is required.
type Options struct {
	// Size selects the workloads.
	Size Size

	// WorkerCommand is the executable and arguments that run the worker,
	// such as the contact-sync binary and "run". It is started once per
	// measurement with CONTACT_SYNC_* variables for that measurement.
	WorkerCommand []string

	// Scenarios lists the scenarios to run, from 1 to 5; empty runs all.
	// Scenario 2 reports its ratios to the ceilings only when scenario 1
	// runs too.
	Scenarios []int

	// Overrides replaces settings of every scenario; nil fields keep each
	// scenario's own.
	Overrides Overrides

	// Output receives the table's header and then each row when its
	// scenario ends; nil discards them.
	Output io.Writer

	// Progress receives one line as each measurement starts; nil discards
	// them.
	Progress io.Writer

	// ScenarioTimeout bounds each scenario; zero means
	// DefaultScenarioTimeout.
	ScenarioTimeout time.Duration
}

// Overrides are worker settings that replace each scenario's own. A nil
// field keeps the scenario's value.
type Overrides struct {
	Concurrency   *int
	MaxAckPending *int
	MergeWindow   *time.Duration
	RateBurst     *int
}

// Report is the result of Run.
type Report struct {
	Size    Size
	Started time.Time
	Elapsed time.Duration

	// Settings describes the overrides in force, or "" for none.
	Settings string

	// Rows has one row per measurement, in the order they ran.
	Rows []Row

	// Failures lists the scenarios that failed, with why.
	Failures []error
}

// Run runs the selected scenarios in order, each with its own
// nats-server, stand-in and worker process, and returns the report. A
// scenario that fails is recorded in Report.Failures and the next one
// runs. Run returns an error only for invalid options.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if len(opts.WorkerCommand) == 0 {
		return nil, errors.New("bench: Options.WorkerCommand is required")
	}
	for _, n := range opts.Scenarios {
		if n < 1 || n > 5 {
			return nil, fmt.Errorf("bench: scenario %d does not exist; choose from 1 to 5", n)
		}
	}
	if opts.ScenarioTimeout == 0 {
		opts.ScenarioTimeout = DefaultScenarioTimeout
	}

	r := &runner{opts: opts, sizes: sizesFor(opts.Size)}
	report := &Report{Size: opts.Size, Started: time.Now(), Settings: opts.Overrides.String()}
	writeTableHeader(opts.Output)

	scenarios := []func(*runner, context.Context) ([]Row, error){
		(*runner).measureCeilings, (*runner).measureUnlimited, (*runner).measureLimited,
		(*runner).measureMemory, (*runner).measureLatency,
	}
	for i, measure := range scenarios {
		if len(opts.Scenarios) > 0 && !slices.Contains(opts.Scenarios, i+1) {
			continue
		}
		rows, err := r.runScenario(ctx, measure)
		if err != nil {
			report.Failures = append(report.Failures, fmt.Errorf("scenario %d: %w", i+1, err))
			r.progressf("scenario %d failed: %v", i+1, err)
			continue
		}
		for _, row := range rows {
			row.writeTo(opts.Output)
		}
		report.Rows = append(report.Rows, rows...)
	}

	report.Elapsed = time.Since(report.Started)
	return report, nil
}

func (r *runner) runScenario(ctx context.Context, measure func(*runner, context.Context) ([]Row, error)) ([]Row, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.ScenarioTimeout)
	defer cancel()

	before, sampled := sampleCPU()
	rows, err := measure(r, ctx)
	after, sampledAfter := sampleCPU()
	if err != nil || !sampled || !sampledAfter {
		return rows, err
	}

	// Other sessions on a shared machine slow every figure down, so each
	// row reports how much CPU they took.
	background := fmt.Sprintf("other processes kept %.2f cores busy", otherCores(before, after))
	for i := range rows {
		rows[i].Measured = append(rows[i].Measured, background)
	}
	return rows, nil
}

// runner carries the options and the ceilings between scenarios.
type runner struct {
	opts     Options
	sizes    sizes
	ceilings ceilingResults
}

func (r *runner) progressf(format string, args ...any) {
	if r.opts.Progress != nil {
		fmt.Fprintf(r.opts.Progress, "%s  "+format+"\n", append([]any{time.Now().Format(time.TimeOnly)}, args...)...)
	}
}

// unlimitedSettings are the settings of scenarios 1, 2 and 4: the
// defaults of `contact-sync run`, without a rate limit.
var unlimitedSettings = settings{Concurrency: 32, MaxAckPending: 20_000, RateBurst: 5}

// settings returns base with the overrides applied.
func (r *runner) settings(base settings) settings {
	o := r.opts.Overrides
	if o.Concurrency != nil {
		base.Concurrency = *o.Concurrency
	}
	if o.MaxAckPending != nil {
		base.MaxAckPending = *o.MaxAckPending
	}
	if o.MergeWindow != nil {
		base.MergeWindow = *o.MergeWindow
	}
	if o.RateBurst != nil {
		base.RateBurst = *o.RateBurst
	}
	return base
}

// String describes the overrides set, or returns "" for none.
func (o Overrides) String() string {
	var parts []string
	if o.Concurrency != nil {
		parts = append(parts, fmt.Sprintf("concurrency %d", *o.Concurrency))
	}
	if o.MaxAckPending != nil {
		parts = append(parts, fmt.Sprintf("max ack pending %d", *o.MaxAckPending))
	}
	if o.MergeWindow != nil {
		parts = append(parts, fmt.Sprintf("merge window %s", *o.MergeWindow))
	}
	if o.RateBurst != nil {
		parts = append(parts, fmt.Sprintf("rate burst %d", *o.RateBurst))
	}
	return joinParts(parts)
}

// sizes are the workloads of one Size.
type sizes struct {
	unlimited       workload
	rawPUTs         int
	limited         workload
	memory          [2]workload
	latencyDuration time.Duration
}

func sizesFor(size Size) sizes {
	scale := 1
	latency := 30 * time.Second
	if size == Quick {
		scale, latency = 10, 3*time.Second
	}
	return sizes{
		unlimited: workload{Events: 200_000 / scale, Contacts: 20_000 / scale, Skewed: true, Seed: 1},
		rawPUTs:   20_000 / scale,
		limited:   workload{Events: 50_000 / scale, Contacts: 10_000 / scale, Seed: 2},
		memory: [2]workload{
			{Events: 100_000 / scale, Contacts: 200_000 / scale, Seed: 3},
			{Events: 1_000_000 / scale, Contacts: 200_000 / scale, Seed: 4},
		},
		latencyDuration: latency,
	}
}
