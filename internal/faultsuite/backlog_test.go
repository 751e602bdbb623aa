package faultsuite

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/contact-sync/contact-sync/internal/contactapi"
	"github.com/contact-sync/contact-sync/internal/eventgen"
)

// TestSlowBacklog makes the last contact of a backlog wait far longer than
// the ack wait: 1,000 contacts at 50 PUTs per second take 20 s, twenty ack
// waits of 1 s. The in-progress acks must keep every held message from being
// redelivered, and the merge window must merge each contact's two events,
// both in the stream before the worker starts, into one PUT.
//
// The scenario it scales down is 2,000 contacts at 5 PUTs per second with a
// 2 s ack wait, where the last contact waits 400 s, 200 ack waits.
func TestSlowBacklog(t *testing.T) {
	const (
		contactCount = 1000
		rate         = 50
	)
	f := newFixture(t, inProcessNATS(t), contactapi.Options{},
		"backlog of 1,000 contacts (2 events each) at 50 PUTs per second, so the last waits 20 s, with a 1 s ack wait")
	contacts := eventgen.ContactIDs(contactCount)
	f.addContacts(contacts...)

	// Each contact's second event comes 1,000 messages after its first, so
	// merging them needs the whole backlog fetched within the merge window.
	var events []eventgen.Event
	for i, id := range contacts {
		events = append(events, rawEvent(id, fmt.Sprintf("first-%d", i), fmt.Sprintf(`{"name":"Name-%d","phone":"+1555%07d"}`, i, i)))
	}
	for i, id := range contacts {
		events = append(events, rawEvent(id, fmt.Sprintf("second-%d", i), fmt.Sprintf(`{"name":"Renamed-%d","email":"user-%d@example.com"}`, i, i)))
	}
	f.provisionStreams()
	f.publish(events)

	startedAt := time.Now()
	worker := startWorker(t, f.workerEnv(map[string]string{
		"CONTACT_SYNC_RATE_LIMIT":   strconv.Itoa(rate),
		"CONTACT_SYNC_RATE_BURST":   "1",
		"CONTACT_SYNC_ACK_WAIT":     "1s",
		"CONTACT_SYNC_MERGE_WINDOW": "500ms",
	}))

	// NumRedelivered counts redelivered messages not yet acked (nats-server
	// v2.15.3 drops a message from the count on its ack), so it is read
	// throughout the run, not only at its end.
	var maxRedelivered uint64
	drainedAt := f.waitDrainedObserving(90*time.Second, func(info *jetstream.ConsumerInfo) {
		maxRedelivered = max(maxRedelivered, uint64(info.NumRedelivered))
	})
	metrics := f.recordRun(worker)

	if maxRedelivered != 0 {
		t.Errorf("the consumer's NumRedelivered reached %d during the backlog, want 0", maxRedelivered)
	}
	if redelivered := metrics.sum("contact_sync_events_redelivered_total"); redelivered != 0 {
		t.Errorf("the worker received %.0f redeliveries, want 0", redelivered)
	}
	if updates := metrics[`contact_sync_puts_total{outcome="success"}`]; updates != contactCount {
		t.Errorf("the worker reports %.0f updates, want one per contact (%d)", updates, contactCount)
	}
	perContact := f.api.requestsByContact()
	repeatedContacts := 0
	for _, id := range contacts {
		if perContact[id] != 1 {
			repeatedContacts++
		}
	}
	if repeatedContacts != 0 {
		t.Errorf("%d of %d contacts did not get exactly one PUT", repeatedContacts, contactCount)
	}

	result := f.account(contacts)
	result.check(f, nil)
	f.report.record(result, f.repeatedPUTs(), -1)
	f.report.note("Scaled down from 2,000 contacts at 5 PUTs per second with a 2 s ack wait (the last contact waits 400 s). The backlog drained in %.1f s, and the consumer's NumRedelivered peaked at %d.",
		drainedAt.Sub(startedAt).Seconds(), maxRedelivered)
}
