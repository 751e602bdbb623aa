package bench

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/contact-sync/contact-sync/internal/contactapi"
	"github.com/contact-sync/contact-sync/worker"
)

// runWorker starts the worker on env with s, waits until the consumer is
// drained, stops the worker, and returns the drain time (from the start
// of the process) and the process's resource usage.
func runWorker(ctx context.Context, command []string, env *environment, s settings) (time.Duration, usage, error) {
	process, err := startWorker(command, s.environ(env))
	if err != nil {
		return 0, usage{}, err
	}

	drainErr := env.waitDrained(ctx, process.exited)
	drain := time.Since(process.started)
	used, stopErr := process.stop()
	if drainErr != nil {
		return 0, used, fmt.Errorf("worker: %w", joinErrors(drainErr, stopErr))
	}
	if stopErr != nil {
		return 0, used, stopErr
	}
	return drain, used, nil
}

func joinErrors(first, second error) error {
	if second == nil {
		return first
	}
	return fmt.Errorf("%w; %w", first, second)
}

// ceilingResults are the three ceilings of scenario 1, zero when not
// measured in this run.
type ceilingResults struct {
	consumeRate float64 // events per second
	putRate     float64 // PUTs per second
	naiveRate   float64 // events per second
}

// measureCeilings runs the three ceilings of scenario 1 on the workload of
// scenario 2 and returns their rows.
func (r *runner) measureCeilings(ctx context.Context) ([]Row, error) {
	w, s := r.sizes.unlimited, r.settings(unlimitedSettings)

	r.progressf("1a: raw JetStream consume of %s", w)
	consumeRate, err := measureRawConsume(ctx, w, s)
	if err != nil {
		return nil, err
	}
	r.ceilings.consumeRate = consumeRate

	r.progressf("1b: raw PUTs, %s of them", thousands(r.sizes.rawPUTs))
	putRate, err := measureRawPUT(ctx, w, r.sizes.rawPUTs, s.Concurrency)
	if err != nil {
		return nil, err
	}
	r.ceilings.putRate = putRate

	r.progressf("1c: naive design, one PUT per event, on %s", w)
	naiveRate, mismatches, err := measureNaive(ctx, w, s)
	if err != nil {
		return nil, err
	}
	r.ceilings.naiveRate = naiveRate

	return []Row{
		{Scenario: "1a raw JetStream consume", Workload: w.String(),
			Settings: fmt.Sprintf("pull batch %d (the worker's), ack only, max ack pending %s", worker.DefaultFetchBatch, thousands(s.MaxAckPending)),
			Measured: []string{fmt.Sprintf("%.0f events/s", consumeRate)}},
		{Scenario: "1b raw PUT", Workload: fmt.Sprintf("%s PUTs over %s contacts", thousands(r.sizes.rawPUTs), thousands(w.Contacts)),
			Settings: fmt.Sprintf("%d goroutines, one keep-alive pool", s.Concurrency),
			Measured: []string{fmt.Sprintf("%.0f PUTs/s", putRate)}},
		{Scenario: "1c naive: one PUT per event", Workload: w.String(),
			Settings: fmt.Sprintf("sink.Client, %d lanes by contact, %s", s.Concurrency, rateText(s)),
			Measured: []string{fmt.Sprintf("%.0f events/s", naiveRate)},
			Targets:  []target{stateTarget(mismatches)}},
	}, nil
}

