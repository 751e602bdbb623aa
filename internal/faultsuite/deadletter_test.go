package faultsuite

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/contact-sync/contact-sync/internal/contactapi"
	"github.com/contact-sync/contact-sync/internal/eventgen"
	"github.com/contact-sync/contact-sync/internal/topology"
)

// deadLetterBreak is one way the dead-letter stream rejects letters.
type deadLetterBreak struct {
	name    string
	fault   string
	break_  func(f *fixture)
	restore func(f *fixture)
}

// TestDeadLetterPublishFails makes every dead-letter publish fail while
// events that need a dead letter arrive: events of unknown contacts and
// invalid events. Their originals must stay unacked and come back until the
// dead-letter stream takes them, and events of known contacts must be
// applied meanwhile.
func TestDeadLetterPublishFails(t *testing.T) {
	breaks := []deadLetterBreak{
		{
			name:  "stream missing",
			fault: "dead-letter stream deleted while dead letters are due, created again later",
			break_: func(f *fixture) {
				ctx, cancel := contextWithTimeout(5 * time.Second)
				defer cancel()
				if err := f.js.DeleteStream(ctx, topology.DefaultDeadLetterStream); err != nil {
					f.t.Fatalf("delete the dead-letter stream: %v", err)
				}
			},
			restore: func(f *fixture) {
				ctx, cancel := contextWithTimeout(5 * time.Second)
				defer cancel()
				if _, err := f.js.CreateStream(ctx, topology.DeadLetterStreamConfig(topology.Options{})); err != nil {
					f.t.Fatalf("create the dead-letter stream: %v", err)
				}
			},
		},
		{
			name:    "stream full",
			fault:   "dead-letter stream full (MaxMsgs 1, DiscardNew) while dead letters are due, then raised",
			break_:  func(f *fixture) { limitDeadLetters(f, 1); f.publishFiller() },
			restore: func(f *fixture) { limitDeadLetters(f, -1) },
		},
	}
	for _, b := range breaks {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			testDeadLetterPublishFails(t, b)
		})
	}
}

func testDeadLetterPublishFails(t *testing.T, b deadLetterBreak) {
	f := newFixture(t, inProcessNATS(t), contactapi.Options{}, b.fault)
	contacts := eventgen.ContactIDs(12)
	known, unknown := contacts[:8], contacts[8:]
	f.addContacts(known...)

	worker := startWorker(t, f.workerEnv(nil))
	worker.waitReady(20 * time.Second)
	b.break_(f)

	events := eventgen.New(51).Events(contacts, 60)
	f.publish(events)
	f.publishRaw(topology.ChangesSubject(known[0]), []byte(`{"event_id": "broken`))
	f.publishRaw(topology.ChangesSubject(known[1]), []byte(`["not", "an", "object"]`))
	const invalid = 2
	notFound := f.expectedNotFound(unknown)

	// The worker has applied every other event, holds nothing, and the
	// consumer still counts exactly the events due a dead letter as
	// unacked: the worker nakked them.
	dueLetters := notFound + invalid
	var info *jetstream.ConsumerInfo
	var metrics metricSet
	waitFor(t, 30*time.Second, "every event applied or nakked, with only those due a dead letter unacked", func() bool {
		info = f.consumerInfo()
		metrics = worker.metrics()
		return info != nil && info.NumPending == 0 && info.NumAckPending == dueLetters &&
			metrics.sum("contact_sync_events_applied_total") == float64(len(f.ledger)-dueLetters) &&
			metrics.sum("contact_sync_held_messages") == 0
	}, func() string {
		if info == nil {
			return "no consumer"
		}
		return fmt.Sprintf("last seen: %d pending, %d unacked (want %d), %.0f applied (want %d), %.0f held (want 0)",
			info.NumPending, info.NumAckPending, dueLetters,
			metrics.sum("contact_sync_events_applied_total"), len(f.ledger)-dueLetters, metrics.sum("contact_sync_held_messages"))
	})
	if errors := metrics.sum("contact_sync_dead_letter_publish_errors_total"); errors < invalid+1 {
		t.Errorf("the worker counted %.0f failed dead-letter publishes, want at least %d", errors, invalid+1)
	}
	if letters := f.deadLetters(); len(letters) != 0 {
		t.Errorf("the dead-letter stream holds %d letters while it refuses them, want 0", len(letters))
	}

	b.restore(f)
	restoredAt := time.Now()
	drainedAt := f.waitDrained(40 * time.Second)
	metrics = f.recordRun(worker)

	result := f.account(known)
	result.check(f, map[string]int{"not_found": notFound, "invalid": invalid})
	f.report.record(result, f.repeatedPUTs(), drainedAt.Sub(restoredAt))
	f.report.note("%.0f dead-letter publishes failed. The worker nakks the events of a failed publish with a 10 s delay, which sets the recovery time.",
		metrics.sum("contact_sync_dead_letter_publish_errors_total"))
}

// limitDeadLetters sets the dead-letter stream's MaxMsgs, where -1 means
// unlimited.
func limitDeadLetters(f *fixture, maxMsgs int64) {
	f.t.Helper()
	config := topology.DeadLetterStreamConfig(topology.Options{})
	config.MaxMsgs = maxMsgs
	ctx, cancel := contextWithTimeout(5 * time.Second)
	defer cancel()
	if _, err := f.js.UpdateStream(ctx, config); err != nil {
		f.t.Fatalf("set the dead-letter stream's MaxMsgs to %d: %v", maxMsgs, err)
	}
}

// publishFiller stores one message on the dead-letter stream that is not a
// dead letter, so that a stream limited to one message is full.
func (f *fixture) publishFiller() {
	f.t.Helper()
	ctx, cancel := contextWithTimeout(5 * time.Second)
	defer cancel()
	if _, err := f.js.Publish(ctx, topology.DeadLetterSubject("filler"), []byte("filler")); err != nil {
		f.t.Fatalf("fill the dead-letter stream: %v", err)
	}
}
