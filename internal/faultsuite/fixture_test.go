package faultsuite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/contact-sync/contact-sync/internal/contact"
	"github.com/contact-sync/contact-sync/internal/contactapi"
	"github.com/contact-sync/contact-sync/internal/deadletter"
	"github.com/contact-sync/contact-sync/internal/eventgen"
	"github.com/contact-sync/contact-sync/internal/natstest"
	"github.com/contact-sync/contact-sync/internal/topology"
)

// apiToken is the stand-in's bearer token unless a test sets its own.
const apiToken = "faultsuite-token-3c81d0"

// fixture is one test's world: a NATS server, a client connection for
// publishing and inspecting, the contact API stand-in, the ledger of what
// was published, and the worker runs whose metrics count repeated PUTs.
type fixture struct {
	t       *testing.T
	natsURL string
	conn    *nats.Conn
	js      jetstream.JetStream
	api     *standIn
	ledger  []ledgerEntry
	runs    []metricSet
	report  *report

	// generation counts the times the test deleted the event stream,
	// which starts its sequences again at 1.
	generation int
}

// ledgerEntry is one published message, in publish order, which is stream
// order because every publish waits for its ack before the next.
type ledgerEntry struct {
	subject    string
	body       []byte
	sequence   uint64
	generation int

	// contactID is the canonical contact_id when the message is a valid
	// event, and "" when the worker must dead-letter it as invalid.
	contactID string

	// empty marks a valid event whose changes are {}: the worker acks it
	// without a PUT, so it is applied even for an unknown contact.
	empty bool
}

// newFixture connects to the NATS server at natsURL, starts the stand-in
// with opts (Token defaults to apiToken), and opens the report row of the
// test.
func newFixture(t *testing.T, natsURL string, opts contactapi.Options, fault string) *fixture {
	t.Helper()
	if opts.Token == "" {
		opts.Token = apiToken
	}

	conn, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatalf("connect to NATS at %s: %v", natsURL, err)
	}
	t.Cleanup(conn.Close)
	js, err := jetstream.New(conn)
	if err != nil {
		t.Fatalf("create JetStream context: %v", err)
	}

	return &fixture{
		t:       t,
		natsURL: natsURL,
		conn:    conn,
		js:      js,
		api:     startStandIn(t, opts),
		report:  newReport(t, fault),
	}
}

// inProcessNATS starts a nats-server in the test process and returns its
// URL.
func inProcessNATS(t *testing.T) string {
	t.Helper()
	return natstest.Start(t).ClientURL()
}

// workerEnv returns the settings that point a worker at the fixture's NATS
// server and stand-in, plus extra.
func (f *fixture) workerEnv(extra map[string]string) map[string]string {
	env := map[string]string{
		"CONTACT_SYNC_NATS_URL":     f.natsURL,
		"CONTACT_SYNC_API_BASE_URL": f.api.baseURL,
		"CONTACT_SYNC_API_TOKEN":    apiToken,
	}
	for name, value := range extra {
		env[name] = value
	}
	if _, ok := env["CONTACT_SYNC_API_TOKEN_FILE"]; ok {
		delete(env, "CONTACT_SYNC_API_TOKEN")
	}
	return env
}

// provision creates both streams and the consumer with the worker's ack
// wait, as an operator does before starting a worker that only binds.
func (f *fixture) provision(ackWait time.Duration) {
	f.t.Helper()
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	if _, err := topology.Provision(ctx, f.js, topology.Options{AckWait: ackWait}); err != nil {
		f.t.Fatalf("provision streams and consumer: %v", err)
	}
}

// provisionStreams creates both streams, so that the test can publish
// before a worker starts; the worker creates its consumer.
func (f *fixture) provisionStreams() {
	f.t.Helper()
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	if err := topology.ProvisionStreams(ctx, f.js, topology.Options{}); err != nil {
		f.t.Fatalf("provision streams: %v", err)
	}
}

// addContacts makes contacts known to the stand-in.
func (f *fixture) addContacts(ids ...string) {
	f.t.Helper()
	if err := f.api.AddContacts(ids...); err != nil {
		f.t.Fatalf("add contacts to the stand-in: %v", err)
	}
}

// publish publishes generated events on their contacts' subjects, each with
// its event_id as Nats-Msg-Id.
func (f *fixture) publish(events []eventgen.Event) {
	f.t.Helper()
	for _, event := range events {
		f.publishMessage(topology.ChangesSubject(event.ContactID), event.Body, eventID(f.t, event.Body))
	}
}

