package worker_test

import (
	"bytes"
	"context"

	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/contact-sync/contact-sync/internal/contactapi"
	"github.com/contact-sync/contact-sync/internal/eventgen"
	"github.com/contact-sync/contact-sync/internal/natstest"
	"github.com/contact-sync/contact-sync/internal/topology"
	"github.com/contact-sync/contact-sync/sink"
	"github.com/contact-sync/contact-sync/worker"
)

const testToken = "test-token-5f2c9e"

// harnessOptions shape one test's worker, consumer and API.
type harnessOptions struct {
	rateLimit       float64
	rateBurst       int
	concurrency     int
	ackWait         time.Duration
	mergeWindow     time.Duration
	drainTimeout    time.Duration
	deadLetterRetry time.Duration
	api             contactapi.Options
}

// harness is a real nats-server, the contact API stand-in on 127.0.0.1 and
// a worker between them.
type harness struct {
	t        testing.TB
	opts     harnessOptions
	nats     *natsHandle
	api      *contactapi.Server
	baseURL  string
	registry *prometheus.Registry
	logs     *syncBuffer
	worker   *worker.Worker
	cancel   context.CancelFunc
	done     chan error
}

type natsHandle struct {
	conn     *nats.Conn
	js       jetstream.JetStream
	topology topology.Options
}

func newHarness(t testing.TB, opts harnessOptions) *harness {
	t.Helper()
	if opts.concurrency == 0 {
		opts.concurrency = 16
	}
	if opts.ackWait == 0 {
		opts.ackWait = 30 * time.Second
	}
	if opts.drainTimeout == 0 {
		opts.drainTimeout = 10 * time.Second
	}
	if opts.deadLetterRetry == 0 {
		opts.deadLetterRetry = 50 * time.Millisecond
	}
	opts.api.Token = testToken

	natsServer := natstest.Start(t)
	conn, js := natstest.Connect(t, natsServer)
	topologyOptions := topology.Options{AckWait: opts.ackWait}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := topology.Provision(ctx, js, topologyOptions); err != nil {
		t.Fatalf("provision streams: %v", err)
	}

	api, err := contactapi.New(opts.api)
	if err != nil {
		t.Fatalf("create contact API stand-in: %v", err)
	}
	baseURL, shutdown, err := api.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdown(ctx)
	})

	return &harness{
		t:       t,
		opts:    opts,
		nats:    &natsHandle{conn: conn, js: js, topology: topologyOptions},
		api:     api,
		baseURL: baseURL,
	}
}

// start creates a fresh worker with its own sink and registry and runs it.
func (h *harness) start() {
	h.t.Helper()

	h.registry = prometheus.NewRegistry()
	h.logs = &syncBuffer{}
	logger := zerolog.New(h.logs).Level(zerolog.DebugLevel)
	observer := worker.NewObserver(logger, h.registry)

	client, err := sink.New(sink.Options{
		BaseURL:         h.baseURL,
		Token:           sink.StaticToken(testToken),
		RateLimit:       h.opts.rateLimit,
		RateBurst:       h.opts.rateBurst,
		Timeout:         5 * time.Second,
		InitialInterval: 5 * time.Millisecond,
		MaxInterval:     50 * time.Millisecond,
		OnAttempt:       observer.ObserveAttempt,
		OnRetry:         observer.ObserveRetry,
		OnRateWait:      observer.ObserveRateWait,
	})
	if err != nil {
		h.t.Fatalf("create sink: %v", err)
	}

	js := h.nats.js
	topologyOptions := h.nats.topology
	h.worker, err = worker.New(worker.Options{
		Conn:      h.nats.conn,
		JetStream: js,
		Stream:    topology.DefaultStream,
		Consumer: func(ctx context.Context) (jetstream.Consumer, error) {
			return topology.Provision(ctx, js, topologyOptions)
		},
		Sink:            client,
		Logger:          logger,
		Observer:        observer,
		Concurrency:     h.opts.concurrency,
		MergeWindow:     h.opts.mergeWindow,
		AckWait:         h.opts.ackWait,
		DrainTimeout:    h.opts.drainTimeout,
		DeadLetterRetry: h.opts.deadLetterRetry,
	})
	if err != nil {
		h.t.Fatalf("create worker: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	runningWorker := h.worker
	go func() { h.done <- runningWorker.Run(ctx) }()
	h.t.Cleanup(func() { h.stop() })
}

// stop cancels the worker and waits for Run to return.
func (h *harness) stop() {
	h.t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("worker Run returned %v", err)
		}
	case <-time.After(30 * time.Second):
		h.t.Fatalf("worker did not stop within 30s")
	}
}