// measureUnlimited runs scenario 2: the worker on an unlimited API.
func (r *runner) measureUnlimited(ctx context.Context) ([]Row, error) {
	w, s := r.sizes.unlimited, r.settings(unlimitedSettings)
	r.progressf("2: worker, unlimited rate, on %s", w)

	env, err := startEnvironment(ctx, s.MaxAckPending)
	if err != nil {
		return nil, err
	}
	defer env.close()
	backlog, err := publishBacklog(ctx, env, w)
	if err != nil {
		return nil, err
	}

	benchCPU := selfCPU()
	drain, used, err := runWorker(ctx, r.opts.WorkerCommand, env, s)
	if err != nil {
		return nil, err
	}
	benchCores := ratio((selfCPU() - benchCPU).Seconds(), used.Elapsed.Seconds())

	m := unlimitedMeasure{
		events: w.Events, puts: env.api.Stats().Requests, minimumPUTs: backlog.minimumPUTs(),
		contacts: backlog.distinctContacts(), drain: drain, used: used, benchCores: benchCores,
	}
	row := Row{Scenario: "2 unlimited backlog", Workload: w.String(), Settings: s.String(), Measured: m.lines()}
	if r.ceilings.consumeRate > 0 {
		row.Measured = append(row.Measured, m.ceilingLine(r.ceilings))
		row.Targets = m.targets(r.ceilings)
	} else {
		row.Measured = append(row.Measured, "ceilings not measured in this run (scenario 1 did not run)")
	}
	row.Targets = append(row.Targets, stateTarget(backlog.mismatches(env)))
	return []Row{row}, nil
}

// unlimitedMeasure contains the figures of scenario 2.
type unlimitedMeasure struct {
	events, contacts, minimumPUTs int
	puts                          int64
	drain                         time.Duration
	used                          usage

	// benchCores is the bench process's CPU time over the worker's
	// lifetime: the nats-server and the stand-in.
	benchCores float64
}

func (m unlimitedMeasure) eventRate() float64 { return perSecond(int64(m.events), m.drain) }
func (m unlimitedMeasure) putRate() float64   { return perSecond(m.puts, m.drain) }

func (m unlimitedMeasure) lines() []string {
	return []string{
		fmt.Sprintf("%.0f events/s (drained in %s)", m.eventRate(), round(m.drain)),
		fmt.Sprintf("%s PUTs (%.0f/s) to %s distinct contacts", thousands(int(m.puts)), m.putRate(), thousands(m.contacts)),
		fmt.Sprintf("merge ratio %.2f events/PUT (%.2f if each contact got the fewest PUTs)",
			ratio(float64(m.events), float64(m.puts)), ratio(float64(m.events), float64(m.minimumPUTs))),
		fmt.Sprintf("%.2f CPU s per 100,000 events", m.used.CPU.Seconds()*100_000/float64(m.events)),
		fmt.Sprintf("peak RSS %s", mebibytes(m.used.PeakRSS)),
		fmt.Sprintf("worker used %.2f cores, nats-server and stand-in %.2f", ratio(m.used.CPU.Seconds(), m.used.Elapsed.Seconds()), m.benchCores),
	}
}

func (m unlimitedMeasure) ceilingLine(c ceilingResults) string {
	return fmt.Sprintf("%.0f%% of (a); %.0f%% of (b) in PUTs/s; %.1fx (c)",
		100*ratio(m.eventRate(), c.consumeRate), 100*ratio(m.putRate(), c.putRate), ratio(m.eventRate(), c.naiveRate))
}

func (m unlimitedMeasure) targets(c ceilingResults) []target {
	ofConsume := ratio(m.eventRate(), c.consumeRate)
	ofNaive := ratio(m.eventRate(), c.naiveRate)
	return []target{
		{name: "events/s ≥ 50% of (a)", value: fmt.Sprintf("%.0f%%", 100*ofConsume), met: ofConsume >= 0.5},
		{name: "events/s ≥ 3x (c)", value: fmt.Sprintf("%.1fx", ofNaive), met: ofNaive >= 3},
	}
}

// arrivals records when the stand-in received each PUT. Safe for
// concurrent use.
type arrivals struct {
	mu    sync.Mutex
	times []time.Time
	first map[string]time.Time
}

func newArrivals() *arrivals {
	return &arrivals{first: make(map[string]time.Time)}
}

// observe is a contactapi.FaultFunc that records the arrival and injects
// nothing.
func (a *arrivals) observe(request contactapi.FaultRequest) contactapi.Fault {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()

	a.times = append(a.times, now)
	if _, seen := a.first[request.ContactID]; !seen {
		a.first[request.ContactID] = now
	}
	return contactapi.Fault{}
}

func (a *arrivals) snapshot() ([]time.Time, map[string]time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.times), maps.Clone(a.first)
}
