package faultsuite

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/contact-sync/contact-sync/internal/contactapi"
	"github.com/contact-sync/contact-sync/internal/eventgen"
	"github.com/contact-sync/contact-sync/internal/topology"
)

// maxQuietLinesPerSecond bounds the worker's log lines in any one second
// while NATS or the consumer is gone. A worker that retries with backoff
// writes a few, and one that spins writes thousands.
const maxQuietLinesPerSecond = 20

// TestNATSServerRestart stops nats-server while the worker sends updates and
// starts it again on the same port with the same store. The worker must
// reconnect and consume again by itself, in the same process.
func TestNATSServerRestart(t *testing.T) {
	stops := []struct {
		name   string
		signal syscall.Signal
		fault  string
	}{
		{"graceful stop", syscall.SIGTERM, "nats-server stopped with SIGTERM while events flow, restarted on the same port and store"},
		{"crash", syscall.SIGKILL, "nats-server killed with SIGKILL while events flow, restarted on the same port and store"},
	}
	for _, stop := range stops {
		t.Run(stop.name, func(t *testing.T) {
			testNATSServerRestart(t, stop.signal, stop.fault)
		})
	}
}

func testNATSServerRestart(t *testing.T, signal syscall.Signal, fault string) {
	server := startNATSProcess(t)
	f := newFixture(t, server.url(), contactapi.Options{}, fault)
	contacts := eventgen.ContactIDs(100)
	f.addContacts(contacts...)
	events := eventgen.New(21).Events(contacts, 1200)

	worker := startWorker(t, f.workerEnv(map[string]string{"CONTACT_SYNC_RATE_LIMIT": "100", "CONTACT_SYNC_ACK_WAIT": "2s"}))
	worker.waitReady(20 * time.Second)
	f.publish(events[:600])
	waitFor(t, 20*time.Second, "the worker to send 50 requests", func() bool {
		return len(f.api.Requests()) >= 50
	})

	stoppedAt := time.Now()
	server.stop(signal)
	waitFor(t, 20*time.Second, "the worker's /readyz to answer 503 while NATS is down", func() bool {
		status, _ := worker.readyStatus()
		return status == http.StatusServiceUnavailable
	})

	// Keep NATS down for 2 seconds, twice the worker's reconnect wait, so
	// that it fails to reconnect at least once.
	waitFor(t, 10*time.Second, "NATS to be down for 2 seconds", func() bool {
		return time.Since(stoppedAt) >= 2*time.Second
	})
	server.start()
	backAt := time.Now()

	f.publish(events[600:])
	drainedAt := f.waitDrained(60 * time.Second)
	if worker.exited() {
		t.Fatalf("the worker exited during the NATS restart")
	}
	worker.waitReady(10 * time.Second)
	if !worker.hasLog("reconnected to NATS") {
		t.Errorf("the worker did not log \"reconnected to NATS\"")
	}
	if maxLines := worker.maxLinesPerSecond(stoppedAt, backAt); maxLines > maxQuietLinesPerSecond {
		t.Errorf("the worker wrote %d log lines in one second while NATS was down, want at most %d", maxLines, maxQuietLinesPerSecond)
	}

	f.recordRun(worker)
	result := f.account(contacts)
	result.check(f, nil)
	f.report.record(result, f.repeatedPUTs(), drainedAt.Sub(backAt))
	f.report.note("NATS was down for %.1f s, and the worker reconnected in the same process.", backAt.Sub(stoppedAt).Seconds())
}

// TestStreamDeletedUnderWorker deletes the event stream, and later the
// consumer alone, under a worker that provisions them. The worker must
// create them again and consume the events published afterwards, without
// spinning while they are gone.
func TestStreamDeletedUnderWorker(t *testing.T) {
	f := newFixture(t, inProcessNATS(t), contactapi.Options{},
		"stream CONTACTS deleted (consumer with it), then the consumer alone, under a worker with CONTACT_SYNC_PROVISION=true")
	contacts := eventgen.ContactIDs(50)
	f.addContacts(contacts...)
	generator := eventgen.New(31)

	worker := startWorker(t, f.workerEnv(map[string]string{"CONTACT_SYNC_ACK_WAIT": "2s"}))
	worker.waitReady(20 * time.Second)
	f.publish(generator.Events(contacts, 200))
	f.waitDrained(30 * time.Second)

	streamDeletedAt := time.Now()
	f.deleteStream()
	waitFor(t, 20*time.Second, "the worker to create the stream and its consumer again", func() bool {
		return f.consumerInfo() != nil
	})
	worker.waitReady(10 * time.Second)
	streamBackAt := time.Now()
	f.publish(generator.Events(contacts, 200))
	f.waitDrained(30 * time.Second)

	consumerDeletedAt := time.Now()
	ctx, cancel := contextWithTimeout(5 * time.Second)
	defer cancel()
	if err := f.js.DeleteConsumer(ctx, topology.DefaultStream, topology.DefaultConsumer); err != nil {
		t.Fatalf("delete the consumer: %v", err)
	}
	f.publish(generator.Events(contacts, 200))
	waitFor(t, 20*time.Second, "the worker to create the consumer again", func() bool {
		return f.consumerInfo() != nil
	})
	consumerBackAt := time.Now()
	drainedAt := f.waitDrained(30 * time.Second)

	for _, window := range []struct {
		description string
		from, to    time.Time
	}{
		{"the stream was gone", streamDeletedAt, streamBackAt},
		{"the consumer was gone", consumerDeletedAt, consumerBackAt},
	} {
		if maxLines := worker.maxLinesPerSecond(window.from, window.to); maxLines > maxQuietLinesPerSecond {
			t.Errorf("the worker wrote %d log lines in one second while %s, want at most %d", maxLines, window.description, maxQuietLinesPerSecond)
		}
	}
	if !hasErrorLog(worker, streamDeletedAt, streamBackAt, "not ready") {
		t.Errorf("the worker logged no error saying it is not ready while the stream was gone")
	}

	f.recordRun(worker)
	result := f.account(contacts)
	result.check(f, nil)
	f.report.record(result, f.repeatedPUTs(), streamBackAt.Sub(streamDeletedAt))
	f.report.note("Recovery is from the stream's deletion to a ready worker with a new stream and consumer. The consumer alone came back %.2f s after its deletion, and the stream drained %.2f s after that.",
		consumerBackAt.Sub(consumerDeletedAt).Seconds(), drainedAt.Sub(consumerBackAt).Seconds())
}

