package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/contact-sync/contact-sync/internal/eventgen"
	"github.com/contact-sync/contact-sync/internal/topology"
)

// latencyRate is scenario 5's events per second.
const latencyRate = 50

// arrivalTimeout bounds the wait for the PUT of an event already
// published.
const arrivalTimeout = 30 * time.Second

// measureLatency runs scenario 5: events published one at a time at a low
// rate while the worker runs, each for its own contact, so that each PUT
// carries exactly one event.
func (r *runner) measureLatency(ctx context.Context) ([]Row, error) {
	s := r.settings(settings{Concurrency: 32, MaxAckPending: 20_000, RateLimit: 200, RateBurst: 20})
	count := int(r.sizes.latencyDuration.Seconds() * latencyRate)
	r.progressf("5: worker, %d events/s for %s", latencyRate, r.sizes.latencyDuration)

	env, err := startEnvironment(ctx, s.MaxAckPending)
	if err != nil {
		return nil, err
	}
	defer env.close()
	ids := eventgen.ContactIDs(count + 1)
	if err := env.api.AddContacts(ids...); err != nil {
		return nil, fmt.Errorf("add contacts to the stand-in: %w", err)
	}
	recorder := newArrivals()
	env.api.SetFault(recorder.observe)

	process, err := startWorker(r.opts.WorkerCommand, s.environ(env))
	if err != nil {
		return nil, err
	}
	published, publishErr := publishPaced(ctx, env, recorder, ids, process.exited)
	_, stopErr := process.stop()
	if publishErr != nil {
		return nil, joinErrors(publishErr, stopErr)
	}
	if stopErr != nil {
		return nil, stopErr
	}

	_, first := recorder.snapshot()
	latencies := make([]time.Duration, 0, len(published))
	for id, at := range published {
		latencies = append(latencies, first[id].Sub(at))
	}
	return []Row{latencyRow(latencies, r.sizes.latencyDuration, s)}, nil
}

// publishPaced publishes a warm-up event for ids[0] and waits for its PUT,
// so that the worker is consuming, then one event per contact of the rest
// at latencyRate, and waits for every PUT. It returns when each event was
// published.
func publishPaced(ctx context.Context, env *environment, recorder *arrivals, ids []string, exited <-chan struct{}) (map[string]time.Time, error) {
	if err := publishOne(ctx, env, ids[0], 0); err != nil {
		return nil, err
	}
	if err := waitArrived(ctx, recorder, 1, exited); err != nil {
		return nil, fmt.Errorf("warm-up event: %w", err)
	}

	published := make(map[string]time.Time, len(ids)-1)
	ticker := time.NewTicker(time.Second / latencyRate)
	defer ticker.Stop()
	for i, id := range ids[1:] {
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		published[id] = time.Now()
		if err := publishOne(ctx, env, id, i+1); err != nil {
			return nil, err
		}
	}

	if err := waitArrived(ctx, recorder, len(ids), exited); err != nil {
		return nil, err
	}
	return published, nil
}

// publishOne publishes an event that sets the contact's name, so that it
// always leads to a PUT, and waits for JetStream's ack.
func publishOne(ctx context.Context, env *environment, id string, number int) error {
	body := fmt.Appendf(nil, `{"event_id":"latency-%d","contact_id":%q,"occurred_at":"2026-01-01T00:00:00Z","changes":{"name":"Latency %d"}}`, number, id, number)
	if _, err := env.js.Publish(ctx, topology.ChangesSubject(id), body); err != nil {
		return fmt.Errorf("publish event %d of contact %s: %w", number, id, err)
	}
	return nil
}

// waitArrived polls until count contacts have had a PUT, for at most
// arrivalTimeout, or until the worker exits.
func waitArrived(ctx context.Context, recorder *arrivals, count int, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, arrivalTimeout)
	defer cancel()
	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()

	for {
		recorder.mu.Lock()
		arrived := len(recorder.first)
		recorder.mu.Unlock()
		if arrived >= count {
			return nil
		}

		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d contacts got their PUT: %w", arrived, count, ctx.Err())
		case <-exited:
			return fmt.Errorf("the worker exited; %d of %d contacts got their PUT", arrived, count)
		case <-ticker.C:
		}
	}
}

func latencyRow(latencies []time.Duration, duration time.Duration, s settings) Row {
	slices.Sort(latencies)
	p50, p99 := percentile(latencies, 50), percentile(latencies, 99)
	largest := percentile(latencies, 100)
	limit := s.MergeWindow + 20*time.Millisecond

	return Row{
		Scenario: "5 latency at low load",
		Workload: fmt.Sprintf("%d events/s for %s, one contact each", latencyRate, duration),
		Settings: s.String(),
		Measured: []string{
			fmt.Sprintf("%s events", thousands(len(latencies))),
			fmt.Sprintf("p50 %s, p99 %s, max %s (publish to arrival at the API)", roundLatency(p50), roundLatency(p99), roundLatency(largest)),
		},
		Targets: []target{{name: fmt.Sprintf("p99 ≤ merge window + 20 ms = %s", limit), value: roundLatency(p99).String(), met: p99 <= limit}},
	}
}

func roundLatency(d time.Duration) time.Duration {
	return d.Round(10 * time.Microsecond)
}
