package bench

import (
	"context"
	"fmt"
	"time"
)

// measureLimited runs scenario 3: the worker drains a backlog through the
// rate limiter.
func (r *runner) measureLimited(ctx context.Context) ([]Row, error) {
	w := r.sizes.limited
	s := r.settings(settings{Concurrency: 32, MaxAckPending: w.Events, RateLimit: 200, RateBurst: 20})
	r.progressf("3: worker, %g PUTs/s burst %d, on %s", s.RateLimit, s.RateBurst, w)

	env, err := startEnvironment(ctx, s.MaxAckPending)
	if err != nil {
		return nil, err
	}
	defer env.close()
	backlog, err := publishBacklog(ctx, env, w)
	if err != nil {
		return nil, err
	}
	recorder := newArrivals()
	env.api.SetFault(recorder.observe)

	drain, _, err := runWorker(ctx, r.opts.WorkerCommand, env, s)
	if err != nil {
		return nil, err
	}

	times, _ := recorder.snapshot()
	measured := limitedResults(times, backlog.distinctContacts(), backlog.minimumPUTs(), drain, s)
	return []Row{{
		Scenario: "3 rate-limited backlog", Workload: w.String(), Settings: s.String(),
		Measured: measured.lines(),
		Targets:  append(measured.targets(s), stateTarget(backlog.mismatches(env))),
	}}, nil
}

// limitedMeasure contains the figures of scenario 3, computed from the
// arrivals at the stand-in.
type limitedMeasure struct {
	puts, contacts, minimumPUTs int
	drain, ideal                time.Duration
	maxPerSecond                int
	utilisation                 float64
	rate                        float64
}

func limitedResults(times []time.Time, contacts, minimumPUTs int, drain time.Duration, s settings) limitedMeasure {
	m := limitedMeasure{
		puts:        len(times),
		contacts:    contacts,
		minimumPUTs: minimumPUTs,
		drain:       drain,
		ideal:       time.Duration(float64(contacts) / s.RateLimit * float64(time.Second)),
		rate:        s.RateLimit,
	}
	m.maxPerSecond = maxInWindow(times, time.Second) // sorts times
	if len(times) > 0 {
		span := times[len(times)-1].Sub(times[0])
		// The most PUTs the limiter lets through between the first and
		// the last arrival: the burst, then the rate.
		m.utilisation = ratio(float64(len(times)), float64(s.RateBurst)+s.RateLimit*span.Seconds())
	}
	return m
}

func (m limitedMeasure) lines() []string {
	return []string{
		fmt.Sprintf("%s PUTs to %s distinct contacts: %.3f PUTs/contact", thousands(m.puts), thousands(m.contacts), m.putsPerContact()),
		fmt.Sprintf("fewest PUTs possible %s (%.3f/contact, because an update that clears the dynamic fields and sets some takes two); sent %.3fx that",
			thousands(m.minimumPUTs), ratio(float64(m.minimumPUTs), float64(m.contacts)), m.putsPerMinimum()),
		fmt.Sprintf("drained in %s, ideal %s: %.3fx; against the fewest PUTs at the rate, %.3fx", round(m.drain), round(m.ideal), m.drainRatio(), m.drainPerMinimum()),
		fmt.Sprintf("max %d requests in a 1-s window", m.maxPerSecond),
		fmt.Sprintf("utilisation %.1f%%", 100*m.utilisation),
	}
}

func (m limitedMeasure) putsPerContact() float64 { return ratio(float64(m.puts), float64(m.contacts)) }
func (m limitedMeasure) drainRatio() float64     { return ratio(m.drain.Seconds(), m.ideal.Seconds()) }
func (m limitedMeasure) putsPerMinimum() float64 {
	return ratio(float64(m.puts), float64(m.minimumPUTs))
}

func (m limitedMeasure) drainPerMinimum() float64 {
	return ratio(m.drain.Seconds(), float64(m.minimumPUTs)/m.rate)
}

func (m limitedMeasure) targets(s settings) []target {
	ceiling := int(s.RateLimit) + s.RateBurst
	return []target{
		{name: "≤ 1.02 PUTs/contact", value: fmt.Sprintf("%.3f", m.putsPerContact()), met: m.putsPerContact() <= 1.02},
		{name: "PUTs ≤ 1.02x the fewest possible", value: fmt.Sprintf("%.3fx", m.putsPerMinimum()), met: m.putsPerMinimum() <= 1.02},
		{name: "drain ≤ 1.05x ideal", value: fmt.Sprintf("%.3fx", m.drainRatio()), met: m.drainRatio() <= 1.05},
		{name: "drain ≤ 1.05x the fewest PUTs at the rate", value: fmt.Sprintf("%.3fx", m.drainPerMinimum()), met: m.drainPerMinimum() <= 1.05},
		{name: fmt.Sprintf("1-s window ≤ %d", ceiling), value: fmt.Sprint(m.maxPerSecond), met: m.maxPerSecond <= ceiling},
		{name: "utilisation ≥ 95%", value: fmt.Sprintf("%.1f%%", 100*m.utilisation), met: m.utilisation >= 0.95},
	}
}

// measureMemory runs scenario 4: the worker's peak RSS on a small and a
// ten times larger backlog over the same contacts.
func (r *runner) measureMemory(ctx context.Context) ([]Row, error) {
	s := r.settings(unlimitedSettings)
	var peaks [2]int64
	var lines []string
	mismatches := 0
	for i, w := range r.sizes.memory {
		r.progressf("4: worker, unlimited rate, on %s", w)
		peak, line, wrong, err := r.measurePeakRSS(ctx, w, s)
		if err != nil {
			return nil, err
		}
		peaks[i] = peak
		lines = append(lines, line)
		mismatches += wrong
	}

	small, large := r.sizes.memory[0], r.sizes.memory[1]
	growth := ratio(float64(peaks[1]), float64(peaks[0]))
	lines = append(lines, fmt.Sprintf("ratio %.2f", growth))
	limit := int64(64 << 20)
	return []Row{{
		Scenario: "4 memory against backlog",
		Workload: fmt.Sprintf("%s, then %s events", small, thousands(large.Events)),
		Settings: s.String(),
		Measured: lines,
		Targets: []target{
			{name: fmt.Sprintf("peak RSS ≤ 64 MiB at %s", thousands(large.Events)), value: mebibytes(peaks[1]), met: peaks[1] <= limit},
			{name: fmt.Sprintf("≤ 1.2x the %s figure", thousands(small.Events)), value: fmt.Sprintf("%.2fx", growth), met: growth <= 1.2},
			stateTarget(mismatches),
		},
	}}, nil
}

func (r *runner) measurePeakRSS(ctx context.Context, w workload, s settings) (int64, string, int, error) {
	env, err := startEnvironment(ctx, s.MaxAckPending)
	if err != nil {
		return 0, "", 0, err
	}
	defer env.close()
	backlog, err := publishBacklog(ctx, env, w)
	if err != nil {
		return 0, "", 0, err
	}

	drain, used, err := runWorker(ctx, r.opts.WorkerCommand, env, s)
	if err != nil {
		return 0, "", 0, err
	}
	line := fmt.Sprintf("%s events: peak RSS %s, %.0f events/s, %s PUTs", thousands(w.Events), mebibytes(used.PeakRSS),
		perSecond(int64(w.Events), drain), thousands(int(env.api.Stats().Requests)))
	return used.PeakRSS, line, backlog.mismatches(env), nil
}
