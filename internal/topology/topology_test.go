package topology_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/contact-sync/contact-sync/internal/natstest"
	"github.com/contact-sync/contact-sync/internal/topology"
)

const testContactID = "0f8fad5b-d9cb-469f-a165-70867728950e"

func testContext(t *testing.T) context.Context {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSubjects(t *testing.T) {
	if got, want := topology.ChangesSubject(testContactID), "contacts.changes."+testContactID; got != want {
		t.Errorf("ChangesSubject = %q, want %q", got, want)
	}
	if got, want := topology.DeadLetterSubject("not_found"), "contacts.deadletter.not_found"; got != want {
		t.Errorf("DeadLetterSubject = %q, want %q", got, want)
	}
}

func TestContactIDFromSubject(t *testing.T) {
	cases := []struct {
		subject string
		want    string
		wantOK  bool
	}{
		{"contacts.changes." + testContactID, testContactID, true},
		{topology.ChangesSubject(testContactID), testContactID, true},
		{"contacts.changes.not-a-uuid", "not-a-uuid", true},
		{"contacts.changes.", "", false},
		{"contacts.changes", "", false},
		{"contacts.changes." + testContactID + ".extra", "", false},
		{"contacts.changes.a.b", "", false},
		{"contacts.changes..x", "", false},
		{"contacts.changes.x.", "", false},
		{"contacts.deadletter.invalid", "", false},
		{"other.contacts.changes." + testContactID, "", false},
		{"", "", false},
	}
	for _, tc := range cases {
		got, ok := topology.ContactIDFromSubject(tc.subject)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("ContactIDFromSubject(%q) = %q, %v; want %q, %v", tc.subject, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestStreamConfigDefaults(t *testing.T) {
	config := topology.StreamConfig(topology.Options{})

	if config.Name != "CONTACTS" {
		t.Errorf("Name = %q, want CONTACTS", config.Name)
	}
	if len(config.Subjects) != 1 || config.Subjects[0] != "contacts.changes.>" {
		t.Errorf("Subjects = %q, want [contacts.changes.>]", config.Subjects)
	}
	if config.Retention != jetstream.LimitsPolicy {
		t.Errorf("Retention = %v, want limits", config.Retention)
	}
	if config.Duplicates != time.Hour {
		t.Errorf("Duplicates = %v, want 1h", config.Duplicates)
	}
	if config.MaxAge != 7*24*time.Hour {
		t.Errorf("MaxAge = %v, want 168h", config.MaxAge)
	}
	if config.Replicas != 1 {
		t.Errorf("Replicas = %d, want 1", config.Replicas)
	}
	if config.Storage != jetstream.FileStorage {
		t.Errorf("Storage = %v, want file", config.Storage)
	}
}

func TestDeadLetterStreamConfigDefaults(t *testing.T) {
	config := topology.DeadLetterStreamConfig(topology.Options{})

	if config.Name != "CONTACTS_DEADLETTER" {
		t.Errorf("Name = %q, want CONTACTS_DEADLETTER", config.Name)
	}
	if len(config.Subjects) != 1 || config.Subjects[0] != "contacts.deadletter.>" {
		t.Errorf("Subjects = %q, want [contacts.deadletter.>]", config.Subjects)
	}
	if config.Retention != jetstream.LimitsPolicy {
		t.Errorf("Retention = %v, want limits", config.Retention)
	}
	if config.MaxAge != 0 {
		t.Errorf("MaxAge = %v, want 0 (kept until removed)", config.MaxAge)
	}
}

func TestConsumerConfigDefaults(t *testing.T) {
	config := topology.ConsumerConfig(topology.Options{})

	if config.Durable != "contact-sync" {
		t.Errorf("Durable = %q, want contact-sync", config.Durable)
	}
	if config.AckPolicy != jetstream.AckExplicitPolicy {
		t.Errorf("AckPolicy = %v, want explicit", config.AckPolicy)
	}
	if config.MaxDeliver != -1 {
		t.Errorf("MaxDeliver = %d, want -1 (unlimited)", config.MaxDeliver)
	}
	if config.FilterSubject != "contacts.changes.>" {
		t.Errorf("FilterSubject = %q, want contacts.changes.>", config.FilterSubject)
	}
	if config.AckWait != 30*time.Second {
		t.Errorf("AckWait = %v, want 30s", config.AckWait)
	}
	if config.MaxAckPending != 20000 {
		t.Errorf("MaxAckPending = %d, want 20000", config.MaxAckPending)
	}
	if config.DeliverPolicy != jetstream.DeliverAllPolicy {
		t.Errorf("DeliverPolicy = %v, want all", config.DeliverPolicy)
	}
}

func TestConfigOptions(t *testing.T) {
	opts := topology.Options{
		Stream:           "S",
		DeadLetterStream: "S_DL",
		Consumer:         "c",
		AckWait:          time.Minute,
		MaxAckPending:    10,
		DuplicateWindow:  2 * time.Minute,
		MaxAge:           3 * time.Hour,
		Replicas:         3,
	}

	stream := topology.StreamConfig(opts)
	if stream.Name != "S" || stream.Duplicates != 2*time.Minute || stream.MaxAge != 3*time.Hour || stream.Replicas != 3 {
		t.Errorf("StreamConfig = name %q, duplicates %v, max age %v, replicas %d; want S, 2m, 3h, 3",
			stream.Name, stream.Duplicates, stream.MaxAge, stream.Replicas)
	}
	deadLetter := topology.DeadLetterStreamConfig(opts)
	if deadLetter.Name != "S_DL" || deadLetter.Replicas != 3 {
		t.Errorf("DeadLetterStreamConfig = name %q, replicas %d; want S_DL, 3", deadLetter.Name, deadLetter.Replicas)
	}
	consumer := topology.ConsumerConfig(opts)
	if consumer.Durable != "c" || consumer.AckWait != time.Minute || consumer.MaxAckPending != 10 {
		t.Errorf("ConsumerConfig = durable %q, ack wait %v, max ack pending %d; want c, 1m, 10",
			consumer.Durable, consumer.AckWait, consumer.MaxAckPending)
	}
}

func TestProvisionIsIdempotent(t *testing.T) {
	ctx := testContext(t)
	_, js := natstest.Connect(t, natstest.Start(t))

	for i := range 2 {
		consumer, err := topology.Provision(ctx, js, topology.Options{})
		if err != nil {
			t.Fatalf("Provision call %d: %v", i+1, err)
		}
		if name := consumer.CachedInfo().Name; name != "contact-sync" {
			t.Errorf("Provision call %d returned consumer %q, want contact-sync", i+1, name)
		}
	}

	checkStream(t, ctx, js, "CONTACTS", "contacts.changes.>")
	checkStream(t, ctx, js, "CONTACTS_DEADLETTER", "contacts.deadletter.>")

	stream, err := js.Stream(ctx, "CONTACTS")
	if err != nil {
		t.Fatalf("find stream CONTACTS: %v", err)
	}
	names := stream.ConsumerNames(ctx)
	var consumers []string
	for name := range names.Name() {
		consumers = append(consumers, name)
	}
	if err := names.Err(); err != nil {
		t.Fatalf("list consumers of CONTACTS: %v", err)
	}
	if len(consumers) != 1 || consumers[0] != "contact-sync" {
		t.Errorf("consumers of CONTACTS = %q, want [contact-sync]", consumers)
	}

	info := consumerInfo(t, ctx, js, "CONTACTS", "contact-sync")
	if info.Config.AckPolicy != jetstream.AckExplicitPolicy || info.Config.MaxDeliver != -1 || info.Config.FilterSubject != "contacts.changes.>" {
		t.Errorf("consumer config = ack %v, max deliver %d, filter %q; want explicit, -1, contacts.changes.>",
			info.Config.AckPolicy, info.Config.MaxDeliver, info.Config.FilterSubject)
	}
}

func checkStream(t *testing.T, ctx context.Context, js jetstream.JetStream, name, subject string) {
	t.Helper()

	stream, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("find stream %s: %v", name, err)
	}
	config := stream.CachedInfo().Config
	if len(config.Subjects) != 1 || config.Subjects[0] != subject {
		t.Errorf("stream %s subjects = %q, want [%s]", name, config.Subjects, subject)
	}
	if config.Retention != jetstream.LimitsPolicy {
		t.Errorf("stream %s retention = %v, want limits", name, config.Retention)
	}
}

func consumerInfo(t *testing.T, ctx context.Context, js jetstream.JetStream, stream, name string) *jetstream.ConsumerInfo {
	t.Helper()

	consumer, err := js.Consumer(ctx, stream, name)
	if err != nil {
		t.Fatalf("find consumer %s on stream %s: %v", name, stream, err)
	}
	info, err := consumer.Info(ctx)
	if err != nil {
		t.Fatalf("read info of consumer %s: %v", name, err)
	}
	return info
}

func TestProvisionUpdatesAckWait(t *testing.T) {
	ctx := testContext(t)
	_, js := natstest.Connect(t, natstest.Start(t))

	if _, err := topology.Provision(ctx, js, topology.Options{}); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if got := consumerInfo(t, ctx, js, "CONTACTS", "contact-sync").Config.AckWait; got != topology.DefaultAckWait {
		t.Fatalf("AckWait after the first Provision = %v, want %v", got, topology.DefaultAckWait)
	}

	if _, err := topology.Provision(ctx, js, topology.Options{AckWait: 45 * time.Second}); err != nil {
		t.Fatalf("Provision with AckWait 45s: %v", err)
	}
	if got := consumerInfo(t, ctx, js, "CONTACTS", "contact-sync").Config.AckWait; got != 45*time.Second {
		t.Errorf("AckWait after the second Provision = %v, want 45s", got)
	}
}

func TestProvisionStreamsCapturesSubjects(t *testing.T) {
	ctx := testContext(t)
	_, js := natstest.Connect(t, natstest.Start(t))
	if err := topology.ProvisionStreams(ctx, js, topology.Options{}); err != nil {
		t.Fatalf("ProvisionStreams: %v", err)
	}

	ack, err := js.Publish(ctx, topology.ChangesSubject(testContactID), []byte(`{}`), jetstream.WithMsgID("evt-1"))
	if err != nil {
		t.Fatalf("publish on %s: %v", topology.ChangesSubject(testContactID), err)
	}
	if ack.Stream != "CONTACTS" {
		t.Errorf("change event stored in stream %q, want CONTACTS", ack.Stream)
	}

	again, err := js.Publish(ctx, topology.ChangesSubject(testContactID), []byte(`{}`), jetstream.WithMsgID("evt-1"))
	if err != nil {
		t.Fatalf("publish evt-1 again: %v", err)
	}
	if !again.Duplicate {
		t.Errorf("second publish of evt-1 was stored again, want it dropped within the duplicate window")
	}

	deadLetter, err := js.Publish(ctx, topology.DeadLetterSubject("invalid"), []byte(`{}`))
	if err != nil {
		t.Fatalf("publish on %s: %v", topology.DeadLetterSubject("invalid"), err)
	}
	if deadLetter.Stream != "CONTACTS_DEADLETTER" {
		t.Errorf("dead letter stored in stream %q, want CONTACTS_DEADLETTER", deadLetter.Stream)
	}
}

func TestBindWithoutConsumer(t *testing.T) {
	ctx := testContext(t)
	_, js := natstest.Connect(t, natstest.Start(t))

	_, err := topology.Bind(ctx, js, topology.Options{})
	if err == nil {
		t.Fatalf("Bind succeeded without the stream")
	}
	checkBindError(t, err, "contact-sync", "CONTACTS")
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("Bind error %q does not wrap jetstream.ErrStreamNotFound", err)
	}

	if err := topology.ProvisionStreams(ctx, js, topology.Options{}); err != nil {
		t.Fatalf("ProvisionStreams: %v", err)
	}
	_, err = topology.Bind(ctx, js, topology.Options{Consumer: "custom-worker"})
	if err == nil {
		t.Fatalf("Bind succeeded without the consumer")
	}
	checkBindError(t, err, "custom-worker", "CONTACTS")
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("Bind error %q does not wrap jetstream.ErrConsumerNotFound", err)
	}
}

func checkBindError(t *testing.T, err error, consumer, stream string) {
	t.Helper()

	for _, want := range []string{"consumer " + consumer, "stream " + stream} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Bind error %q does not contain %q", err, want)
		}
	}
}

