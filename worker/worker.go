package worker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// invalidQueueSize bounds the invalid messages waiting for their dead
// letter; the intake blocks when it is full.
const invalidQueueSize = 1024

// ErrNotReady is returned by Ready, wrapped with the cause, while the
// worker is not connected to NATS or not consuming.
var ErrNotReady = errors.New("worker not ready")

// Worker consumes, merges, sends and acks. Create it with New and start it
// with Run, once. Its methods are safe for concurrent use.
type Worker struct {
	opts      Options
	logger    zerolog.Logger
	observer  *Observer
	metrics   *metrics
	retryLog  *changeLogger
	scheduler *scheduler
	streams   *streamHandle
	catchUp   *catchUpGate

	consuming atomic.Bool
}

// New returns a worker after validating opts.
func New(opts Options) (*Worker, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}

	observer := opts.Observer
	if observer == nil {
		observer = NewObserver(opts.Logger, opts.Registerer)
	}

	var catchUp *catchUpGate
	if opts.MaxAckPending > 0 {
		catchUp = newCatchUpGate(opts.MaxAckPending, opts.FetchBatch, opts.CatchUpLimit)
	}

	worker := &Worker{
		opts:      opts,
		logger:    opts.Logger,
		observer:  observer,
		metrics:   observer.metrics,
		retryLog:  observer.retryLog,
		scheduler: newScheduler(opts.MergeWindow, catchUp),
		streams:   &streamHandle{js: opts.JetStream, name: opts.Stream},
		catchUp:   catchUp,
	}
	return worker, nil
}

// Run consumes until ctx ends, then shuts down: it stops fetching, lets
// PUTs in flight finish within DrainTimeout, and naks every message still
// held so that JetStream redelivers it. It returns nil after a shutdown
// caused by ctx.
func (w *Worker) Run(ctx context.Context) error {
	w.logger.Info().Int("concurrency", w.opts.Concurrency).Dur("merge_window", w.opts.MergeWindow).
		Dur("ack_wait", w.opts.AckWait).Msg("worker starting")

	// Senders finish their PUTs on drainCtx, which outlives ctx by at most
	// DrainTimeout.
	drainCtx, cancelDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDrain()
	stopDrainTimer := context.AfterFunc(ctx, func() {
		time.AfterFunc(w.opts.DrainTimeout, cancelDrain)
	})
	defer stopDrainTimer()

	invalid := make(chan invalidMessage, invalidQueueSize)
	var background sync.WaitGroup
	background.Go(func() { w.runSenders(ctx, drainCtx) })
	background.Go(func() { w.runInvalidDeadLetters(drainCtx, invalid) })
	keepAliveDone := make(chan struct{})
	go func() {
		defer close(keepAliveDone)
		w.runKeepAlive(drainCtx)
	}()

	w.consume(ctx, invalid)
	close(invalid)
	w.logger.Info().Int("held_messages", int(w.metrics.heldCount.Load())).Msg("stopped fetching; draining")

	background.Wait()
	cancelDrain()
	<-keepAliveDone

	released := w.scheduler.releaseAll()
	w.nak(released, 0)
	w.metrics.pendingContacts.Set(0)
	w.logger.Info().Int("nakked_messages", len(released)).Msg("worker stopped")
	return nil
}

// Ready returns nil while the worker is connected to NATS, consuming, and
// its token is accepted by the contact API, and an error wrapping
// ErrNotReady otherwise.
func (w *Worker) Ready() error {
	if !w.opts.Conn.IsConnected() {
		return errors.Join(ErrNotReady, errors.New("not connected to NATS"))
	}
	if !w.consuming.Load() {
		return errors.Join(ErrNotReady, errors.New("not consuming"))
	}
	if w.observer.TokenRefused() {
		return errors.Join(ErrNotReady, errors.New("the contact API rejects the token"))
	}
	return nil
}

// Stats returns a snapshot of the worker's counters.
func (w *Worker) Stats() Stats {
	return w.metrics.snapshot()
}

// runKeepAlive sends in-progress acks for held messages every third of the
// ack wait until ctx ends.
func (w *Worker) runKeepAlive(ctx context.Context) {
	ticker := time.NewTicker(w.opts.AckWait / 3)
	defer ticker.Stop()

	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			w.keepAlive()
			w.metrics.pendingContacts.Set(float64(w.scheduler.pendingCount()))
		}
	}
}

// runInvalidDeadLetters dead-letters invalid messages until the channel is
// closed.
func (w *Worker) runInvalidDeadLetters(ctx context.Context, invalid <-chan invalidMessage) {
	for message := range invalid {
		w.deadLetterInvalid(ctx, message)
	}
}
