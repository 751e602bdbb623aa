package worker_test

import (
	"encoding/json"

	"fmt"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/contact-sync/contact-sync/internal/contactapi"
	"github.com/contact-sync/contact-sync/internal/deadletter"
	"github.com/contact-sync/contact-sync/internal/eventgen"
	"github.com/contact-sync/contact-sync/internal/topology"
)

func TestWorkerConvergesToStreamOrderFold(t *testing.T) {
	h := newHarness(t, harnessOptions{concurrency: 16})
	contacts := eventgen.ContactIDs(300)
	if err := h.api.AddContacts(contacts...); err != nil {
		t.Fatalf("add contacts: %v", err)
	}
	events := eventgen.New(1).Events(contacts, 4000)

	// Half the events wait in the stream before the worker starts; the
	// other half arrive while it sends, so merging happens both ways.
	h.publish(events[:2000])
	h.start()
	h.publish(events[2000:])

	stats := h.waitAccounted(int64(len(events)), 60*time.Second)
	h.waitConsumerSettled(10 * time.Second)
	h.assertConverged(events, contacts)

	if stats.EventsApplied != int64(len(events)) {
		t.Errorf("events applied = %d, want %d", stats.EventsApplied, len(events))
	}
	apiStats := h.api.Stats()
	if apiStats.ConcurrentViolations != 0 {
		t.Errorf("API saw %d requests overlapping another for the same contact, want 0", apiStats.ConcurrentViolations)
	}
	if apiStats.Updated >= int64(len(events)) {
		t.Errorf("API got %d PUTs for %d events, want fewer (merging)", apiStats.Updated, len(events))
	}
	if letters := h.deadLetters(); len(letters) != 0 {
		t.Errorf("dead letters = %d, want 0", len(letters))
	}
}

func TestWorkerMergesHotContactWithOnePUTInFlight(t *testing.T) {
	h := newHarness(t, harnessOptions{concurrency: 8, api: contactapi.Options{Latency: 5 * time.Millisecond}})
	contacts := eventgen.ContactIDs(2)
	if err := h.api.AddContacts(contacts...); err != nil {
		t.Fatalf("add contacts: %v", err)
	}
	events := eventgen.New(2).Events(contacts, 600)

	h.start()
	h.publish(events)
	h.waitAccounted(int64(len(events)), 60*time.Second)
	h.assertConverged(events, contacts)

	apiStats := h.api.Stats()
	if apiStats.MaxInFlightPerContact != 1 {
		t.Errorf("most requests in flight for one contact = %d, want 1", apiStats.MaxInFlightPerContact)
	}
	if apiStats.Requests >= int64(len(events))/2 {
		t.Errorf("API got %d requests for %d events of 2 contacts, want far fewer", apiStats.Requests, len(events))
	}
}

func TestWorkerHoldsRateLimitAndUsesIt(t *testing.T) {
	const rate, burst = 20, 4
	h := newHarness(t, harnessOptions{rateLimit: rate, rateBurst: burst, concurrency: 8})
	contacts := eventgen.ContactIDs(120)
	if err := h.api.AddContacts(contacts...); err != nil {
		t.Fatalf("add contacts: %v", err)
	}
	events := eventgen.New(3).Events(contacts, 600)
	h.publish(events)
	h.start()
	h.waitAccounted(int64(len(events)), 60*time.Second)

	if most := h.api.MaxPerWindow(time.Second); most > rate+burst {
		t.Errorf("API saw %d requests in one second, want at most rate + burst = %d", most, rate+burst)
	}

	// With a backlog the limiter, not the worker, sets the pace: after the
	// burst, requests arrive at the rate. The machine can only slow the
	// worker down, and at 20 per second it has ample headroom.
	requests := h.api.Requests()
	span := requests[len(requests)-1].Arrived.Sub(requests[0].Arrived).Seconds()
	achieved := float64(len(requests)-burst) / span
	if achieved < 0.9*rate {
		t.Errorf("achieved %.1f requests per second over %d requests, want at least 90%% of %d", achieved, len(requests), rate)
	}
}