func TestBindAfterProvision(t *testing.T) {
	ctx := testContext(t)
	_, js := natstest.Connect(t, natstest.Start(t))

	if _, err := topology.Provision(ctx, js, topology.Options{AckWait: time.Minute}); err != nil {
		t.Fatalf("Provision: %v", err)
	}

	consumer, err := topology.Bind(ctx, js, topology.Options{})
	if err != nil {
		t.Fatalf("Bind after Provision: %v", err)
	}
	if name := consumer.CachedInfo().Name; name != "contact-sync" {
		t.Errorf("Bind returned consumer %q, want contact-sync", name)
	}
	if got := consumerInfo(t, ctx, js, "CONTACTS", "contact-sync").Config.AckWait; got != time.Minute {
		t.Errorf("AckWait after Bind = %v, want the provisioned 1m unchanged", got)
	}

	if _, err := js.Publish(ctx, topology.ChangesSubject(testContactID), []byte(`{}`)); err != nil {
		t.Fatalf("publish on %s: %v", topology.ChangesSubject(testContactID), err)
	}
	batch, err := consumer.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("fetch from the bound consumer: %v", err)
	}
	var received int
	for msg := range batch.Messages() {
		received++
		if msg.Subject() != topology.ChangesSubject(testContactID) {
			t.Errorf("fetched subject %q, want %q", msg.Subject(), topology.ChangesSubject(testContactID))
		}
	}
	if received != 1 {
		t.Errorf("fetched %d messages, want 1 (fetch error: %v)", received, batch.Error())
	}
}
