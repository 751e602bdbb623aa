// Package topology names the subjects, streams and consumer that carry
// contact-change events and dead letters, and creates them in JetStream.
//
// Events are published on contacts.changes.<contact_id> and captured by the
// stream CONTACTS. Dead letters are published on
// contacts.deadletter.<reason> and captured by CONTACTS_DEADLETTER. The
// worker reads CONTACTS through the durable pull consumer contact-sync.
package topology

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Subjects and default names of the contract.
const (
	ChangesSubjectPrefix    = "contacts.changes."
	ChangesSubjects         = ChangesSubjectPrefix + ">"
	DeadLetterSubjectPrefix = "contacts.deadletter."
	DeadLetterSubjects      = DeadLetterSubjectPrefix + ">"

	DefaultStream           = "CONTACTS"
	DefaultDeadLetterStream = "CONTACTS_DEADLETTER"
	DefaultConsumer         = "contact-sync"
)

// Defaults of Options.
const (
	DefaultAckWait         = 30 * time.Second
	DefaultMaxAckPending   = 20000
	DefaultDuplicateWindow = time.Hour
	DefaultMaxAge          = 7 * 24 * time.Hour
)

// ChangesSubject returns the subject of a contact's change events. The
// contact_id must already be a canonical UUID (see contact.ParseID).
func ChangesSubject(contactID string) string {
	return ChangesSubjectPrefix + contactID
}

// DeadLetterSubject returns the subject of dead letters for a reason.
func DeadLetterSubject(reason string) string {
	return DeadLetterSubjectPrefix + reason
}

// ContactIDFromSubject returns the token after contacts.changes., unvalidated,
// and false when the subject is not a change subject of exactly one token.
func ContactIDFromSubject(subject string) (string, bool) {
	token, found := strings.CutPrefix(subject, ChangesSubjectPrefix)
	if !found || token == "" || strings.Contains(token, ".") {
		return "", false
	}
	return token, true
}

// Options names the streams and consumer and sets what Provision creates.
// The zero value of each field means its default.
type Options struct {
	// Stream is the stream of change events; default CONTACTS.
	Stream string

	// DeadLetterStream is the stream of dead letters; default
	// CONTACTS_DEADLETTER.
	DeadLetterStream string

	// Consumer is the durable pull consumer's name; default contact-sync.
	Consumer string

	// AckWait is how long JetStream waits for an ack or an in-progress ack
	// before it redelivers a message; default 30s.
	AckWait time.Duration

	// MaxAckPending is how many messages the consumer delivers without an
	// ack; it bounds the messages the worker holds. Default 20000.
	MaxAckPending int

	// DuplicateWindow is how long the change stream remembers a Nats-Msg-Id
	// to drop a second publish of the same event; default 1h.
	DuplicateWindow time.Duration

	// MaxAge is how long the change stream keeps an event; default 7 days.
	// An event older than this is removed even if it was never applied.
	MaxAge time.Duration

	// Replicas is the number of replicas of both streams in a clustered
	// JetStream; default 1.
	Replicas int
}

func (o *Options) setDefaults() {
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.DeadLetterStream == "" {
		o.DeadLetterStream = DefaultDeadLetterStream
	}
	if o.Consumer == "" {
		o.Consumer = DefaultConsumer
	}
	if o.AckWait == 0 {
		o.AckWait = DefaultAckWait
	}
	if o.MaxAckPending == 0 {
		o.MaxAckPending = DefaultMaxAckPending
	}
	if o.DuplicateWindow == 0 {
		o.DuplicateWindow = DefaultDuplicateWindow
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
}

// StreamConfig returns the configuration of the change stream. It keeps
// events by age (limits retention) rather than deleting them on ack, so
// that a dead letter can carry an event's original body and a consumer can
// be replayed.
func StreamConfig(opts Options) jetstream.StreamConfig {
	opts.setDefaults()
	return jetstream.StreamConfig{
		Name:        opts.Stream,
		Description: "Contact-change events, one subject per contact.",
		Subjects:    []string{ChangesSubjects},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
		MaxAge:      opts.MaxAge,
		Duplicates:  opts.DuplicateWindow,
		Replicas:    opts.Replicas,
		AllowDirect: true,
	}
}

// DeadLetterStreamConfig returns the configuration of the dead-letter
// stream. Dead letters are kept until an operator removes them.
func DeadLetterStreamConfig(opts Options) jetstream.StreamConfig {
	opts.setDefaults()
	return jetstream.StreamConfig{
		Name:        opts.DeadLetterStream,
		Description: "Contact-change events that could not be applied, with the reason in headers.",
		Subjects:    []string{DeadLetterSubjects},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		Replicas:    opts.Replicas,
		AllowDirect: true,
	}
}

// ConsumerConfig returns the configuration of the worker's durable pull
// consumer. MaxDeliver is unlimited, because a message the server stops
// redelivering would be lost; the worker dead-letters what it cannot apply.
func ConsumerConfig(opts Options) jetstream.ConsumerConfig {
	opts.setDefaults()
	return jetstream.ConsumerConfig{
		Durable:       opts.Consumer,
		Description:   "contact-sync worker: applies contact changes to the contact API.",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       opts.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: opts.MaxAckPending,
		FilterSubject: ChangesSubjects,
	}
}

// ProvisionStreams creates or updates both streams.
func ProvisionStreams(ctx context.Context, js jetstream.JetStream, opts Options) error {
	if _, err := js.CreateOrUpdateStream(ctx, StreamConfig(opts)); err != nil {
		return fmt.Errorf("create or update stream %s: %w", StreamConfig(opts).Name, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, DeadLetterStreamConfig(opts)); err != nil {
		return fmt.Errorf("create or update stream %s: %w", DeadLetterStreamConfig(opts).Name, err)
	}
	return nil
}

// Provision creates or updates both streams and the consumer, and returns
// the consumer.
func Provision(ctx context.Context, js jetstream.JetStream, opts Options) (jetstream.Consumer, error) {
	if err := ProvisionStreams(ctx, js, opts); err != nil {
		return nil, err
	}

	opts.setDefaults()
	consumer, err := js.CreateOrUpdateConsumer(ctx, opts.Stream, ConsumerConfig(opts))
	if err != nil {
		return nil, fmt.Errorf("create or update consumer %s on stream %s: %w", opts.Consumer, opts.Stream, err)
	}
	return consumer, nil
}

// Bind returns the existing consumer without changing anything, for
// clusters where the streams and consumer are managed elsewhere.
func Bind(ctx context.Context, js jetstream.JetStream, opts Options) (jetstream.Consumer, error) {
	opts.setDefaults()
	consumer, err := js.Consumer(ctx, opts.Stream, opts.Consumer)
	if err != nil {
		return nil, fmt.Errorf("find consumer %s on stream %s (create it, or let the worker provision it): %w", opts.Consumer, opts.Stream, err)
	}
	return consumer, nil
}
