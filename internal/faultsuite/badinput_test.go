package faultsuite

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/contact-sync/contact-sync/internal/contactapi"
	"github.com/contact-sync/contact-sync/internal/eventgen"
	"github.com/contact-sync/contact-sync/internal/topology"
)

// badInput is one message the worker must dead-letter as invalid.
type badInput struct {
	name    string
	subject string
	body    []byte

	// want is a phrase the dead letter's Contact-Sync-Error must contain.
	want string
}

// eventBody returns an event body with a contact_id given as raw JSON (or
// "" to leave it out) and a changes object given as JSON.
func eventBody(eventID, contactIDJSON, changes string) []byte {
	contactMember := ""
	if contactIDJSON != "" {
		contactMember = `"contact_id":` + contactIDJSON + `,`
	}
	return fmt.Appendf(nil, `{"event_id":%q,%s"occurred_at":"2026-01-01T00:00:00Z","changes":%s}`, eventID, contactMember, changes)
}

// badInputs returns the invalid messages for contact id, whose events are
// otherwise valid, and other, a second valid contact_id.
func badInputs(id, other string) []badInput {
	subject := topology.ChangesSubject(id)
	quoted := func(s string) string { return fmt.Sprintf("%q", s) }

	inputs := []badInput{
		{"invalid JSON", subject, []byte(`{"event_id": "e1", "contact_id": `), "not valid JSON"},
		{"JSON array", subject, []byte(`[{"contact_id": "` + id + `"}]`), "an array, not a JSON object"},
		{"JSON string", subject, []byte(`"an event"`), "a string, not a JSON object"},
		{"contact_id missing", subject, eventBody("e2", "", `{"name":"A"}`), "contact_id is missing"},
		{"contact_id empty", subject, eventBody("e3", `""`, `{"name":"A"}`), "contact_id is empty"},
		{"contact_id not a UUID", subject, eventBody("e4", `"12345"`, `{"name":"A"}`), "is not a UUID"},
		{"contact_id ../x", subject, eventBody("e5", `"../x"`, `{"name":"A"}`), "is not a UUID"},
		{"subject token a/b", topology.ChangesSubject("a/b"), eventBody("e6", `"a/b"`, `{"name":"A"}`), "is not a UUID"},
		{"subject token %2F", topology.ChangesSubject("%2F"), eventBody("e7", `"%2F"`, `{"name":"A"}`), "is not a UUID"},
		{"subject token ?x=1", topology.ChangesSubject("?x=1"), eventBody("e8", `"?x=1"`, `{"name":"A"}`), "is not a UUID"},
		{"braced UUID", topology.ChangesSubject("{" + id + "}"), eventBody("e9", quoted("{"+id+"}"), `{"name":"A"}`), "is not a UUID"},
		{"subject of two tokens", subject + ".x", eventBody("e10", quoted(id), `{"name":"A"}`), "is not contacts.changes.<contact_id>"},
		{"contact_id differs from the subject's", subject, eventBody("e11", quoted(other), `{"name":"A"}`), "differs from the subject"},
		{"email a number", subject, eventBody("e12", quoted(id), `{"email":42}`), "email must be a string"},
		{"has_customer_portal a string", subject, eventBody("e13", quoted(id), `{"has_customer_portal":"yes"}`), "has_customer_portal must be a boolean"},
		{"unknown field in changes", subject, eventBody("e14", quoted(id), `{"nickname":"A"}`), "unknown fields"},
		{"dynamic field without a key", subject, eventBody("e15", quoted(id), `{"dynamic_field_list":[{"value":1}]}`), "has no key"},
		{"event of 1,000,000 bytes", subject, eventOfSize("e17", id, 1_000_000), "larger than the limit"},
		{"no body", subject, nil, "body is empty"},
		{"invalid UTF-8", subject, eventBody("e16", quoted(id), "{\"name\":\"A\xff\xfe\"}"), "not valid UTF-8"},
	}
	return inputs
}

// eventOfSize returns a valid-looking event of exactly size bytes, padded
// with a long name.
func eventOfSize(eventID, id string, size int) []byte {
	empty := eventBody(eventID, fmt.Sprintf("%q", id), `{"name":""}`)
	padding := strings.Repeat("x", size-len(empty))
	return eventBody(eventID, fmt.Sprintf("%q", id), `{"name":"`+padding+`"}`)
}