func TestWorkerRetriesTransientFailures(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	contacts := eventgen.ContactIDs(40)
	if err := h.api.AddContacts(contacts...); err != nil {
		t.Fatalf("add contacts: %v", err)
	}
	faults := []contactapi.Fault{
		{Status: 503, RetryAfter: "0"},
		{Status: 500},
		{Status: 502},
		{Status: 504},
		{Status: 408},
		{Status: 429, RetryAfter: "0"},
		{ResetConnection: true},
	}
	h.api.SetFault(func(request contactapi.FaultRequest) contactapi.Fault {
		if request.Attempt <= 2 {
			return faults[(request.Seq)%int64(len(faults))]
		}
		return contactapi.Fault{}
	})
	events := eventgen.New(4).Events(contacts, 400)
	h.publish(events)
	h.start()

	stats := h.waitAccounted(int64(len(events)), 60*time.Second)
	h.assertConverged(events, contacts)
	if stats.EventsApplied != int64(len(events)) {
		t.Errorf("events applied = %d, want all %d", stats.EventsApplied, len(events))
	}
	if letters := h.deadLetters(); len(letters) != 0 {
		t.Errorf("dead letters = %d, want 0 after a transient outage", len(letters))
	}
	if retries := counterValue(t, h.registry, "contact_sync_put_retries_total"); retries < float64(len(contacts)) {
		t.Errorf("retries counted = %v, want at least %d", retries, len(contacts))
	}
}

func TestWorkerKeepsHeldMessagesAlive(t *testing.T) {
	// 30 contacts at 10 PUTs per second take 3s, three times the ack wait.
	// A merge window longer than the fetch of 150 messages lets every
	// contact's events merge before its PUT.
	h := newHarness(t, harnessOptions{rateLimit: 10, rateBurst: 1, concurrency: 4, ackWait: time.Second, mergeWindow: 500 * time.Millisecond})
	contacts := eventgen.ContactIDs(30)
	if err := h.api.AddContacts(contacts...); err != nil {
		t.Fatalf("add contacts: %v", err)
	}
	events := eventgen.New(5).Events(contacts, 150)
	h.publish(events)
	h.start()

	stats := h.waitAccounted(int64(len(events)), 60*time.Second)
	h.waitConsumerSettled(10 * time.Second)

	if info := h.consumerInfo(); info.NumRedelivered != 0 {
		t.Errorf("consumer redelivered %d messages, want 0", info.NumRedelivered)
	}

	// An update that clears the dynamic fields and then sets new keys is
	// two requests, so count updates, not requests.
	if updates := stats.PUTs["success"]; updates != int64(len(contacts)) {
		t.Errorf("worker sent %d updates, want one per contact (%d)", updates, len(contacts))
	}
	h.assertConverged(events, contacts)
}

func TestWorkerDeadLettersUnknownContacts(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	contacts := eventgen.ContactIDs(10)
	known := contacts[:7]
	if err := h.api.AddContacts(known...); err != nil {
		t.Fatalf("add contacts: %v", err)
	}
	generator := eventgen.New(6)
	var events []eventgen.Event
	for round := 0; round < 3; round++ {
		for _, id := range contacts {
			events = append(events, generator.Event(id))
		}
	}
	h.publish(events)
	h.start()

	stats := h.waitAccounted(int64(len(events)), 30*time.Second)
	h.waitConsumerSettled(10 * time.Second)
	h.assertConverged(events, known)

	if got := stats.EventsDeadLettered["not_found"]; got != 9 {
		t.Errorf("events dead-lettered as not_found = %d, want 9 (3 unknown contacts x 3 events)", got)
	}
	letters := h.deadLetters()
	if len(letters) != 9 {
		t.Fatalf("dead-letter stream holds %d messages, want 9", len(letters))
	}

	originals := map[string]bool{}
	for _, event := range events {
		originals[string(event.Body)] = true
	}
	for _, letter := range letters {
		if letter.Subject != topology.DeadLetterSubject("not_found") {
			t.Errorf("dead letter subject = %q, want contacts.deadletter.not_found", letter.Subject)
		}
		if !originals[string(letter.Data)] {
			t.Errorf("dead letter body %q is not an original event body", letter.Data)
		}
		checkHeader(t, letter, deadletter.HeaderReason, "not_found")
		checkHeader(t, letter, deadletter.HeaderStatus, "400")
		checkHeaderPrefix(t, letter, deadletter.HeaderDetail, "Contact (")
		checkHeaderPrefix(t, letter, deadletter.HeaderOriginalSubject, topology.ChangesSubjectPrefix)
		if letter.Header.Get(deadletter.HeaderAttempts) == "" || letter.Header.Get(deadletter.HeaderOriginalSequence) == "" {
			t.Errorf("dead letter lacks attempts or stream sequence: %v", letter.Header)
		}
	}
	logs := h.logs.String()
	if !strings.Contains(logs, `"level":"warn"`) || !strings.Contains(logs, `"reason":"not_found"`) {
		t.Errorf("logs lack a warning naming the dead-letter reason:\n%s", logs)
	}
}