// TestConsumerDeletedWithoutProvision deletes the consumer under a worker
// that only binds to it. The worker must report not-ready with a clear log
// line, retry with backoff, and consume again once an operator creates the
// consumer.
func TestConsumerDeletedWithoutProvision(t *testing.T) {
	const ackWait = 2 * time.Second
	f := newFixture(t, inProcessNATS(t), contactapi.Options{},
		"consumer deleted under a worker with CONTACT_SYNC_PROVISION=false, created again by the operator")
	contacts := eventgen.ContactIDs(50)
	f.addContacts(contacts...)
	generator := eventgen.New(32)
	f.provision(ackWait)

	worker := startWorker(t, f.workerEnv(map[string]string{"CONTACT_SYNC_PROVISION": "false", "CONTACT_SYNC_ACK_WAIT": ackWait.String()}))
	worker.waitReady(20 * time.Second)
	f.publish(generator.Events(contacts, 200))
	f.waitDrained(30 * time.Second)

	deletedAt := time.Now()
	ctx, cancel := contextWithTimeout(5 * time.Second)
	defer cancel()
	if err := f.js.DeleteConsumer(ctx, topology.DefaultStream, topology.DefaultConsumer); err != nil {
		t.Fatalf("delete the consumer: %v", err)
	}
	waitFor(t, 10*time.Second, "the worker's /readyz to answer 503 without its consumer", func() bool {
		status, _ := worker.readyStatus()
		return status == http.StatusServiceUnavailable
	})
	f.publish(generator.Events(contacts, 200))

	// Watch the worker without its consumer for 3 seconds: long enough
	// for a spinning loop to show, short enough for the backoff to retry
	// a few times.
	waitFor(t, 10*time.Second, "3 seconds without the consumer", func() bool {
		return time.Since(deletedAt) >= 3*time.Second
	})
	watchedUntil := time.Now()
	if maxLines := worker.maxLinesPerSecond(deletedAt, watchedUntil); maxLines > maxQuietLinesPerSecond {
		t.Errorf("the worker wrote %d log lines in one second without its consumer, want at most %d", maxLines, maxQuietLinesPerSecond)
	}
	if !hasErrorLog(worker, deletedAt, watchedUntil, "not ready") {
		t.Errorf("the worker logged no error saying it is not ready without its consumer")
	}
	if !hasErrorText(worker, deletedAt, watchedUntil, "consumer not found") {
		t.Errorf("no log line of the worker names the missing consumer (\"consumer not found\")")
	}
	if info := f.consumerInfo(); info != nil {
		t.Errorf("the consumer exists again, but a worker with CONTACT_SYNC_PROVISION=false must not create it")
	}

	f.provision(ackWait)
	restoredAt := time.Now()
	worker.waitReady(20 * time.Second)
	drainedAt := f.waitDrained(30 * time.Second)

	f.recordRun(worker)
	result := f.account(contacts)
	result.check(f, nil)
	f.report.record(result, f.repeatedPUTs(), drainedAt.Sub(restoredAt))
	f.report.note("The worker responded 503 on /readyz while the consumer was missing. Recovery is from the operator's new consumer to the drained stream, and includes the worker's backoff between attempts to bind.")
}

// hasErrorLog reports whether the worker logged an error whose message
// contains text in [from, to).
func hasErrorLog(worker *workerProcess, from, to time.Time, text string) bool {
	for _, entry := range worker.entries(from, to) {
		if entry.Level == "error" && strings.Contains(entry.Message, text) {
			return true
		}
	}
	return false
}

// hasErrorText reports whether a log line's error contains text in
// [from, to).
func hasErrorText(worker *workerProcess, from, to time.Time, text string) bool {
	for _, entry := range worker.entries(from, to) {
		if strings.Contains(entry.Error, text) {
			return true
		}
	}
	return false
}