// TestBadInput publishes invalid messages of every kind the contract names,
// and three valid events whose contact_id is upper-case in the subject, the
// body or both. Each invalid message must be dead-lettered once as invalid,
// with an error naming its problem. The valid ones must be applied to the
// lower-case contact, and no request may go to a path other than
// /contact/<uuid>/.
func TestBadInput(t *testing.T) {
	ids := eventgen.ContactIDs(2)
	id, other := ids[0], ids[1]
	upper := strings.ToUpper(id)
	inputs := badInputs(id, other)
	f := newFixture(t, inProcessNATS(t), contactapi.Options{},
		fmt.Sprintf("bad input: %d kinds of invalid message, and 3 events with an upper-case contact_id", len(inputs)))
	f.addContacts(id)

	worker := startWorker(t, f.workerEnv(nil))
	worker.waitReady(20 * time.Second)
	readyAt := time.Now()
	for _, input := range inputs {
		f.publishRaw(input.subject, input.body)
	}
	valid := []eventgen.Event{
		{ContactID: upper, Body: eventBody("upper-1", fmt.Sprintf("%q", upper), `{"name":"Upper"}`)},
		{ContactID: id, Body: eventBody("upper-2", fmt.Sprintf("%q", upper), `{"surname":"Body"}`)},
		{ContactID: upper, Body: eventBody("upper-3", fmt.Sprintf("%q", id), `{"phone":"+15550199"}`)},
	}
	f.publish(valid)
	drainedAt := f.waitDrained(30 * time.Second)

	letters := f.deadLetters()
	bySequence := map[uint64]letter{}
	for _, l := range letters {
		bySequence[l.sequence] = l
	}
	for i, input := range inputs {
		l, ok := bySequence[f.ledger[i].sequence]
		switch {
		case !ok:
			t.Errorf("%s: no dead letter", input.name)
		case l.reason != "invalid":
			t.Errorf("%s: dead-lettered as %q, want invalid", input.name, l.reason)
		case !strings.Contains(l.errText, input.want):
			t.Errorf("%s: Contact-Sync-Error = %q, want it to contain %q", input.name, l.errText, input.want)
		case !bytes.Equal(l.data, input.body):
			t.Errorf("%s: the dead letter's body (%d bytes) differs from the original (%d bytes)", input.name, len(l.data), len(input.body))
		}
	}

	stats := f.api.Stats()
	if stats.BadPaths != 0 || stats.NoRoute != 0 {
		t.Errorf("the stand-in got %d requests with a contact_id that is not a UUID and %d on other paths, want 0 and 0", stats.BadPaths, stats.NoRoute)
	}
	for _, request := range f.api.Requests() {
		if request.ContactID != id {
			t.Errorf("the stand-in got a request for contact_id %q, want only %s", request.ContactID, id)
		}
	}

	metrics := f.recordRun(worker)
	if redelivered := metrics.sum("contact_sync_events_redelivered_total"); redelivered != 0 {
		t.Errorf("the worker received %.0f redeliveries, want 0: every message is settled on its first delivery", redelivered)
	}
	if received := metrics.sum("contact_sync_events_received_total"); int(received) != len(f.ledger) {
		t.Errorf("the worker received %.0f messages, want the %d published", received, len(f.ledger))
	}
	worker.waitReady(5 * time.Second)

	result := f.account([]string{id})
	result.check(f, map[string]int{"invalid": len(inputs)})
	f.report.record(result, f.repeatedPUTs(), -1)
	f.report.note("Every message was settled on its first delivery. The three upper-case events reached the stand-in as requests for the lower-case contact_id (count: %d), and the stream drained %.2f s after the worker was ready.",
		len(f.api.Requests()), drainedAt.Sub(readyAt).Seconds())
}

// TestDeadLetterOfLargeEvent publishes an invalid event that fills the NATS
// server's max payload. Its dead letter is the same body plus the worker's
// headers, so it can never be published as it is. The event must still be
// dead-lettered once, or settled some other way, not nakked and redelivered
// forever.
func TestDeadLetterOfLargeEvent(t *testing.T) {
	f := newFixture(t, inProcessNATS(t), contactapi.Options{},
		"invalid event that fills the server's max payload, so its dead letter with headers does not fit")
	id := eventgen.ContactIDs(1)[0]
	f.addContacts(id)

	// The publish carries a Nats-Msg-Id header, which needs room too.
	size := int(f.conn.MaxPayload()) - 200
	f.provisionStreams()
	f.publishRaw(topology.ChangesSubject(id), eventOfSize("near-max", id, size))
	worker := startWorker(t, f.workerEnv(nil))

	// The worker nakks an event whose dead letter failed with a 10 s delay,
	// so 15 s cover the first attempt and one retry.
	deadline := time.Now().Add(15 * time.Second)
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	drained := false
	for !drained && time.Now().Before(deadline) {
		<-ticker.C
		info := f.consumerInfo()
		drained = info != nil && info.NumPending == 0 && info.NumAckPending == 0
	}
	metrics := f.recordRun(worker)
	if !drained {
		t.Errorf("the event of %d bytes is still unacked after 15 s: %.0f deliveries, %.0f failed dead-letter publishes",
			size, metrics.sum("contact_sync_events_received_total"), metrics.sum("contact_sync_dead_letter_publish_errors_total"))
		f.report.note("The event was never settled: each delivery failed its dead-letter publish (the letter exceeds the max payload) and was nakked for another try 10 s later.")
	}

	result := f.account([]string{id})
	result.check(f, map[string]int{"invalid": 1})
	f.report.record(result, f.repeatedPUTs(), -1)
	f.report.note("The event was %d bytes against a max payload of %d. The worker received it %.0f times and failed %.0f dead-letter publishes.",
		size, f.conn.MaxPayload(), metrics.sum("contact_sync_events_received_total"), metrics.sum("contact_sync_dead_letter_publish_errors_total"))
}
