package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/contact-sync/contact-sync/internal/contact"
	"github.com/contact-sync/contact-sync/internal/topology"
)

// Delays between attempts to get the consumer back after losing it.
const (
	consumerRetryInitial = 500 * time.Millisecond
	consumerRetryMax     = 15 * time.Second
)

// consume reads messages until ctx ends. When the message iterator closes
// for another reason (the consumer was deleted, say) it gets the consumer
// again through Options.Consumer, waiting longer after each failure.
func (w *Worker) consume(ctx context.Context, invalid chan<- invalidMessage) {
	delay := consumerRetryInitial
	for ctx.Err() == nil {
		err := w.consumeOnce(ctx, invalid)
		w.consuming.Store(false)
		w.metrics.ready.Set(0)
		if ctx.Err() != nil {
			return
		}

		w.logger.Error().Err(err).Dur("retry_in", delay).Msg("consuming stopped; not ready until the consumer is back")
		if sleepContext(ctx, delay) != nil {
			return
		}
		delay = min(2*delay, consumerRetryMax)
	}
}

// consumeOnce gets the consumer and reads it until ctx ends or the iterator
// closes. It returns why it stopped.
func (w *Worker) consumeOnce(ctx context.Context, invalid chan<- invalidMessage) error {
	consumer, err := w.opts.Consumer(ctx)
	if err != nil {
		return fmt.Errorf("get consumer: %w", err)
	}

	iterator, err := consumer.Messages(jetstream.PullMaxMessages(w.opts.FetchBatch))
	if err != nil {
		return fmt.Errorf("start pulling messages: %w", err)
	}
	stopIterator := context.AfterFunc(ctx, iterator.Stop)
	defer stopIterator()
	defer iterator.Stop()

	w.consuming.Store(true)
	w.metrics.ready.Set(1)
	w.logger.Info().Str("stream", w.opts.Stream).Msg("consuming")

	for {
		msg, err := iterator.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return fmt.Errorf("message iterator closed: %w", err)
		}
		if err != nil {
			// Missed heartbeats while NATS reconnects land here; the
			// iterator keeps pulling once the connection is back.
			w.retryLog.warn(err.Error(), noFields, "pulling messages failed; retrying")
			continue
		}
		w.handle(msg, invalid)
	}
}

// handle decodes one message and holds it, dead-letters it or acks it.
func (w *Worker) handle(msg jetstream.Msg, invalid chan<- invalidMessage) {
	held := heldMessage{reply: msg.Reply()}
	redelivered := false
	if metadata, err := msg.Metadata(); err == nil {
		held.sequence = metadata.Sequence.Stream
		redelivered = metadata.NumDelivered > 1
	}
	w.metrics.receivedEvent(redelivered)
	w.metrics.heldDelta(1)

	event, contactID, err := decodeMessage(msg.Subject(), msg.Data())
	if err != nil {
		invalid <- invalidMessage{msg: msg, held: held, contactID: contactID, err: err}
		return
	}

	if event.Changes.IsEmpty() {
		w.ack([]heldMessage{held})
		w.metrics.appliedEvents(1)
		return
	}

	switch w.scheduler.add(event.ContactID, &event.Changes, held, redelivered) {
	case addMerged:
		w.metrics.mergedEvent()
	case addDuplicate:
		// The same delivery is held already; this one only refreshed
		// the reply subject and is acked with it.
		w.metrics.heldDelta(-1)
	}
}

// decodeMessage decodes an event and checks that its contact_id matches the
// subject's. On error it returns the contact_id it could read, or "".
func decodeMessage(subject string, data []byte) (contact.Event, string, error) {
	token, ok := topology.ContactIDFromSubject(subject)
	if !ok {
		return contact.Event{}, "", fmt.Errorf("subject %q is not %s<contact_id>: %w", subject, topology.ChangesSubjectPrefix, contact.ErrInvalidEvent)
	}
	subjectID, err := contact.ParseID(token)
	if err != nil {
		return contact.Event{}, "", fmt.Errorf("subject's %w", err)
	}

	event, err := contact.DecodeEvent(data)
	if err != nil {
		return contact.Event{}, subjectID, err
	}
	if event.ContactID != subjectID {
		return contact.Event{}, subjectID, fmt.Errorf("contact_id %s differs from the subject's %s: %w", event.ContactID, subjectID, contact.ErrInvalidEvent)
	}
	return event, subjectID, nil
}
