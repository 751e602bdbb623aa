package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/contact-sync/contact-sync/sink"
)

// Sink sends one contact's partial update. *sink.Client implements it.
// PutFunc must be safe for concurrent use, call body at most once, and
// return nil only when the API stored the update.
type Sink interface {
	PutFunc(ctx context.Context, contactID string, body func() []byte) (sink.Result, error)
}

// Defaults of Options.
const (
	DefaultConcurrency     = 32
	DefaultFetchBatch      = 2000
	DefaultFetchBytes      = 16 << 20
	DefaultCatchUpLimit    = 2 * time.Second
	DefaultAckWait         = 30 * time.Second
	DefaultDrainTimeout    = 25 * time.Second
	DefaultPublishTimeout  = 5 * time.Second
	DefaultDeadLetterRetry = 10 * time.Second
)

// Options configures a Worker. Conn, JetStream, Stream, Consumer and Sink
// are required; a zero field of any other kind takes its default.
type Options struct {
	// Conn is the NATS connection that acks are published on.
	Conn *nats.Conn

	// JetStream publishes dead letters and reads original events back.
	JetStream jetstream.JetStream

	// Stream is the name of the stream the consumer reads.
	Stream string

	// Consumer returns the durable consumer to read. Run calls it at start
	// and again whenever the consumer is lost, so it may create the
	// consumer when the worker provisions it.
	Consumer func(ctx context.Context) (jetstream.Consumer, error)

	// Sink sends the updates.
	Sink Sink

	// Logger receives the worker's logs; the zero value logs nothing.
	Logger zerolog.Logger

	// Observer records metrics and logs retries. When nil, the worker
	// creates one on Registerer; pass the one whose Observe methods are
	// wired into the sink so that one set of metrics counts both.
	Observer *Observer

	// Registerer receives the worker's metrics when Observer is nil; nil
	// registers none.
	Registerer prometheus.Registerer

	// Concurrency is the most PUTs in flight at once, for different
	// contacts; default 32.
	Concurrency int

	// MergeWindow is how long a contact's first pending event waits before
	// its PUT may start, so that events close behind it merge into the same
	// PUT; default 0 (send as soon as a sender and a rate token are free).
	MergeWindow time.Duration

	// FetchBatch is how many messages the client buffers ahead of the
	// worker; default 2000. A larger batch lets more events of a contact
	// arrive before its PUT starts.
	FetchBatch int

	// FetchBytes caps the bytes the client buffers ahead; default 16 MiB.
	FetchBytes int

	// MaxAckPending must equal the consumer's max ack pending. When set,
	// senders start no PUT while a backlog is still being fetched, until
	// the worker holds nearly that many messages or CatchUpLimit passes,
	// so that a contact's events merge into one PUT. 0 disables the wait.
	MaxAckPending int

	// CatchUpLimit bounds that wait; default 2s.
	CatchUpLimit time.Duration

	// AckWait must equal the consumer's ack wait; held messages get an
	// in-progress ack every third of it. Default 30s.
	AckWait time.Duration

	// DrainTimeout bounds how long Run waits, once its context ends, for
	// PUTs in flight to finish; default 25s.
	DrainTimeout time.Duration

	// PublishTimeout bounds one dead-letter publish; default 5s.
	PublishTimeout time.Duration

	// DeadLetterRetry is the delay of the nak that returns a message whose
	// dead letter could not be stored; default 10s.
	DeadLetterRetry time.Duration
}

func (o *Options) setDefaults() {
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.FetchBatch == 0 {
		o.FetchBatch = DefaultFetchBatch
	}
	if o.CatchUpLimit == 0 {
		o.CatchUpLimit = DefaultCatchUpLimit
	}
	if o.FetchBytes == 0 {
		o.FetchBytes = DefaultFetchBytes
	}
	if o.AckWait == 0 {
		o.AckWait = DefaultAckWait
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.PublishTimeout == 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.DeadLetterRetry == 0 {
		o.DeadLetterRetry = DefaultDeadLetterRetry
	}
}

func (o *Options) validate() error {
	switch {
	case o.Conn == nil:
		return errors.New("worker: Conn is required")
	case o.JetStream == nil:
		return errors.New("worker: JetStream is required")
	case o.Stream == "":
		return errors.New("worker: Stream is required")
	case o.Consumer == nil:
		return errors.New("worker: Consumer is required")
	case o.Sink == nil:
		return errors.New("worker: Sink is required")
	case o.Concurrency < 1:
		return fmt.Errorf("worker: concurrency %d must be at least 1", o.Concurrency)
	case o.MergeWindow < 0:
		return fmt.Errorf("worker: merge window %s must not be negative", o.MergeWindow)
	case o.AckWait < 3*time.Millisecond:
		return fmt.Errorf("worker: ack wait %s is too short", o.AckWait)
	}
	return nil
}