// publishRaw publishes any body on any subject, with a message id unique in
// the test.
func (f *fixture) publishRaw(subject string, body []byte) {
	f.t.Helper()
	f.publishMessage(subject, body, fmt.Sprintf("raw-%d", len(f.ledger)))
}

// publishMessage publishes one message and retries until JetStream acks it,
// for at most 30 seconds, so that publishing goes on across a NATS restart.
// The message id makes a retry of a publish that was stored a duplicate,
// which JetStream drops.
func (f *fixture) publishMessage(subject string, body []byte, msgID string) {
	f.t.Helper()
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	msg.Header.Set(nats.MsgIdHdr, msgID)

	var ack *jetstream.PubAck
	var lastErr error
	deadline := time.Now().Add(30 * time.Second)
	attempt := 0
	for ; ack == nil; attempt++ {
		if time.Now().After(deadline) {
			f.t.Fatalf("publish on %s: no ack within 30s after %d attempts: %v", subject, attempt, lastErr)
		}
		ctx, cancel := contextWithTimeout(2 * time.Second)
		ack, lastErr = f.js.PublishMsg(ctx, msg)
		cancel()
		if lastErr != nil {
			waitRetry(attempt)
		}
	}

	// A retry may find its message stored by an attempt whose ack was
	// lost, and the ack then carries the stored message's sequence. A first
	// attempt that is a duplicate means the test reused a message id.
	if ack.Duplicate && attempt == 1 {
		f.t.Fatalf("publish on %s: message id %s was already stored", subject, msgID)
	}

	contactID, empty := validContactID(subject, body)
	f.ledger = append(f.ledger, ledgerEntry{
		subject:    subject,
		body:       body,
		sequence:   ack.Sequence,
		generation: f.generation,
		contactID:  contactID,
		empty:      empty,
	})
}

// waitRetry waits a little longer after each failed publish: 20 ms, then
// 40, 80, 160 and from then on 320 ms.
func waitRetry(attempt int) {
	<-time.After(20 * time.Millisecond << min(attempt, 4))
}

// validContactID returns the canonical contact_id of a valid event, and ""
// when the contract makes the message invalid: the oracle the figures
// compare the worker with. empty reports a valid event whose changes are {}.
func validContactID(subject string, body []byte) (contactID string, empty bool) {
	token, ok := topology.ContactIDFromSubject(subject)
	if !ok {
		return "", false
	}
	subjectID, err := contact.ParseID(token)
	if err != nil {
		return "", false
	}
	event, err := contact.DecodeEvent(body)
	if err != nil || event.ContactID != subjectID {
		return "", false
	}
	return subjectID, event.Changes.IsEmpty()
}

// expectedNotFound counts the events of contacts that the stand-in does not
// know and that carry changes: each needs a not_found dead letter.
func (f *fixture) expectedNotFound(unknown []string) int {
	count := 0
	for _, entry := range f.ledger {
		if !entry.empty && slices.Contains(unknown, entry.contactID) {
			count++
		}
	}
	return count
}

