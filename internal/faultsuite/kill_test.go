package faultsuite

import (
	"sync"
	"testing"
	"time"

	"github.com/contact-sync/contact-sync/internal/contactapi"
	"github.com/contact-sync/contact-sync/internal/eventgen"
)

// TestWorkerKilledMidBatch kills the worker with SIGKILL while it holds a
// fetched batch and has a PUT in flight on every sender, then starts it
// again. The PUTs in flight reach the stand-in and are applied after the
// kill, as when a process dies between sending a request and reading the
// response, so their events come back by redelivery and are sent again.
func TestWorkerKilledMidBatch(t *testing.T) {
	const concurrency = 8
	f := newFixture(t, inProcessNATS(t), contactapi.Options{},
		"worker killed with SIGKILL while it holds a batch and 8 PUTs are in flight, then restarted")
	contacts := eventgen.ContactIDs(200)
	f.addContacts(contacts...)
	events := eventgen.New(11).Events(contacts, 3000)
	f.provisionStreams()
	f.publish(events)

	// From the 50th request on, every request waits at the stand-in until
	// the worker is dead; then it is applied.
	release := make(chan struct{})
	releaseHeld := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseHeld)
	f.api.SetFault(func(request contactapi.FaultRequest) contactapi.Fault {
		if request.Seq > 50 {
			<-release
		}
		return contactapi.Fault{}
	})

	env := f.workerEnv(map[string]string{"CONTACT_SYNC_CONCURRENCY": "8", "CONTACT_SYNC_ACK_WAIT": "2s"})
	first := startWorker(t, env)
	waitFor(t, 30*time.Second, "a PUT in flight on each of the 8 senders", func() bool {
		return f.api.Stats().InFlight == concurrency
	})

	// Every sender waits for its response, so the run's counters are final.
	atKill := f.recordRun(first)
	first.kill()
	releaseHeld()
	waitFor(t, 10*time.Second, "the PUTs of the killed worker to finish at the stand-in", func() bool {
		return f.api.Stats().InFlight == 0
	})
	f.api.SetFault(nil)

	restartedAt := time.Now()
	second := startWorker(t, env)
	drainedAt := f.waitDrained(60 * time.Second)
	afterRestart := f.recordRun(second)

	result := f.account(contacts)
	result.check(f, nil)
	repeated := f.repeatedPUTs()
	f.report.record(result, repeated, drainedAt.Sub(restartedAt))
	f.report.note("At the kill the worker held %.0f messages and had %d PUTs in flight. The restarted worker received %.0f redeliveries.",
		atKill.sum("contact_sync_held_messages"), concurrency, afterRestart.sum("contact_sync_events_redelivered_total"))

	// The PUTs in flight at the kill were never counted by a worker, and
	// their events must be sent again: the count cannot be lower.
	if repeated < concurrency {
		t.Errorf("repeated PUTs = %d, want at least the %d PUTs in flight at the kill", repeated, concurrency)
	}
	if violations := f.api.Stats().ConcurrentViolations; violations != 0 {
		t.Errorf("the stand-in saw %d requests overlapping another for the same contact, want 0", violations)
	}
}