func TestWorkerDeadLettersInvalidEvents(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	id := eventgen.ContactIDs(1)[0]
	otherID := eventgen.ContactIDs(2)[1]
	cases := []struct {
		subject string
		body    string
		reason  string
	}{
		{topology.ChangesSubject(id), `{not json`, "not valid JSON"},
		{topology.ChangesSubject(id), `["an","array"]`, "not a JSON object"},
		{topology.ChangesSubject(id), `{"event_id":"e1","occurred_at":"2026-01-01T00:00:00Z","changes":{}}`, "contact_id is missing"},
		{topology.ChangesSubject("not-a-uuid"), `{"event_id":"e2","contact_id":"not-a-uuid","occurred_at":"2026-01-01T00:00:00Z","changes":{}}`, "not a UUID"},
		{topology.ChangesSubject(id), fmt.Sprintf(`{"event_id":"e3","contact_id":%q,"occurred_at":"2026-01-01T00:00:00Z","changes":{}}`, otherID), "differs from the subject"},
		{topology.ChangesSubject(id), fmt.Sprintf(`{"event_id":"e4","contact_id":%q,"occurred_at":"2026-01-01T00:00:00Z","changes":{"email":42}}`, id), "email must be a string"},
	}
	for _, c := range cases {
		h.publishRaw(c.subject, []byte(c.body))
	}
	h.start()

	h.waitAccounted(int64(len(cases)), 30*time.Second)
	h.waitConsumerSettled(10 * time.Second)
	letters := h.deadLetters()
	if len(letters) != len(cases) {
		t.Fatalf("dead letters = %d, want %d", len(letters), len(cases))
	}
	for i, letter := range letters {
		checkHeader(t, letter, deadletter.HeaderReason, "invalid")
		if errorText := letter.Header.Get(deadletter.HeaderError); !strings.Contains(errorText, cases[i].reason) {
			t.Errorf("case %d: error header = %q, want it to contain %q", i, errorText, cases[i].reason)
		}
		if string(letter.Data) != cases[i].body {
			t.Errorf("case %d: dead letter body = %q, want the original %q", i, letter.Data, cases[i].body)
		}
	}
	if requests := h.api.Stats().Requests; requests != 0 {
		t.Errorf("API got %d requests for invalid events, want 0", requests)
	}
}

func TestWorkerDeadLettersRejectedUpdate(t *testing.T) {
	h := newHarness(t, harnessOptions{api: contactapi.Options{UniqueEmail: true}})
	contacts := eventgen.ContactIDs(2)
	if err := h.api.AddContacts(contacts...); err != nil {
		t.Fatalf("add contacts: %v", err)
	}
	events := []eventgen.Event{
		rawEvent(contacts[0], "a1", `{"email":"same@example.com"}`),
	}
	h.publish(events)
	h.start()
	h.waitAccounted(1, 30*time.Second)

	duplicate := rawEvent(contacts[1], "b1", `{"email":"same@example.com"}`)
	h.publish([]eventgen.Event{duplicate})
	stats := h.waitAccounted(2, 30*time.Second)

	if stats.EventsDeadLettered["rejected"] != 1 {
		t.Errorf("events dead-lettered as rejected = %d, want 1", stats.EventsDeadLettered["rejected"])
	}
	letters := h.deadLetters()
	if len(letters) != 1 {
		t.Fatalf("dead letters = %d, want 1", len(letters))
	}
	checkHeader(t, letters[0], deadletter.HeaderReason, "rejected")
	checkHeaderPrefix(t, letters[0], deadletter.HeaderDetail, "Contact with this email already exists")
	if logs := h.logs.String(); strings.Contains(logs, "same@example.com") {
		t.Errorf("logs contain an email address:\n%s", logs)
	}
}

