package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/contact-sync/contact-sync/internal/contactapi"
	"github.com/contact-sync/contact-sync/internal/deadletter"
	"github.com/contact-sync/contact-sync/internal/eventgen"
	"github.com/contact-sync/contact-sync/internal/topology"
)

func TestWorkerRedeliveryDoesNotOverwriteNewerValues(t *testing.T) {
	h := newHarness(t, harnessOptions{ackWait: time.Second})
	id := eventgen.ContactIDs(1)[0]
	if err := h.api.AddContacts(id); err != nil {
		t.Fatalf("add contact: %v", err)
	}
	events := []eventgen.Event{
		rawEvent(id, "old", `{"name":"Old","surname":"Kept"}`),
		rawEvent(id, "new", `{"name":"New"}`),
	}
	h.publish(events)

	// A process that crashed took the first event and never acked it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	consumer, err := h.nats.js.Consumer(ctx, topology.DefaultStream, topology.DefaultConsumer)
	if err != nil {
		t.Fatalf("get consumer: %v", err)
	}
	batch, err := consumer.Fetch(1, jetstream.FetchMaxWait(3*time.Second))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	for message := range batch.Messages() {
		if !strings.Contains(string(message.Data()), `"old"`) {
			t.Fatalf("fetched %s, want the first event", message.Data())
		}
	}

	// The worker applies the newer event first; the older one comes back
	// once its ack wait expires.
	h.start()
	h.waitAccounted(2, 30*time.Second)
	h.waitConsumerSettled(10 * time.Second)

	if redelivered := counterValue(t, h.registry, "contact_sync_events_redelivered_total"); redelivered != 1 {
		t.Fatalf("worker received %v redelivered events, want 1; the test did not exercise a redelivery", redelivered)
	}
	h.assertConverged(events, []string{id})
}

func TestWorkerSplitsRejectedMergedUpdate(t *testing.T) {
	h := newHarness(t, harnessOptions{mergeWindow: time.Second, api: contactapi.Options{UniqueEmail: true}})
	contacts := eventgen.ContactIDs(2)
	if err := h.api.AddContacts(contacts...); err != nil {
		t.Fatalf("add contacts: %v", err)
	}
	holder := rawEvent(contacts[0], "holder", `{"email":"taken@example.com"}`)
	h.publish([]eventgen.Event{holder})
	h.start()
	h.waitAccounted(1, 30*time.Second)

	merged := []eventgen.Event{
		rawEvent(contacts[1], "m1", `{"name":"First"}`),
		rawEvent(contacts[1], "m2", `{"email":"taken@example.com"}`),
		rawEvent(contacts[1], "m3", `{"phone":"+15550001111"}`),
		rawEvent(contacts[1], "m4", `{"surname":"Last"}`),
		rawEvent(contacts[1], "m5", `{"name":"Final","dynamic_field_list":[{"key":"k","value":1}]}`),
	}
	h.publish(merged)
	stats := h.waitAccounted(1+int64(len(merged)), 30*time.Second)
	h.waitConsumerSettled(10 * time.Second)

	if got := stats.EventsDeadLettered["rejected"]; got != 1 {
		t.Errorf("events dead-lettered as rejected = %d, want 1 (only the duplicate email)", got)
	}
	if got := stats.EventsApplied; got != 5 {
		t.Errorf("events applied = %d, want 5", got)
	}
	letters := h.deadLetters()
	if len(letters) != 1 {
		t.Fatalf("dead letters = %d, want 1", len(letters))
	}
	if string(letters[0].Data) != string(merged[1].Body) {
		t.Errorf("dead letter body = %s, want the duplicate-email event %s", letters[0].Data, merged[1].Body)
	}
	checkHeader(t, letters[0], deadletter.HeaderReason, "rejected")

	accepted := []eventgen.Event{holder, merged[0], merged[2], merged[3], merged[4]}
	h.assertConverged(accepted, contacts)
}

func TestWorkerNotReadyWhileTokenRefused(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	contacts := eventgen.ContactIDs(5)
	if err := h.api.AddContacts(contacts...); err != nil {
		t.Fatalf("add contacts: %v", err)
	}
	h.api.SetToken("rotated-token-the-worker-lacks")
	events := eventgen.New(9).Events(contacts, 20)
	h.publish(events)
	h.start()

	waitFor(t, 30*time.Second, func() bool { return h.api.Stats().Unauthorized >= 3 }, func() string { return "three refused requests" })
	if err := h.worker.Ready(); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("Ready() = %v while every request is refused, want an error naming the token", err)
	}

	h.api.SetToken(testToken)
	stats := h.waitAccounted(int64(len(events)), 30*time.Second)
	if err := h.worker.Ready(); err != nil {
		t.Errorf("Ready() = %v after the token is accepted again, want nil", err)
	}
	if stats.EventsApplied != int64(len(events)) {
		t.Errorf("events applied = %d, want %d", stats.EventsApplied, len(events))
	}
	if letters := h.deadLetters(); len(letters) != 0 {
		t.Errorf("dead letters = %d after 401s, want 0", len(letters))
	}
	h.assertConverged(events, contacts)
}

func TestWorkerShutdownWithBacklogNaksRest(t *testing.T) {
	h := newHarness(t, harnessOptions{concurrency: 4, rateLimit: 5, rateBurst: 1, drainTimeout: time.Second})
	contacts := eventgen.ContactIDs(200)
	if err := h.api.AddContacts(contacts...); err != nil {
		t.Fatalf("add contacts: %v", err)
	}
	events := eventgen.New(3).Events(contacts, 200)
	h.publish(events)
	h.start()
	waitFor(t, 10*time.Second, func() bool { return h.worker.Stats().EventsReceived >= 200 }, func() string { return "every event received" })

	// At 5 PUTs per second most contacts are still queued: the shutdown
	// must start no new PUT, finish within the drain timeout and return
	// every held message to JetStream.
	h.stop()
	stats := h.worker.Stats()
	if stats.Held != 0 {
		t.Errorf("messages still held after Run returned = %d, want 0", stats.Held)
	}
	if requests := h.api.Stats().Requests; requests > 20 {
		t.Errorf("API got %d requests during a shutdown of a 5-per-second worker, want only those started before it", requests)
	}

	h.opts.rateLimit = 0
	h.start()
	h.waitConsumerSettled(60 * time.Second)
	h.assertConverged(events, contacts)
}