// publish publishes events in order and waits for each JetStream ack.
func (h *harness) publish(events []eventgen.Event) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, event := range events {
		if _, err := h.nats.js.Publish(ctx, topology.ChangesSubject(event.ContactID), event.Body); err != nil {
			h.t.Fatalf("publish event %d: %v", i, err)
		}
	}
}

// publishRaw publishes any body on any subject.
func (h *harness) publishRaw(subject string, body []byte) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := h.nats.js.Publish(ctx, subject, body); err != nil {
		h.t.Fatalf("publish on %s: %v", subject, err)
	}
}

// waitAccounted waits until applied plus dead-lettered events reach n.
func (h *harness) waitAccounted(n int64, timeout time.Duration) worker.Stats {
	h.t.Helper()
	var stats worker.Stats
	waitFor(h.t, timeout, func() bool {
		stats = h.worker.Stats()
		return accounted(stats) >= n
	}, func() string {
		return "events applied + dead-lettered to reach the number published"
	})
	return stats
}

func accounted(stats worker.Stats) int64 {
	total := stats.EventsApplied
	for _, n := range stats.EventsDeadLettered {
		total += n
	}
	return total
}

// consumerInfo returns the worker consumer's state.
func (h *harness) consumerInfo() *jetstream.ConsumerInfo {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	consumer, err := h.nats.js.Consumer(ctx, topology.DefaultStream, topology.DefaultConsumer)
	if err != nil {
		h.t.Fatalf("get consumer: %v", err)
	}
	info, err := consumer.Info(ctx)
	if err != nil {
		h.t.Fatalf("consumer info: %v", err)
	}
	return info
}

// waitConsumerSettled waits until the consumer has nothing pending and
// nothing unacked.
func (h *harness) waitConsumerSettled(timeout time.Duration) {
	h.t.Helper()
	var info *jetstream.ConsumerInfo
	waitFor(h.t, timeout, func() bool {
		info = h.consumerInfo()
		return info.NumPending == 0 && info.NumAckPending == 0
	}, func() string {
		return "consumer to have no pending and no unacked messages"
	})
}

// deadLetters reads every message of the dead-letter stream.
func (h *harness) deadLetters() []*nats.Msg {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := h.nats.js.Stream(ctx, topology.DefaultDeadLetterStream)
	if err != nil {
		h.t.Fatalf("get dead-letter stream: %v", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		h.t.Fatalf("dead-letter stream info: %v", err)
	}

	var letters []*nats.Msg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := stream.GetMsg(ctx, seq)
		if err != nil {
			h.t.Fatalf("get dead letter %d: %v", seq, err)
		}
		letters = append(letters, &nats.Msg{Subject: raw.Subject, Data: raw.Data, Header: nats.Header(raw.Header)})
	}
	return letters
}

// assertConverged compares every known contact's state at the API with the
// fold of the events in publish order.
func (h *harness) assertConverged(events []eventgen.Event, known []string) {
	h.t.Helper()
	want, err := eventgen.Fold(events)
	if err != nil {
		h.t.Fatalf("fold events: %v", err)
	}
	mismatches := 0
	for _, id := range known {
		got, _ := h.api.Contact(id)
		expected := want[id]
		if !got.Equal(&expected) {
			mismatches++
			if mismatches <= 3 {
				h.t.Errorf("contact %s at the API = %+v, want the fold %+v", id, got, expected)
			}
		}
	}
	if mismatches > 0 {
		h.t.Errorf("%d of %d contacts differ from the fold of their events", mismatches, len(known))
	}
}

// waitFor polls condition every 10ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, condition func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !condition() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, describe())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