func TestWorkerKeepsEventsWhenDeadLetterPublishFails(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	unknown := eventgen.ContactIDs(3)
	h.start()

	// The worker provisions both streams when it gets its consumer, so the
	// dead-letter stream goes away only once it consumes.
	waitFor(t, 10*time.Second, func() bool { return h.worker.Ready() == nil }, func() string { return "the worker to be ready" })
	if err := h.nats.js.DeleteStream(t.Context(), topology.DefaultDeadLetterStream); err != nil {
		t.Fatalf("delete dead-letter stream: %v", err)
	}
	events := eventgen.New(7).Events(unknown, 9)
	h.publish(events)

	waitFor(t, 30*time.Second, func() bool {
		return counterValue(t, h.registry, "contact_sync_dead_letter_publish_errors_total") >= 3
	}, func() string { return "three failed dead-letter publishes; logs:\n" + h.logs.String() })
	if stats := h.worker.Stats(); accounted(stats) != 0 {
		t.Fatalf("events accounted while the dead-letter stream is missing = %d, want 0", accounted(stats))
	}
	if info := h.consumerInfo(); info.AckFloor.Stream != 0 {
		t.Errorf("consumer ack floor = %d while no dead letter is stored, want 0", info.AckFloor.Stream)
	}

	// The worker itself recreates the stream only at start; here the
	// operator restores it and the nakked events come back.
	if _, err := h.nats.js.CreateOrUpdateStream(t.Context(), topology.DeadLetterStreamConfig(topology.Options{})); err != nil {
		t.Fatalf("recreate dead-letter stream: %v", err)
	}
	h.waitAccounted(int64(len(events)), 30*time.Second)
	h.waitConsumerSettled(10 * time.Second)
	if letters := h.deadLetters(); len(letters) != len(events) {
		t.Errorf("dead letters = %d, want %d", len(letters), len(events))
	}
}

func TestWorkerAcksEmptyChangesWithoutPUT(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	id := eventgen.ContactIDs(1)[0]
	if err := h.api.AddContacts(id); err != nil {
		t.Fatalf("add contact: %v", err)
	}
	h.publish([]eventgen.Event{rawEvent(id, "empty", `{}`)})
	h.start()

	stats := h.waitAccounted(1, 30*time.Second)
	h.waitConsumerSettled(10 * time.Second)
	if stats.EventsApplied != 1 {
		t.Errorf("events applied = %d, want 1", stats.EventsApplied)
	}
	if requests := h.api.Stats().Requests; requests != 0 {
		t.Errorf("API got %d requests for an empty update, want 0", requests)
	}
}

func TestWorkerSplitsClearThenSetOfDynamicFields(t *testing.T) {
	// The merge window lets the three events, published before the worker
	// starts, arrive before the first PUT is built.
	h := newHarness(t, harnessOptions{mergeWindow: time.Second})
	id := eventgen.ContactIDs(1)[0]
	if err := h.api.AddContacts(id); err != nil {
		t.Fatalf("add contact: %v", err)
	}
	events := []eventgen.Event{
		rawEvent(id, "d1", `{"dynamic_field_list":[{"key":"a","value":1},{"key":"b","value":2}]}`),
		rawEvent(id, "d2", `{"name":"Ada","dynamic_field_list":null}`),
		rawEvent(id, "d3", `{"dynamic_field_list":[{"key":"c","value":3}]}`),
	}
	h.publish(events)
	h.start()
	h.waitAccounted(int64(len(events)), 30*time.Second)
	h.assertConverged(events, []string{id})

	requests := h.api.Requests()
	if len(requests) != 2 {
		t.Fatalf("API got %d requests, want 2 (the clear, then the new keys)", len(requests))
	}
	if body := string(requests[0].Body); body != `{"name":"Ada","dynamic_field_list":null}` {
		t.Errorf("first PUT body = %s, want the clear with the name", body)
	}
	if body := string(requests[1].Body); body != `{"dynamic_field_list":[{"key":"c","value":3}]}` {
		t.Errorf("second PUT body = %s, want the key set after the clear", body)
	}
}