func eventID(t testing.TB, body []byte) string {
	t.Helper()
	var event struct {
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal(body, &event); err != nil || event.EventID == "" {
		t.Fatalf("generated event has no event_id: %s", body)
	}
	return event.EventID
}

// consumerInfo returns the worker consumer's state, or nil when it does not
// exist or NATS does not respond.
func (f *fixture) consumerInfo() *jetstream.ConsumerInfo {
	ctx, cancel := contextWithTimeout(2 * time.Second)
	defer cancel()
	consumer, err := f.js.Consumer(ctx, topology.DefaultStream, topology.DefaultConsumer)
	if err != nil {
		return nil
	}
	info, err := consumer.Info(ctx)
	if err != nil {
		return nil
	}
	return info
}

// deleteStream deletes the event stream, and with it the consumer.
func (f *fixture) deleteStream() {
	f.t.Helper()
	ctx, cancel := contextWithTimeout(5 * time.Second)
	defer cancel()
	if err := f.js.DeleteStream(ctx, topology.DefaultStream); err != nil {
		f.t.Fatalf("delete stream %s: %v", topology.DefaultStream, err)
	}
	f.generation++
}

// waitDrained waits until the consumer has delivered every message and
// holds none unacked, and returns when it saw that.
func (f *fixture) waitDrained(timeout time.Duration) time.Time {
	f.t.Helper()
	return f.waitDrainedObserving(timeout, nil)
}

// waitDrainedObserving is waitDrained that also passes every consumer state
// it reads to observe, when observe is not nil.
func (f *fixture) waitDrainedObserving(timeout time.Duration, observe func(*jetstream.ConsumerInfo)) time.Time {
	f.t.Helper()
	var last *jetstream.ConsumerInfo
	waitFor(f.t, timeout, "the consumer to have no pending and no unacked messages", func() bool {
		last = f.consumerInfo()
		if last != nil && observe != nil {
			observe(last)
		}
		return last != nil && last.NumPending == 0 && last.NumAckPending == 0 && last.Delivered.Stream >= f.lastSequence()
	}, func() string {
		if last == nil {
			return "the consumer was not found"
		}
		return fmt.Sprintf("last seen: %d pending, %d unacked, delivered up to stream sequence %d of %d",
			last.NumPending, last.NumAckPending, last.Delivered.Stream, f.lastSequence())
	})
	return time.Now()
}

// lastSequence returns the stream sequence of the last message published
// since the stream was last deleted, or 0.
func (f *fixture) lastSequence() uint64 {
	if len(f.ledger) == 0 || f.ledger[len(f.ledger)-1].generation != f.generation {
		return 0
	}
	return f.ledger[len(f.ledger)-1].sequence
}

// rawEvent returns an event of contactID with the changes object given as
// JSON.
func rawEvent(contactID, eventID, changes string) eventgen.Event {
	body := fmt.Sprintf(`{"event_id":%q,"contact_id":%q,"occurred_at":"2026-01-01T00:00:00Z","changes":%s}`, eventID, contactID, changes)
	return eventgen.Event{ContactID: contactID, Body: []byte(body)}
}

// letter is one dead letter of the test.
type letter struct {
	reason   string
	sequence uint64
	errText  string
	data     []byte
	header   nats.Header
}

// deadLetters reads every dead letter that names an original sequence, and
// returns none when the dead-letter stream does not exist. Other messages
// on the dead-letter stream, such as a test's filler, are skipped.
func (f *fixture) deadLetters() []letter {
	f.t.Helper()
	ctx, cancel := contextWithTimeout(20 * time.Second)
	defer cancel()
	stream, err := f.js.Stream(ctx, topology.DefaultDeadLetterStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		f.t.Fatalf("find the dead-letter stream: %v", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		f.t.Fatalf("read the dead-letter stream's state: %v", err)
	}

	var letters []letter
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		raw, err := stream.GetMsg(ctx, seq)
		if err != nil {
			f.t.Fatalf("read dead letter %d: %v", seq, err)
		}
		header := nats.Header(raw.Header)
		original, err := strconv.ParseUint(header.Get(deadletter.HeaderOriginalSequence), 10, 64)
		if err != nil {
			continue
		}
		letters = append(letters, letter{
			reason:   header.Get(deadletter.HeaderReason),
			sequence: original,
			errText:  header.Get(deadletter.HeaderError),
			data:     raw.Data,
			header:   header,
		})
	}
	return letters
}

// recordRun reads a worker's metrics and keeps them for the repeated-PUT
// count. Call it once per worker run, when the run's counters are final:
// after the stream drained, or while every PUT of the run is held at the
// stand-in just before a kill.
func (f *fixture) recordRun(worker *workerProcess) metricSet {
	f.t.Helper()
	metrics := worker.metrics()
	f.runs = append(f.runs, metrics)
	return metrics
}

// repeatedPUTs returns the requests beyond one per update: the retries the
// workers report, plus the requests the stand-in received that no worker
// counted as an attempt (sent by a worker killed before the response).
// The second PUT of a split update is not a repeat.
func (f *fixture) repeatedPUTs() int {
	retries, attempts := 0.0, 0.0
	for _, run := range f.runs {
		retries += run.sum("contact_sync_put_retries_total")
		attempts += run.sum("contact_sync_put_attempts_total")
	}
	requests := len(f.api.Requests())
	return int(retries) + requests - int(attempts)
}

// contextWithTimeout returns a background context with a timeout.
func contextWithTimeout(timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), timeout)
}

// waitFor polls condition every 20 ms until it holds, and fails the test
// after timeout. describe, when given, adds the last state seen to the
// failure message.
func waitFor(t testing.TB, timeout time.Duration, what string, condition func() bool, describe ...func() string) {
	t.Helper()
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	deadline := time.Now().Add(timeout)
	for !condition() {
		if time.Now().After(deadline) {
			detail := ""
			for _, d := range describe {
				detail += "; " + d()
			}
			t.Fatalf("timed out after %s waiting for %s%s", timeout, what, detail)
		}
		<-ticker.C
	}
}