func TestWorkerShutdownLosesNothing(t *testing.T) {
	release := make(chan struct{})
	var blocked atomic.Int64
	h := newHarness(t, harnessOptions{concurrency: 4, drainTimeout: 20 * time.Second})
	contacts := eventgen.ContactIDs(50)
	if err := h.api.AddContacts(contacts...); err != nil {
		t.Fatalf("add contacts: %v", err)
	}
	h.api.SetFault(func(request contactapi.FaultRequest) contactapi.Fault {
		if request.Seq <= 4 {
			blocked.Add(1)
			<-release
		}
		return contactapi.Fault{}
	})
	events := eventgen.New(8).Events(contacts, 300)
	h.publish(events)
	h.start()

	waitFor(t, 10*time.Second, func() bool { return blocked.Load() == 4 }, func() string { return "4 PUTs in flight" })
	stopped := make(chan struct{})
	go func() {
		h.stop()
		close(stopped)
	}()

	// The worker must wait for its PUTs in flight: release them only once
	// it has stopped fetching.
	waitFor(t, 10*time.Second, func() bool {
		return strings.Contains(h.logs.String(), "stopped fetching")
	}, func() string { return "the worker to stop fetching" })
	close(release)
	<-stopped

	firstRun := h.worker.Stats()
	if firstRun.EventsApplied == 0 {
		t.Errorf("first run applied no events, want the in-flight PUTs finished")
	}
	if firstRun.PUTs["aborted"] != 0 {
		t.Errorf("first run aborted %d PUTs, want 0 within the drain timeout", firstRun.PUTs["aborted"])
	}

	h.api.SetFault(nil)
	h.start()
	h.waitConsumerSettled(60 * time.Second)
	h.assertConverged(events, contacts)
}

func TestWorkerNeverLogsTokenOrContactData(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	contacts := eventgen.ContactIDs(4)
	if err := h.api.AddContacts(contacts[:2]...); err != nil {
		t.Fatalf("add contacts: %v", err)
	}
	h.api.SetFault(func(request contactapi.FaultRequest) contactapi.Fault {
		if request.Attempt == 1 {
			return contactapi.Fault{Status: 503}
		}
		return contactapi.Fault{}
	})
	var events []eventgen.Event
	for i, id := range contacts {
		events = append(events, rawEvent(id, fmt.Sprintf("p%d", i), fmt.Sprintf(`{"email":"person%d@example.org","phone":"+1555000%04d"}`, i, i)))
	}
	h.publish(events)
	h.start()
	h.waitAccounted(int64(len(events)), 30*time.Second)

	for _, line := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		if strings.Contains(line, testToken) {
			t.Errorf("log line contains the API token: %s", line)
		}
		var entry struct {
			Level string `json:"level"`
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("log line is not JSON: %s", line)
			continue
		}
		if entry.Level != "debug" && (strings.Contains(line, "@example.org") || strings.Contains(line, "+1555000")) {
			t.Errorf("%s log line contains an email or phone value: %s", entry.Level, line)
		}
	}
	if !strings.Contains(h.logs.String(), `"level":"warn"`) {
		t.Errorf("logs lack the retry warning")
	}
}

func rawEvent(contactID, eventID, changes string) eventgen.Event {
	body := fmt.Sprintf(`{"event_id":%q,"contact_id":%q,"occurred_at":"2026-01-01T00:00:00Z","changes":%s}`, eventID, contactID, changes)
	return eventgen.Event{ContactID: contactID, Body: []byte(body)}
}

func checkHeader(t *testing.T, letter *nats.Msg, name, want string) {
	t.Helper()
	if got := letter.Header.Get(name); got != want {
		t.Errorf("dead letter header %s = %q, want %q", name, got, want)
	}
}

func checkHeaderPrefix(t *testing.T, letter *nats.Msg, name, prefix string) {
	t.Helper()
	if got := letter.Header.Get(name); !strings.HasPrefix(got, prefix) {
		t.Errorf("dead letter header %s = %q, want it to start with %q", name, got, prefix)
	}
}

// counterValue returns the sum of a counter's series in registry.
func counterValue(t testing.TB, registry *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := registry.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	total := 0.0
	for _, family := range families {
		if family.GetName() != name {
			continue
		}
		for _, metric := range family.GetMetric() {
			total += metric.GetCounter().GetValue()
		}
	}
	return total
}
